package digest

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"runtime"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/benchpair"
)

// acceptAll is a replay store that accepts every count, so that Verify
// can be measured on one precomputed request. MemoryReplayStore is
// measured on its own in BenchmarkReplayStore.
type acceptAll struct{}

func (acceptAll) Use(context.Context, NonceID, uint32, time.Time, time.Time) (bool, error) {
	return true, nil
}

// BenchmarkVerify measures Server.Verify (MD5, qop=auth, HA1 from a map)
// next to the raw cost of what it must compute: HA2, the response and the
// nonce's HMAC-SHA-256. The target is Verify <= 2x raw.
func BenchmarkVerify(b *testing.B) {
	c := newClock()
	s := testServer(c)
	s.Replay = acceptAll{}
	chs, err := s.Challenges(register(), false)
	if err != nil {
		b.Fatal(err)
	}
	ch := chs[0]
	cr, err := Respond(ch, RespondOptions{Username: "alice", Password: "s3cret", Method: "REGISTER", URI: "sip:test.local", QOP: "auth", CNonce: "0a4f113b", NC: 1})
	if err != nil {
		b.Fatal(err)
	}
	req := register(cr.String())
	ctx := context.Background()
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Verify(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A wrong password and an unknown user take the same path and should
	// cost the same.
	for name, user := range map[string]string{"wrong-password": "alice", "unknown-user": "mallory"} {
		bad, err := Respond(ch, RespondOptions{Username: user, Password: "guess", Method: "REGISTER", URI: "sip:test.local", QOP: "auth", CNonce: "0a4f113b", NC: 1})
		if err != nil {
			b.Fatal(err)
		}
		badReq := register(bad.String())
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Verify(ctx, badReq); err != ErrUnauthorized {
					b.Fatal(err)
				}
			}
		})
	}
	raw := newRawVerify(ch.Nonce)
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw.run()
		}
	})
}

// rawVerify is the least any verifier of the benchmark's request must do,
// with no parsing, no lookup and no allocation: HA2, the response, and the
// nonce's MAC, with the HMAC keyed once.
type rawVerify struct {
	ha1, nonceText string
	nonce          []byte
	mac            hash.Hash
	buf            [256]byte
	ha2hex         [32]byte
	sum            [sha256.Size]byte
}

func newRawVerify(nonce string) *rawVerify {
	n, _ := base64.RawURLEncoding.DecodeString(nonce)
	return &rawVerify{
		ha1:       HA1(MD5, "alice", "test.local", "s3cret"),
		nonceText: nonce,
		nonce:     n,
		mac:       hmac.New(sha256.New, secretA),
	}
}

func (r *rawVerify) run() bool {
	ha2 := md5.Sum(append(r.buf[:0], "REGISTER:sip:test.local"...))
	hex.Encode(r.ha2hex[:], ha2[:])
	in := append(r.buf[:0], r.ha1...)
	in = append(in, ':')
	in = append(in, r.nonceText...)
	in = append(in, ":00000001:0a4f113b:auth:"...)
	in = append(in, r.ha2hex[:]...)
	resp := md5.Sum(in)
	r.mac.Reset()
	r.mac.Write(r.nonce[:nonceHead+1]) // the nonce's head and an algorithm byte
	return hmac.Equal(r.mac.Sum(r.sum[:0])[:16], r.nonce[nonceHead:]) && resp[0] != 0
}

// BenchmarkVerifyPaired runs Verify and the raw computation of
// BenchmarkVerify side by side (internal/benchpair) and reports the ratio
// of their times. Batches of 512 calls (about half a millisecond) keep
// the cost of switching between the two code paths out of the ratio.
// Target: ratio ≤ 2.
func BenchmarkVerifyPaired(b *testing.B) {
	s := testServer(newClock())
	s.Replay = acceptAll{}
	chs, err := s.Challenges(register(), false)
	if err != nil {
		b.Fatal(err)
	}
	cr, err := Respond(chs[0], RespondOptions{Username: "alice", Password: "s3cret", Method: "REGISTER", URI: "sip:test.local", QOP: "auth", CNonce: "0a4f113b", NC: 1})
	if err != nil {
		b.Fatal(err)
	}
	req := register(cr.String())
	ctx := context.Background()
	raw := newRawVerify(chs[0].Nonce)
	benchpair.Run(b, 512, func() {
		if _, err := s.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}, func() { raw.run() })
}

// BenchmarkRespond measures a client's response computation: MD5 HA1,
// HA2 and response, and the credentials value.
func BenchmarkRespond(b *testing.B) {
	ch := &Challenge{Realm: "test.local", Nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", Opaque: "op4que", Algorithm: MD5, QOP: []string{"auth"}}
	opts := RespondOptions{Username: "alice", Password: "s3cret", Method: "REGISTER", URI: "sip:127.0.0.1:5070", QOP: "auth", CNonce: "6b8b4567", NC: 1}
	b.Run("Respond", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Respond(ch, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		// The three MD5 computations alone, on stack buffers.
		b.ReportAllocs()
		var buf [256]byte
		var ha1, ha2 [32]byte
		for b.Loop() {
			h := md5.Sum(append(buf[:0], "alice:test.local:s3cret"...))
			hex.Encode(ha1[:], h[:])
			h = md5.Sum(append(buf[:0], "REGISTER:sip:127.0.0.1:5070"...))
			hex.Encode(ha2[:], h[:])
			in := append(buf[:0], ha1[:]...)
			in = append(in, ":dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:6b8b4567:auth:"...)
			in = append(in, ha2[:]...)
			_ = md5.Sum(in)
		}
	})
	b.Run("Respond+String", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cr, err := Respond(ch, opts)
			if err != nil {
				b.Fatal(err)
			}
			_ = cr.String()
		}
	})
}

// BenchmarkReplayStore measures MemoryReplayStore.Use on fresh nonces and
// reports the memory each outstanding nonce holds (target <= 128 bytes).
func BenchmarkReplayStore(b *testing.B) {
	now := time.Now()
	exp := now.Add(time.Hour)
	id := func(i int) NonceID {
		var k NonceID
		for j := range 8 {
			k[j] = byte(i >> (8 * j))
		}
		return k
	}
	b.Run("Use", func(b *testing.B) {
		s := &MemoryReplayStore{Start: now}
		ctx := context.Background()
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			// Later nonces expire later, as a server's do.
			if ok, _ := s.Use(ctx, id(i), 1, now, exp.Add(time.Duration(i)*time.Second)); !ok {
				b.Fatal("refused")
			}
			i++
		}
	})
	// Memory per nonce depends on where the map stands between two
	// growths: measured at several counts.
	for _, n := range []int{30_000, 60_000, 100_000} {
		b.Run(fmt.Sprintf("memory/n=%d", n), func(b *testing.B) {
			ids := make([]NonceID, n)
			for i := range ids {
				ids[i] = id(i)
			}
			var perNonce float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s := &MemoryReplayStore{MaxNonces: n, Start: now}
				for _, k := range ids {
					s.Use(context.Background(), k, 1, now, exp)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perNonce = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perNonce, "bytes/nonce")
		})
	}
}
