// The codec of the signed-file header: parsing, encoding, signing and
// verifying it. [Header] is its public face.
//
// A header is a run of tag/length/value elements (see package tlv): version,
// header length, signer info, signature info, the RSA signature, the file
// name, an optional timestamp and optional other elements, padded with 0x0D
// bytes so that the header length, which is the offset of the payload, is a
// multiple of 4. The signed bytes are the whole file without the signature
// element.
//
// A parsed rawHeader keeps its element layout (order, nesting, elements
// this package does not interpret, padding), so encoding a parsed header
// gives back the bytes it was parsed from.

package sgn

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/tlv"
)

// Header element tags: the tag byte of each element of the header.
const (
	tagVersion                = 0x01
	tagHeaderLength           = 0x02
	tagSignerInfo             = 0x03
	tagSignerName             = 0x04
	tagSerialNumber           = 0x05
	tagIssuerName             = 0x06
	tagSignatureInfo          = 0x07
	tagHashAlgorithm          = 0x08
	tagSignatureAlgorithmInfo = 0x09
	tagSignatureAlgorithm     = 0x0A
	tagSignatureModulus       = 0x0B
	tagSignature              = 0x0C
	tagFilename               = 0x0E
	tagTimestamp              = 0x0F
	tagSignerVersion          = 0x1C
)

// signatureRSA is the only signature algorithm code in use: RSA PKCS#1 v1.5.
const signatureRSA = 0

// maxElements bounds the number of elements a header may hold, so that the
// memory a parse uses stays proportional to the input. Real headers hold
// fewer than 30.
const maxElements = 128

// maxDepth bounds container nesting: 0x07 holds 0x09, which holds elements.
const maxDepth = 3

// sigSizes maps the signature modulus code to the signature length in bytes.
var sigSizes = [...]int{64, 128, 256, 512}

// layoutSlot is one element of a header's layout: its tag and, for a container
// (0x03, 0x07, 0x09), how many elements it holds directly. The layout lists
// elements in file order, each container followed by its contents. The
// values come from the rawHeader's fields, or from Extra for the elements the
// fields do not describe, in order.
type layoutSlot struct {
	Tag      uint8
	Children uint8
}

// rawHeader is a signed-file header as the codec sees it: every element,
// its layout and padding.
type rawHeader struct {
	Version            [2]uint8 // major, minor
	SignerName         string   // subject of the signing certificate, as a DN string
	IssuerName         string   // issuer of the signing certificate, as a DN string
	SerialNumber       []byte   // serial of the signing certificate, big-endian, as stored
	HashCode           uint8    // signedfile.HashSHA1, signedfile.HashSHA256 or signedfile.HashSHA512
	SignatureAlgorithm uint8    // signatureRSA
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
	// when nil, the Cisco order is used (see defaultLayout).
	Layout []layoutSlot

	// Set by Parse.
	Length    int    // HEADER_LENGTH: the offset of the payload
	Raw       []byte // the header bytes, Raw[:Length] of the file
	TBS       []byte // Raw without the signature element (a copy)
	SigOffset int    // offset of the signature element's tag in Raw
}

// hash returns the hash function the header names, or 0 if the code is unknown.
func (h *rawHeader) hash() crypto.Hash { return signedfile.HashFromCode(h.HashCode) }

func known(tag uint8) bool {
	switch tag {
	case tagVersion, tagHeaderLength, tagSignerInfo, tagSignerName, tagSerialNumber,
		tagIssuerName, tagSignatureInfo, tagHashAlgorithm, tagSignatureAlgorithmInfo,
		tagSignatureAlgorithm, tagSignatureModulus, tagSignature, tagFilename,
		tagTimestamp, tagSignerVersion:
		return true
	}
	return false
}

func isContainer(tag uint8) bool {
	return tag == tagSignerInfo || tag == tagSignatureInfo || tag == tagSignatureAlgorithmInfo
}

// defaultLayout is the element order Cisco writes: version, header length,
// [signer version], signer info (name, serial, issuer), signature info (hash,
// algorithm info (algorithm, modulus)), signature, file name, [timestamp],
// then the extra elements.
func (h *rawHeader) defaultLayout() []layoutSlot {
	l := make([]layoutSlot, 0, 16+len(h.Extra))
	l = append(l, layoutSlot{Tag: tagVersion}, layoutSlot{Tag: tagHeaderLength})
	if h.SignerVersion != nil {
		l = append(l, layoutSlot{Tag: tagSignerVersion})
	}
	l = append(l,
		layoutSlot{tagSignerInfo, 3}, layoutSlot{Tag: tagSignerName}, layoutSlot{Tag: tagSerialNumber}, layoutSlot{Tag: tagIssuerName},
		layoutSlot{tagSignatureInfo, 2}, layoutSlot{Tag: tagHashAlgorithm},
		layoutSlot{tagSignatureAlgorithmInfo, 2}, layoutSlot{Tag: tagSignatureAlgorithm}, layoutSlot{Tag: tagSignatureModulus},
		layoutSlot{Tag: tagSignature},
		layoutSlot{Tag: tagFilename},
	)
	if !h.Timestamp.IsZero() {
		l = append(l, layoutSlot{Tag: tagTimestamp})
	}
	for _, e := range h.Extra {
		l = append(l, layoutSlot{Tag: e.Tag})
	}
	return l
}

