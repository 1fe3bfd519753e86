package capfwire

import (
	"bytes"
	"errors"
	"testing"
)

// The SUDI_DATA layout the reference client (usecallmanagernz capfc) sends:
// 00 <len> DER | 01 0100 sig | 03 0100 sig (RSA-2048 signatures).
func TestSUDI(t *testing.T) {
	der := bytes.Repeat([]byte{0x30}, 700)
	s1, s5 := bytes.Repeat([]byte{1}, 256), bytes.Repeat([]byte{5}, 256)
	want := append(append(append(hx("00 02bc"), der...), append(hx("01 0100"), s1...)...), append(hx("03 0100"), s5...)...)
	v, err := WrapSUDI(&SUDI{Certificate: der, SHA1: s1, SHA512: s5})
	if err != nil || !bytes.Equal(v, want) {
		t.Fatalf("WrapSUDI: %v\n%x", err, v)
	}
	got, err := UnwrapSUDI(v)
	if err != nil || !bytes.Equal(got.Certificate, der) || !bytes.Equal(got.SHA1, s1) || !bytes.Equal(got.SHA512, s5) {
		t.Fatalf("UnwrapSUDI: %v", err)
	}
	// Without the optional SHA-1 signature, and in another order.
	other := append(hx("03 0002 aabb"), hx("00 0001 30")...)
	if got, err := UnwrapSUDI(other); err != nil || got.SHA1 != nil || !bytes.Equal(got.SHA512, hx("aabb")) {
		t.Fatalf("no SHA-1, reordered: %+v %v", got, err)
	}
	for name, v := range map[string][]byte{
		"empty":            nil,
		"no certificate":   hx("03 0001 aa"),
		"no SHA-512":       hx("00 0001 30 01 0001 aa"),
		"unknown item":     hx("00 0001 30 03 0001 aa 02 0001 aa"),
		"repeated item":    hx("00 0001 30 03 0001 aa 03 0001 bb"),
		"empty item":       hx("00 0000 03 0001 aa"),
		"truncated":        hx("00 0001 30 03 0005 aa"),
		"trailing garbage": hx("00 0001 30 03 0001 aa ff"),
	} {
		if _, err := UnwrapSUDI(v); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := WrapSUDI(&SUDI{Certificate: make([]byte, MaxPayload), SHA512: s5}); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversize: %v", err)
	}
}

// FuzzUnwrapSUDI: no panic; what unwraps wraps back to a value that
// unwraps to the same items.
func FuzzUnwrapSUDI(f *testing.F) {
	f.Add(hx("00 0001 30 01 0001 aa 03 0001 bb"))
	f.Add(hx("03 0002 aabb 00 0001 30"))
	f.Fuzz(func(t *testing.T, v []byte) {
		s, err := UnwrapSUDI(v)
		if err != nil {
			return
		}
		w, err := WrapSUDI(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := UnwrapSUDI(w)
		if err != nil || !bytes.Equal(s.Certificate, s2.Certificate) || !bytes.Equal(s.SHA1, s2.SHA1) || !bytes.Equal(s.SHA512, s2.SHA512) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
