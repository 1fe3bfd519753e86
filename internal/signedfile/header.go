// Package signedfile reads, writes, signs and verifies the signed-file header
// that Cisco trust lists (.tlv), signed files (.sgn, .sbn, .loads) and
// encrypted configuration files (.enc.sgn) share.
//
// A header is a run of tag/length/value elements (see package tlv): version,
// header length, signer info, signature info, the RSA signature, the file
// name, an optional timestamp and optional other elements, padded with 0x0D
// bytes so that the header length, which is the offset of the payload, is a
// multiple of 4. The signed bytes are the whole file without the signature
// element.
//
// A parsed [Header] keeps its element layout (order, nesting, elements this
// package does not interpret, padding), so encoding a parsed header gives back
// the bytes it was parsed from.
package signedfile

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/ucsec/ucsec/internal/tlv"
	"golang.org/x/crypto/cryptobyte"
)

// Header element tags: the tag byte of each element of the header.
const (
	TagVersion                = 0x01
	TagHeaderLength           = 0x02
	TagSignerInfo             = 0x03
	TagSignerName             = 0x04
	TagSerialNumber           = 0x05
	TagIssuerName             = 0x06
	TagSignatureInfo          = 0x07
	TagHashAlgorithm          = 0x08
	TagSignatureAlgorithmInfo = 0x09
	TagSignatureAlgorithm     = 0x0A
	TagSignatureModulus       = 0x0B
	TagSignature              = 0x0C
	TagFilename               = 0x0E
	TagTimestamp              = 0x0F
	TagSignerVersion          = 0x1C
)

// Hash algorithm codes (element 0x08, and 0x1A in encrypted files).
const (
	HashSHA1   = 1
	HashSHA256 = 2
	HashSHA512 = 3
)

// SignatureRSA is the only signature algorithm code in use: RSA PKCS#1 v1.5.
const SignatureRSA = 0

// maxElements bounds the number of elements a header may hold, so that the
// memory a parse uses stays proportional to the input. Real headers hold
// fewer than 30.
const maxElements = 128

// maxDepth bounds container nesting: 0x07 holds 0x09, which holds elements.
const maxDepth = 3

// sigSizes maps the signature modulus code to the signature length in bytes.
var sigSizes = [...]int{64, 128, 256, 512}

// Errors. Public packages map them to their own sentinels.
var (
	ErrMalformed    = errors.New("signedfile: malformed header")
	ErrVerification = errors.New("signedfile: signature verification failed")
	ErrUnsupported  = errors.New("signedfile: unsupported algorithm")
	ErrSigner       = errors.New("signedfile: certificate is not the signer named in the header")
)

