//go:build cgo

package pkcs11_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/ucsec/ucsec/pkcs11"
	"github.com/ucsec/ucsec/pkcs11/softhsmtest"
)

// BenchmarkSign measures signatures per second through the token and with
// the same key in memory (crypto/rsa, crypto/ecdsa), one at a time and
// from parallel goroutines. SoftHSM2 computes in software (OpenSSL), so
// the difference is what the binding costs: cgo calls, a session from the
// pool, C_SignInit and C_Sign, not a hardware token's speed.
func BenchmarkSign(b *testing.B) {
	tk := softhsmtest.New(b, "bench")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tk.Import(b, "rsa", []byte{1}, rsaKey)
	tk.Import(b, "ec", []byte{2}, ecKey)
	for _, kt := range []struct {
		name   string
		object string
		mem    crypto.Signer
	}{{"RSA-2048", "rsa", rsaKey}, {"P-256", "ec", ecKey}} {
		tok := open(b, tk.URI(kt.object), nil)
		d := digest(crypto.SHA256, []byte("ITLFile.tlv"))
		for _, where := range []struct {
			name string
			key  crypto.Signer
		}{{"token", tok}, {"memory", kt.mem}} {
			b.Run(kt.name+"/"+where.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := where.key.Sign(rand.Reader, d, crypto.SHA256); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
			})
			b.Run(kt.name+"/"+where.name+"/parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := where.key.Sign(rand.Reader, d, crypto.SHA256); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
			})
		}
	}
}

// BenchmarkOpen measures Open and Close: loading the module, finding the
// token, logging in and finding the key.
func BenchmarkOpen(b *testing.B) {
	tk := softhsmtest.New(b, "bench")
	tk.GenerateEC(b, "ec", []byte{1}, elliptic.P256(), nil)
	for b.Loop() {
		k, err := pkcs11.Open(tk.URI("ec"), nil)
		if err != nil {
			b.Fatal(err)
		}
		k.Close()
	}
}
