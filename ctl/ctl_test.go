package ctl

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// parseTxt reads certutils' tlvfile --parse output: the header block, then
// one block per record.
func parseTxt(t *testing.T, name string) (header map[string]string, records []map[string]string) {
	cur := map[string]string{}
	header = cur
	sc := bufio.NewScanner(bytes.NewReader(testkeys.Vector(t, name)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if k == "Record Length" {
			cur = map[string]string{}
			records = append(records, cur)
		}
		cur[k] = strings.TrimSpace(v)
	}
	return header, records
}

func TestVectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		roles []Role
		hash  crypto.Hash
	}{
		{"ITLFile.tlv", []Role{RoleSAST, RoleCCM, RoleTFTP, RoleCCMTFTP, RoleCAPF, RoleAppServer, RoleTVS}, crypto.SHA1},
		{"CTLFile-sha512-v1.1.tlv", []Role{RoleSAST, RoleCCMTFTP}, crypto.SHA512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := testkeys.Vector(t, tc.name)
			wantHdr, wantRecs := parseTxt(t, tc.name+".parse.txt")
			f, err := Parse(data)
			require.NoError(t, err)

			assert.Equal(t, wantHdr["Version"], f.Version.String())
			assert.Equal(t, wantHdr["Header Length"], fmt.Sprintf("%d bytes", f.HeaderLength))
			require.NotNil(t, f.SignerVersion)
			assert.Equal(t, wantHdr["Signer Version"], f.SignerVersion.String())
			assert.Equal(t, wantHdr["Signer Name"], f.SignerName)
			assert.Equal(t, wantHdr["Issuer Name"], f.IssuerName)
			assert.Equal(t, wantHdr["Serial Number"], hex.EncodeToString(f.SerialNumber.Bytes()))
			assert.Equal(t, tc.hash, f.Hash)
			assert.Equal(t, wantHdr["Signature"], fmt.Sprintf("%d bytes", len(f.Signature)))
			assert.Equal(t, wantHdr["Filename"], f.Filename)
			assert.Equal(t, wantHdr["Timestamp"], f.Timestamp.Format(time.DateTime))

			require.Len(t, f.Records, len(wantRecs))
			offset := f.HeaderLength
			for i, r := range f.Records {
				w := wantRecs[i]
				assert.Equal(t, tc.roles[i], r.Role, "record %d", i+1)
				assert.Equal(t, w["Role"], r.Role.ShortName())
				assert.Equal(t, w["Record Length"], fmt.Sprintf("%d bytes", len(r.Raw)))
				assert.Equal(t, offset, r.Offset)
				offset += len(r.Raw)
				assert.Equal(t, w["Subject Name"], r.SubjectName)
				assert.Equal(t, w["Issuer Name"], r.IssuerName)
				assert.Equal(t, w["Serial Numer"], hex.EncodeToString(r.SerialNumber.Bytes()))
				assert.Equal(t, w["Public Key"], fmt.Sprintf("%d bytes", len(r.PublicKey)))
				assert.Equal(t, w["Signature"], fmt.Sprintf("%d bytes", len(r.Signature)))
				assert.Equal(t, w["Certificate"], fmt.Sprintf("%d bytes", len(r.Certificate)))
				sum := sha1.Sum(r.Certificate)
				assert.Equal(t, w["Certificate Hash"], hex.EncodeToString(sum[:]))
				cert, err := r.ParseCertificate()
				require.NoError(t, err)
				assert.Equal(t, cert.Signature, r.Signature)
				assert.Equal(t, "", r.DNSName)
				assert.False(t, r.IPAddress.IsValid())
			}
			assert.Equal(t, len(data), offset)

			// The signature verifies with the signer's own SAST record, and
			// with the SAST test certificate.
			sast, _ := testkeys.Load(t, "sast")
			require.NoError(t, f.CheckSignatureFrom(sast))
			require.NoError(t, f.Verify())
			again, err := f.marshal()
			require.NoError(t, err)
			assert.Equal(t, data, again)
		})
	}
}

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// newRecord is NewRecord for a test key.
func newRecord(t testing.TB, key string, role Role) Record {
	cert, _ := testkeys.Load(t, key)
	r, err := NewRecord(cert, role)
	require.NoError(t, err)
	return r
}

