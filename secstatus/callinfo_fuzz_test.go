package secstatus

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzCallInfo checks, for one or two header values a and b, that
// ParseCallInfo never panics, that its errors are *SyntaxErrors wrapping
// ErrMalformed at an offset inside the header, that two values read as
// they would joined with ", ", and that what parses is written by String
// (and MarshalText) without a control character and parses back to the
// same value. It also formats a CallInfo built from a and b, to check
// that no input makes String write a CR or LF or a header that reads
// differently.
func FuzzCallInfo(f *testing.F) {
	for _, v := range callInfoVectors {
		f.Add(v.value, "")
	}
	f.Add(`<urn:x-cisco-remotecc:callinfo>; security= Encrypted; orientation= to; gci= 1-17041; isVoip; call-instance= 1`, "")
	f.Add(`<sip:10.0.2.52:5060>;method="NOTIFY;Event=telephone-event;Duration=500"`, `<urn:x-cisco-remotecc:callinfo>; security= NotAuthenticated`)
	f.Add(`<urn:x-cisco-remotecc:hold>; reason= conference`, `<urn:x-cisco-remotecc:callinfo>;SECURITY=authenticated;ui-state=RINGOUT;priority=Urgent`)
	f.Add("<urn:x-cisco-remotecc:callinfo>; security= Encrypted\r\nX: y", "a;b=\"c\\\"")
	f.Add(`<urn:x-cisco-remotecc:callinfo>; security= Authenticated`, `<urn:x-cisco-remotecc:callinfo>; security= Encrypted`)

	f.Fuzz(func(t *testing.T, a, b string) {
		// Parse, as one value and as two.
		for _, values := range [][]string{{a}, {a, b}} {
			total := len(strings.Join(values, ", "))
			ci, present, err := ParseCallInfo(values...)
			if err != nil {
				var se *SyntaxError
				if !errors.Is(err, ErrMalformed) || !errors.As(err, &se) {
					t.Fatalf("%q: error %v is not a *SyntaxError wrapping ErrMalformed", values, err)
				}
				if se.Offset < 0 || se.Offset > total {
					t.Fatalf("%q: offset %d outside the header (%d bytes)", values, se.Offset, total)
				}
				continue
			}
			if len(values) == 2 {
				joined, jp, err := ParseCallInfo(a + ", " + b)
				if err != nil || jp != present || !reflect.DeepEqual(joined, ci) {
					t.Fatalf("%q read as %+v, %v; joined as %+v, %v, %v", values, ci, present, joined, jp, err)
				}
			}
			if !present {
				if !reflect.DeepEqual(ci, CallInfo{}) {
					t.Fatalf("%q: no entry but %+v", values, ci)
				}
				continue
			}
			s := ci.String()
			checkWritten(t, s)
			m, err := ci.MarshalText()
			if err != nil || string(m) != s {
				t.Fatalf("%q: MarshalText %q, %v; String %q", values, m, err, s)
			}
			again, present, err := ParseCallInfo(s)
			if err != nil || !present || !reflect.DeepEqual(again, ci) {
				t.Fatalf("%q: %+v written as %q reads as %+v, %v, %v", values, ci, s, again, present, err)
			}
		}

		// Format what a caller might build from untrusted strings.
		ci := CallInfo{
			Security:     Level(len(a) % 6),
			Orientation:  a,
			UIState:      b,
			Priority:     a,
			GCI:          b,
			CallInstance: len(b) - 3,
			Params:       []Param{{a, b}, {b, a}, {a, ""}, {"x", b}},
		}
		s := ci.String()
		checkWritten(t, s)
		again, present, err := ParseCallInfo(s)
		if err != nil || !present {
			t.Fatalf("%+v written as %q does not parse: %v", ci, s, err)
		}
		want := ci.Security
		if !want.Valid() {
			want = Unknown
		}
		if again.Security != want {
			t.Fatalf("%+v written as %q reads security %v", ci, s, again.Security)
		}
		if m, err := ci.MarshalText(); err == nil {
			if string(m) != s {
				t.Fatalf("%+v: MarshalText %q, String %q", ci, m, s)
			}
			for _, p := range ci.Params {
				if strings.ContainsAny(p.Name+p.Value, ";,=<>\"\\ \t\r\n") {
					t.Fatalf("%+v: MarshalText accepted %q", ci, p)
				}
			}
		}
	})
}

// checkWritten fails unless s is a header value with no control character
// and within MaxCallInfoLength.
func checkWritten(t *testing.T, s string) {
	t.Helper()
	if len(s) > MaxCallInfoLength {
		t.Fatalf("wrote %d bytes", len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			t.Fatalf("wrote control character 0x%02x at %d: %q", c, i, s)
		}
	}
}
