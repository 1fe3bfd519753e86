package sgn

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

// TestOpenSSLVerifies checks files we sign with an independent verifier:
// openssl dgst -verify over the signed bytes (the file minus the signature
// element), for SHA-1 and SHA-512.
func TestOpenSSLVerifies(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: install it (apt-get install openssl) to run this interop test")
	}
	cert, key := testkeys.Load(t, "tftp")
	pub, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
	require.NoError(t, err)
	dir := t.TempDir()
	pubPath := filepath.Join(dir, "pub.pem")
	require.NoError(t, os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))

	payload := testkeys.Read(t, "SEP001122334455.cnf.xml")
	for _, tc := range []struct {
		hash crypto.Hash
		flag string
	}{{crypto.SHA1, "-sha1"}, {crypto.SHA512, "-sha512"}} {
		t.Run(tc.flag, func(t *testing.T) {
			out, err := Sign(nil, payload, cert, key, SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: tc.hash})
			require.NoError(t, err)
			f, err := Parse(out)
			require.NoError(t, err)
			tbs := filepath.Join(dir, "tbs"+tc.flag)
			sig := filepath.Join(dir, "sig"+tc.flag)
			require.NoError(t, os.WriteFile(tbs, f.SignedBytes(), 0o644))
			require.NoError(t, os.WriteFile(sig, f.Signature, 0o644))

			res, err := exec.Command(openssl, "dgst", tc.flag, "-verify", pubPath, "-signature", sig, tbs).CombinedOutput()
			require.NoError(t, err, "openssl: %s", res)
			require.Contains(t, string(res), "Verified OK")

			// And openssl rejects a changed payload.
			bad := f.SignedBytes()
			bad[len(bad)-1] ^= 1
			require.NoError(t, os.WriteFile(tbs, bad, 0o644))
			res, err = exec.Command(openssl, "dgst", tc.flag, "-verify", pubPath, "-signature", sig, tbs).CombinedOutput()
			require.Error(t, err, "openssl accepted a changed file: %s", res)
		})
	}
}
