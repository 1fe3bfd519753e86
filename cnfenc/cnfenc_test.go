package cnfenc

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

const (
	vectorName = "enc/SEP001122334455.cnf.xml.enc.sgn"
	shortName  = "enc/SEP001122334455.cnf.xml.sgn"
	plainName  = "SEP001122334455.cnf.xml"
	device     = "SEP001122334455"
)

// keys holds the throw-away test certificates and keys.
type keys struct {
	tftp, phone       *x509.Certificate
	tftpKey           crypto.Signer
	phoneKey          crypto.Decrypter
	other             *x509.Certificate // another RSA-2048 certificate (SAST)
	otherKey          crypto.Decrypter
	ecCert            *x509.Certificate
	ecKey             crypto.Signer
	plain, fullConfig []byte
}

func loadKeys(tb testing.TB) *keys {
	tb.Helper()
	k := &keys{}
	k.tftp, k.tftpKey = testkeys.Load(tb, "tftp")
	var phoneKey, otherKey crypto.Signer
	k.phone, phoneKey = testkeys.Load(tb, "device")
	k.other, otherKey = testkeys.Load(tb, "sast")
	k.ecCert, k.ecKey = testkeys.Load(tb, "tftp-ec-p384")
	k.phoneKey, k.otherKey = phoneKey.(crypto.Decrypter), otherKey.(crypto.Decrypter)
	k.plain = testkeys.Vector(tb, plainName)
	k.fullConfig = k.plain
	return k
}

var fixedTime = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

func (k *keys) encrypt(tb testing.TB, config []byte, hash crypto.Hash) []byte {
	tb.Helper()
	out, err := Encrypt(nil, config, k.phone, k.tftp, k.tftpKey, EncryptOptions{DeviceName: device, Hash: hash, Time: fixedTime})
	require.NoError(tb, err)
	return out
}

// TestVector reads the certutils .enc.sgn vector: the fields its parse
// output lists, the layout of its encryption elements, and a decryption with
// the test phone key to exactly the plaintext configuration.
func TestVector(t *testing.T) {
	k := loadKeys(t)
	data := testkeys.Vector(t, vectorName)
	want := testkeys.ParseOutput(t, vectorName+".parse.txt")
	f, err := Parse(data)
	require.NoError(t, err)

	assert.Equal(t, want["Version"], f.Version.String())
	assert.Equal(t, want["Header Length"], fmt.Sprintf("%d bytes", f.HeaderLength))
	assert.Equal(t, want["Signer Name"], f.SignerName)
	assert.Equal(t, want["Serial Number"], hex.EncodeToString(f.SerialNumber.Bytes()))
	assert.Equal(t, want["Filename"], f.Filename)
	assert.Equal(t, want["Timestamp"], f.Timestamp.Format(time.DateTime))
	assert.Equal(t, want["Encryption IV"], fmt.Sprintf("%d bytes", len(f.IV)))
	assert.Equal(t, want["Encryption Key"], fmt.Sprintf("%d bytes", len(f.WrappedKey)))
	assert.Equal(t, want["Encryption Digest Algorithm"], strings.ReplaceAll(f.DigestHash.String(), "-", ""))
	assert.Equal(t, want["Encryption Digest"], hex.EncodeToString(f.PlaintextDigest))
	assert.Equal(t, 3, f.PadCount)
	assert.Equal(t, 2048, f.KeyBits)
	assert.Equal(t, uint8(KeyAES128), f.KeyAlgorithm)
	assert.Len(t, f.Ciphertext, 272)
	assert.Equal(t, EncryptedName(device), f.SignedFilename())

	_, err = f.Decrypt(k.other, k.phoneKey)
	require.ErrorIs(t, err, sgn.ErrWrongSigner, "Decrypt must refuse a file another certificate signed")
	plain, err := f.Decrypt(k.tftp, k.phoneKey)
	require.NoError(t, err)
	assert.Equal(t, k.plain, plain)

	plain, err = Decrypt(data, k.tftp, k.phoneKey)
	require.NoError(t, err)
	assert.Equal(t, k.plain, plain)
}

