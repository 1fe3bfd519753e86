package capf

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ucsec/ucsec/internal/pkcs7x"
)

// MaxCAAnswer is the largest answer from [ExternalCA.Submit] that Issue
// reads, in bytes (1 MiB); a larger one is an error. A certificate with its
// chain is a few kilobytes.
const MaxCAAnswer = 1 << 20

// maxAnswerCerts bounds the certificates of one answer, so that a CA cannot
// make chain building try an unbounded set of intermediates.
const maxAnswerCerts = 32

// maxClockSkew is how far in the future an external CA's notBefore may be
// and still be taken as the current time (the CA's clock runs ahead).
const maxClockSkew = 5 * time.Minute

// An ExternalCA has another CA issue the LSCs: a PKCS#10 request goes out
// through Submit and a certificate comes back, as CUCM's "Online CA" mode
// does.
//
// # The request is signed by the CAPF, not by the device
//
// A phone sends only a bare public key, a SubjectPublicKeyInfo (so do the
// reference client, usecallmanagernz capfc, and Cisco Jabber); it never
// signs a request, so there can be no proof of possession. Issue builds a
// PKCS#10 CertificationRequest whose subjectPKInfo is the device's key, whose
// subject is CN = the device name, and whose extensionRequest attribute asks
// for the LSC profile of [LocalCA] (BasicConstraints CA:FALSE, KeyUsage
// digitalSignature and keyEncipherment, ExtKeyUsage serverAuth, clientAuth
// and IPsec end system, SubjectAltName URI = the device name), and signs it
// with Signer, the CAPF's registration-authority (RA) key, with SHA-256.
//
// The signature is therefore the RA's over a request for someone else's
// key. A CA that checks the request's self-signature, as most do by default
// (Go's x509.CertificateRequest.CheckSignature, openssl req -verify),
// rejects it: the CA must be set up to accept RA-signed requests, verifying
// the signature against the CAPF's RA certificate instead (an enrolment-agent
// or RA profile), after the CAPF authenticated the device. Go's
// x509.ParseCertificateRequest parses the request; verifying the signature
// needs the RA's public key over RawTBSCertificateRequest.
//
// # The answer
//
// Submit returns the CA's answer, at most [MaxCAAnswer] bytes: a certificate
// in DER or PEM, several PEM certificates, or a PKCS#7 SignedData
// "certs-only" bundle (.p7b) in DER or PEM ("-----BEGIN PKCS7-----", or a
// bundle inside a CERTIFICATE block, as some CAs write it). Issue takes the
// certificate whose public key is the device's, and checks that its subject
// CN is the device name, that it is not a CA certificate, and that it is
// valid at Time (a notBefore up to 5 minutes ahead is taken as now, for a CA
// whose clock runs ahead). If Roots is set, the certificate must chain to
// one of them at that time, through Intermediates and the other
// certificates of the answer, for any extended key usage. Without Roots,
// the answer is trusted as Submit returns it: Submit must then authenticate
// the CA (for example over TLS).
//
// ExternalCA is safe for concurrent use if Submit and Signer are.
type ExternalCA struct {
	// Submit sends a DER PKCS#10 request to the CA and returns its answer.
	// It should honour ctx and bound what it reads (MaxCAAnswer). A
	// certificate it returns after ctx is done is still used: the CA
	// issued it.
	Submit func(ctx context.Context, csr []byte) ([]byte, error)
	// Signer is the CAPF's registration-authority key (RSA or ECDSA), which
	// signs the requests.
	Signer crypto.Signer
	// Roots, if set, are the CA certificates the issued certificate must
	// chain to.
	Roots *x509.CertPool
	// Intermediates are more certificates for chain building, beside those
	// of the answer. Optional.
	Intermediates *x509.CertPool
	// Time returns the current time; nil means time.Now.
	Time func() time.Time
}

var _ Issuer = (*ExternalCA)(nil)

