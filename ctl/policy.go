package ctl

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/sgn"
)

// A Policy says which records may sign a kind of trust list, how many SAST
// records it may hold and how large it may be. [CTLPolicy] and package
// itl's ITLPolicy are the two that CUCM uses.
type Policy struct {
	Name            string // "CTL" or "ITL", for messages
	DefaultFilename string // written when the template has none
	SignerRoles     []Role // roles the signing record may have
	MaxSAST         int    // most SAST records; 0 means no limit
	MaxSize         int    // largest file in bytes; 0 means no limit

	// Time returns the current time, the timestamp Create writes when the
	// template has none; nil means time.Now.
	Time func() time.Time
}

// CTLPolicy returns the policy of CTLFile.tlv: signed by one of its SAST
// records (matched by issuer and serial number), at most two SAST records.
func CTLPolicy() Policy {
	return Policy{
		Name:            "CTL",
		DefaultFilename: "CTLFile.tlv",
		SignerRoles:     []Role{RoleSAST},
		MaxSAST:         2,
	}
}

// Create builds and signs a CTL; see [Policy.Create].
func Create(rand io.Reader, template *File, signer *x509.Certificate, priv crypto.Signer) ([]byte, error) {
	return CTLPolicy().Create(rand, template, signer, priv)
}

// Verify checks f against the CTL policy and verifies its signature with
// its signer's own record; see [Policy.Verify].
func (f *File) Verify() error { return CTLPolicy().Verify(f) }

// Create builds a trust list from template's records and signs it with
// priv, the key of signer. signer must be the certificate of one of the
// records, with a role the policy allows to sign.
//
// Of the template's header, Hash is required (crypto.SHA1 is what CUCM
// writes by default, crypto.SHA512 its SHA-512 mode); for the other fields
// the zero value is the default: a zero Version means 1.2, an
// empty Filename the policy's default name, a zero Timestamp the current
// time (p.Time); set Timestamp for reproducible output: the same inputs
// give the same bytes (PKCS#1 v1.5 signatures are deterministic).
// SignerVersion is written only if set. The signer fields of the header
// come from signer.
func (p Policy) Create(rand io.Reader, template *File, signer *x509.Certificate, priv crypto.Signer) ([]byte, error) {
	if template == nil || signer == nil || priv == nil {
		return nil, errors.New("ctl: template, signer certificate and key are required")
	}
	if _, ok := signedfile.HashCode(template.Hash); !ok {
		return nil, fmt.Errorf("%w: hash %v (use SHA-1, SHA-256 or SHA-512)", sgn.ErrUnsupportedAlgorithm, template.Hash)
	}
	if pub, ok := signer.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(priv.Public()) {
		return nil, errors.New("ctl: private key does not match the signer certificate")
	}
	if signer.SerialNumber == nil || signer.SerialNumber.Sign() < 0 {
		return nil, errors.New("ctl: signer certificate has a negative or missing serial number")
	}
	issuer, err := signedfile.FormatName(signer.RawIssuer)
	if err != nil {
		return nil, fmt.Errorf("ctl: signer issuer: %w", err)
	}
	if err := p.checkRecords(template.Records, signer.SerialNumber, issuer, false); err != nil {
		return nil, err
	}
	rec, _ := p.signerRecord(template.Records, signer.SerialNumber, issuer)
	if !bytes.Equal(rec.Certificate, signer.Raw) {
		return nil, &PolicyError{Policy: p.Name, Record: rec.index, Msg: "the signing record holds another certificate than the signer's"}
	}
	recs, err := template.marshalRecords()
	if err != nil {
		return nil, err
	}
	if template.Filename == "" && p.DefaultFilename == "" {
		return nil, errors.New("ctl: the template has no Filename and the policy no DefaultFilename")
	}
	opts := sgn.SignOptions{
		Filename:      cmp.Or(template.Filename, p.DefaultFilename),
		Hash:          template.Hash,
		Version:       template.Version,
		SignerVersion: template.SignerVersion,
	}
	if opts.Version == (sgn.Version{}) {
		opts.Version = sgn.Version{1, 2}
	}
	if ts := template.Timestamp; !ts.IsZero() {
		opts.Time = func() time.Time { return ts }
	} else {
		opts.Time = p.Time
	}
	out, err := sgn.Sign(rand, recs, signer, priv, opts)
	if err != nil {
		return nil, err
	}
	if p.MaxSize > 0 && len(out) > p.MaxSize {
		return nil, &PolicyError{Policy: p.Name, Msg: fmt.Sprintf("file is %d bytes, more than the %d phones accept", len(out), p.MaxSize)}
	}
	return out, nil
}

