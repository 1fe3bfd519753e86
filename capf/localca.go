package capf

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DefaultValidity is the validity of an LSC when [LocalCA.Validity] is zero,
// capfd's default of 365 days.
const DefaultValidity = 365 * 24 * time.Hour

// A LocalCA issues LSCs itself, with a CA certificate and key that the
// server holds, in the profile of the LSCs the reference CAPF server
// (usecallmanagernz capfd) issues:
//
//   - version 3, signed with SHA-256: sha256WithRSAEncryption for an RSA CA
//     key, ecdsa-with-SHA256 for an ECDSA one, whatever the curve;
//   - subject: CN = the device name, then the O, OU, L, ST and C attributes
//     of the CA certificate's subject, in the order the CA subject has them,
//     each in an RDN of its own and copied byte for byte (string type
//     included); the CN is a UTF8String;
//   - issuer: the CA certificate's subject (capfd wrongly writes the CA's
//     issuer, which differs when the CA is not self-signed);
//   - validity: notBefore = now, no back-dating, notAfter = now + Validity,
//     both truncated to the second;
//   - serial: 16 random bytes read as a positive integer (never zero);
//   - extensions: BasicConstraints CA:FALSE (critical), KeyUsage
//     digitalSignature and keyEncipherment (critical, for EC keys too),
//     ExtKeyUsage serverAuth, clientAuth and IPsec end system
//     (1.3.6.1.5.5.7.3.5), SubjectAltName with one URI, the device name
//     (URI:SEP001122334455, which is not a valid URI but is what capfd
//     and CUCM emit).
//
// One difference from capfd: when the CA certificate has a Subject Key
// Identifier, the LSC carries an Authority Key Identifier with it, as
// crypto/x509 always adds. capfd emits no AKI; the AKI is standard (RFC
// 5280 requires it), helps chain building when a CA has been re-keyed under
// the same name, and phones ignore it. There is never a Subject Key
// Identifier, CRL distribution point or AIA.
//
// Issue refuses to issue a certificate that would outlive the CA
// certificate (notAfter after the CA's notAfter) or that the CA could not
// have signed yet (now before the CA's notBefore), rather than shortening
// it silently: renew the CA, or lower Validity. The error wraps [ErrIssue].
//
// A LocalCA is safe for concurrent use if Signer, Rand and Time are; its
// fields must not change while Issue runs.
type LocalCA struct {
	// Certificate is the CA certificate: it must be a CA (basic
	// constraints CA:TRUE) and, if it has a key usage, allow certSign.
	Certificate *x509.Certificate
	// Signer is the CA's private key, possibly in a token or HSM: an RSA
	// or ECDSA key whose public half is Certificate's. It signs with
	// PKCS#1 v1.5 or ECDSA and SHA-256.
	Signer crypto.Signer
	// Validity is how long an LSC is valid; zero means [DefaultValidity]
	// (365 days). capfd allows 1 to 3560 days.
	Validity time.Duration
	// Rand is the source of serial numbers and signing randomness; nil
	// means crypto/rand.
	Rand io.Reader
	// Time returns the current time; nil means time.Now.
	Time func() time.Time
}

var _ Issuer = (*LocalCA)(nil)

// The errors of Issue all wrap ErrIssue (as the Issuer interface asks);
// those caused by the issuer's configuration or the request wrap
// ErrInvalid too.
type issueError struct{}

func (issueError) Error() string   { return "capf: certificate not issued: invalid argument" }
func (issueError) Unwrap() []error { return []error{ErrIssue, ErrInvalid} }

// errIssueInvalid reports a bad issuer configuration or request. It wraps
// both ErrIssue and ErrInvalid.
var errIssueInvalid error = issueError{}

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidCountry      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidLocality     = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidProvince     = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrgUnit      = asn1.ObjectIdentifier{2, 5, 4, 11}
)

// lscExtKeyUsage is the ExtKeyUsage of an LSC: the phone uses it for TLS
// both ways and for its VPN client.
var lscExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageIPSECEndSystem}

const lscKeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment

// Issue returns a new LSC for req.PublicKey naming req.Device, in the
// profile of the [LocalCA] type documentation.
func (ca *LocalCA) Issue(ctx context.Context, req *CertificateRequest) (*x509.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIssue, err)
	}
	sigAlg, err := ca.check()
	if err != nil {
		return nil, err
	}
	pub, err := requestKey(req)
	if err != nil {
		return nil, err
	}
	subject, err := lscSubject(req.Device, ca.Certificate.RawSubject)
	if err != nil {
		return nil, err
	}
	validity := ca.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	now := time.Now
	if ca.Time != nil {
		now = ca.Time
	}
	notBefore := now().UTC().Truncate(time.Second)
	notAfter := notBefore.Add(validity)
	if notBefore.Before(ca.Certificate.NotBefore) {
		return nil, fmt.Errorf("%w: the CA certificate is not valid before %s", ErrIssue, ca.Certificate.NotBefore.UTC().Format(time.RFC3339))
	}
	if notAfter.After(ca.Certificate.NotAfter) {
		return nil, fmt.Errorf("%w: an LSC valid until %s would outlive the CA certificate (valid until %s): renew the CA certificate or shorten the validity",
			ErrIssue, notAfter.Format(time.RFC3339), ca.Certificate.NotAfter.UTC().Format(time.RFC3339))
	}
	rnd := ca.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	serial, err := newSerial(rnd)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		SignatureAlgorithm:    sigAlg,
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              lscKeyUsage,
		ExtKeyUsage:           lscExtKeyUsage,
		// A URL with only Opaque set prints as the bare name, so the SAN is
		// one [6] IA5String "SEP…": openssl shows URI:SEP…, and crypto/x509
		// parses it back (as a URL with a path; checkLSCName makes sure).
		URIs: []*url.URL{{Opaque: req.Device}},
	}
	der, err := x509.CreateCertificate(rnd, tmpl, ca.Certificate, pub, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: signing: %v", ErrIssue, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: the new certificate does not parse: %v", ErrIssue, err)
	}
	return cert, nil
}

// check validates the CA configuration and returns the signature algorithm
// for its key.
func (ca *LocalCA) check() (x509.SignatureAlgorithm, error) {
	c := ca.Certificate
	switch {
	case c == nil:
		return 0, fmt.Errorf("%w: local CA has no certificate", errIssueInvalid)
	case ca.Signer == nil:
		return 0, fmt.Errorf("%w: local CA has no private key", errIssueInvalid)
	case !c.BasicConstraintsValid || !c.IsCA:
		return 0, fmt.Errorf("%w: local CA certificate %q is not a CA certificate (no basic constraints CA:TRUE)", errIssueInvalid, c.Subject)
	case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0:
		return 0, fmt.Errorf("%w: local CA certificate %q has a key usage without certSign", errIssueInvalid, c.Subject)
	case ca.Validity < 0:
		return 0, fmt.Errorf("%w: negative LSC validity %v", errIssueInvalid, ca.Validity)
	}
	pub := ca.Signer.Public()
	alg, ok := sha256Signature(pub)
	if !ok {
		return 0, fmt.Errorf("%w: local CA key is a %T, not RSA or ECDSA", errIssueInvalid, pub)
	}
	if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(c.PublicKey) {
		return 0, fmt.Errorf("%w: local CA private key does not match the certificate %q", errIssueInvalid, c.Subject)
	}
	return alg, nil
}