// TestShortVector checks the certutils short configuration: its certHash
// is CertHash of the test phone certificate, the phone-side check accepts
// that certificate only, and ShortConfig builds the same document from the
// full configuration (certutils re-indents copied elements; we copy them
// as they are).
func TestShortVector(t *testing.T) {
	k := loadKeys(t)
	signed := testkeys.Vector(t, shortName)
	sf, err := sgn.Parse(signed)
	require.NoError(t, err)
	require.NoError(t, sf.CheckSignatureFrom(k.tftp))

	info, err := ParseShortConfig(sf.Payload)
	require.NoError(t, err)
	assert.Equal(t, &ShortConfigInfo{FullConfig: false, EncrConfig: true, CertHash: "08ecfd597f0051d70826703523dc12ac"}, info)
	assert.Equal(t, info.CertHash, CertHash(k.phone))
	assert.True(t, info.CertHashMatches(k.phone))
	assert.False(t, info.CertHashMatches(k.tftp))
	assert.False(t, info.CertHashMatches(nil))
	upper := *info
	upper.CertHash = strings.ToUpper(upper.CertHash)
	assert.True(t, upper.CertHashMatches(k.phone))

	ours, err := ShortConfig(k.fullConfig, k.phone)
	require.NoError(t, err)
	squeeze := func(b []byte) string {
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			out = append(out, strings.TrimSpace(line))
		}
		return strings.Join(out, "")
	}
	assert.Equal(t, squeeze(sf.Payload), squeeze(ours))
	assert.True(t, bytes.HasPrefix(sf.Payload, ours[:bytes.Index(ours, []byte("<capfList>"))]),
		"everything before the copied capfList is byte-identical to certutils'")
}

// TestRoundTrip encrypts configurations of every length around a block
// boundary with SHA-1 and SHA-512 and decrypts them.
func TestRoundTrip(t *testing.T) {
	k := loadKeys(t)
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 4096} {
			t.Run(fmt.Sprintf("%v/%d", hash, n), func(t *testing.T) {
				config := bytes.Repeat([]byte("x"), n)
				data := k.encrypt(t, config, hash)
				f, err := Parse(data)
				require.NoError(t, err)
				assert.Equal(t, sgn.Version{2, 0}, f.Version)
				assert.Equal(t, hash, f.Hash)
				assert.Equal(t, hash, f.DigestHash)
				assert.Equal(t, 0, f.HeaderLength%4)
				assert.Equal(t, "SEP001122334455.cnf.xml.enc.sgn", f.Filename)
				assert.Equal(t, fixedTime(), f.Timestamp)
				assert.Equal(t, 16-n%16, f.PadCount)
				assert.Len(t, f.Ciphertext, n+f.PadCount)
				assert.Equal(t, 2048, f.KeyBits)
				assert.Len(t, f.WrappedKey, 256)

				plain, err := Decrypt(data, k.tftp, k.phoneKey)
				require.NoError(t, err)
				assert.Equal(t, config, plain)
			})
		}
	}
}

// TestLayout checks the bytes of the encryption elements of a file we make
// against the layout certutils' enccnf writes.
func TestLayout(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA1)
	f, err := Parse(data)
	require.NoError(t, err)
	require.Len(t, f.Extra, 3)
	assert.Equal(t, []uint8{0x10, 0x1A, 0x1B}, []uint8{f.Extra[0].Tag, f.Extra[1].Tag, f.Extra[2].Tag})
	info := f.Extra[0].Value
	want := "11001c" + "12000100" + "130010" + hex.EncodeToString(f.IV) + "14000200" + fmt.Sprintf("%02x", f.PadCount) +
		"150110" + "16000100" + "17000208" + "00" + "18000101" + "190100" + hex.EncodeToString(f.WrappedKey)
	assert.Equal(t, want, hex.EncodeToString(info))
	assert.Equal(t, []byte{1}, f.Extra[1].Value)

	// The vector has the same layout, byte for byte, apart from its own
	// IV, pad count and wrapped key.
	vf, err := Parse(testkeys.Vector(t, vectorName))
	require.NoError(t, err)
	assert.Equal(t, len(vf.Extra[0].Value), len(info))
	assert.Equal(t, f.HeaderLength, vf.HeaderLength)
}

