package ctl

import (
	"crypto"
	"crypto/rsa"
	"fmt"
	"testing"

	"github.com/ucsec/ucsec/internal/benchpair"
	"github.com/ucsec/ucsec/internal/testkeys"
)

// tenRecordITL is a 10-record list signed by the SAST test key.
func tenRecordITL(b *testing.B) []byte {
	recs := []Record{newRecord(b, "sast", RoleSAST)}
	for i := range 9 {
		r := newRecord(b, []string{"tftp", "tftp-ec-p384", "device"}[i%3], []Role{RoleCCMTFTP, RoleTFTP, RoleTVS, RoleCAPF}[i%4])
		r.DNSName = fmt.Sprintf("node%d.example.com", i)
		recs = append(recs, r)
	}
	return build(b, CTLPolicy(), "sast", crypto.SHA1, recs...)
}

// BenchmarkParse parses a 10-record list.
func BenchmarkParse(b *testing.B) {
	data := tenRecordITL(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseVerify compares Parse + Verify of a 10-record list with
// the raw crypto cost: hashing the same signed bytes and rsa.VerifyPKCS1v15.
func BenchmarkParseVerify(b *testing.B) {
	data := tenRecordITL(b)
	f, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	sast, _ := testkeys.Load(b, "sast")
	pub := sast.PublicKey.(*rsa.PublicKey)
	tbs := f.SignedBytes()
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := crypto.SHA1.New()
			h.Write(tbs)
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, h.Sum(nil), f.Signature); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseVerify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Verify(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParseVerifyPaired runs Parse and Verify of a 10-record list
// side by side with hashing its signed bytes and rsa.VerifyPKCS1v15
// (internal/benchpair). Target: ratio ≤ 1.15.
func BenchmarkParseVerifyPaired(b *testing.B) {
	data := tenRecordITL(b)
	f, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	sast, _ := testkeys.Load(b, "sast")
	pub := sast.PublicKey.(*rsa.PublicKey)
	tbs, sig := f.SignedBytes(), f.Signature
	benchpair.Run(b, 4, func() {
		f, err := Parse(data)
		if err == nil {
			err = f.Verify()
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
