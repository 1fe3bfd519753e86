package ctl

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// fakeTVS answers from a fixed set of trusted certificates, or fails.
type fakeTVS struct {
	trusted []*x509.Certificate
	err     error
	asked   int
}

func (v *fakeTVS) VerifyCertificate(_ context.Context, cert *x509.Certificate, _ Role) (bool, error) {
	v.asked++
	if v.err != nil {
		return false, v.err
	}
	for _, c := range v.trusted {
		if c.Equal(cert) {
			return true, nil
		}
	}
	return false, nil
}

func mustParse(t *testing.T, data []byte) *File {
	f, err := Parse(data)
	require.NoError(t, err)
	return f
}

func TestPhoneAcceptList(t *testing.T) {
	sastCert, _ := testkeys.Load(t, "sast")
	deviceCert, _ := testkeys.Load(t, "device")
	ctlPolicy := CTLPolicy()

	// Lists signed by "sast" (known) and by "device" (a new signer).
	bySAST := mustParse(t, build(t, ctlPolicy, "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP)))
	byNew := mustParse(t, build(t, ctlPolicy, "device", crypto.SHA1, newRecord(t, "device", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP)))
	// An ITL holding the "sast" certificate as SAST, signed by it.
	itlWithSAST := mustParse(t, build(t, ctlPolicy, "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleTFTP)))
	// The rollback ITL: no records.
	rollback := &File{}
	broken := mustParse(t, build(t, ctlPolicy, "device", crypto.SHA1, newRecord(t, "device", RoleSAST)))
	broken.Signature[0] ^= 1 // in the parsed bytes: Signature aliases them

	tvsUp := &fakeTVS{trusted: []*x509.Certificate{deviceCert}}
	tvsUnknown := &fakeTVS{trusted: []*x509.Certificate{sastCert}}
	tvsDown := &fakeTVS{err: errors.New("dial tcp 127.0.0.1:2445: connection refused")}

	tests := []struct {
		name  string
		phone Phone
		cand  *File
		rule  Rule
		err   error
	}{
		{"P1 no lists: leap of faith", Phone{}, byNew, RuleFirstList, nil},
		{"P2 signer in the phone's CTL", Phone{CTL: bySAST, ITL: itlWithSAST}, bySAST, RuleCTLSigner, nil},
		{"P3 signer in the phone's ITL", Phone{ITL: itlWithSAST}, bySAST, RuleKnownSigner, nil},
		{"P4 unknown signer, TVS vouches", Phone{ITL: itlWithSAST, TVS: tvsUp}, byNew, RuleTVS, nil},
		{"P5 unknown signer, TVS does not know it", Phone{ITL: itlWithSAST, TVS: tvsUnknown}, byNew, RuleTVSRefused, ErrUntrusted},
		{"P5 unknown signer, TVS unreachable", Phone{ITL: itlWithSAST, TVS: tvsDown}, byNew, RuleTVSRefused, ErrUntrusted},
		{"P6 unknown signer, no TVS", Phone{ITL: itlWithSAST}, byNew, RuleNoTVS, ErrUntrusted},
		{"P7 rollback ITL accepts any list", Phone{ITL: rollback}, byNew, RuleRollback, nil},
		{"a broken candidate is never accepted", Phone{}, broken, "", sgn.ErrVerification},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, err := tt.phone.AcceptList(context.Background(), tt.cand, ctlPolicy)
			assert.Equal(t, tt.rule, rule)
			if tt.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.err)
			}
		})
	}
	assert.ErrorContains(t, func() error {
		_, err := (&Phone{ITL: itlWithSAST, TVS: tvsDown}).AcceptList(context.Background(), byNew, ctlPolicy)
		return err
	}(), "connection refused")
}