// build creates a list with policy p, signed by the test key signer.
func build(t testing.TB, p Policy, signer string, hash crypto.Hash, recs ...Record) []byte {
	cert, key := testkeys.Load(t, signer)
	out, err := p.Create(nil, &File{Header: sgn.Header{Hash: hash, Timestamp: at}, Records: recs}, cert, key)
	require.NoError(t, err)
	return out
}

func TestCreate(t *testing.T) {
	sast, _ := testkeys.Load(t, "sast")
	recs := []Record{
		newRecord(t, "sast", RoleSAST),
		newRecord(t, "tftp", RoleCCMTFTP),
		newRecord(t, "tftp-ec-p384", RoleTFTP),
		newRecord(t, "tftp", RoleCAPF),
	}
	recs[1].DNSName = "cucm-pub.example.com"
	recs[1].IPAddress = netip.MustParseAddr("192.0.2.10")
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			out := build(t, CTLPolicy(), "sast", hash, recs...)
			assert.Equal(t, out, build(t, CTLPolicy(), "sast", hash, recs...), "same inputs, same bytes")

			f, err := Parse(out)
			require.NoError(t, err)
			require.NoError(t, f.Verify())
			require.NoError(t, f.CheckSignatureFrom(sast))
			assert.Equal(t, sgn.Version{1, 2}, f.Version)
			assert.Nil(t, f.SignerVersion)
			assert.Equal(t, "CTLFile.tlv", f.Filename)
			assert.True(t, at.Equal(f.Timestamp))
			assert.Equal(t, hash, f.Hash)
			assert.Equal(t, "CN=SAST;O=SAST;OU=SAST", f.SignerName)
			assert.Zero(t, f.HeaderLength%4)
			require.Len(t, f.Records, len(recs))
			for i, r := range f.Records {
				want := recs[i]
				assert.Equal(t, want.Role, r.Role)
				assert.Equal(t, want.SubjectName, r.SubjectName)
				assert.Equal(t, want.IssuerName, r.IssuerName)
				assert.Equal(t, want.SerialNumber, r.SerialNumber)
				assert.Equal(t, want.PublicKey, r.PublicKey)
				assert.Equal(t, want.Signature, r.Signature)
				assert.Equal(t, want.Certificate, r.Certificate)
				assert.Equal(t, want.DNSName, r.DNSName)
				assert.Equal(t, want.IPAddress, r.IPAddress)
			}
			assert.Len(t, f.Records[2].PublicKey, 97, "P-384 uncompressed point")
			// CUCM order: ascending tags, DNS name always present.
			assert.Equal(t, []byte{0x01, 0x00, 0x02}, f.Records[0].Raw[:3])
			assert.Equal(t, byte(0x02), f.Records[0].Raw[5])
			again, err := f.marshal()
			require.NoError(t, err)
			assert.Equal(t, out, again)
		})
	}
}

func TestCreateSignerVersionAndFilename(t *testing.T) {
	cert, key := testkeys.Load(t, "sast")
	sv := sgn.Version{1, 1}
	out, err := Create(nil, &File{Header: sgn.Header{Hash: crypto.SHA1, Version: sgn.Version{1, 1}, SignerVersion: &sv, Filename: "CTLFile.tlv"},
		Records: []Record{newRecord(t, "sast", RoleSAST)}}, cert, key)
	require.NoError(t, err)
	f, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, sgn.Version{1, 1}, f.Version)
	require.NotNil(t, f.SignerVersion)
	assert.Equal(t, sv, *f.SignerVersion)
	assert.WithinDuration(t, time.Now(), f.Timestamp, time.Minute, "zero Timestamp means now")
}