// Verify checks that f keeps the policy (size, number of SAST records, no
// SAST serial twice, a signing record with an allowed role whose serial
// number and issuer match the header) and that the signature verifies with
// the key of that record. It does not decide whether the signer is
// trusted: that is what a phone does with the lists it already holds (see
// [Phone]). Errors wrap [ErrPolicy] or sgn.ErrVerification.
//
// Verify checks the bytes Parse read against the parsed records; change
// no field of a parsed File before verifying it.
func (p Policy) Verify(f *File) error {
	if f.RawTBS == nil {
		return errors.New("ctl: File was not returned by Parse")
	}
	if p.MaxSize > 0 && len(f.Raw) > p.MaxSize {
		return &PolicyError{Policy: p.Name, Msg: fmt.Sprintf("file is %d bytes, more than the %d phones accept", len(f.Raw), p.MaxSize)}
	}
	if err := p.checkRecords(f.Records, f.SerialNumber, f.IssuerName, true); err != nil {
		return err
	}
	signer, _ := p.signerRecord(f.Records, f.SerialNumber, f.IssuerName)
	pub, err := signer.publicKey()
	if err != nil {
		return &PolicyError{Policy: p.Name, Record: signer.index, Offset: signer.Offset, Msg: "signing record has no usable RSA key: " + err.Error()}
	}
	return f.CheckSignature(pub)
}

// Signer returns the record that signed f as the policy finds it (a role
// that may sign, the serial number and issuer the header names) and its
// index in f.Records, or nil and -1. It verifies nothing.
func (p Policy) Signer(f *File) (*Record, int) {
	r, ok := p.signerRecord(f.Records, f.SerialNumber, f.IssuerName)
	if !ok {
		return nil, -1
	}
	return r.Record, r.index - 1
}

// indexedRecord is a record and its 1-based index.
type indexedRecord struct {
	*Record
	index int
}

// signerRecord finds the record that signed a list named by serial and issuer.
func (p Policy) signerRecord(recs []Record, serial *big.Int, issuer string) (indexedRecord, bool) {
	for i := range recs {
		r := &recs[i]
		if slices.Contains(p.SignerRoles, r.Role) && r.SerialNumber != nil && serial != nil &&
			r.SerialNumber.Cmp(serial) == 0 && signedfile.NameStringsEqual(r.IssuerName, issuer) {
			return indexedRecord{r, i + 1}, true
		}
	}
	return indexedRecord{}, false
}

// checkRecords applies the record rules of the policy.
func (p Policy) checkRecords(recs []Record, serial *big.Int, issuer string, parsed bool) error {
	policyErr := func(i int, msg string) error {
		e := &PolicyError{Policy: p.Name, Msg: msg}
		if i >= 0 {
			e.Record, e.Offset = i+1, recs[i].Offset
		}
		return e
	}
	if len(recs) == 0 {
		return policyErr(-1, "no records")
	}
	sast := 0
	for i := range recs {
		r := &recs[i]
		if r.Role != RoleSAST {
			continue
		}
		if sast++; p.MaxSAST > 0 && sast > p.MaxSAST {
			return policyErr(i, fmt.Sprintf("more than %d SAST records", p.MaxSAST))
		}
		for j := range i {
			if recs[j].Role == RoleSAST && r.SerialNumber != nil && recs[j].SerialNumber != nil && recs[j].SerialNumber.Cmp(r.SerialNumber) == 0 {
				return policyErr(i, fmt.Sprintf("SAST serial number %x also in record %d", r.SerialNumber, j+1))
			}
		}
	}
	if _, ok := p.signerRecord(recs, serial, issuer); !ok {
		what := "the signer the header names"
		if !parsed {
			what = "the signer certificate"
		}
		return policyErr(-1, fmt.Sprintf("%s (serial %x) is not a %s record of the list", what, serial, roleList(p.SignerRoles)))
	}
	return nil
}