var (
	oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	// The LSC key usage (digitalSignature, keyEncipherment) as a BIT
	// STRING, and its extended key usage (serverAuth, clientAuth, IPsec
	// end system) as a SEQUENCE OF OID, as x509.CreateCertificate encodes
	// them.
	lscKeyUsageDER    = []byte{0x03, 0x02, 0x05, 0xa0}
	lscExtKeyUsageDER = []byte{0x30, 0x1e,
		0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
		0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
		0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x05}
	notCADER = []byte{0x30, 0x00} // BasicConstraints with cA FALSE (the default)
)

// Issue sends a request for req.PublicKey naming req.Device to the CA and
// returns the certificate it issued. See the [ExternalCA] type
// documentation.
func (ca *ExternalCA) Issue(ctx context.Context, req *CertificateRequest) (*x509.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIssue, err)
	}
	if ca.Submit == nil {
		return nil, fmt.Errorf("%w: external CA has no Submit function", errIssueInvalid)
	}
	pub, err := requestKey(req)
	if err != nil {
		return nil, err
	}
	csr, err := ca.request(req.Device, pub, req.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	answer, err := ca.Submit(ctx, csr)
	if err != nil {
		return nil, fmt.Errorf("%w: external CA: %w", ErrIssue, err)
	}
	if len(answer) > MaxCAAnswer {
		return nil, fmt.Errorf("%w: external CA answered %d bytes (at most %d)", ErrIssue, len(answer), MaxCAAnswer)
	}
	certs, err := parseCAAnswer(answer)
	if err != nil {
		return nil, fmt.Errorf("%w: external CA answer: %v", ErrIssue, err)
	}
	return ca.pick(certs, req.Device, pub)
}

// request returns the DER PKCS#10 request for the device's key, signed by
// the RA key (see the type documentation).
func (ca *ExternalCA) request(device string, pub crypto.PublicKey, spki []byte) ([]byte, error) {
	if ca.Signer == nil {
		return nil, fmt.Errorf("%w: external CA has no registration-authority key", errIssueInvalid)
	}
	raPub := ca.Signer.Public()
	alg, ok := sha256Signature(raPub)
	if !ok {
		return nil, fmt.Errorf("%w: registration-authority key is a %T, not RSA or ECDSA", errIssueInvalid, raPub)
	}
	if spki == nil {
		var err error
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, fmt.Errorf("%w: the device's key: %v", errIssueInvalid, err)
		}
	}
	subject, err := lscSubject(device, []byte{0x30, 0x00})
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		SignatureAlgorithm: alg,
		RawSubject:         subject,
		URIs:               []*url.URL{{Opaque: device}},
		ExtraExtensions: []pkix.Extension{
			{Id: oidExtBasicConstraints, Critical: true, Value: notCADER},
			{Id: oidExtKeyUsage, Critical: true, Value: lscKeyUsageDER},
			{Id: oidExtExtKeyUsage, Value: lscExtKeyUsageDER},
		},
	}
	// Go builds and signs a request for the RA's own key; its to-be-signed
	// part gets the device's key instead and is signed again.
	own, err := x509.CreateCertificateRequest(rand.Reader, tmpl, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: building the request: %v", ErrIssue, err)
	}
	in := cryptobyte.String(own)
	var outer, tbs, version, name, key, attrs, sigAlg cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) ||
		!outer.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&version, cbasn1.INTEGER) ||
		!tbs.ReadASN1Element(&name, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&key, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.Empty() {
		return nil, fmt.Errorf("%w: crypto/x509 built a request of an unexpected shape", ErrIssue)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(version)
		b.AddBytes(name)
		b.AddBytes(spki)
		b.AddBytes(attrs)
	})
	newTBS, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: building the request: %v", ErrIssue, err)
	}
	sig, err := crypto.SignMessage(ca.Signer, rand.Reader, newTBS, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: signing the request: %v", ErrIssue, err)
	}
	// As crypto/x509 does, check the signer's work.
	if err := (&x509.Certificate{PublicKey: raPub}).CheckSignature(alg, newTBS, sig); err != nil {
		return nil, fmt.Errorf("%w: the registration-authority key made an invalid signature: %v", ErrIssue, err)
	}
	b = cryptobyte.Builder{}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(newTBS)
		b.AddBytes(sigAlg)
		b.AddASN1BitString(sig)
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: building the request: %v", ErrIssue, err)
	}
	return der, nil
}

