package sgn

import (
	"crypto"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/internal/testkeys"
)

// TestOpenSSLVerifies checks files we sign with an independent verifier:
// openssl dgst -verify over the signed bytes (the file minus the signature
// element), for SHA-1 and SHA-512.
func TestOpenSSLVerifies(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	payload := testkeys.Vector(t, "SEP001122334455.cnf.xml")
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			out, err := Sign(nil, payload, cert, key, SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: hash})
			require.NoError(t, err)
			f, err := Parse(out)
			require.NoError(t, err)
			assert.True(t, interop.OpenSSLVerify(t, cert.PublicKey, hash, f.SignedBytes(), f.Signature))

			bad := f.SignedBytes()
			bad[len(bad)-1] ^= 1
			assert.False(t, interop.OpenSSLVerify(t, cert.PublicKey, hash, bad, f.Signature), "openssl accepted a changed file")
		})
	}
}