// ParseError locates a malformed header. It unwraps to [ErrMalformed].
type ParseError struct {
	Offset int    // byte offset in the file of the element at fault
	Tag    uint8  // its tag, or 0 when no tag could be read
	Msg    string // what is wrong
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("signedfile: malformed file at offset %d (tag 0x%02X): %s", e.Offset, e.Tag, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Element is a header element that the Header's fields do not describe,
// kept as it was.
type Element struct {
	Tag   uint8
	Value []byte
}

// Slot is one element of a header's layout: its tag and, for a container
// (0x03, 0x07, 0x09), how many elements it holds directly. The layout lists
// elements in file order, each container followed by its contents. The
// values come from the Header's fields, or from Extra for the elements the
// fields do not describe, in order.
type Slot struct {
	Tag      uint8
	Children uint8
}

// Header is a signed-file header.
type Header struct {
	Version            [2]uint8 // major, minor
	SignerName         string   // subject of the signing certificate, as a DN string
	IssuerName         string   // issuer of the signing certificate, as a DN string
	SerialNumber       []byte   // serial of the signing certificate, big-endian, as stored
	HashCode           uint8    // HashSHA1, HashSHA256 or HashSHA512
	SignatureAlgorithm uint8    // SignatureRSA
	ModulusCode        uint8    // index of len(Signature) in 64, 128, 256, 512
	Signature          []byte
	Filename           string
	Timestamp          time.Time // zero when absent
	SignerVersion      *[2]uint8 // element 0x1C, nil when absent

	// Extra lists the elements the fields above do not describe, in file
	// order: those Parse found, or those to write after the timestamp in a
	// new header (one with no Layout).
	Extra []Element

	// Padding is the number of 0x0D bytes at the end of the header.
	Padding int

	// Layout is the order and nesting of the elements. Parse sets it;
	// when nil, the Cisco order is used (see DefaultLayout).
	Layout []Slot

	// Set by Parse.
	Length    int    // HEADER_LENGTH: the offset of the payload
	Raw       []byte // the header bytes, Raw[:Length] of the file
	TBS       []byte // Raw without the signature element (a copy)
	SigOffset int    // offset of the signature element's tag in Raw
}

// Hash returns the hash function the header names, or 0 if the code is unknown.
func (h *Header) Hash() crypto.Hash { return HashFromCode(h.HashCode) }

// HashFromCode maps a hash code to a crypto.Hash, or 0 if it is unknown.
func HashFromCode(code uint8) crypto.Hash {
	switch code {
	case HashSHA1:
		return crypto.SHA1
	case HashSHA256:
		return crypto.SHA256
	case HashSHA512:
		return crypto.SHA512
	}
	return 0
}

// HashCode maps a crypto.Hash to its header code.
func HashCode(h crypto.Hash) (uint8, bool) {
	switch h {
	case crypto.SHA1:
		return HashSHA1, true
	case crypto.SHA256:
		return HashSHA256, true
	case crypto.SHA512:
		return HashSHA512, true
	}
	return 0, false
}

func known(tag uint8) bool {
	switch tag {
	case TagVersion, TagHeaderLength, TagSignerInfo, TagSignerName, TagSerialNumber,
		TagIssuerName, TagSignatureInfo, TagHashAlgorithm, TagSignatureAlgorithmInfo,
		TagSignatureAlgorithm, TagSignatureModulus, TagSignature, TagFilename,
		TagTimestamp, TagSignerVersion:
		return true
	}
	return false
}

func isContainer(tag uint8) bool {
	return tag == TagSignerInfo || tag == TagSignatureInfo || tag == TagSignatureAlgorithmInfo
}

// DefaultLayout is the element order Cisco writes: version, header length,
// [signer version], signer info (name, serial, issuer), signature info (hash,
// algorithm info (algorithm, modulus)), signature, file name, [timestamp],
// then the extra elements.
func (h *Header) DefaultLayout() []Slot {
	l := make([]Slot, 0, 16+len(h.Extra))
	l = append(l, Slot{Tag: TagVersion}, Slot{Tag: TagHeaderLength})
	if h.SignerVersion != nil {
		l = append(l, Slot{Tag: TagSignerVersion})
	}
	l = append(l,
		Slot{TagSignerInfo, 3}, Slot{Tag: TagSignerName}, Slot{Tag: TagSerialNumber}, Slot{Tag: TagIssuerName},
		Slot{TagSignatureInfo, 2}, Slot{Tag: TagHashAlgorithm},
		Slot{TagSignatureAlgorithmInfo, 2}, Slot{Tag: TagSignatureAlgorithm}, Slot{Tag: TagSignatureModulus},
		Slot{Tag: TagSignature},
		Slot{Tag: TagFilename},
	)
	if !h.Timestamp.IsZero() {
		l = append(l, Slot{Tag: TagTimestamp})
	}
	for _, e := range h.Extra {
		l = append(l, Slot{Tag: e.Tag})
	}
	return l
}

// value returns the encoded value of a known primitive element.
func (h *Header) value(tag uint8, headerLength int) ([]byte, error) {
	switch tag {
	case TagVersion:
		return h.Version[:], nil
	case TagHeaderLength:
		return []byte{byte(headerLength >> 8), byte(headerLength)}, nil
	case TagSignerName:
		return cstring(h.SignerName)
	case TagSerialNumber:
		return h.SerialNumber, nil
	case TagIssuerName:
		return cstring(h.IssuerName)
	case TagHashAlgorithm:
		return []byte{h.HashCode}, nil
	case TagSignatureAlgorithm:
		return []byte{h.SignatureAlgorithm}, nil
	case TagSignatureModulus:
		return []byte{h.ModulusCode}, nil
	case TagSignature:
		return h.Signature, nil
	case TagFilename:
		return cstring(h.Filename)
	case TagTimestamp:
		u := h.Timestamp.Unix()
		if u < 0 || u > 0xFFFFFFFF {
			return nil, fmt.Errorf("signedfile: timestamp %v does not fit in 32-bit Unix seconds", h.Timestamp)
		}
		return []byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}, nil
	case TagSignerVersion:
		if h.SignerVersion == nil {
			return nil, errors.New("signedfile: layout names a signer version but none is set")
		}
		return h.SignerVersion[:], nil
	}
	return nil, fmt.Errorf("signedfile: no field for tag 0x%02X", tag)
}

func cstring(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, errors.New("signedfile: text value contains a NUL byte")
		}
	}
	return append([]byte(s), 0), nil
}

