package ctl

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
)

// TestCertutilsInterop checks that usecallmanagernz/certutils' tlvfile
// parses lists we build (so we write no tag it does not know) and finds
// their signature valid, for SHA-1 and SHA-512, RSA and EC records and all
// seven roles. certutils is GPL and never part of this module: the test
// runs only when CERTUTILS_DIR names a checkout of it.
func TestCertutilsInterop(t *testing.T) {
	python, tlvfile := interop.Certutils(t, "tlvfile")
	recs := []Record{
		newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCM), newRecord(t, "tftp-ec-p384", RoleTFTP),
		newRecord(t, "tftp", RoleCCMTFTP), newRecord(t, "tftp", RoleCAPF), newRecord(t, "tftp", RoleAppServer),
		newRecord(t, "tftp", RoleTVS),
	}
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "ITLFile.tlv")
			require.NoError(t, os.WriteFile(file, build(t, CTLPolicy(), "sast", hash, recs...), 0o644))
			res, err := exec.Command(python, tlvfile, "--parse", file).CombinedOutput()
			require.NoError(t, err, "%s", res)
			out := string(res)
			assert.True(t, strings.Contains(out, "Valid signature"), "%s", out)
			for _, role := range []string{"SAST", "CCM", "TFTP", "CCM+TFTP", "CAPF", "APP-SERVER", "TVS"} {
				assert.Contains(t, out, "Role:             "+role+"\n")
			}
		})
	}
}
