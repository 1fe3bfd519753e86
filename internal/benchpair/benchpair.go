// Package benchpair measures a library path against a baseline in one
// benchmark, so that their ratio holds on a shared, busy machine.
//
// Run alternates batches of the two functions, swapping which goes
// first, and reports the time per call of each and their ratio as
// benchmark metrics. Load, frequency changes and noisy neighbours then
// hit both sides alike, which separate benchmarks run minutes apart
// cannot promise.
package benchpair

import (
	"testing"
	"time"
)

// Run measures ours against base in alternating batches of batch calls
// each (at least 1) and reports the metrics "ours-ns", "base-ns" and
// "ratio" (ours over base). Each iteration of b runs one batch of each, so
// ns/op is the time of a pair of batches.
func Run(b *testing.B, batch int, ours, base func()) {
	b.Helper()
	batch = max(batch, 1)
	timed := func(f func()) time.Duration {
		start := time.Now()
		for range batch {
			f()
		}
		return time.Since(start)
	}
	var tOurs, tBase time.Duration
	odd := false
	for b.Loop() {
		if odd {
			tOurs += timed(ours)
			tBase += timed(base)
		} else {
			tBase += timed(base)
			tOurs += timed(ours)
		}
		odd = !odd
	}
	n := float64(b.N) * float64(batch)
	b.ReportMetric(float64(tOurs.Nanoseconds())/n, "ours-ns")
	b.ReportMetric(float64(tBase.Nanoseconds())/n, "base-ns")
	if tBase > 0 {
		b.ReportMetric(float64(tOurs)/float64(tBase), "ratio")
	}
}
