package srtpkeys

import (
	"crypto/aes"
	"strings"
	"testing"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/ucsec/ucsec/internal/benchpair"
)

// BenchmarkDerive measures one SRTP session-key derivation (the three
// labels) with the master key's AES cipher cached in the Deriver, into
// new SessionKeys and (into) into reused ones. Target: ≤ 150 ns/op and 0
// allocations (into).
func BenchmarkDerive(b *testing.B) {
	for _, s := range []Suite{AES128CM_SHA1_80, AES256CM_SHA1_80, AEADAES128GCM} {
		k, err := GenerateMasterKey(nil, s)
		if err != nil {
			b.Fatal(err)
		}
		d, err := NewDeriver(k, 1<<16)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.String(), func(b *testing.B) {
			b.ReportAllocs()
			var idx uint64
			for b.Loop() {
				if _, err := d.SRTP(idx); err != nil {
					b.Fatal(err)
				}
				idx += 1 << 16
			}
		})
		b.Run(s.String()+"/into", func(b *testing.B) {
			b.ReportAllocs()
			var keys SessionKeys
			var idx uint64
			for b.Loop() {
				if err := d.SRTPInto(&keys, idx); err != nil {
					b.Fatal(err)
				}
				idx += 1 << 16
			}
		})
	}
}

// BenchmarkContext compares building a pion context through NewContext
// with calling srtp.CreateContext directly with the same options (replay
// protection on), and bare. Target: srtpkeys within 1.05× of pion-same.
// The position of a sub-benchmark shifts its time by several per cent on
// a shared VM, so srtpkeys runs between the two pion variants; compare
// with benchstat over -count 20.
func BenchmarkContext(b *testing.B) {
	k, err := GenerateMasterKey(nil, AES128CM_SHA1_80)
	if err != nil {
		b.Fatal(err)
	}
	key, salt := k.Key(), k.Salt()
	b.Run("pion-same", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80,
				srtp.SRTPReplayProtection(DefaultReplayWindow), srtp.SRTCPReplayProtection(DefaultReplayWindow)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("srtpkeys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewContext(k, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pion-bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkContextPaired builds one context each way per iteration,
// alternating which goes first, and reports the ratio of the time spent in
// NewContext to the time spent in srtp.CreateContext with the same options,
// so that VM noise and drift hit both alike. Target: ratio ≤ 1.05.
func BenchmarkContextPaired(b *testing.B) {
	k, err := GenerateMasterKey(nil, AES128CM_SHA1_80)
	if err != nil {
		b.Fatal(err)
	}
	key, salt := k.Key(), k.Salt()
	ours := func() {
		if _, err := NewContext(k, nil); err != nil {
			b.Fatal(err)
		}
	}
	theirs := func() {
		if _, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80,
			srtp.SRTPReplayProtection(DefaultReplayWindow), srtp.SRTCPReplayProtection(DefaultReplayWindow)); err != nil {
			b.Fatal(err)
		}
	}
	var tOurs, tTheirs time.Duration
	i := 0
	for b.Loop() {
		first, second, t1, t2 := ours, theirs, &tOurs, &tTheirs
		if i&1 == 1 {
			first, second, t1, t2 = theirs, ours, &tTheirs, &tOurs
		}
		i++
		start := time.Now()
		first()
		mid := time.Now()
		second()
		end := time.Now()
		*t1 += mid.Sub(start)
		*t2 += end.Sub(mid)
	}
	b.ReportMetric(float64(tOurs)/float64(tTheirs), "ratio")
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(i), "ns/srtpkeys")
	b.ReportMetric(float64(tTheirs.Nanoseconds())/float64(i), "ns/pion")
}

// BenchmarkParseCrypto parses a typical SDES line (Microsoft-style lifetime
// and MKI). Target: ≤ 1 µs/op.
func BenchmarkParseCrypto(b *testing.B) {
	for name, line := range map[string]string{
		"minimal":   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1,
		"typical":   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^31|1:1",
		"params":    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2 + "|2^20|1:4 FEC_ORDER=FEC_SRTP WSH=128",
		"aes256gcm": "a=crypto:3 AEAD_AES_256_GCM inline:" + strings.Repeat("YUJD", 14) + "YUI=",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseCrypto(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarshalCrypto writes the typical line back.
func BenchmarkMarshalCrypto(b *testing.B) {
	c, err := ParseCrypto("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^31|1:1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Value(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDerivePaired runs Deriver.SRTPInto for AES_CM_128_HMAC_SHA1_80
// side by side with the raw RFC 3711 §4.3 PRF written from crypto/aes
// alone: four AES-128 blocks (a 16-byte key, a 20-byte authentication key,
// a 14-byte salt) with the cipher made once (internal/benchpair). Target:
// ≤ 150 ns per derivation and no allocation (BenchmarkDerive shows the
// allocations).
func BenchmarkDerivePaired(b *testing.B) {
	k, err := GenerateMasterKey(nil, AES128CM_SHA1_80)
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDeriver(k, 1<<16)
	if err != nil {
		b.Fatal(err)
	}
	block, err := aes.NewCipher(k.Key())
	if err != nil {
		b.Fatal(err)
	}
	salt := k.Salt()
	var keys SessionKeys
	var idx uint64
	var out [4][aes.BlockSize]byte
	var in [4][aes.BlockSize]byte
	benchpair.Run(b, 256, func() {
		if err := d.SRTPInto(&keys, idx); err != nil {
			b.Fatal(err)
		}
		idx += 1 << 16
	}, func() {
		r := idx >> 16
		// key, authentication key (two blocks), salt: label and counter
		for i, lc := range [4][2]byte{{0, 0}, {1, 0}, {1, 1}, {2, 0}} {
			iv := &in[i]
			copy(iv[:14], salt)
			iv[7] ^= lc[0]
			for j := range 6 {
				iv[8+j] ^= byte(r >> (40 - 8*j))
			}
			iv[14], iv[15] = 0, lc[1]
			block.Encrypt(out[i][:], iv[:])
		}
		idx += 1 << 16
	})
}