func TestCreateErrors(t *testing.T) {
	sastCert, sastKey := testkeys.Load(t, "sast")
	tftpCert, tftpKey := testkeys.Load(t, "tftp")
	second := newRecord(t, "tftp", RoleSAST)
	tests := []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
		tmpl *File
		is   error
	}{
		{"no hash", sastCert, sastKey, &File{Records: []Record{newRecord(t, "sast", RoleSAST)}}, sgn.ErrUnsupportedAlgorithm},
		{"no records", sastCert, sastKey, &File{Header: sgn.Header{Hash: crypto.SHA1}}, ErrPolicy},
		{"signer not in the list", sastCert, sastKey, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []Record{newRecord(t, "tftp", RoleSAST)}}, ErrPolicy},
		{"signer not SAST", tftpCert, tftpKey, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []Record{newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP)}}, ErrPolicy},
		{"three SAST", sastCert, sastKey, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []Record{newRecord(t, "sast", RoleSAST), second, newRecord(t, "device", RoleSAST)}}, ErrPolicy},
		{"SAST twice", sastCert, sastKey, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []Record{newRecord(t, "sast", RoleSAST), newRecord(t, "sast", RoleSAST)}}, ErrPolicy},
		{"wrong key", sastCert, tftpKey, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []Record{newRecord(t, "sast", RoleSAST)}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Create(nil, tt.tmpl, tt.cert, tt.key)
			require.Error(t, err)
			assert.Nil(t, out)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	good := build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP))
	f, err := Parse(good)
	require.NoError(t, err)
	r2 := f.Records[1].Offset
	mutate := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	setLen := func(off, n int) []byte {
		return mutate(func(b []byte) []byte { b[off+3], b[off+4] = byte(n>>8), byte(n); return b })
	}
	tests := []struct {
		name   string
		data   []byte
		offset int
		msg    string
	}{
		{"truncated record", good[:len(good)-10], r2, "record length past end of file"},
		{"record length too long", setLen(r2, len(good)-r2+1), r2, "record length past end of file"},
		{"record length too short", setLen(r2, len(f.Records[1].Raw)-1), 0, "runs past the record length"},
		{"record length below 5", setLen(r2, 3), r2, "shorter than the record length"},
		{"trailing bytes", append(bytes.Clone(good), 0xFF, 0x00), len(good), "does not start with a record length"},
		{"trailing partial record", append(bytes.Clone(good), 0x01, 0x00), len(good), "truncated record length"},
		{"wrong signature size", mutate(func(b []byte) []byte { b[bytes.Index(b, []byte{0x0B, 0, 1, 2})+3] = 1; return b }), 0, "signature size"},
		{"header past end", good[:100], 5, "past end of file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			require.Nil(t, f)
			require.ErrorIs(t, err, sgn.ErrMalformed)
			var pe *sgn.ParseError
			require.ErrorAs(t, err, &pe)
			assert.Contains(t, pe.Msg, tt.msg)
			if tt.offset != 0 {
				assert.Equal(t, tt.offset, pe.Offset)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "sgn: "), err.Error())
		})
	}
}

func TestRecordWithoutCertificate(t *testing.T) {
	// A non-secure-mode CUCM CCM+TFTP record: length, DNS name, role and
	// IP address only.
	bare := Record{Role: RoleCCMTFTP, DNSName: "10.48.47.153", IPAddress: netip.MustParseAddr("10.48.47.153")}
	out := build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), bare)
	f, err := Parse(out)
	require.NoError(t, err)
	require.NoError(t, f.Verify())
	r := f.Records[1]
	assert.Len(t, r.Raw, 5+(3+13)+(3+2)+(3+4), "33 bytes, as in Cisco's listing")
	assert.Nil(t, r.SerialNumber)
	assert.Equal(t, bare.IPAddress, r.IPAddress)
	_, err = r.ParseCertificate()
	assert.Error(t, err)
}