// parseCAAnswer returns the certificates of a CA's answer: DER or PEM
// certificates, or a PKCS#7 certs-only bundle in DER or PEM. An answer
// that starts with a SEQUENCE tag is DER; anything else is PEM, where text
// around the blocks and blocks of other types are skipped.
func parseCAAnswer(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	if len(data) == 0 || data[0] == 0x30 { // DER (or BER) starts with a SEQUENCE
		c, err := parseDERAnswer(data)
		if err != nil {
			return nil, err
		}
		certs = c
	} else {
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			switch block.Type {
			case "CERTIFICATE", "X509 CERTIFICATE", "PKCS7", "CMS":
			default:
				continue
			}
			c, err := parseDERAnswer(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM %s block: %v", block.Type, err)
			}
			certs = append(certs, c...)
			if len(certs) > maxAnswerCerts {
				break
			}
		}
		if len(certs) == 0 {
			return nil, errors.New("no CERTIFICATE or PKCS7 block in PEM")
		}
	}
	if len(certs) > maxAnswerCerts {
		return nil, fmt.Errorf("more than %d certificates", maxAnswerCerts)
	}
	return certs, nil
}

// parseDERAnswer parses one or more concatenated DER certificates, or a
// PKCS#7 bundle.
func parseDERAnswer(der []byte) ([]*x509.Certificate, error) {
	if len(der) == 0 {
		return nil, errors.New("empty")
	}
	certs, err := x509.ParseCertificates(der)
	if err == nil && len(certs) > 0 {
		return certs, nil
	}
	certs, p7err := pkcs7x.ParseCertificates(der)
	if p7err != nil {
		return nil, fmt.Errorf("neither a certificate (%v) nor a PKCS#7 certificate bundle (%v)", err, p7err)
	}
	return certs, nil
}

// pick returns the certificate of certs for pub and checks it.
func (ca *ExternalCA) pick(certs []*x509.Certificate, device string, pub crypto.PublicKey) (*x509.Certificate, error) {
	var cert *x509.Certificate
	var others []*x509.Certificate
	for _, c := range certs {
		if k, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(pub) && cert == nil {
			cert = c
		} else {
			others = append(others, c)
		}
	}
	if cert == nil {
		return nil, fmt.Errorf("%w: the external CA's answer holds no certificate for the device's key (%d other certificates)", ErrIssue, len(certs))
	}
	if cn := cert.Subject.CommonName; cn != device {
		return nil, fmt.Errorf("%w: the external CA issued a certificate for %q, not %q", ErrIssue, cn, device)
	}
	if cert.IsCA {
		return nil, fmt.Errorf("%w: the external CA issued a CA certificate for device %q", ErrIssue, device)
	}
	now := time.Now()
	if ca.Time != nil {
		now = ca.Time()
	}
	if cert.NotBefore.After(now) && cert.NotBefore.Sub(now) <= maxClockSkew {
		now = cert.NotBefore
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: the certificate from the external CA is valid from %s to %s, not at %s", ErrIssue,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if ca.Roots != nil {
		inter := x509.NewCertPool()
		if ca.Intermediates != nil {
			inter = ca.Intermediates.Clone()
		}
		for _, c := range others {
			inter.AddCert(c)
		}
		_, err := cert.Verify(x509.VerifyOptions{
			Roots:         ca.Roots,
			Intermediates: inter,
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return nil, fmt.Errorf("%w: the certificate from the external CA does not chain to a trusted root: %v", ErrIssue, err)
		}
	}
	return cert, nil
}