// TestFreshKeys checks that two encryptions of the same configuration
// share neither the AES key nor the IV.
func TestFreshKeys(t *testing.T) {
	k := loadKeys(t)
	seenKeys, seenIVs := map[string]bool{}, map[string]bool{}
	for range 8 {
		f, err := Parse(k.encrypt(t, k.plain, crypto.SHA1))
		require.NoError(t, err)
		//lint:ignore SA1019 unwrapping the test file's key to compare keys.
		key, err := k.phoneKey.Decrypt(nil, f.WrappedKey, &rsa.PKCS1v15DecryptOptions{})
		require.NoError(t, err)
		require.Len(t, key, 16)
		assert.False(t, seenKeys[string(key)], "AES key reused")
		assert.False(t, seenIVs[string(f.IV)], "IV reused")
		seenKeys[string(key)], seenIVs[string(f.IV)] = true, true
	}
}

// TestBitFlips flips every bit of a file we made: the header, the wrapped
// key and the ciphertext. Every change must fail to parse or to verify;
// none may reach decryption.
func TestBitFlips(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA1)
	for i := range data {
		for bit := range 8 {
			bad := bytes.Clone(data)
			bad[i] ^= 1 << bit
			plain, err := Decrypt(bad, k.tftp, k.phoneKey)
			if err == nil {
				t.Fatalf("flip of byte %d bit %d decrypted to %q", i, bit, plain)
			}
			if !errors.Is(err, sgn.ErrMalformed) && !errors.Is(err, sgn.ErrVerification) && !errors.Is(err, sgn.ErrWrongSigner) {
				t.Fatalf("flip of byte %d bit %d: unexpected error %v", i, bit, err)
			}
		}
	}
}

// TestDigestCheck changes what Decrypt decrypts after Parse, behind the
// signature check (which TestBitFlips shows stops every change of the
// file), to show the second line of defence: a changed ciphertext, pad
// count or wrapped key never yields plaintext.
func TestDigestCheck(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA512)
	f, err := Parse(data)
	require.NoError(t, err)
	_, err = f.Decrypt(k.tftp, k.phoneKey)
	require.NoError(t, err)

	for _, change := range []struct {
		name string
		edit func(e *encInfo)
	}{
		{"ciphertext", func(e *encInfo) { e.ciphertext = bytes.Clone(e.ciphertext); e.ciphertext[5] ^= 1 }},
		{"last block", func(e *encInfo) { e.ciphertext = bytes.Clone(e.ciphertext); e.ciphertext[len(e.ciphertext)-1] ^= 1 }},
		{"pad count", func(e *encInfo) { e.pad-- }},
		{"iv", func(e *encInfo) { e.iv[0] ^= 1 }},
		{"wrapped key", func(e *encInfo) { e.wrapped = bytes.Clone(e.wrapped); e.wrapped[100] ^= 1 }},
		{"digest", func(e *encInfo) { e.digest = bytes.Clone(e.digest); e.digest[0] ^= 1 }},
	} {
		t.Run(change.name, func(t *testing.T) {
			g := *f
			change.edit(&g.enc)
			plain, err := g.Decrypt(k.tftp, k.phoneKey)
			assert.Nil(t, plain)
			assert.ErrorIs(t, err, ErrDecryption)
		})
	}

	t.Run("exported fields do not matter", func(t *testing.T) {
		g := *f
		g.PadCount, g.IV, g.WrappedKey, g.PlaintextDigest = 0, nil, nil, nil
		plain, err := g.Decrypt(k.tftp, k.phoneKey)
		require.NoError(t, err)
		assert.Equal(t, k.plain, plain)
	})
}

// TestDecryptErrors covers the ways a decryption is refused.
func TestDecryptErrors(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA1)

	_, err := Decrypt(data, k.other, k.phoneKey)
	require.ErrorIs(t, err, sgn.ErrWrongSigner)
	assert.Contains(t, err.Error(), "sgn: certificate is not the signer named in the file")

	_, err = Decrypt(data, k.tftp, k.otherKey)
	// A wrong key of the right size fails like a damaged file. When the
	// wrapped key is numerically larger than the wrong key's modulus (a
	// public fact), crypto/rsa says so, and that error is wrapped.
	assert.ErrorIs(t, err, ErrDecryption)
	for range 20 {
		other := k.encrypt(t, k.plain, crypto.SHA1)
		_, err := Decrypt(other, k.tftp, k.otherKey)
		assert.ErrorIs(t, err, ErrDecryption)
	}

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	_, err = Decrypt(data, k.tftp, small)
	require.ErrorIs(t, err, ErrDecryption)
	assert.Contains(t, err.Error(), "wrapped to a 2048-bit key, this key has 1024 bits")

	_, err = Decrypt(data, k.tftp, ecDecrypter{k.ecKey})
	require.ErrorIs(t, err, ErrUnsupportedKey)

	_, err = Decrypt(data, k.tftp, failingDecrypter{k.phoneKey})
	require.ErrorIs(t, err, ErrDecryption)
	assert.ErrorIs(t, err, errToken, "the token's own error stays reachable")

	f, err := Parse(data)
	require.NoError(t, err)
	_, err = f.DecryptManualKey(k.tftp, testKey(1))
	assert.ErrorContains(t, err, "use Decrypt")

	_, err = Decrypt(data, k.tftp, nil)
	assert.ErrorContains(t, err, "no phone key")
}