// value returns the encoded value of a known primitive element.
func (h *rawHeader) value(tag uint8, headerLength int) ([]byte, error) {
	switch tag {
	case tagVersion:
		return h.Version[:], nil
	case tagHeaderLength:
		return []byte{byte(headerLength >> 8), byte(headerLength)}, nil
	case tagSignerName:
		return cstring(h.SignerName)
	case tagSerialNumber:
		return h.SerialNumber, nil
	case tagIssuerName:
		return cstring(h.IssuerName)
	case tagHashAlgorithm:
		return []byte{h.HashCode}, nil
	case tagSignatureAlgorithm:
		return []byte{h.SignatureAlgorithm}, nil
	case tagSignatureModulus:
		return []byte{h.ModulusCode}, nil
	case tagSignature:
		return h.Signature, nil
	case tagFilename:
		return cstring(h.Filename)
	case tagTimestamp:
		u := h.Timestamp.Unix()
		if u < 0 || u > 0xFFFFFFFF {
			return nil, fmt.Errorf("sgn: timestamp %v does not fit in 32-bit Unix seconds", h.Timestamp)
		}
		return []byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}, nil
	case tagSignerVersion:
		if h.SignerVersion == nil {
			return nil, errors.New("sgn: layout names a signer version but none is set")
		}
		return h.SignerVersion[:], nil
	}
	return nil, fmt.Errorf("sgn: no field for tag 0x%02X", tag)
}

func cstring(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, errors.New("sgn: text value contains a NUL byte")
		}
	}
	return append([]byte(s), 0), nil
}

// layoutWalker walks a layout, taking the values of unknown elements from
// Extra in order.
type layoutWalker struct {
	h     *rawHeader
	slots []layoutSlot
	i     int // next layoutSlot
	extra int // next element of h.Extra
	total int // the header length to write
}

// value returns the value of the element in layoutSlot s (not a container).
func (w *layoutWalker) value(s layoutSlot) ([]byte, error) {
	if s.Children != 0 {
		return nil, fmt.Errorf("sgn: layout gives element 0x%02X contents, but it is not a container", s.Tag)
	}
	if known(s.Tag) {
		return w.h.value(s.Tag, w.total)
	}
	if w.extra >= len(w.h.Extra) || w.h.Extra[w.extra].Tag != s.Tag {
		return nil, fmt.Errorf("sgn: layout names element 0x%02X that Extra does not hold", s.Tag)
	}
	w.extra++
	return w.h.Extra[w.extra-1].Value, nil
}

// size returns the encoded size of the next element and its contents.
func (w *layoutWalker) size() (int, error) {
	if w.i >= len(w.slots) {
		return 0, errors.New("sgn: layout ends inside a container")
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
		return 0, fmt.Errorf("sgn: element 0x%02X is %d bytes, more than 65535", s.Tag, vlen)
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

// marshal encodes the header with its layout (h.Layout, or the default
// layout when nil) and h.Padding bytes of padding. It writes the resulting
// size as the header length, and returns the offset of the signature element.
func (h *rawHeader) marshal() (raw []byte, sigOffset int, err error) {
	layout := h.Layout
	if layout == nil {
		layout = h.defaultLayout()
	}
	w := &layoutWalker{h: h, slots: layout}
	n, sigOffset := 0, -1
	for w.i < len(layout) {
		if layout[w.i].Tag == tagSignature {
			sigOffset = n
		}
		size, err := w.size()
		if err != nil {
			return nil, 0, err
		}
		n += size
	}
	if w.extra != len(h.Extra) {
		return nil, 0, errors.New("sgn: layout leaves out extra elements")
	}
	total := n + h.Padding
	if total > tlv.MaxLength {
		return nil, 0, fmt.Errorf("sgn: header is %d bytes, more than 65535", total)
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
		return nil, 0, fmt.Errorf("sgn: %w", err)
	}
	return raw, sigOffset, nil
}
