// Package tlv reads and writes the elements of Cisco signed files and trust
// lists: a 1-byte tag, a 2-byte big-endian length, then that many value bytes.
//
// Tag 0x0D ([TagPadding]) is the exception: a single byte with no length and
// no value. Text values end in exactly one NUL byte, which the length counts.
//
// The package is a thin layer over golang.org/x/crypto/cryptobyte. Readers
// never read partially and never allocate from a length field; writers report
// a value longer than 65535 bytes (or a string holding a NUL) as an error from
// [cryptobyte.Builder.Bytes], never truncate it.
package tlv

import (
	"bytes"
	"errors"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// TagPadding is the lone padding byte: no length, no value.
const TagPadding = 0x0D

// MaxLength is the largest value a 2-byte length can describe.
const MaxLength = 0xFFFF

var (
	errStringNUL = errors.New("tlv: string contains a NUL byte")
	errTooLong   = errors.New("tlv: value longer than 65535 bytes")
)

// ReadElement reads one element from s into tag and val and reports whether
// it succeeded. For [TagPadding] val is set to nil. On failure s is left
// unchanged. val aliases s.
func ReadElement(s *cryptobyte.String, tag *uint8, val *cryptobyte.String) bool {
	if b := *s; len(b) > 0 && b[0] == TagPadding {
		*tag, *val, *s = TagPadding, nil, b[1:]
		return true
	}
	return ReadPlainElement(s, tag, val)
}

// ReadPlainElement is ReadElement without the padding rule: every tag,
// 0x0D included, has a length and a value. It is the element layout of the
// CAPF and TVS protocols. On failure s is left unchanged. val aliases s,
// with its capacity capped at its length, so appending to it cannot
// overwrite what follows.
func ReadPlainElement(s *cryptobyte.String, tag *uint8, val *cryptobyte.String) bool {
	// The hot path of every parser: plain indexing is several times faster
	// than cryptobyte's generic length-prefix reader, with the same checks.
	b := *s
	if len(b) < 3 {
		return false
	}
	end := 3 + (int(b[1])<<8 | int(b[2]))
	if len(b) < end {
		return false
	}
	*tag, *val, *s = b[0], b[3:end:end], b[end:]
	return true
}

// ParseString decodes a NUL-terminated text value: it must end in a NUL and
// hold no other. The empty string is encoded as a single NUL.
func ParseString(v []byte) (string, bool) {
	t, ok := ParseText(v)
	return string(t), ok
}

// ParseText is ParseString without the conversion: it returns the text
// bytes of v, without the NUL, aliasing v.
func ParseText(v []byte) ([]byte, bool) {
	n := len(v)
	if n == 0 || v[n-1] != 0 || bytes.IndexByte(v[:n-1], 0) >= 0 {
		return nil, false
	}
	return v[:n-1], true
}

// ParseUint8 decodes a 1-byte value.
func ParseUint8(v []byte) (uint8, bool) {
	if len(v) != 1 {
		return 0, false
	}
	return v[0], true
}

// ParseUint16 decodes a 2-byte big-endian value.
func ParseUint16(v []byte) (uint16, bool) {
	if len(v) != 2 {
		return 0, false
	}
	return uint16(v[0])<<8 | uint16(v[1]), true
}

// ParseUint32 decodes a 4-byte big-endian value.
func ParseUint32(v []byte) (uint32, bool) {
	if len(v) != 4 {
		return 0, false
	}
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]), true
}

// AddElement appends tag and a 2-byte length around what f writes.
func AddElement(b *cryptobyte.Builder, tag uint8, f cryptobyte.BuilderContinuation) {
	b.AddUint8(tag)
	b.AddUint16LengthPrefixed(f)
}

// AddBytes appends an element holding v. A v longer than [MaxLength] makes
// the builder fail.
func AddBytes(b *cryptobyte.Builder, tag uint8, v []byte) {
	if len(v) > MaxLength {
		b.SetError(errTooLong)
		return
	}
	AddElement(b, tag, func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

// AddString appends an element holding s and a terminating NUL. A string
// that itself holds a NUL makes the builder fail.
func AddString(b *cryptobyte.Builder, tag uint8, s string) {
	if strings.IndexByte(s, 0) >= 0 {
		b.SetError(errStringNUL)
		return
	}
	if len(s)+1 > MaxLength {
		b.SetError(errTooLong)
		return
	}
	AddElement(b, tag, func(b *cryptobyte.Builder) {
		b.AddBytes([]byte(s))
		b.AddUint8(0)
	})
}

// AddUint8 appends an element holding a 1-byte value.
func AddUint8(b *cryptobyte.Builder, tag uint8, v uint8) {
	AddElement(b, tag, func(b *cryptobyte.Builder) { b.AddUint8(v) })
}

// AddUint16 appends an element holding a 2-byte big-endian value.
func AddUint16(b *cryptobyte.Builder, tag uint8, v uint16) {
	AddElement(b, tag, func(b *cryptobyte.Builder) { b.AddUint16(v) })
}

// AddUint32 appends an element holding a 4-byte big-endian value.
func AddUint32(b *cryptobyte.Builder, tag uint8, v uint32) {
	AddElement(b, tag, func(b *cryptobyte.Builder) { b.AddUint32(v) })
}

// AddPadding appends n padding bytes.
func AddPadding(b *cryptobyte.Builder, n int) {
	for range n {
		b.AddUint8(TagPadding)
	}
}
