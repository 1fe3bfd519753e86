// Package testpki makes the keys and X.509 certificates that the module's
// tests need: throw-away keys of every kind a CAPF deals with, templates
// for the certificate profiles of a Cisco UC cluster (a CAPF CA, a TLS
// server such as a TVS, an LSC, a MIC), and the few steps from a
// template to a signed certificate, a tls.Certificate, a pool or a PEM
// file.
//
// It is for tests only. Every key is generated at run time and thrown
// away with the process: none is, or may become, a secret worth keeping.
// The fixed certificates and keys of the certutils vectors are in
// internal/testkeys.
//
// Functions that can fail take a testing.TB and end the test on failure.
package testpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A KeyKind is a kind of key. Its values are the names of capf.KeySpec,
// so that a CAPF test can write testpki.KeyKind(spec.String()).
type KeyKind string

// The kinds of key.
const (
	RSA1024 KeyKind = "rsa1024"
	RSA2048 KeyKind = "rsa2048"
	RSA3072 KeyKind = "rsa3072"
	RSA4096 KeyKind = "rsa4096"
	EC256   KeyKind = "ec256" // ECDSA on P-256
	EC384   KeyKind = "ec384" // ECDSA on P-384
	EC521   KeyKind = "ec521" // ECDSA on P-521
)

// The sizes and curves of the kinds.
var (
	rsaBits = map[KeyKind]int{RSA1024: 1024, RSA2048: 2048, RSA3072: 3072, RSA4096: 4096}
	curves  = map[KeyKind]elliptic.Curve{EC256: elliptic.P256(), EC384: elliptic.P384(), EC521: elliptic.P521()}
)

// generate makes a new key of kind.
func generate(kind KeyKind) (crypto.Signer, error) {
	if bits, ok := rsaBits[kind]; ok {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	if curve, ok := curves[kind]; ok {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	return nil, fmt.Errorf("no key kind %q", kind)
}

// cached holds the key of each kind that Key returns, made on first use
// (RSA key generation is slow).
var cached = func() map[KeyKind]func() (crypto.Signer, error) {
	m := map[KeyKind]func() (crypto.Signer, error){}
	for _, kind := range []KeyKind{RSA1024, RSA2048, RSA3072, RSA4096, EC256, EC384, EC521} {
		m[kind] = sync.OnceValues(func() (crypto.Signer, error) { return generate(kind) })
	}
	return m
}()

// Key returns the key of kind that this process shares: the same key on
// every call. Tests that need keys distinct from each other or from
// another test's use NewKey.
func Key(t testing.TB, kind KeyKind) crypto.Signer {
	t.Helper()
	get, ok := cached[kind]
	if !ok {
		t.Fatalf("testpki: no key kind %q", kind)
	}
	k, err := get()
	if err != nil {
		t.Fatalf("testpki: %s key: %v", kind, err)
	}
	return k
}

// NewKey returns a new key of kind, made for this call.
func NewKey(t testing.TB, kind KeyKind) crypto.Signer {
	t.Helper()
	k, err := generate(kind)
	if err != nil {
		t.Fatalf("testpki: %v", err)
	}
	return k
}

// CA returns the template of a CA certificate in the profile of a CAPF
// certificate, which CUCM uses both to issue LSCs and to serve TLS:
// CN=cn, O=ucsec test; CA:TRUE with a path length of 0; keyCertSign and
// digitalSignature; serverAuth and clientAuth.
func CA(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"ucsec test"}},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

// Server returns the template of a TLS server certificate, such as a
// TVS's: CN=cn, O=ucsec test; digitalSignature; serverAuth.
func Server(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"ucsec test"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// Leaf returns the template of an end-entity certificate like a phone's
// LSC, which it presents as a TLS client and could present as a server:
// CN=cn; CA:FALSE; digitalSignature and keyEncipherment; serverAuth and
// clientAuth.
func Leaf(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

// MIC returns the template of a manufacturing installed certificate (or a
// SUDI certificate), which the phone's maker issued: CN=cn, O=Cisco
// Systems Inc.; CA:FALSE; digitalSignature and keyEncipherment;
// clientAuth.
func MIC(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Cisco Systems Inc."}},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// SelfSigned returns the certificate that key signs for itself from tmpl,
// as Issue does.
func SelfSigned(t testing.TB, tmpl *x509.Certificate, key crypto.Signer) *x509.Certificate {
	t.Helper()
	return Issue(t, tmpl, nil, key.Public(), key)
}

// Issue returns the certificate for pub that parentKey signs from tmpl,
// with the arguments of x509.CreateCertificate: parent is the issuer's
// certificate, or nil for a self-signed one. What tmpl leaves zero is
// filled in, on a copy: a random serial number, a notBefore an hour ago
// and a notAfter ten years from now.
func Issue(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	c := *tmpl
	if c.SerialNumber == nil {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			t.Fatalf("testpki: serial number: %v", err)
		}
		c.SerialNumber = serial.Add(serial, big.NewInt(1))
	}
	now := time.Now()
	if c.NotBefore.IsZero() {
		c.NotBefore = now.Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = now.AddDate(10, 0, 0)
	}
	if parent == nil {
		parent = &c
	}
	der, err := x509.CreateCertificate(rand.Reader, &c, parent, pub, parentKey)
	if err != nil {
		t.Fatalf("testpki: certificate %q: %v", c.Subject, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: certificate %q: %v", c.Subject, err)
	}
	return cert
}

// Chain returns a two-level CA hierarchy with new EC P-256 keys: a root
// CA, an intermediate CA that the root issued, and the intermediate's
// key. Both are in the CA profile, the root with a path length of 1, and
// valid from ten years ago, so that what the intermediate issued with a
// validity in the past verifies at that time. A phone maker's PKI has
// this shape: the intermediate issues MICs.
func Chain(t testing.TB) (root, intermediate *x509.Certificate, key crypto.Signer) {
	t.Helper()
	notBefore := time.Now().AddDate(-10, 0, 0)
	rootKey := NewKey(t, EC256)
	rootTmpl := CA("Test Root CA")
	rootTmpl.MaxPathLen, rootTmpl.MaxPathLenZero = 1, false
	rootTmpl.NotBefore = notBefore
	root = SelfSigned(t, rootTmpl, rootKey)
	key = NewKey(t, EC256)
	interTmpl := CA("Test Intermediate CA")
	interTmpl.NotBefore = notBefore
	intermediate = Issue(t, interTmpl, root, key.Public(), rootKey)
	return root, intermediate, key
}

// TLSCertificate returns cert and its key as a TLS certificate, sent with
// the certificates of chain after it.
func TLSCertificate(cert *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	for _, ca := range chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	return c
}

// Pool returns a pool of certs.
func Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// WritePEM writes cert and, if key is not nil, its PKCS #8 key to
// dir/name.pem, the single file a CLI or a reference tool reads (mode
// 0600), and cert alone to dir/name.crt (mode 0644). It returns the two
// paths.
func WritePEM(t testing.TB, dir, name string, cert *x509.Certificate, key crypto.Signer) (pemPath, crtPath string) {
	t.Helper()
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	all := bytes.Clone(crt)
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("testpki: %v", err)
		}
		all = append(all, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	pemPath, crtPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".crt")
	if err := os.WriteFile(pemPath, all, 0o600); err != nil {
		t.Fatalf("testpki: %v", err)
	}
	if err := os.WriteFile(crtPath, crt, 0o644); err != nil {
		t.Fatalf("testpki: %v", err)
	}
	return pemPath, crtPath
}