// ecDecrypter is an EC key posing as a crypto.Decrypter.
type ecDecrypter struct{ crypto.Signer }

func (ecDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errors.New("cannot decrypt")
}

var errToken = errors.New("token: session closed")

// failingDecrypter is a token whose decryption fails.
type failingDecrypter struct{ crypto.Decrypter }

func (failingDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errToken
}

// tokenSigner and tokenDecrypter expose nothing but the interfaces, as a
// PKCS#11 or KMS key would.
type tokenSigner struct{ crypto.Signer }
type tokenDecrypter struct{ crypto.Decrypter }

func TestTokenKeys(t *testing.T) {
	k := loadKeys(t)
	data, err := Encrypt(nil, k.plain, k.phone, k.tftp, tokenSigner{k.tftpKey}, EncryptOptions{DeviceName: device, Hash: crypto.SHA512})
	require.NoError(t, err)
	plain, err := Decrypt(data, k.tftp, tokenDecrypter{k.phoneKey})
	require.NoError(t, err)
	assert.Equal(t, k.plain, plain)
}

func TestEncryptErrors(t *testing.T) {
	k := loadKeys(t)
	opts := EncryptOptions{DeviceName: device, Hash: crypto.SHA1}

	_, err := Encrypt(nil, k.plain, k.ecCert, k.tftp, k.tftpKey, opts)
	require.ErrorIs(t, err, ErrUnsupportedKey)
	assert.Contains(t, err.Error(), "no variant for EC keys is known")

	_, err = Encrypt(nil, k.plain, nil, k.tftp, k.tftpKey, opts)
	assert.Error(t, err)

	_, err = Encrypt(nil, k.plain, k.phone, k.tftp, k.tftpKey, EncryptOptions{DeviceName: device})
	assert.ErrorIs(t, err, sgn.ErrUnsupportedAlgorithm, "Hash is required")

	_, err = Encrypt(nil, k.plain, k.phone, k.tftp, k.tftpKey, EncryptOptions{Hash: crypto.SHA1})
	assert.ErrorContains(t, err, "DeviceName or a Filename")

	_, err = Encrypt(nil, k.plain, k.phone, k.tftp, k.tftpKey, EncryptOptions{DeviceName: "../SEP1", Hash: crypto.SHA1})
	assert.ErrorContains(t, err, "device name")

	_, err = Encrypt(nil, k.plain, k.phone, k.ecCert, k.ecKey, opts)
	assert.ErrorIs(t, err, sgn.ErrUnsupportedAlgorithm, "the TFTP key must be RSA")

	_, err = Encrypt(nil, k.plain, k.phone, k.other, k.tftpKey, opts)
	assert.ErrorContains(t, err, "does not match")

	_, err = Encrypt(bytes.NewReader(make([]byte, 10)), k.plain, k.phone, k.tftp, k.tftpKey, opts)
	assert.ErrorContains(t, err, "random")

	out, err := Encrypt(nil, k.plain, k.phone, k.tftp, k.tftpKey, EncryptOptions{Filename: "ATA0011223344550.cnf.xml.enc.sgn", Hash: crypto.SHA1})
	require.NoError(t, err)
	f, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, "ATA0011223344550.cnf.xml.enc.sgn", f.Filename)
}

