package sgn

import (
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/internal/testkeys"
)

// TestCertutilsInterop checks that usecallmanagernz/certutils accepts files
// we sign: `sgnfile --parse --tftp` reports a valid signature and `stripsgn`
// gives back our payload. certutils is GPL and is never part of this
// module, so the test runs only when CERTUTILS_DIR names a checkout of it
// (run with Debian's /usr/bin/python3 and python3-cryptography).
func TestCertutilsInterop(t *testing.T) {
	python, sgnfile := interop.Certutils(t, "sgnfile")
	_, stripsgn := interop.Certutils(t, "stripsgn")
	cert, key := testkeys.Load(t, "tftp")
	certPath := filepath.Join(testkeys.Dir(), "keys", "tftp.pem")
	payload := testkeys.Vector(t, "SEP001122334455.cnf.xml")
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			out, err := Sign(nil, payload, cert, key, SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: hash})
			require.NoError(t, err)
			work := t.TempDir()
			file := filepath.Join(work, "SEP001122334455.cnf.xml.sgn")
			require.NoError(t, os.WriteFile(file, out, 0o644))

			cmd := exec.Command(python, sgnfile, "--parse", file, "--tftp", certPath)
			res, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", res)
			assert.True(t, strings.Contains(string(res), "Valid signature"), "%s", res)

			cmd = exec.Command(python, stripsgn, file)
			cmd.Dir = work
			res, err = cmd.CombinedOutput()
			require.NoError(t, err, "%s", res)
			stripped, err := os.ReadFile(filepath.Join(work, "SEP001122334455.cnf.xml"))
			require.NoError(t, err)
			assert.Equal(t, payload, stripped)
		})
	}
}