func roleList(roles []Role) string {
	s := ""
	for i, r := range roles {
		switch {
		case i == 0:
		case i == len(roles)-1:
			s += " or "
		default:
			s += ", "
		}
		s += r.ShortName()
	}
	return s
}

// publicKey returns the record's RSA key, from its certificate or else
// from its public-key element.
func (r *Record) publicKey() (crypto.PublicKey, error) {
	if len(r.Certificate) > 0 {
		return certPublicKey(r.Certificate)
	}
	if len(r.PublicKey) > 0 {
		return x509.ParsePKCS1PublicKey(r.PublicKey)
	}
	return nil, errors.New("no certificate or public key")
}

// NewRecord fills a record from a certificate: subject, issuer and serial
// number, the public key (PKCS#1 for RSA, an uncompressed point for EC),
// the certificate's signature and the certificate itself. The DNS name is
// the certificate's first DNS name, if any, and the IP address its first
// IPv4 address, if any.
func NewRecord(cert *x509.Certificate, role Role) (Record, error) {
	if cert == nil {
		return Record{}, errors.New("ctl: no certificate")
	}
	if cert.SerialNumber == nil || cert.SerialNumber.Sign() < 0 {
		return Record{}, errors.New("ctl: certificate has a negative or missing serial number")
	}
	r := Record{Role: role, SerialNumber: new(big.Int).Set(cert.SerialNumber), Signature: cert.Signature, Certificate: cert.Raw}
	var err error
	if r.SubjectName, err = signedfile.FormatName(cert.RawSubject); err != nil {
		return Record{}, fmt.Errorf("ctl: certificate subject: %w", err)
	}
	if r.IssuerName, err = signedfile.FormatName(cert.RawIssuer); err != nil {
		return Record{}, fmt.Errorf("ctl: certificate issuer: %w", err)
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		r.PublicKey = x509.MarshalPKCS1PublicKey(pub)
	case *ecdsa.PublicKey:
		if r.PublicKey, err = pub.Bytes(); err != nil {
			return Record{}, fmt.Errorf("%w: %v", sgn.ErrUnsupportedAlgorithm, err)
		}
	default:
		return Record{}, fmt.Errorf("%w: record keys are RSA or EC, got %T", sgn.ErrUnsupportedAlgorithm, cert.PublicKey)
	}
	if len(cert.DNSNames) > 0 {
		r.DNSName = cert.DNSNames[0]
	}
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().Is4() {
			r.IPAddress = a.Unmap()
			break
		}
	}
	return r, nil
}

// certPublicKey returns the RSA public key of a DER certificate: the only
// kind that signs trust lists. It reads only the path to the
// SubjectPublicKeyInfo, which is what binds the key to the certificate,
// and costs a fraction of x509.ParseCertificate.
func certPublicKey(der []byte) (*rsa.PublicKey, error) {
	s := cryptobyte.String(der)
	var cert, tbs, spki, alg, bits cryptobyte.String
	var oid encasn1.ObjectIdentifier
	if !s.ReadASN1(&cert, cbasn1.SEQUENCE) || !s.Empty() ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || // serial number
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subject
		!tbs.ReadASN1(&spki, cbasn1.SEQUENCE) ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
		!spki.ReadASN1BitStringAsBytes((*[]byte)(&bits)) {
		return nil, errors.New("malformed certificate")
	}
	if !oid.Equal(oidRSA) {
		return nil, errors.New("the key is not RSA")
	}
	var key cryptobyte.String
	pub := &rsa.PublicKey{N: new(big.Int)}
	if !bits.ReadASN1(&key, cbasn1.SEQUENCE) || !bits.Empty() ||
		!key.ReadASN1Integer(pub.N) || !key.ReadASN1Integer(&pub.E) || !key.Empty() ||
		pub.N.Sign() <= 0 || pub.E < 3 {
		return nil, errors.New("malformed RSA public key")
	}
	return pub, nil
}

var oidRSA = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