// requestKey checks a request's device name and returns its public key:
// req.PublicKey, or, if that is nil, the key req.RawSubjectPublicKeyInfo
// holds. When both are set they must agree. The key must be RSA or ECDSA.
func requestKey(req *CertificateRequest) (crypto.PublicKey, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: no request", errIssueInvalid)
	}
	if err := checkLSCName(req.Device); err != nil {
		return nil, err
	}
	pub := req.PublicKey
	if req.RawSubjectPublicKeyInfo != nil {
		raw, err := x509.ParsePKIXPublicKey(req.RawSubjectPublicKeyInfo)
		if err != nil {
			return nil, fmt.Errorf("%w: the device's public key does not parse: %v", errIssueInvalid, err)
		}
		if pub == nil {
			pub = raw
		} else if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(raw) {
			return nil, fmt.Errorf("%w: PublicKey and RawSubjectPublicKeyInfo are different keys", errIssueInvalid)
		}
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return pub, nil
	case nil:
		return nil, fmt.Errorf("%w: no public key in the request", errIssueInvalid)
	}
	return nil, fmt.Errorf("%w: the device's key is a %T, not RSA or ECDSA", errIssueInvalid, pub)
}

// checkLSCName accepts the names that can be an LSC's CN and SAN URI: the
// device names of [checkDeviceName]. The error wraps ErrIssue and
// ErrInvalid.
func checkLSCName(name string) error {
	if err := checkDeviceName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrIssue, err)
	}
	return nil
}

// lscSubject returns the DER subject of an LSC: CN = device, then the O,
// OU, L, ST and C attributes of the CA subject, in its order, each in an
// RDN of its own (a multi-valued RDN of the CA is split), copied as they
// are encoded there.
func lscSubject(device string, caSubject []byte) ([]byte, error) {
	var copied [][]byte
	in := cryptobyte.String(caSubject)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: the CA certificate's subject does not parse", errIssueInvalid)
	}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return nil, fmt.Errorf("%w: the CA certificate's subject does not parse", errIssueInvalid)
		}
		for !set.Empty() {
			var atv, body cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !set.ReadASN1Element(&atv, cbasn1.SEQUENCE) {
				return nil, fmt.Errorf("%w: the CA certificate's subject does not parse", errIssueInvalid)
			}
			if elem := atv; !elem.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1ObjectIdentifier(&oid) {
				return nil, fmt.Errorf("%w: the CA certificate's subject does not parse", errIssueInvalid)
			}
			switch {
			case oid.Equal(oidOrganization), oid.Equal(oidOrgUnit), oid.Equal(oidLocality),
				oid.Equal(oidProvince), oid.Equal(oidCountry):
				copied = append(copied, atv)
			}
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidCommonName)
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(device)) })
			})
		})
		for _, atv := range copied {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(atv) })
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: building the subject: %v", ErrIssue, err)
	}
	return der, nil
}

// newSerial returns 16 bytes from rnd read as a big-endian integer, read
// again in the (2^-128) case that they are all zero.
func newSerial(rnd io.Reader) (*big.Int, error) {
	var b [16]byte
	for range 8 {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return nil, fmt.Errorf("%w: reading a serial number: %v", ErrIssue, err)
		}
		if s := new(big.Int).SetBytes(b[:]); s.Sign() > 0 {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: the random source returns only zeros", ErrIssue)
}

// SerialHex returns a serial number as the CAPF store and capfd keep it:
// lowercase hex of its minimal big-endian bytes, so without leading zero
// bytes but with a leading zero digit when the first byte is below 0x10
// (0x0a1b is "0a1b"); zero is "". A negative number, which an LSC never
// has, gets a "-" before the hex of its absolute value. A nil serial is "".
func SerialHex(serial *big.Int) string {
	if serial == nil {
		return ""
	}
	h := hex.EncodeToString(serial.Bytes())
	if serial.Sign() < 0 {
		return "-" + h
	}
	return h
}

// sha256Signature returns the SHA-256 signature algorithm of an RSA
// (PKCS #1 v1.5) or ECDSA key, the one LSCs and requests are signed with.
func sha256Signature(pub crypto.PublicKey) (x509.SignatureAlgorithm, bool) {
	switch pub.(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA, true
	case *ecdsa.PublicKey:
		return x509.ECDSAWithSHA256, true
	}
	return 0, false
}
