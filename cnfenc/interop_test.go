package cnfenc

import (
	"crypto"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// TestOpenSSLDecrypts decrypts a file we make with openssl alone, a check
// of the cryptography independent of Python: `openssl pkeyutl -decrypt`
// (PKCS#1 v1.5) unwraps the AES key from element 0x19, `openssl enc -d
// -aes-128-cbc -nopad` decrypts the payload with the IV from 0x13, and
// dropping the pad count from 0x14 gives back the configuration. openssl
// also verifies the signature.
func TestOpenSSLDecrypts(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: install it (apt-get install openssl) to run this interop test")
	}
	k := loadKeys(t)
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			f, err := Parse(k.encrypt(t, k.plain, hash))
			require.NoError(t, err)
			assert.True(t, interop.OpenSSLVerify(t, k.tftp.PublicKey, hash, f.SignedBytes(), f.Signature))

			dir := t.TempDir()
			write := func(name string, data []byte) string {
				path := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(path, data, 0o600))
				return path
			}
			run := func(args ...string) []byte {
				out, err := exec.Command(openssl, args...).Output()
				require.NoError(t, err, "openssl %s", strings.Join(args, " "))
				return out
			}
			keyFile := filepath.Join(testkeys.Dir(), "keys", "device.pem")
			aesKey := run("pkeyutl", "-decrypt", "-inkey", keyFile, "-pkeyopt", "rsa_padding_mode:pkcs1",
				"-in", write("wrapped", f.WrappedKey))
			require.Len(t, aesKey, 16)
			padded := run("enc", "-d", "-aes-128-cbc", "-nopad", "-K", hex.EncodeToString(aesKey),
				"-iv", hex.EncodeToString(f.IV), "-in", write("ciphertext", f.Ciphertext))
			require.Len(t, padded, len(f.Ciphertext))
			assert.Equal(t, k.plain, padded[:len(padded)-f.PadCount])
			assert.Equal(t, strings.Repeat("\r", f.PadCount), string(padded[len(padded)-f.PadCount:]))
		})
	}
}

// TestCertutilsInterop checks both directions against certutils' enccnf
// (usecallmanagernz/certutils): it verifies and decrypts files we make,
// and we verify and decrypt the files it makes, with their short configs.
// certutils is GPL and never part of this module, so the test runs only
// when CERTUTILS_DIR names a checkout (Debian's /usr/bin/python3 with
// python3-cryptography and python3-lxml).
func TestCertutilsInterop(t *testing.T) {
	python, enccnf := interop.Certutils(t, "enccnf")
	k := loadKeys(t)
	keyDir := filepath.Join(testkeys.Dir(), "keys")
	run := func(dir string, args ...string) string {
		cmd := exec.Command(python, append([]string{enccnf}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		t.Run("ours/"+hash.String(), func(t *testing.T) {
			dir := t.TempDir()
			name := EncryptedName(device)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), k.encrypt(t, k.plain, hash), 0o644))
			out := run(dir, "--parse", name, "--tftp", filepath.Join(keyDir, "tftp.pem"))
			assert.Contains(t, out, "Valid signature")
			run(dir, "--remove", name, "--key", filepath.Join(keyDir, "device.pem"))
			plain, err := os.ReadFile(filepath.Join(dir, device+".cnf.xml"))
			require.NoError(t, err)
			assert.Equal(t, k.plain, plain)
		})
		t.Run("theirs/"+hash.String(), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, device+".cnf.xml"), k.plain, 0o644))
			run(dir, "--build", device+".cnf.xml", "--digest", strings.ToLower(strings.ReplaceAll(hash.String(), "-", "")),
				"--tftp", filepath.Join(keyDir, "tftp.pem"), "--certificate", filepath.Join(keyDir, "device.pem"))
			data, err := os.ReadFile(filepath.Join(dir, EncryptedName(device)))
			require.NoError(t, err)
			plain, err := Decrypt(data, k.tftp, k.phoneKey)
			require.NoError(t, err)
			assert.Equal(t, k.plain, plain)

			signed, err := os.ReadFile(filepath.Join(dir, ShortName(device)))
			require.NoError(t, err)
			sf, err := sgn.Parse(signed)
			require.NoError(t, err)
			require.NoError(t, sf.CheckSignatureFrom(k.tftp))
			info, err := ParseShortConfig(sf.Payload)
			require.NoError(t, err)
			assert.True(t, info.EncrConfig)
			assert.True(t, info.CertHashMatches(k.phone))
		})
	}
}
