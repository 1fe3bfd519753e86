package main

import "fmt"

// Each row comes from the metrics of go test -bench: the report reads the
// result lines of several runs and takes the median of each metric.
func Example_parseBench() {
	out := []byte(`BenchmarkVerifyPaired-2   1000   1200 ns/op   611 base-ns   1170 ours-ns   1.915 ratio
BenchmarkVerifyPaired-2   1000   1190 ns/op   604 base-ns   1150 ours-ns   1.904 ratio
BenchmarkVerifyPaired-2   1000   1230 ns/op   598 base-ns   1180 ours-ns   1.973 ratio
PASS
`)
	res := parseBench(out)
	ratio := res.median("BenchmarkVerifyPaired", "ratio")
	fmt.Printf("ours %s, baseline %s, ratio %.3f×, goal ≤ 2×: %s\n",
		duration(res.median("BenchmarkVerifyPaired", "ours-ns")), duration(res.median("BenchmarkVerifyPaired", "base-ns")),
		ratio, verdict(ratio <= 2))
	// Output:
	// ours 1.17 µs, baseline 604 ns, ratio 1.915×, goal ≤ 2×: ✓
}
