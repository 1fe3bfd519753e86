package cnfenc

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// config16K is a 16 KiB configuration.
func config16K() []byte {
	b := make([]byte, 16<<10)
	for i := range b {
		b[i] = "<device>line</device>\n"[i%22]
	}
	return b
}

// BenchmarkEncrypt makes a 16 KiB encrypted configuration: the symmetric
// part, the RSA wrap of the key to the phone and the RSA signature.
func BenchmarkEncrypt(b *testing.B) {
	k := loadKeys(b)
	config := config16K()
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		b.Run(hashName(hash), func(b *testing.B) {
			b.SetBytes(int64(len(config)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encrypt(nil, config, k.phone, k.tftp, k.tftpKey, EncryptOptions{DeviceName: device, Hash: hash}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecrypt reads a 16 KiB encrypted configuration: Parse, the
// signature check, the RSA unwrap and the symmetric part.
func BenchmarkDecrypt(b *testing.B) {
	k := loadKeys(b)
	config := config16K()
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		data := k.encrypt(b, config, hash)
		b.Run(hashName(hash), func(b *testing.B) {
			b.SetBytes(int64(len(config)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decrypt(data, k.tftp, k.phoneKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSymmetric is the part of Encrypt and Decrypt that is not RSA:
// padding, AES-128-CBC and the plaintext digest of 16 KiB. The raw
// sub-benchmarks are the floor: the standard library's CBC and hash alone
// on preallocated buffers, in place.
func BenchmarkSymmetric(b *testing.B) {
	config := config16K()
	key, iv := make([]byte, 16), make([]byte, 16)
	rand.Read(key)
	rand.Read(iv)
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		b.Run("encrypt/"+hashName(hash), func(b *testing.B) {
			b.SetBytes(int64(len(config)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := encryptBody(key, iv, config, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
		ct, pad, digest, err := encryptBody(key, iv, config, hash)
		if err != nil {
			b.Fatal(err)
		}
		e := &encInfo{pad: pad, hash: hash, digest: digest, ciphertext: ct}
		copy(e.iv[:], iv)
		b.Run("decrypt/"+hashName(hash), func(b *testing.B) {
			b.SetBytes(int64(len(config)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.open(key); err != nil {
					b.Fatal(err)
				}
			}
		})
		block, err := aes.NewCipher(key)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, len(ct))
		b.Run("encrypt-raw/"+hashName(hash), func(b *testing.B) {
			b.SetBytes(int64(len(config)))
			b.ReportAllocs()
			for b.Loop() {
				cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
				d := hash.New()
				d.Write(config)
				d.Sum(digest[:0])
			}
		})
		b.Run("decrypt-raw/"+hashName(hash), func(b *testing.B) {
			b.SetBytes(int64(len(config)))
			b.ReportAllocs()
			for b.Loop() {
				cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, ct)
				d := hash.New()
				d.Write(buf[:len(config)])
				d.Sum(digest[:0])
			}
		})
	}
}

// BenchmarkAESCBC is the ceiling of the symmetric part: the standard
// library's AES-128-CBC alone on 16 KiB, in place. CBC encryption is one
// chain of dependent AES calls, so no implementation can encrypt a single
// file faster than this machine runs that chain.
func BenchmarkAESCBC(b *testing.B) {
	key, iv := make([]byte, 16), make([]byte, 16)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	buf := config16K()
	for _, dir := range []string{"encrypt", "decrypt"} {
		b.Run(dir, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if dir == "encrypt" {
					cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
				} else {
					cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, buf)
				}
			}
		})
	}
}

// BenchmarkRSA is the RSA part of Encrypt and Decrypt with the 2048-bit
// test keys: wrapping the AES key to the phone, signing (SHA-1 digest
// given), verifying, and unwrapping.
func BenchmarkRSA(b *testing.B) {
	k := loadKeys(b)
	phonePub := k.phone.PublicKey.(*rsa.PublicKey)
	tftpPub := k.tftp.PublicKey.(*rsa.PublicKey)
	aesKey := make([]byte, 16)
	digest := make([]byte, 20)
	//lint:ignore SA1019 the format's key transport; measured as Encrypt uses it.
	wrapped, _ := rsa.EncryptPKCS1v15(rand.Reader, phonePub, aesKey)
	sig, _ := k.tftpKey.Sign(nil, digest, crypto.SHA1)
	//lint:ignore SA1019 the format's key transport; measured as Decrypt uses it.
	opts := &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16}
	for _, c := range []struct {
		name string
		op   func() error
	}{
		{"wrap", func() error {
			//lint:ignore SA1019 the format's key transport.
			_, err := rsa.EncryptPKCS1v15(rand.Reader, phonePub, aesKey)
			return err
		}},
		{"sign", func() error { _, err := k.tftpKey.Sign(nil, digest, crypto.SHA1); return err }},
		{"verify", func() error { return rsa.VerifyPKCS1v15(tftpPub, crypto.SHA1, digest, sig) }},
		{"unwrap", func() error { _, err := k.phoneKey.Decrypt(rand.Reader, wrapped, opts); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.op(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func hashName(h crypto.Hash) string {
	return map[crypto.Hash]string{crypto.SHA1: "sha1", crypto.SHA512: "sha512"}[h]
}
