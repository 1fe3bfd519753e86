// Package testkeys loads the throw-away certificates and private keys that
// the module's tests use, from testdata/certutils/keys at the module root.
//
// These keys are public test material. Under no circumstance should they be
// used or trusted outside tests.
package testkeys

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ucsec/ucsec/internal/pemutil"
)

// Dir returns the directory of the certutils vectors (testdata/certutils).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "certutils")
}

// Vector returns the contents of a file under Dir, failing the test if it
// cannot be read.
func Vector(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), filepath.FromSlash(name)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// ParseOutput reads a certutils --parse output file under Dir ("Key:
// value" lines) into a map; lines without a colon are skipped.
func ParseOutput(tb testing.TB, name string) map[string]string {
	tb.Helper()
	return parseOutput(Vector(tb, name))
}

func parseOutput(data []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// Load returns the certificate and private key in keys/<name>.pem: "tftp"
// (RSA-2048, CN=Asterisk), "sast" (RSA-2048, CN=SAST), "device"
// (RSA-2048, CN=Device) or "tftp-ec-p384" (EC P-384, CN=ApacheEC).
func Load(tb testing.TB, name string) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	data := Vector(tb, "keys/"+name+".pem")
	cert, err := pemutil.ParseCertificate(data)
	if err != nil {
		tb.Fatalf("testkeys: %s.pem: %v", name, err)
	}
	key, err := pemutil.ParseSigner(data)
	if err != nil {
		tb.Fatalf("testkeys: %s.pem: %v", name, err)
	}
	return cert, key
}
