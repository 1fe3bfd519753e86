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

// Header element tags (formats.md §1.3).
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

// Element is one header element. For a container (0x03, 0x07, 0x09)
// Children holds its elements. For an element this package interprets,
// Value is not used: the value comes from the Header's fields. For any other
// element, Value is its value, kept as it was.
type Element struct {
	Tag      uint8
	Value    []byte
	Children []Element
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

	// Extra lists elements to write after the timestamp when Layout is nil
	// (a new header); Parse leaves it nil and keeps such elements in Layout.
	Extra []Element

	// Padding is the number of 0x0D bytes at the end of the header.
	Padding int

	// Layout is the order and nesting of the elements. Parse sets it;
	// when nil, the Cisco order is used (see DefaultLayout).
	Layout []Element

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

// Extras returns the top-level elements that the header's fields do not
// describe, in file order.
func (h *Header) Extras() []Element {
	if h.Layout == nil {
		return h.Extra
	}
	var out []Element
	for _, e := range h.Layout {
		if !known(e.Tag) {
			out = append(out, e)
		}
	}
	return out
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
func (h *Header) DefaultLayout() []Element {
	l := []Element{{Tag: TagVersion}, {Tag: TagHeaderLength}}
	if h.SignerVersion != nil {
		l = append(l, Element{Tag: TagSignerVersion})
	}
	l = append(l,
		Element{Tag: TagSignerInfo, Children: []Element{{Tag: TagSignerName}, {Tag: TagSerialNumber}, {Tag: TagIssuerName}}},
		Element{Tag: TagSignatureInfo, Children: []Element{
			{Tag: TagHashAlgorithm},
			{Tag: TagSignatureAlgorithmInfo, Children: []Element{{Tag: TagSignatureAlgorithm}, {Tag: TagSignatureModulus}}},
		}},
		Element{Tag: TagSignature},
		Element{Tag: TagFilename},
	)
	if !h.Timestamp.IsZero() {
		l = append(l, Element{Tag: TagTimestamp})
	}
	return append(l, h.Extra...)
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

// size returns the encoded size of the elements in l.
func (h *Header) size(l []Element) (int, error) {
	n := 0
	for _, e := range l {
		var vlen int
		switch {
		case isContainer(e.Tag):
			c, err := h.size(e.Children)
			if err != nil {
				return 0, err
			}
			vlen = c
		case known(e.Tag):
			v, err := h.value(e.Tag, 0)
			if err != nil {
				return 0, err
			}
			vlen = len(v)
		default:
			vlen = len(e.Value)
		}
		if vlen > tlv.MaxLength {
			return 0, fmt.Errorf("signedfile: element 0x%02X is %d bytes, more than 65535", e.Tag, vlen)
		}
		n += 3 + vlen
	}
	return n, nil
}

// Marshal encodes the header with the given layout (h.Layout, or the default
// layout when nil) and h.Padding bytes of padding. It writes the resulting
// size as the header length, and returns the offset of the signature element.
func (h *Header) Marshal() (raw []byte, sigOffset int, err error) {
	layout := h.Layout
	if layout == nil {
		layout = h.DefaultLayout()
	}
	n, err := h.size(layout)
	if err != nil {
		return nil, 0, err
	}
	total := n + h.Padding
	if total > tlv.MaxLength {
		return nil, 0, fmt.Errorf("signedfile: header is %d bytes, more than 65535", total)
	}
	sigOffset = -1
	off := 0
	for _, e := range layout {
		if e.Tag == TagSignature {
			sigOffset = off
		}
		s, _ := h.size([]Element{e})
		off += s
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, total))
	if err := h.build(b, layout, total); err != nil {
		return nil, 0, err
	}
	tlv.AddPadding(b, h.Padding)
	raw, err = b.Bytes()
	if err != nil {
		return nil, 0, fmt.Errorf("signedfile: %w", err)
	}
	return raw, sigOffset, nil
}

func (h *Header) build(b *cryptobyte.Builder, l []Element, total int) error {
	for _, e := range l {
		switch {
		case isContainer(e.Tag):
			var err error
			tlv.AddElement(b, e.Tag, func(c *cryptobyte.Builder) { err = h.build(c, e.Children, total) })
			if err != nil {
				return err
			}
		case known(e.Tag):
			v, err := h.value(e.Tag, total)
			if err != nil {
				return err
			}
			tlv.AddBytes(b, e.Tag, v)
		default:
			tlv.AddBytes(b, e.Tag, e.Value)
		}
	}
	return nil
}
