package redis_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/stores/redis"
)

// BenchmarkVerify measures digest.Server.Verify (MD5, qop=auth) with
// this store next to MemoryReplayStore, with 64 requests at a time (64
// clients, each with a nonce of its own and counts in order, made before
// the timer starts): ns/op is the time per request of all of them
// together, ops/s its inverse, and p50 and p99 the latency of one
// Verify. Redis runs on the same machine, over TCP on the loopback; the
// store's client is go-redis's default (a pool of 10 connections per
// CPU), and one with a pool of 64.
//
//	go test -run '^$' -bench Verify -benchtime 100000x ./stores/redis
func BenchmarkVerify(b *testing.B) {
	r := dbtest.NewRedis(b, nil)
	store := open(b, r, redis.Options{})
	// go-redis's pool has 10 connections per CPU by default: 20 here,
	// fewer than the requests at a time.
	pool64, err := redis.OpenReplayStore(context.Background(), r.URL()+"?pool_size=64", &redis.Options{ClockSkew: testSkew})
	if err != nil {
		b.Fatal(err)
	}
	defer pool64.Close()
	started(b, store)
	started(b, pool64)
	for _, bc := range []struct {
		name   string
		replay digest.ReplayStore // nil: the Server's own MemoryReplayStore
	}{{"memory", nil}, {"redis", store}, {"redis-pool64", pool64}} {
		b.Run(bc.name, func(b *testing.B) {
			const clients = 64
			srv := newServer(bc.replay)
			reqs := make([][]*digest.Request, clients)
			for c := range clients {
				ch := challenge(b, srv)
				n := b.N / clients
				if c < b.N%clients {
					n++
				}
				for nc := range uint32(n) {
					reqs[c] = append(reqs[c], request(b, ch, nc+1))
				}
			}
			latencies := make([][]time.Duration, clients)
			ctx := context.Background()
			var failed sync.Once
			var wg sync.WaitGroup
			b.ResetTimer()
			begin := time.Now()
			for c := range clients {
				wg.Go(func() {
					lat := make([]time.Duration, 0, len(reqs[c]))
					for _, req := range reqs[c] {
						t0 := time.Now()
						_, err := srv.Verify(ctx, req)
						lat = append(lat, time.Since(t0))
						if err != nil {
							failed.Do(func() { b.Error(err) })
							return
						}
					}
					latencies[c] = lat
				})
			}
			wg.Wait()
			elapsed := time.Since(begin)
			b.StopTimer()
			all := slices.Concat(latencies...)
			if len(all) == 0 {
				return
			}
			slices.Sort(all)
			pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Nanoseconds()) / 1e3 }
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
		})
	}
}
