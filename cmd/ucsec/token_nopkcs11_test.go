//go:build !pkcs11

package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A ucsec built without the build tag pkcs11 refuses a key in a token
// with one error that says how to build one that takes it, and names the
// key without the URI's query (module and PIN).
func TestTokenNotBuiltIn(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	uri := "pkcs11:token=ucsec;object=tftp?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"
	for _, args := range [][]string{
		{"sgn", "sign", "--cert", tftpPEM, "--key", uri, "--hash", "sha256", in},
		{"sgn", "sign", "--key", uri, "--hash", "sha256", in},
		{"tlv", "build", "--cert", sastPEM, "--key", uri, "--hash", "sha1", "--record", "sast=" + sastPEM, "-o", filepath.Join(dir, "ITLFile.tlv")},
		{"cnf", "encrypt", "--phone-cert", devicePEM, "--cert", tftpPEM, "--key", uri, "--hash", "sha1", in},
		{"cnf", "decrypt", "--cert", tftpPEM, "--phone-key", uri, "-o", "-", in},
		{"capf", "serve", "--store", filepath.Join(dir, "store"), "--listen", "127.0.0.1:0", "--cert", tftpPEM, "--key", uri},
		{"tvs", "serve", "--listen", "127.0.0.1:0", "--cert", tftpPEM, "--key", uri, "--trust", "tvs=" + tftpPEM},
	} {
		r := ucsec(t, "", args...)
		r.check(t, exitError, "", "ucsec: pkcs11:token=ucsec;object=tftp: this ucsec was built without token support: build it with `CGO_ENABLED=1 go build -tags pkcs11 ./cmd/ucsec` (cgo needs a C compiler)\n")
		assert.NotContains(t, r.stderr, "1234", args[:2])
	}
	assert.NoDirExists(t, filepath.Join(dir, "store"))
}
