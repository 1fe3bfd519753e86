package acl

import (
	"errors"
	"strings"
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

// FuzzClassify checks that classification never panics and keeps its
// invariants on arbitrary header values.
func FuzzClassify(f *testing.F) {
	f.Add("REFER", false, "", false, `"a<b>" <sip:1002@h?Replaces=abc>`)
	f.Add("SUBSCRIBE", false, "dialog, presence;id=1", false, "")
	f.Add("NOTIFY", true, "message-summary", true, "")
	f.Fuzz(func(t *testing.T, method string, inDialog bool, event string, replaces bool, referTo string) {
		r := &Request{Method: method, InDialog: inDialog, Event: event, Replaces: replaces, ReferTo: referTo}
		c := Classify(r)
		switch m := strings.ToUpper(method); {
		case m == "ACK" || m == "CANCEL":
			if c != 0 {
				t.Fatalf("%s classified as %v", method, c)
			}
		case replaces && c&Replaces == 0:
			t.Fatal("a Replaces header not classified as Replaces")
		case inDialog && c&(Presence|OutOfDialogRefer|UnsolicitedNotify) != 0:
			t.Fatalf("an in-dialog request classified as %v", c)
		}
	})
}
