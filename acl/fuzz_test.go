package acl

import (
	"errors"
	"testing"
)

// FuzzPattern checks that ParsePattern never panics, that its errors wrap
// ErrPattern, and that Match agrees with a plain backtracking matcher on
// short inputs.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"1XXX", "9.!", "[2-9]XX!", "\\+1!", "!!0", "[^5]", "[2-9]+X"} {
		f.Add(s, "91234")
	}
	f.Fuzz(func(t *testing.T, pattern, number string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			if !errors.Is(err, ErrPattern) {
				t.Fatalf("error %v does not wrap ErrPattern", err)
			}
			return
		}
		got := p.Match(number)
		if len(number) > 12 || len(p.elems) > 12 {
			return // the reference matcher is exponential
		}
		if want := number != "" && backtrack(p.elems, number); got != want {
			t.Fatalf("%q.Match(%q) = %v, want %v", pattern, number, got, want)
		}
	})
}

// backtrack is the obvious recursive matcher, for short inputs only.
func backtrack(elems []patElem, s string) bool {
	if len(elems) == 0 {
		return s == ""
	}
	if s == "" {
		return false
	}
	e := elems[0]
	if e.set&charBit(s[0]) == 0 {
		return false
	}
	if backtrack(elems[1:], s[1:]) {
		return true
	}
	return e.repeat && backtrack(elems, s[1:])
}
