package tlv

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestReadElement(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		ok   bool
		tag  uint8
		val  []byte
		rest int
	}{
		{"value", []byte{0x04, 0x00, 0x02, 'a', 0, 0xFF}, true, 0x04, []byte{'a', 0}, 1},
		{"empty value", []byte{0x09, 0x00, 0x00}, true, 0x09, []byte{}, 0},
		{"padding", []byte{0x0D, 0x0D}, true, 0x0D, nil, 1},
		{"empty input", nil, false, 0, nil, 0},
		{"no length", []byte{0x04}, false, 0, nil, 1},
		{"short length", []byte{0x04, 0x00}, false, 0, nil, 2},
		{"length past end", []byte{0x04, 0x00, 0x03, 'a', 0}, false, 0, nil, 5},
		{"huge length", []byte{0x04, 0xFF, 0xFF, 1}, false, 0, nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cryptobyte.String(tt.in)
			var tag uint8
			var v cryptobyte.String
			ok := ReadElement(&s, &tag, &v)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if len(s) != tt.rest {
				t.Errorf("left %d bytes, want %d", len(s), tt.rest)
			}
			if !ok {
				return
			}
			if tag != tt.tag || !bytes.Equal(v, tt.val) || (tt.val == nil) != (v == nil) {
				t.Errorf("got tag %#x value %q, want %#x %q", tag, v, tt.tag, tt.val)
			}
		})
	}
}

func TestParseString(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"abc\x00", "abc", true},
		{"\x00", "", true},
		{"", "", false},
		{"abc", "", false},
		{"a\x00b\x00", "", false},
		{"\x00\x00", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseString([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseString(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseInts(t *testing.T) {
	if v, ok := ParseUint8([]byte{7}); !ok || v != 7 {
		t.Error("ParseUint8")
	}
	if v, ok := ParseUint16([]byte{1, 2}); !ok || v != 0x0102 {
		t.Error("ParseUint16")
	}
	if v, ok := ParseUint32([]byte{1, 2, 3, 4}); !ok || v != 0x01020304 {
		t.Error("ParseUint32")
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if _, ok := ParseUint8(b); ok {
			t.Errorf("ParseUint8(%x) accepted", b)
		}
		if _, ok := ParseUint16(b); ok {
			t.Errorf("ParseUint16(%x) accepted", b)
		}
		if _, ok := ParseUint32(b); ok {
			t.Errorf("ParseUint32(%x) accepted", b)
		}
	}
}

func TestBuild(t *testing.T) {
	var b cryptobyte.Builder
	AddString(&b, 0x0E, "f")
	AddUint8(&b, 0x08, 1)
	AddUint16(&b, 0x02, 0x01A8)
	AddUint32(&b, 0x0F, 0x6B072E71)
	AddBytes(&b, 0x05, []byte{0xAB})
	AddElement(&b, 0x09, func(c *cryptobyte.Builder) { AddUint8(c, 0x0A, 0) })
	AddPadding(&b, 2)
	got, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x0E, 0, 2, 'f', 0,
		0x08, 0, 1, 1,
		0x02, 0, 2, 0x01, 0xA8,
		0x0F, 0, 4, 0x6B, 0x07, 0x2E, 0x71,
		0x05, 0, 1, 0xAB,
		0x09, 0, 4, 0x0A, 0, 1, 0,
		0x0D, 0x0D,
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := map[string]func(b *cryptobyte.Builder){
		"string with NUL": func(b *cryptobyte.Builder) { AddString(b, 4, "a\x00b") },
		"string too long": func(b *cryptobyte.Builder) { AddString(b, 4, strings.Repeat("a", MaxLength)) },
		"bytes too long":  func(b *cryptobyte.Builder) { AddBytes(b, 4, make([]byte, MaxLength+1)) },
		"container too long": func(b *cryptobyte.Builder) {
			AddElement(b, 3, func(c *cryptobyte.Builder) { c.AddBytes(make([]byte, MaxLength+1)) })
		},
		"nested too long": func(b *cryptobyte.Builder) {
			AddElement(b, 3, func(c *cryptobyte.Builder) {
				AddBytes(c, 4, make([]byte, MaxLength-3))
				AddBytes(c, 5, []byte{1})
			})
		},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			var b cryptobyte.Builder
			f(&b)
			if out, err := b.Bytes(); err == nil {
				t.Fatalf("no error; built %d bytes", len(out))
			}
		})
	}
	// The largest value that fits is fine.
	var b cryptobyte.Builder
	AddBytes(&b, 4, make([]byte, MaxLength))
	if out, err := b.Bytes(); err != nil || len(out) != MaxLength+3 {
		t.Fatalf("max length: %d bytes, %v", len(out), err)
	}
}

// FuzzReadElement checks that reading never panics and that re-encoding what
// was read gives back the bytes consumed.
func FuzzReadElement(f *testing.F) {
	f.Add([]byte{0x04, 0x00, 0x02, 'a', 0, 0x0D, 0x0D})
	f.Add([]byte{0x0D})
	f.Add([]byte{0x01, 0x00, 0x02, 1, 2, 0x02, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := cryptobyte.String(data)
		var b cryptobyte.Builder
		for {
			var tag uint8
			var v cryptobyte.String
			before := len(s)
			if !ReadElement(&s, &tag, &v) {
				if len(s) != before {
					t.Fatal("failed read consumed input")
				}
				break
			}
			if tag == TagPadding {
				AddPadding(&b, 1)
			} else {
				AddBytes(&b, tag, v)
			}
		}
		out, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if consumed := data[:len(data)-len(s)]; !bytes.Equal(out, consumed) {
			t.Fatalf("round trip: got %x, want %x", out, consumed)
		}
	})
}

func TestReadPlainElement(t *testing.T) {
	// 0x0D is an ordinary tag here (CAPF DEVICE_NAME), not padding.
	s := cryptobyte.String([]byte{0x0D, 0x00, 0x02, 'h', 'i', 0x01})
	var tag uint8
	var v cryptobyte.String
	if !ReadPlainElement(&s, &tag, &v) || tag != 0x0D || string(v) != "hi" || cap(v) != 2 {
		t.Fatalf("got tag %#x value %q cap %d", tag, v, cap(v))
	}
	rest := s
	if ReadPlainElement(&s, &tag, &v) || len(s) != len(rest) {
		t.Fatal("a truncated element was read or consumed input")
	}
	// ReadElement keeps the padding rule.
	p := cryptobyte.String([]byte{0x0D, 0x00, 0x02, 'h', 'i'})
	if !ReadElement(&p, &tag, &v) || tag != TagPadding || v != nil || len(p) != 4 {
		t.Fatal("ReadElement lost its padding rule")
	}
}
