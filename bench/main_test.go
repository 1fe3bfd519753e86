package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkVerifyPaired-2   	    1419	   2160587 ns/op	   1111512 base-ns	   1048657 ours-ns	         0.9435 ratio
BenchmarkVerifyPaired-2   	     579	   3574967 ns/op	   1923267 base-ns	   1650717 ours-ns	         0.8583 ratio
BenchmarkVerifyPaired-2   	     600	   3574967 ns/op	   1923267 base-ns	   1650717 ours-ns	         0.9000 ratio
BenchmarkDerive/AES_CM_128_HMAC_SHA1_80/into-2    	  300000	        88.05 ns/op	       0 B/op	       0 allocs/op
BenchmarkReplayStore/memory/n=30000-2         	       1	  23860201 ns/op	       126.8 bytes/nonce
PASS
ok  	github.com/ucsec/ucsec/sgn	2.0s
`)
	res := parseBench(out)
	if got := res.median("BenchmarkVerifyPaired", "ratio"); got != 0.9 {
		t.Errorf("median ratio %v, want 0.9", got)
	}
	if got := res.median("BenchmarkDerive/AES_CM_128_HMAC_SHA1_80/into", "allocs/op"); got != 0 || len(res["BenchmarkDerive/AES_CM_128_HMAC_SHA1_80/into"]["allocs/op"]) != 1 {
		t.Errorf("allocs %v", res["BenchmarkDerive/AES_CM_128_HMAC_SHA1_80/into"])
	}
	if got := res.median("BenchmarkReplayStore/memory/n=30000", "bytes/nonce"); got != 126.8 {
		t.Errorf("bytes/nonce %v", got)
	}
	if len(res) != 3 {
		t.Errorf("%d benchmarks, want 3: %v", len(res), res)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1}, 2}, {[]float64{5, 1, 3}, 3}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"extra"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"-count", "0"}, &out, &errb); code != 2 {
		t.Errorf("-count 0: exit %d", code)
	}
}
