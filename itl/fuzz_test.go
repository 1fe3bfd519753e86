package itl

import (
	"errors"
	"testing"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// FuzzParse checks that Parse and Verify never panic and that Parse's
// errors wrap sgn.ErrMalformed or, for an oversize file, ctl.ErrPolicy.
func FuzzParse(f *testing.F) {
	f.Add(testkeys.Vector(f, "ITLFile.tlv"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if file != nil || !(errors.Is(err, sgn.ErrMalformed) || errors.Is(err, ctl.ErrPolicy)) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		_ = Verify(file)
	})
}
