package main

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucsec/ucsec/internal/pemutil"
)

// TestKeyFormats checks that keys and certificates load in every supported
// encoding, and that --cert and --key accept them.
func TestKeyFormats(t *testing.T) {
	dir := t.TempDir()
	pemData := mustRead(t, tftpPEM)
	cert := mustParseCert(t, pemData)
	key, err := pemutil.ParseSigner(pemData)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := key.(*rsa.PrivateKey)
	ecKey, err := pemutil.ParseSigner(mustRead(t, ecPEM)) // SEC1 "EC PRIVATE KEY"
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ecKey.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("EC key is %T", ecKey)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	files := map[string][]byte{
		"cert.der":   cert.Raw,
		"pkcs8.der":  pkcs8,
		"pkcs1.der":  pkcs1,
		"sec1.der":   sec1,
		"pkcs1.pem":  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}),
		"cert.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		"enc.pem":    pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"legacy.pem": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1, 2, 3}}),
		"junk.der":   []byte("not a key"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := func(name string) string { return filepath.Join(dir, name) }

	for _, name := range []string{"pkcs8.der", "pkcs1.der", "pkcs1.pem", "sec1.der"} {
		k, err := loadSigner(path(name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want := map[bool]any{true: ecKey.Public(), false: rsaKey.Public()}[name == "sec1.der"]; !publicKeysEqual(k.Public(), want) {
			t.Errorf("%s: wrong key", name)
		}
	}
	for _, tt := range []struct{ name, want string }{
		{"enc.pem", "encrypted private keys are not supported"},
		{"legacy.pem", "encrypted private keys are not supported"},
		{"cert.pem", "no private key"},
		{"junk.der", "no PKCS#8, PKCS#1 or SEC1 private key"},
	} {
		if _, err := loadSigner(path(tt.name)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := loadCertificate(path("pkcs1.pem")); err == nil || !strings.Contains(err.Error(), "no CERTIFICATE") {
		t.Errorf("certificate from a key file: %v", err)
	}

	// A DER certificate and a PKCS#1 key sign; a DER certificate verifies.
	in := copyFile(t, plainXML, dir)
	mustRun(t, exitOK, "sgn", "sign", "--cert", path("cert.der"), "--key", path("pkcs1.der"), "--hash", "sha1", in)
	mustRun(t, exitOK, "sgn", "verify", "--cert", path("cert.der"), in+".sgn")
}
