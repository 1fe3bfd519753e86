package testpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	for kind, bits := range rsaBits {
		if k, ok := Key(t, kind).(*rsa.PrivateKey); !ok || k.N.BitLen() != bits {
			t.Errorf("%s: %T", kind, Key(t, kind))
		}
	}
	for kind, curve := range curves {
		if k, ok := Key(t, kind).(*ecdsa.PrivateKey); !ok || k.Curve != curve {
			t.Errorf("%s: %T", kind, Key(t, kind))
		}
	}
	if !Key(t, EC256).Public().(*ecdsa.PublicKey).Equal(Key(t, EC256).Public()) {
		t.Error("Key gave two keys of one kind")
	}
	if NewKey(t, EC256).Public().(*ecdsa.PublicKey).Equal(Key(t, EC256).Public()) {
		t.Error("NewKey gave the shared key")
	}
}

// The profiles chain as a CAPF and a phone maker use them.
func TestProfiles(t *testing.T) {
	caKey, phoneKey := NewKey(t, EC256), Key(t, EC256)
	ca := SelfSigned(t, CA("CAPF-test"), caKey)
	if !ca.IsCA || !ca.MaxPathLenZero || ca.Subject.String() != "CN=CAPF-test,O=ucsec test" {
		t.Errorf("CA: IsCA %v, path length zero %v, %s", ca.IsCA, ca.MaxPathLenZero, ca.Subject)
	}
	lsc := Issue(t, Leaf("SEP001122334455"), ca, phoneKey.Public(), caKey)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := lsc.Verify(x509.VerifyOptions{Roots: Pool(ca), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("LSC, usage %v: %v", usage, err)
		}
	}
	srv := SelfSigned(t, Server("TVS-test"), caKey)
	if _, err := srv.Verify(x509.VerifyOptions{Roots: Pool(srv)}); err != nil {
		t.Errorf("server: %v", err)
	}

	root, inter, interKey := Chain(t)
	tmpl := MIC("CP-8865-SEP001122334455")
	tmpl.NotBefore, tmpl.NotAfter = time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0)
	mic := Issue(t, tmpl, inter, phoneKey.Public(), interKey)
	if _, err := mic.Verify(x509.VerifyOptions{Roots: Pool(root), Intermediates: Pool(inter), CurrentTime: mic.NotAfter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("expired MIC at its notAfter: %v", err)
	}
}

// Issue fills in what the template leaves zero on a copy.
func TestIssueDefaults(t *testing.T) {
	tmpl := Leaf("a")
	a, b := SelfSigned(t, tmpl, Key(t, EC256)), SelfSigned(t, tmpl, Key(t, EC256))
	if tmpl.SerialNumber != nil || !tmpl.NotBefore.IsZero() || !tmpl.NotAfter.IsZero() {
		t.Error("the template changed")
	}
	if a.SerialNumber.Sign() <= 0 || a.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Errorf("serial numbers %v and %v", a.SerialNumber, b.SerialNumber)
	}
	if now := time.Now(); !now.After(a.NotBefore) || !now.AddDate(9, 0, 0).Before(a.NotAfter) {
		t.Errorf("valid from %v to %v", a.NotBefore, a.NotAfter)
	}
}

func TestWritePEM(t *testing.T) {
	key := Key(t, EC256)
	cert := SelfSigned(t, Server("TVS-test"), key)
	dir := t.TempDir()
	pemPath, crtPath := WritePEM(t, dir, "tvs", cert, key)
	if pemPath != filepath.Join(dir, "tvs.pem") || crtPath != filepath.Join(dir, "tvs.crt") {
		t.Fatalf("paths %s, %s", pemPath, crtPath)
	}
	pair, err := tls.LoadX509KeyPair(pemPath, pemPath)
	if err != nil || !pair.Leaf.Equal(cert) {
		t.Fatalf("%s: %v", pemPath, err)
	}
	crt := read(t, crtPath)
	if b, rest := pem.Decode(crt); b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Errorf("%s: not one certificate", crtPath)
	}
	for path, want := range map[string]os.FileMode{pemPath: 0o600, crtPath: 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want mode %v", path, fi, want)
		}
	}
	// Without a key, the .pem holds the certificate alone.
	if p, _ := WritePEM(t, dir, "ca", cert, nil); !bytes.Equal(read(t, p), crt) {
		t.Errorf("%s is not the certificate alone", p)
	}
}

func TestTLSCertificate(t *testing.T) {
	key := Key(t, EC256)
	ca := SelfSigned(t, CA("CAPF-test"), key)
	lsc := Issue(t, Leaf("SEP001122334455"), ca, key.Public(), key)
	c := TLSCertificate(lsc, key, ca)
	if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[0], lsc.Raw) || !bytes.Equal(c.Certificate[1], ca.Raw) || c.Leaf != lsc || c.PrivateKey != key {
		t.Errorf("TLSCertificate: %+v", c)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
