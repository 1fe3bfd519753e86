package ctl

import (
	"crypto"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/internal/testkeys"
)

// TestOpenSSLVerifies checks lists we build with an independent verifier:
// openssl dgst -verify over the signed bytes with the signer's public key.
func TestOpenSSLVerifies(t *testing.T) {
	sast, _ := testkeys.Load(t, "sast")
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			out := build(t, CTLPolicy(), "sast", hash, newRecord(t, "sast", RoleSAST), newRecord(t, "tftp", RoleCCMTFTP), newRecord(t, "tftp-ec-p384", RoleTFTP))
			f, err := Parse(out)
			require.NoError(t, err)
			assert.True(t, interop.OpenSSLVerify(t, sast.PublicKey, hash, f.SignedBytes(), f.Signature))
		})
	}
}
