package sgn

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ucsec/ucsec/internal/testkeys"
)

// FuzzParse checks that Parse never panics, that its errors wrap
// ErrMalformed, and that a file that parses re-encodes from its fields to
// the same bytes.
func FuzzParse(f *testing.F) {
	for _, name := range vectors {
		f.Add(testkeys.Vector(f, name))
	}
	f.Add(testkeys.Vector(f, "enc/SEP001122334455.cnf.xml.enc.sgn"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if file != nil || !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) {
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
		if stripped, err := Strip(data); err != nil || !bytes.Equal(stripped, file.Payload) {
			t.Fatalf("Strip disagrees with Parse: %v", err)
		}
	})
}