// Certificates returns the parsed certificates of one role's records, in
// order, skipping records without one; a broken one is an error.
func TestCertificates(t *testing.T) {
	f, err := Parse(testkeys.Vector(t, "ITLFile.tlv"))
	require.NoError(t, err)
	capf, err := f.Certificates(RoleCAPF)
	require.NoError(t, err)
	require.Len(t, capf, 1)
	assert.Equal(t, "Asterisk", capf[0].Subject.CommonName)
	tftp, err := f.Certificates(RoleTFTP)
	require.NoError(t, err)
	require.Len(t, tftp, 1, "CCM+TFTP records are not TFTP records")
	assert.Equal(t, "ApacheEC", tftp[0].Subject.CommonName)
	none, err := f.Certificates(Role(99))
	assert.NoError(t, err)
	assert.Empty(t, none)

	bare := Record{Role: RoleCAPF, DNSName: "capf"}
	broken := Record{Role: RoleCAPF, Certificate: []byte{0x30, 0x00}}
	f.Records = append(f.Records, bare)
	capf, err = f.Certificates(RoleCAPF)
	require.NoError(t, err)
	assert.Len(t, capf, 1, "a record without a certificate is skipped")
	f.Records = append(f.Records, broken)
	_, err = f.Certificates(RoleCAPF)
	assert.ErrorContains(t, err, fmt.Sprintf("ctl: record %d (CAPF)", len(f.Records)))
}

func TestUnknownElementsAndRoles(t *testing.T) {
	r := newRecord(t, "tftp", Role(99))
	r.Extra = []sgn.Element{{Tag: 0x42, Value: []byte("future")}}
	r.CertificateHash, r.HashAlgorithm = []byte{1, 2, 3}, 1
	out := build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), r)
	f, err := Parse(out)
	require.NoError(t, err)
	got := f.Records[1]
	assert.Equal(t, Role(99), got.Role)
	assert.Equal(t, "99", got.Role.String())
	assert.Equal(t, []sgn.Element{{Tag: 0x42, Value: []byte("future")}}, got.Extra)
	assert.Equal(t, []byte{1, 2, 3}, got.CertificateHash)
	assert.Equal(t, uint8(1), got.HashAlgorithm)
	again, err := f.marshal()
	require.NoError(t, err)
	assert.Equal(t, out, again)
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		role        Role
		name, short string
	}{
		{RoleSAST, "System Administrator Security Token", "SAST"},
		{RoleCCM, "CCM", "CCM"},
		{RoleCCMTFTP, "CCM+TFTP", "CCM+TFTP"},
		{RoleTFTP, "TFTP", "TFTP"},
		{RoleCAPF, "CAPF", "CAPF"},
		{RoleAppServer, "APP-SERVER", "APP-SERVER"},
		{RoleTVS, "TVS", "TVS"},
		{Role(5), "5", "5"},
	} {
		assert.Equal(t, tc.name, tc.role.String())
		assert.Equal(t, tc.short, tc.role.ShortName())
		for _, s := range []string{tc.name, tc.short, strings.ToLower(tc.short)} {
			got, err := ParseRole(s)
			require.NoError(t, err, s)
			assert.Equal(t, tc.role, got, s)
		}
	}
	for s, want := range map[string]Role{"tftp+ccm": RoleCCMTFTP, "https": RoleAppServer, "21": RoleTVS} {
		got, err := ParseRole(s)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseRole("phone")
	assert.Error(t, err)
}

func TestVerifyPolicy(t *testing.T) {
	sastRec := newRecord(t, "sast", RoleSAST)
	good := build(t, CTLPolicy(), "sast", crypto.SHA1, sastRec, newRecord(t, "tftp", RoleCCMTFTP))

	// A list whose SAST record is then swapped for another certificate
	// with the same role: the header names a signer no record matches.
	f, err := Parse(good)
	require.NoError(t, err)
	f.Records[0] = newRecord(t, "tftp", RoleSAST)
	var pe *PolicyError
	require.ErrorAs(t, f.Verify(), &pe)
	assert.Contains(t, pe.Msg, "is not a SAST record")

	// Tampering with any record breaks the signature.
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	f, err = Parse(tampered)
	require.NoError(t, err)
	assert.ErrorIs(t, f.Verify(), sgn.ErrVerification)

	// A list signed by a key that is not its SAST record's.
	f, err = Parse(good)
	require.NoError(t, err)
	_, other := testkeys.Load(t, "tftp")
	assert.ErrorIs(t, f.CheckSignature(other.Public()), sgn.ErrVerification)
	assert.ErrorIs(t, f.CheckSignature(other.Public().(*rsa.PublicKey)), sgn.ErrVerification)
	tftp, _ := testkeys.Load(t, "tftp")
	assert.ErrorIs(t, f.CheckSignatureFrom(tftp), sgn.ErrWrongSigner)
	assert.Error(t, new(File).Verify())
}