// TestTrustList verifies an encrypted file the way a phone does: through
// a trust list whose TFTP record holds the signer, then decrypts it.
func TestTrustList(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA1)
	name := EncryptedName(device)
	list := &ctl.File{}
	for _, rc := range []struct {
		cert *x509.Certificate
		role ctl.Role
	}{{k.other, ctl.RoleSAST}, {k.tftp, ctl.RoleTFTP}} {
		r, err := ctl.NewRecord(rc.cert, rc.role)
		require.NoError(t, err)
		list.Records = append(list.Records, r)
	}

	f, err := Parse(data)
	require.NoError(t, err)
	_, err = list.VerifySignedFile(f, "SEP001122334455.cnf.xml.sgn")
	require.ErrorIs(t, err, ctl.ErrWrongFile)
	rec, err := list.VerifySignedFile(f, name)
	require.NoError(t, err)
	signer, err := rec.ParseCertificate()
	require.NoError(t, err)
	plain, err := f.Decrypt(signer, k.phoneKey)
	require.NoError(t, err)
	assert.Equal(t, k.plain, plain)

	untrusting := &ctl.File{Records: list.Records[:1]}
	g, err := Parse(data)
	require.NoError(t, err)
	rec, err = untrusting.VerifySignedFile(g, name)
	require.ErrorIs(t, err, ctl.ErrUntrusted)
	assert.Nil(t, rec)
}

func TestManualKey(t *testing.T) {
	k := loadKeys(t)
	key, err := ParseManualKey("00112233445566778899AABBCCDDEEFF")
	require.NoError(t, err)
	assert.Equal(t, "00112233445566778899aabbccddeeff", hex.EncodeToString(key.Bytes()))
	assert.Equal(t, "ManualKey(redacted)", fmt.Sprint(key))

	for _, bad := range []string{"", "0011", "00112233445566778899aabbccddeefg", "00112233445566778899aabbccddeeff00"} {
		_, err := ParseManualKey(bad)
		assert.Error(t, err, bad)
	}
	_, err = ParseManualKey(strings.Repeat("0", 32))
	assert.ErrorContains(t, err, "no key")

	data, err := EncryptManualKey(nil, k.plain, key, k.tftp, k.tftpKey, EncryptOptions{DeviceName: device, Hash: crypto.SHA1})
	require.NoError(t, err)
	f, err := Parse(data)
	require.NoError(t, err)
	assert.Nil(t, f.WrappedKey)
	assert.Equal(t, 128, f.KeyBits)

	_, err = f.DecryptManualKey(k.other, key)
	require.ErrorIs(t, err, sgn.ErrWrongSigner)
	plain, err := f.DecryptManualKey(k.tftp, key)
	require.NoError(t, err)
	assert.Equal(t, k.plain, plain)

	b := key.Bytes()
	b[15] ^= 1
	other, err := NewManualKey(b)
	require.NoError(t, err)
	_, err = f.DecryptManualKey(k.tftp, other)
	assert.Equal(t, ErrDecryption, err)
	_, err = f.DecryptManualKey(k.tftp, ManualKey{})
	assert.ErrorContains(t, err, "no key")
	_, err = f.Decrypt(k.tftp, k.phoneKey)
	assert.ErrorContains(t, err, "DecryptManualKey")

	_, err = EncryptManualKey(nil, k.plain, ManualKey{}, k.tftp, k.tftpKey, EncryptOptions{DeviceName: device, Hash: crypto.SHA1})
	assert.ErrorContains(t, err, "no key")
}

func testKey(b byte) ManualKey {
	var k ManualKey
	k.k[0] = b
	return k
}

// TestManualKeyRedacted: no fmt verb and no encoder shows the key.
func TestManualKeyRedacted(t *testing.T) {
	key, err := ParseManualKey("00112233445566778899aabbccddeeff")
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		out := fmt.Sprintf(verb, key)
		assert.Equal(t, "ManualKey(redacted)", out, verb)
	}
	assert.NotContains(t, fmt.Sprintf("%+v", struct{ K ManualKey }{key}), "17")
	j, err := json.Marshal(map[string]ManualKey{"k": key})
	require.NoError(t, err)
	assert.Equal(t, `{"k":"ManualKey(redacted)"}`, string(j))
	_, err = NewManualKey(make([]byte, 15))
	assert.Error(t, err)
	_, err = NewManualKey(make([]byte, 16))
	assert.ErrorContains(t, err, "no key")
}

// craft signs a file with the given encryption elements, so that the
// parser's checks can be reached with a valid signature.
func craft(t *testing.T, k *keys, ciphertext []byte, extra ...sgn.Element) []byte {
	t.Helper()
	out, err := sgn.Sign(nil, ciphertext, k.tftp, k.tftpKey, sgn.SignOptions{Filename: "x.enc.sgn", Hash: crypto.SHA1, Version: version, Extra: extra})
	require.NoError(t, err)
	return out
}

