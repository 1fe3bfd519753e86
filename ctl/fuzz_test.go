package ctl

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// FuzzParse checks that Parse never panics, that its errors wrap
// sgn.ErrMalformed, and that a list that parses re-encodes from its fields to
// the same bytes. Verify must not panic either.
func FuzzParse(f *testing.F) {
	f.Add(testkeys.Vector(f, "ITLFile.tlv"))
	f.Add(testkeys.Vector(f, "CTLFile-sha512-v1.1.tlv"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var pe *sgn.ParseError
			if file != nil || !errors.Is(err, sgn.ErrMalformed) || !errors.As(err, &pe) {
				t.Fatalf("bad error %v (file %v)", err, file)
			}
			return
		}
		out, err := file.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("round trip:\n got %x\nwant %x", out, data)
		}
		_ = file.Verify()
	})
}
