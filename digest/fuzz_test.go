package digest

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	`Digest realm="test.local", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="op4que", algorithm=MD5, qop="auth"`,
	`Digest username="alice",realm="test.local",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:5070",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",response="cd98f89d1a9e2a523a6f2b32860d1dc6",algorithm=MD5,opaque="op4que"`,
	`Basic realm="x", Digest realm="a\"b", nonce="n", stale=TRUE, userhash=true, charset=UTF-8, x=y`,
	`Bearer abc==, Digest realm="r", nonce="n", algorithm="SHA-512-256-sess", qop="auth,auth-int"`,
}

// FuzzParseChallenges checks that the parser never panics, that its errors
// wrap ErrMalformed, and that parse -> String -> parse is stable.
func FuzzParseChallenges(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		chs, err := ParseChallenges(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, ch := range chs {
			again, err := ParseChallenges(ch.String())
			if err != nil || len(again) != 1 || !reflect.DeepEqual(again[0], ch) {
				t.Fatalf("round trip of %q: %q -> %+v, %v", h, ch.String(), again, err)
			}
		}
	})
}

// FuzzParseCredentials is FuzzParseChallenges for credentials; it also
// checks that the fast path for canonical credentials reads what it
// accepts as the general parser does.
func FuzzParseCredentials(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		// What the fast path for canonical credentials accepts, the
		// general parser reads the same.
		var fast Credentials
		if parseCanonicalCredentials(&fast, h) {
			var any Credentials
			if err := parseAnyCredentials(&any, h); err != nil || !reflect.DeepEqual(fast, any) {
				t.Fatalf("%q: fast path %+v, general parser %+v, %v", h, fast, any, err)
			}
		}
		c, err := ParseCredentials(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := ParseCredentials(c.String())
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip of %q: %q -> %+v, %v", h, c.String(), again, err)
		}
	})
}

// FuzzCheckNonce checks that reading a nonce never panics and that only the
// server's own nonces, unaltered, are accepted.
func FuzzCheckNonce(f *testing.F) {
	c := newClock()
	s := testServer(c)
	// Each fuzzing process runs this again: its nonces must be the same.
	s.Rand = strings.NewReader(strings.Repeat("not random ", 100))
	chs, err := s.Challenges(register(), false)
	if err != nil {
		f.Fatal(err)
	}
	c.Add(time.Second)
	own := map[string]bool{chs[0].Nonce: true}
	for n := range own {
		f.Add(n)
		f.Add(n[:len(n)-1] + "B")
	}
	f.Add("")
	f.Add(strings.Repeat("A", nonceText))
	f.Fuzz(func(t *testing.T, nonce string) {
		_, issued, expires, ok := s.checkNonce(nonce, MD5, netip.Addr{})
		if ok != own[nonce] {
			t.Fatalf("checkNonce(%q) = %v", nonce, ok)
		}
		if ok && !expires.Equal(issued.Add(DefaultNonceValidity)) {
			t.Fatalf("nonce %q issued %v expires %v", nonce, issued, expires)
		}
	})
}