func el(tag uint8, hexValue string) sgn.Element {
	v, err := hex.DecodeString(strings.ReplaceAll(hexValue, " ", ""))
	if err != nil {
		panic(err)
	}
	return sgn.Element{Tag: tag, Value: v}
}

func TestMalformed(t *testing.T) {
	k := loadKeys(t)
	iv := "130010" + strings.Repeat("00", 16)
	container := func(tag uint8, body string) string {
		body = strings.ReplaceAll(body, " ", "")
		return fmt.Sprintf("%02x%04x", tag, len(body)/2) + body
	}
	ivInfo := func(body string) string { return container(0x11, body) }
	keyInfo := func(body string) string { return container(0x15, body) }
	good := ivInfo("12000100"+iv+"14000200 03") + keyInfo("16000100 17000200 80 18000101")
	digest := []sgn.Element{el(0x1A, "01"), el(0x1B, strings.Repeat("00", 20))}
	block := make([]byte, 16)

	// The good elements parse: the checks below each break one thing.
	_, err := Parse(craft(t, k, block, append([]sgn.Element{el(0x10, good)}, digest...)...))
	require.NoError(t, err)

	for _, c := range []struct {
		name  string
		data  []byte
		errIn string
	}{
		{"not encrypted", craft(t, k, block, digest...), "no encryption info"},
		{"no digest", craft(t, k, block, el(0x10, good)), "no plaintext digest"},
		{"digest size", craft(t, k, block, el(0x10, good), el(0x1A, "03"), el(0x1B, "00")), "digest size"},
		{"digest hash", craft(t, k, block, el(0x10, good), el(0x1A, "09"), el(0x1B, "00")), "unknown plaintext hash"},
		{"duplicate digest", craft(t, k, block, append(append([]sgn.Element{el(0x10, good)}, digest...), digest[1])...), "duplicate"},
		{"duplicate info", craft(t, k, block, append([]sgn.Element{el(0x10, good), el(0x10, good)}, digest...)...), "duplicate"},
		{"empty ciphertext", craft(t, k, nil, append([]sgn.Element{el(0x10, good)}, digest...)...), "whole number of AES blocks"},
		{"partial block", craft(t, k, make([]byte, 17), append([]sgn.Element{el(0x10, good)}, digest...)...), "whole number of AES blocks"},
		{"short IV", craft(t, k, block, append([]sgn.Element{el(0x10, ivInfo("130002 0000 14000200 03")+keyInfo("18000101"))}, digest...)...), "IV is not 16 bytes"},
		{"big pad", craft(t, k, block, append([]sgn.Element{el(0x10, ivInfo(iv+"14000200 11")+keyInfo("18000101"))}, digest...)...), "pad count larger"},
		{"no IV", craft(t, k, block, append([]sgn.Element{el(0x10, ivInfo("14000200 03")+keyInfo("18000101"))}, digest...)...), "no IV element"},
		{"no key info", craft(t, k, block, append([]sgn.Element{el(0x10, ivInfo(iv+"14000200 03"))}, digest...)...), "no key info"},
		{"key tag in IV info", craft(t, k, block, append([]sgn.Element{el(0x10, ivInfo(iv+"14000200 03 18000101")+keyInfo("18000101"))}, digest...)...), "unknown element"},
		{"unknown in info", craft(t, k, block, append([]sgn.Element{el(0x10, good+"20000100")}, digest...)...), "unknown element"},
		{"padding in info", craft(t, k, block, append([]sgn.Element{el(0x10, good+"0d")}, digest...)...), "padding inside"},
		{"truncated info", craft(t, k, block, append([]sgn.Element{el(0x10, good+"1200")}, digest...)...), "runs past"},
		{"empty wrapped key", craft(t, k, block, append([]sgn.Element{el(0x10, ivInfo(iv+"14000200 03")+keyInfo("18000101 190000"))}, digest...)...), "empty wrapped key"},
		{"sgn error", []byte{1, 0, 2}, "too short"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, sgn.ErrMalformed)
			var pe *sgn.ParseError
			require.ErrorAs(t, err, &pe)
			assert.Contains(t, pe.Msg, c.errIn)
			assert.True(t, strings.HasPrefix(err.Error(), "sgn: malformed signed file at offset"), err.Error())
		})
	}

	// An unknown key algorithm parses (the layout is fine) but does not
	// decrypt.
	data := craft(t, k, block, append([]sgn.Element{el(0x10, ivInfo("12000100"+iv+"14000200 03")+keyInfo("18000102"))}, digest...)...)
	f, err := Parse(data)
	require.NoError(t, err)
	_, err = f.DecryptManualKey(k.tftp, testKey(1))
	assert.ErrorIs(t, err, sgn.ErrUnsupportedAlgorithm)
}

