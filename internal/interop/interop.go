// Package interop runs the independent peers that the module's tests check
// their output against: openssl, and the GPL reference tools
// (usecallmanagernz/certutils) when a checkout is named by CERTUTILS_DIR,
// and the harness that runs the GPL reference daemons
// (usecallmanagernz/daemons: capfd, tvsd and their clients) from a local
// checkout (reference.go, tap.go, netns_linux.go). The harness is this
// module's own code; the reference tools are only ever run, never copied.
// It is for tests only.
package interop

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OpenSSLVerify checks an RSA PKCS#1 v1.5 signature with `openssl dgst
// -verify`: sig over tbs with hash and pub. Without openssl it skips the
// test, or fails it where CI is true (see Command), and it reports whether
// openssl said "Verified OK".
func OpenSSLVerify(t testing.TB, pub crypto.PublicKey, hash crypto.Hash, tbs, sig []byte) bool {
	t.Helper()
	openssl := Command(t, "openssl", "openssl")
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"tbs":     tbs,
		"sig":     sig,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flag := "-" + strings.ToLower(strings.ReplaceAll(hash.String(), "-", ""))
	out, err := exec.Command(openssl, "dgst", flag, "-verify", filepath.Join(dir, "pub.pem"),
		"-signature", filepath.Join(dir, "sig"), filepath.Join(dir, "tbs")).CombinedOutput()
	return err == nil && strings.Contains(string(out), "Verified OK")
}

// Certutils returns the path of a certutils tool (tlvfile, sgnfile,
// stripsgn, enccnf) in the checkout that CERTUTILS_DIR names, and the
// Python that runs it (Debian's /usr/bin/python3). It skips the test when
// CERTUTILS_DIR is not set: certutils is GPL and is never a dependency of
// this module.
func Certutils(t testing.TB, tool string) (python, path string) {
	t.Helper()
	dir := os.Getenv("CERTUTILS_DIR")
	if dir == "" {
		t.Skip("CERTUTILS_DIR is not set: certutils (GPL) is not a dependency; set it to a checkout to run this check")
	}
	return "/usr/bin/python3", filepath.Join(dir, tool)
}
