package pemutil

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func read(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "certutils", "keys", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	rsaPEM := read(t, "tftp.pem") // PKCS#8 key, then the certificate
	ecPEM := read(t, "tftp-ec-p384.pem")

	cert, err := ParseCertificate(rsaPEM)
	if err != nil || cert.Subject.CommonName != "Asterisk" {
		t.Fatalf("certificate: %v", err)
	}
	if c, err := ParseCertificate(cert.Raw); err != nil || !c.Equal(cert) {
		t.Fatalf("DER certificate: %v", err)
	}
	key, err := ParseSigner(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := key.(*rsa.PrivateKey)
	if !rsaKey.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("key does not match the certificate")
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	for name, data := range map[string][]byte{"PKCS#1 PEM": pkcs1, "PKCS#1 DER": x509.MarshalPKCS1PrivateKey(rsaKey)} {
		if k, err := ParseSigner(data); err != nil || !k.(*rsa.PrivateKey).Equal(rsaKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	ec, err := ParseSigner(ecPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ec.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("SEC1 key parsed as %T", ec)
	}
}

func TestParseErrors(t *testing.T) {
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})
	legacy := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})
	onlyKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})
	for name, data := range map[string][]byte{"empty": nil, "garbage": []byte("hello"), "encrypted": encrypted, "legacy encrypted": legacy, "bad key": onlyKey} {
		if _, err := ParseSigner(data); err == nil {
			t.Errorf("ParseSigner(%s) succeeded", name)
		}
		if _, err := ParseCertificate(data); err == nil {
			t.Errorf("ParseCertificate(%s) succeeded", name)
		}
	}
}

// FuzzParse checks that hostile PEM or DER never panics either parser.
func FuzzParse(f *testing.F) {
	f.Add(read(f, "tftp.pem"))
	f.Add(read(f, "tftp-ec-p384.pem"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := ParseSigner(data); (k == nil) == (err == nil) {
			t.Fatalf("ParseSigner: key %v, error %v", k, err)
		}
		c, err := ParseCertificate(data)
		if (c == nil) == (err == nil) {
			t.Fatalf("ParseCertificate: certificate %v, error %v", c, err)
		}
		cs, errs := ParseCertificates(data)
		if (len(cs) == 0) == (errs == nil) {
			t.Fatalf("ParseCertificates: %d certificates, error %v", len(cs), errs)
		}
		if c != nil && cs != nil && !c.Equal(cs[0]) {
			t.Fatal("ParseCertificates does not start with ParseCertificate's certificate")
		}
	})
}

// ParseCertificates reads every certificate of a PEM file, or one DER.
func TestParseCertificates(t *testing.T) {
	two := append(read(t, "tftp.pem"), read(t, "sast.pem")...)
	certs, err := ParseCertificates(two)
	if err != nil || len(certs) != 2 || certs[0].Subject.CommonName != "Asterisk" || certs[1].Subject.CommonName != "SAST" {
		t.Fatalf("%v, %v", certs, err)
	}
	der, err := ParseCertificates(certs[1].Raw)
	if err != nil || len(der) != 1 || !der[0].Equal(certs[1]) {
		t.Fatalf("DER: %v, %v", der, err)
	}
	bad := append(append([]byte(nil), two...), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"...)
	if _, err := ParseCertificates(bad); err == nil || !strings.Contains(err.Error(), "certificate 3") {
		t.Fatalf("a bad third certificate: %v", err)
	}
	if _, err := ParseCertificates([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Fatal("a PEM file without certificates accepted")
	}
}

// TestDERWithEmbeddedPEM: a DER certificate that carries another
// certificate's PEM text inside an extension is read as itself.
func TestDERWithEmbeddedPEM(t *testing.T) {
	inner, err := ParseCertificate(read(t, "sast.pem"))
	if err != nil {
		t.Fatal(err)
	}
	outer, err := ParseCertificate(read(t, "tftp.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// Put the PEM text of inner after the DER of outer: a DER reader stops
	// at the end of the certificate's SEQUENCE, a PEM search would not.
	data := append(append([]byte(nil), outer.Raw...), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inner.Raw})...)
	if _, err := ParseCertificate(data); err == nil {
		t.Fatal("trailing data after a DER certificate accepted")
	}
	if c, err := ParseCertificate(outer.Raw); err != nil || !c.Equal(outer) {
		t.Fatalf("DER certificate read as %v, %v", c, err)
	}
}