// layoutWalker walks a layout, taking the values of unknown elements from
// Extra in order.
type layoutWalker struct {
	h     *Header
	slots []Slot
	i     int // next slot
	extra int // next element of h.Extra
	total int // the header length to write
}

// value returns the value of the element in slot s (not a container).
func (w *layoutWalker) value(s Slot) ([]byte, error) {
	if s.Children != 0 {
		return nil, fmt.Errorf("signedfile: layout gives element 0x%02X contents, but it is not a container", s.Tag)
	}
	if known(s.Tag) {
		return w.h.value(s.Tag, w.total)
	}
	if w.extra >= len(w.h.Extra) || w.h.Extra[w.extra].Tag != s.Tag {
		return nil, fmt.Errorf("signedfile: layout names element 0x%02X that Extra does not hold", s.Tag)
	}
	w.extra++
	return w.h.Extra[w.extra-1].Value, nil
}

// size returns the encoded size of the next element and its contents.
func (w *layoutWalker) size() (int, error) {
	if w.i >= len(w.slots) {
		return 0, errors.New("signedfile: layout ends inside a container")
	}
	s := w.slots[w.i]
	w.i++
	vlen := 0
	if isContainer(s.Tag) {
		for range s.Children {
			n, err := w.size()
			if err != nil {
				return 0, err
			}
			vlen += n
		}
	} else {
		v, err := w.value(s)
		if err != nil {
			return 0, err
		}
		vlen = len(v)
	}
	if vlen > tlv.MaxLength {
		return 0, fmt.Errorf("signedfile: element 0x%02X is %d bytes, more than 65535", s.Tag, vlen)
	}
	return 3 + vlen, nil
}

// build writes the next element and its contents.
func (w *layoutWalker) build(b *cryptobyte.Builder) error {
	s := w.slots[w.i] // size has checked the layout
	w.i++
	if !isContainer(s.Tag) {
		v, err := w.value(s)
		tlv.AddBytes(b, s.Tag, v)
		return err
	}
	var err error
	tlv.AddElement(b, s.Tag, func(c *cryptobyte.Builder) {
		for range s.Children {
			if err == nil {
				err = w.build(c)
			}
		}
	})
	return err
}

// Marshal encodes the header with its layout (h.Layout, or the default
// layout when nil) and h.Padding bytes of padding. It writes the resulting
// size as the header length, and returns the offset of the signature element.
func (h *Header) Marshal() (raw []byte, sigOffset int, err error) {
	layout := h.Layout
	if layout == nil {
		layout = h.DefaultLayout()
	}
	w := &layoutWalker{h: h, slots: layout}
	n, sigOffset := 0, -1
	for w.i < len(layout) {
		if layout[w.i].Tag == TagSignature {
			sigOffset = n
		}
		size, err := w.size()
		if err != nil {
			return nil, 0, err
		}
		n += size
	}
	if w.extra != len(h.Extra) {
		return nil, 0, errors.New("signedfile: layout leaves out extra elements")
	}
	total := n + h.Padding
	if total > tlv.MaxLength {
		return nil, 0, fmt.Errorf("signedfile: header is %d bytes, more than 65535", total)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, total))
	w = &layoutWalker{h: h, slots: layout, total: total}
	for w.i < len(layout) {
		if err := w.build(b); err != nil {
			return nil, 0, err
		}
	}
	tlv.AddPadding(b, h.Padding)
	raw, err = b.Bytes()
	if err != nil {
		return nil, 0, fmt.Errorf("signedfile: %w", err)
	}
	return raw, sigOffset, nil
}
