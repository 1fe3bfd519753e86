package testkeys

import (
	"strings"
	"testing"
)

func TestParseOutput(t *testing.T) {
	m := ParseOutput(t, "enc/SEP001122334455.cnf.xml.enc.sgn.parse.txt")
	if m["Version"] != "2.0" || m["Encryption Digest Algorithm"] != "SHA1" {
		t.Fatalf("unexpected fields: %v", m)
	}
}

// FuzzParseOutput: any input gives a map whose keys and values hold no
// line break, without panicking.
func FuzzParseOutput(f *testing.F) {
	f.Add([]byte("Version: 2.0\nHeader Length:  764 bytes\n\nValid signature\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for k, v := range parseOutput(data) {
			if strings.ContainsAny(k+v, "\n") {
				t.Fatalf("line break in %q: %q", k, v)
			}
		}
	})
}
