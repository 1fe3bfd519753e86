package sgn

import (
	"crypto"
	"crypto/rsa"
	"testing"

	"github.com/ucsec/ucsec/internal/benchpair"
	"github.com/ucsec/ucsec/internal/testkeys"
)

// signedMiB returns a signed file with a 1 MiB payload.
func signedMiB(b *testing.B, hash crypto.Hash) []byte {
	cert, key := testkeys.Load(b, "tftp")
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	out, err := Sign(nil, payload, cert, key, SignOptions{Filename: "big.bin.sgn", Hash: hash})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkParse parses a file with a 1 MiB payload. Parse must not copy
// the payload, so its throughput is far above the size of the file.
func BenchmarkParse(b *testing.B) {
	data := signedMiB(b, crypto.SHA1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify compares CheckSignatureFrom on a 1 MiB file with the raw
// cost of the same check: hashing the same signed bytes and calling
// rsa.VerifyPKCS1v15.
func BenchmarkVerify(b *testing.B) {
	cert, _ := testkeys.Load(b, "tftp")
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		data := signedMiB(b, hash)
		f, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		tbs := f.SignedBytes()
		pub := cert.PublicKey.(*rsa.PublicKey)
		name := map[crypto.Hash]string{crypto.SHA1: "sha1", crypto.SHA512: "sha512"}[hash]

		b.Run(name+"/CheckSignatureFrom", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := f.CheckSignatureFrom(cert); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/raw", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				h := hash.New()
				h.Write(tbs)
				if err := rsa.VerifyPKCS1v15(pub, hash, h.Sum(nil), f.Signature); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyPaired runs Parse and CheckSignatureFrom of a 1 MiB file
// signed with RSA-2048 and SHA-1 side by side with hashing the signed
// bytes and rsa.VerifyPKCS1v15 (internal/benchpair). Target: ratio ≤ 1.10.
func BenchmarkVerifyPaired(b *testing.B) {
	cert, _ := testkeys.Load(b, "tftp")
	data := signedMiB(b, crypto.SHA1)
	f, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	tbs, sig := f.SignedBytes(), f.Signature
	pub := cert.PublicKey.(*rsa.PublicKey)
	benchpair.Run(b, 1, func() {
		f, err := Parse(data)
		if err == nil {
			err = f.CheckSignatureFrom(cert)
		}
		if err != nil {
			b.Fatal(err)
		}
	}, func() {
		h := crypto.SHA1.New()
		h.Write(tbs)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, h.Sum(nil), sig); err != nil {
			b.Fatal(err)
		}
	})
}