func TestVerifySignedFile(t *testing.T) {
	tftpCert, tftpKey := testkeys.Load(t, "tftp")
	payload := testkeys.Vector(t, "SEP001122334455.cnf.xml")
	signed, err := sgn.Sign(nil, payload, tftpCert, tftpKey, sgn.SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: crypto.SHA1})
	require.NoError(t, err)
	good, err := sgn.Parse(signed)
	require.NoError(t, err)
	tamperedBytes := append([]byte(nil), signed...)
	tamperedBytes[len(tamperedBytes)-2] ^= 1
	tampered, err := sgn.Parse(tamperedBytes)
	require.NoError(t, err)
	vector, err := sgn.Parse(testkeys.Vector(t, "sgn-sha512/SEP001122334455.cnf.xml.sgn"))
	require.NoError(t, err)

	withTFTP := mustParse(t, build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCM), newRecord(t, "tftp", RoleTFTP)))
	ccmOnly := mustParse(t, build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCM)))
	without := mustParse(t, build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "device", RoleTFTP)))
	itlVector := mustParse(t, testkeys.Vector(t, "ITLFile.tlv"))

	tests := []struct {
		name string
		list *File
		file *sgn.File
		err  error
		msg  string
	}{
		{"right signer", withTFTP, good, nil, ""},
		{"certutils vectors", itlVector, vector, nil, ""},
		{"signer without a TFTP role", ccmOnly, good, ErrUntrusted, "role CCM"},
		{"signer not in the list", without, good, ErrUntrusted, "not in the trust list"},
		{"tampered file", withTFTP, tampered, sgn.ErrVerification, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := tt.list.VerifySignedFile(tt.file, tt.file.Filename)
			if tt.err == nil {
				require.NoError(t, err)
				require.NotNil(t, rec)
				assert.True(t, rec.Role.canSignFiles(), "vouched for by a %v record", rec.Role)
				cert, err := rec.ParseCertificate()
				require.NoError(t, err)
				assert.NoError(t, tt.file.CheckSignatureFrom(cert), "the record's certificate is the signer")
				return
			}
			assert.Nil(t, rec)
			require.ErrorIs(t, err, tt.err)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}

	// P8 through a phone, and P1/P7 for signed files.
	for _, tt := range []struct {
		name  string
		phone Phone
		file  *sgn.File
		rule  Rule
		err   error
	}{
		{"P8 trusted TFTP signer", Phone{ITL: withTFTP}, good, RuleSignedFile, nil},
		{"P8 signer in the CTL", Phone{CTL: withTFTP, ITL: ccmOnly}, good, RuleSignedFile, nil},
		{"P8 untrusted signer", Phone{ITL: without}, good, RuleSignedFile, ErrUntrusted},
		{"P8 tampered", Phone{CTL: without, ITL: withTFTP}, tampered, RuleSignedFile, sgn.ErrVerification},
		{"P1 no lists", Phone{}, tampered, RuleFirstList, nil},
		{"P7 rollback", Phone{ITL: &File{}}, tampered, RuleRollback, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rule, rec, err := tt.phone.CheckSignedFile(tt.file, tt.file.Filename)
			assert.Equal(t, tt.rule, rule)
			assert.Equal(t, tt.rule == RuleSignedFile && tt.err == nil, rec != nil, "record %v", rec)
			if tt.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.err)
			}
		})
	}
}

// TestVerifySignedFileReviewCases covers what a review found: a file
// served under another name, a later record that verifies after an earlier
// one with the same identity fails, and a trust list passed as a signed file.
func TestVerifySignedFileReviewCases(t *testing.T) {
	tftpCert, tftpKey := testkeys.Load(t, "tftp")
	signed, err := sgn.Sign(nil, []byte("<device/>"), tftpCert, tftpKey, sgn.SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: crypto.SHA1})
	require.NoError(t, err)
	sf, err := sgn.Parse(signed)
	require.NoError(t, err)
	list := mustParse(t, build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP)))

	// Another phone's name, and the list's own name.
	_, err = list.VerifySignedFile(sf, "SEPAAAAAAAAAAAA.cnf.xml.sgn")
	assert.ErrorIs(t, err, ErrWrongFile)
	rule, _, err := (&Phone{ITL: list}).CheckSignedFile(sf, "SEPAAAAAAAAAAAA.cnf.xml.sgn")
	assert.Equal(t, RuleSignedFile, rule)
	assert.ErrorIs(t, err, ErrWrongFile)

	// A pre-12.0 ITL signed by the TFTP key is itself a file that key
	// signed: served as a configuration it fails the name check.
	itlData := build(t, Policy{Name: "ITL", DefaultFilename: "ITLFile.tlv", SignerRoles: []Role{RoleSAST, RoleTFTP, RoleCCMTFTP}}, "tftp", crypto.SHA1,
		newRecord(t, "tftp", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP))
	itlFile := mustParse(t, itlData)
	_, err = itlFile.VerifySignedFile(itlFile, "SEP001122334455.cnf.xml.sgn")
	assert.ErrorIs(t, err, ErrWrongFile)

	// Records whose certificate is not the named signer are passed over,
	// also when the signed file is itself a trust list (its
	// CheckSignatureFrom wraps sgn.ErrWrongSigner).
	both := mustParse(t, build(t, CTLPolicy(), "sast", crypto.SHA1, newRecord(t, "sast", RoleSAST), newRecord(t, "device", RoleCCMTFTP), newRecord(t, "tftp", RoleCCMTFTP)))
	rec, err := both.VerifySignedFile(sf, sf.Filename)
	require.NoError(t, err)
	assert.Same(t, &both.Records[2], rec, "the tftp record, not the device record before it")
	_, err = both.VerifySignedFile(itlFile, itlFile.Filename)
	assert.NoError(t, err)
}

func TestCreateSignerRecordMustHoldSignerCert(t *testing.T) {
	cert, key := testkeys.Load(t, "sast")
	other, _ := testkeys.Load(t, "tftp")
	rec := newRecord(t, "sast", RoleSAST)
	rec.Certificate = other.Raw // same serial and issuer strings, another certificate
	_, err := Create(nil, &File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []Record{rec}}, cert, key)
	require.ErrorIs(t, err, ErrPolicy)
	assert.Contains(t, err.Error(), "another certificate")

	noSerial := *cert
	noSerial.SerialNumber = nil
	_, err = NewRecord(&noSerial, RoleSAST)
	assert.Error(t, err)
}
