package ctl

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/ucsec/ucsec/internal/testkeys"
)

// TestOpenSSLVerifies checks lists we build with an independent verifier:
// openssl dgst -verify over the signed bytes with the signer's public key.
func TestOpenSSLVerifies(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: install it (apt-get install openssl) to run this interop test")
	}
	sast, _ := testkeys.Load(t, "sast")
	pub, err := x509.MarshalPKIXPublicKey(sast.PublicKey)
	require.NoError(t, err)
	dir := t.TempDir()
	pubPath := filepath.Join(dir, "pub.pem")
	require.NoError(t, os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))
	for _, tc := range []struct {
		hash crypto.Hash
		flag string
	}{{crypto.SHA1, "-sha1"}, {crypto.SHA512, "-sha512"}} {
		t.Run(tc.flag, func(t *testing.T) {
			out := build(t, CTLPolicy(), "sast", tc.hash, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP), newRecord(t, "tftp-ec-p384", RoleTFTP))
			f, err := Parse(out)
			require.NoError(t, err)
			tbs, sig := filepath.Join(dir, "tbs"+tc.flag), filepath.Join(dir, "sig"+tc.flag)
			require.NoError(t, os.WriteFile(tbs, f.SignedBytes(), 0o644))
			require.NoError(t, os.WriteFile(sig, f.Signature, 0o644))
			res, err := exec.Command(openssl, "dgst", tc.flag, "-verify", pubPath, "-signature", sig, tbs).CombinedOutput()
			require.NoError(t, err, "openssl: %s", res)
			require.Contains(t, string(res), "Verified OK")
		})
	}
}
