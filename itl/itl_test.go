package itl

import (
	"bytes"
	"crypto"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

func record(t testing.TB, key string, role ctl.Role) ctl.Record {
	cert, _ := testkeys.Load(t, key)
	r, err := ctl.NewRecord(cert, role)
	require.NoError(t, err)
	return r
}

func TestVector(t *testing.T) {
	f, err := Parse(testkeys.Vector(t, "ITLFile.tlv"))
	require.NoError(t, err)
	require.NoError(t, Verify(f))
	assert.Len(t, f.Records, 7)
	assert.Equal(t, "ITLFile.tlv", f.Filename)
}

func TestCreateAndVerify(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		signer string
		recs   []ctl.Record
	}{
		{"ITLRecovery (SAST) signer", "sast", []ctl.Record{record(t, "sast", ctl.RoleSAST), record(t, "tftp", ctl.RoleCCMTFTP), record(t, "tftp", ctl.RoleTVS)}},
		{"TFTP signer (CUCM 11.x and earlier)", "tftp", []ctl.Record{record(t, "tftp", ctl.RoleTFTP), record(t, "tftp", ctl.RoleTVS), record(t, "device", ctl.RoleCAPF)}},
		{"CCM+TFTP signer", "tftp", []ctl.Record{record(t, "tftp", ctl.RoleCCMTFTP)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := testkeys.Load(t, tc.signer)
			tmpl := &File{Header: sgn.Header{Hash: crypto.SHA512, Timestamp: at}, Records: tc.recs}
			out, err := Create(nil, tmpl, cert, key)
			require.NoError(t, err)
			again, err := Create(nil, tmpl, cert, key)
			require.NoError(t, err)
			assert.Equal(t, out, again)

			f, err := Parse(out)
			require.NoError(t, err)
			require.NoError(t, Verify(f))
			assert.Equal(t, "ITLFile.tlv", f.Filename)
			// A CTL may not be signed by a TFTP record.
			if tc.signer == "tftp" {
				assert.ErrorIs(t, f.Verify(), ctl.ErrPolicy)
			}
		})
	}
}

func TestSignerNotAllowed(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	_, err := Create(nil, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []ctl.Record{record(t, "tftp", ctl.RoleCCM), record(t, "sast", ctl.RoleSAST)}}, cert, key)
	var pe *ctl.PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "ITL", pe.Policy)
	assert.Contains(t, err.Error(), "SAST, TFTP or CCM+TFTP")
}

func TestSizeLimit(t *testing.T) {
	cert, key := testkeys.Load(t, "sast")
	recs := []ctl.Record{record(t, "sast", ctl.RoleSAST)}
	tvs := record(t, "tftp", ctl.RoleTVS)
	for range 50 { // ~1.5 KiB each: about 75 KiB
		recs = append(recs, tvs)
	}
	_, err := Create(nil, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: recs}, cert, key)
	require.ErrorIs(t, err, ctl.ErrPolicy)
	assert.Contains(t, err.Error(), "more than the 65536 phones accept")

	// The same file made without the limit is refused by Parse and
	// Verify, and still readable with ctl.Parse.
	big, err := ctl.Policy{Name: "ITL", DefaultFilename: "ITLFile.tlv", SignerRoles: []ctl.Role{ctl.RoleSAST}}.Create(nil, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: recs}, cert, key)
	require.NoError(t, err)
	require.Greater(t, len(big), MaxSize)
	_, err = Parse(big)
	assert.ErrorIs(t, err, ctl.ErrPolicy)
	f, err := ctl.Parse(big)
	require.NoError(t, err)
	assert.ErrorIs(t, Verify(f), ctl.ErrPolicy)

	// 39 TVS records still fit.
	_, err = Create(nil, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: recs[:40]}, cert, key)
	assert.NoError(t, err)
}

func TestParseErrors(t *testing.T) {
	data := testkeys.Vector(t, "ITLFile.tlv")
	for name, in := range map[string][]byte{"empty": nil, "truncated": data[:len(data)-1], "trailing": append(bytes.Clone(data), 0)} {
		_, err := Parse(in)
		assert.ErrorIs(t, err, sgn.ErrMalformed, name)
		assert.False(t, errors.Is(err, ctl.ErrPolicy), name)
	}
}