// TestTrustListWrongRole: a file signed by a certificate that the list
// holds for another role (CCM, SAST, ...) is untrusted, and no record is
// returned to decrypt with.
func TestTrustListWrongRole(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA1)
	for _, role := range []ctl.Role{ctl.RoleCCM, ctl.RoleSAST, ctl.RoleCAPF, ctl.RoleTVS} {
		t.Run(role.String(), func(t *testing.T) {
			r, err := ctl.NewRecord(k.tftp, role)
			require.NoError(t, err)
			list := &ctl.File{Records: []ctl.Record{r}}
			f, err := Parse(data)
			require.NoError(t, err)
			rec, err := list.VerifySignedFile(f, EncryptedName(device))
			require.ErrorIs(t, err, ctl.ErrUntrusted)
			assert.ErrorContains(t, err, "role")
			assert.Nil(t, rec)
		})
	}
}

// TestPrivateCopy: what is verified and decrypted is the private copy
// Parse took, whatever happens to the exported fields or to the bytes.
func TestPrivateCopy(t *testing.T) {
	k := loadKeys(t)
	good := k.encrypt(t, k.plain, crypto.SHA1)
	evil, err := Encrypt(nil, []byte("<device>evil</device>"), k.phone, k.other, k.otherKey.(crypto.Signer),
		EncryptOptions{DeviceName: device, Hash: crypto.SHA1})
	require.NoError(t, err)

	// Swap the exported header of an evil file for a good one's.
	f, err := Parse(evil)
	require.NoError(t, err)
	gf, err := sgn.Parse(good)
	require.NoError(t, err)
	f.Header = gf.Header
	f.Ciphertext = gf.Payload
	f.IV, f.WrappedKey, f.PlaintextDigest = nil, nil, nil
	_, err = f.Decrypt(k.tftp, k.phoneKey)
	require.Error(t, err, "the evil file is still what is verified")

	// Change the bytes after parsing: the copy is verified and decrypted.
	data := bytes.Clone(good)
	g, err := Parse(data)
	require.NoError(t, err)
	copy(data, evil)
	require.NoError(t, g.CheckSignatureFrom(k.tftp))
	plain, err := g.Decrypt(k.tftp, k.phoneKey)
	require.NoError(t, err)
	assert.Equal(t, k.plain, plain)

	// A File not made by Parse verifies nothing.
	var zero File
	assert.Error(t, zero.CheckSignatureFrom(k.tftp))
	assert.Error(t, zero.CheckSignature(k.tftp.PublicKey))
	_, err = zero.Decrypt(k.tftp, k.phoneKey)
	assert.Error(t, err)
	assert.False(t, zero.NamesSigner(k.tftp))
	assert.True(t, g.NamesSigner(k.tftp))
	assert.False(t, g.NamesSigner(k.other))
}

// TestNilKeys: nil and typed-nil keys are errors, never panics.
func TestNilKeys(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA1)
	for _, key := range []crypto.Decrypter{nil, (*rsa.PrivateKey)(nil), tokenDecrypter{}} {
		_, err := Decrypt(data, k.tftp, key)
		assert.ErrorContains(t, err, "no phone key")
	}
	_, err := Encrypt(nil, k.plain, &x509.Certificate{PublicKey: (*rsa.PublicKey)(nil)}, k.tftp, k.tftpKey,
		EncryptOptions{DeviceName: device, Hash: crypto.SHA1})
	assert.ErrorContains(t, err, "no phone key")
}

func TestSHA256(t *testing.T) {
	k := loadKeys(t)
	data := k.encrypt(t, k.plain, crypto.SHA256)
	f, err := Parse(data)
	require.NoError(t, err)
	assert.Equal(t, crypto.SHA256, f.DigestHash)
	plain, err := Decrypt(data, k.tftp, k.phoneKey)
	require.NoError(t, err)
	assert.Equal(t, k.plain, plain)
}