func TestSerialLeadingZeroKept(t *testing.T) {
	r := newRecord(t, "tftp", RoleCCM)
	r.SerialNumber = big.NewInt(0x81)
	assert.Equal(t, []byte{0x81}, r.toWire().SerialNumber)
	// As parsed from bytes that store it with a leading zero: kept while
	// the value is the same.
	w := r.toWire()
	w.SerialNumber = []byte{0, 0x81}
	raw, err := w.Marshal()
	require.NoError(t, err)
	r.Raw = raw
	assert.Equal(t, []byte{0, 0x81}, r.toWire().SerialNumber)
	r.SerialNumber = big.NewInt(0x82)
	assert.Equal(t, []byte{0x82}, r.toWire().SerialNumber)
}

func TestNewRecordErrors(t *testing.T) {
	_, err := NewRecord(nil, RoleSAST)
	assert.Error(t, err)
	cert, _ := testkeys.Load(t, "tftp")
	odd := *cert
	odd.PublicKey = "not a key"
	_, err = NewRecord(&odd, RoleCCM)
	assert.ErrorIs(t, err, sgn.ErrUnsupportedAlgorithm)
	assert.False(t, errors.Is(err, sgn.ErrMalformed))
}

// signRaw signs records with the SAST test key without any policy check,
// to make files that break the policy.
func signRaw(t *testing.T, recs ...Record) []byte {
	cert, key := testkeys.Load(t, "sast")
	body, err := (&File{Records: recs}).marshalRecords()
	require.NoError(t, err)
	out, err := sgn.Sign(nil, body, cert, key, sgn.SignOptions{Version: sgn.Version{1, 2}, Hash: crypto.SHA1, Filename: "CTLFile.tlv",
		Time: func() time.Time { return at }})
	require.NoError(t, err)
	return out
}

func TestVerifyPolicyErrors(t *testing.T) {
	sast := newRecord(t, "sast", RoleSAST)
	tests := []struct {
		name   string
		data   []byte
		record int
		msg    string
	}{
		{"duplicate SAST serial", signRaw(t, sast, newRecord(t, "tftp", RoleCCM), sast), 3, "also in record 1"},
		{"three SAST records", signRaw(t, sast, newRecord(t, "tftp", RoleSAST), newRecord(t, "device", RoleSAST)), 3, "more than 2 SAST"},
		{"header serial matches no SAST record", signRaw(t, newRecord(t, "sast", RoleCCM), newRecord(t, "tftp", RoleSAST)), 0, "is not a SAST record"},
		{"no records", signRaw(t), 0, "no records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			require.NoError(t, err, "the layout is fine; the policy is not")
			err = f.Verify()
			var pe *PolicyError
			require.ErrorAs(t, err, &pe)
			require.ErrorIs(t, err, ErrPolicy)
			assert.Equal(t, "CTL", pe.Policy)
			assert.Equal(t, tt.record, pe.Record)
			if tt.record > 0 {
				assert.Equal(t, f.Records[tt.record-1].Offset, pe.Offset)
			}
			assert.Contains(t, pe.Msg, tt.msg)
		})
	}
}

// TestAppendWords checks the serial-number conversion against
// big.Int.SetBytes for every length up to 40 bytes, leading zeros
// included.
func TestAppendWords(t *testing.T) {
	b := make([]byte, 40)
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	b[0], b[1] = 0, 0
	for n := 1; n <= len(b); n++ {
		in := b[:n]
		words := appendWords([]big.Word{7}, in) // after a word of another serial
		got := new(big.Int).SetBits(words[1:])
		if want := new(big.Int).SetBytes(in); got.Cmp(want) != 0 {
			t.Errorf("%x: got %x, want %x", in, got, want)
		}
	}
}
