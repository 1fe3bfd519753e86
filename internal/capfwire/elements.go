package capfwire

import (
	"fmt"
	"strings"

	"github.com/ucsec/ucsec/internal/tlv"
	"golang.org/x/crypto/cryptobyte"
)

// Elements is the payload of a frame, CAPF ([Frame]) or TVS ([TVSFrame]):
// its elements in wire order, duplicates and unknown tags kept. Both frame
// types embed it, so its methods are theirs.
//
// The getters return the first element with a tag; its value aliases the
// frame. Their errors name a tag by its CAPF name ([Tag.String]); the
// [TVSFrame] getters name TVS tags by theirs.
type Elements []Element

// Get returns the value of the first element with the tag, aliasing the
// frame, and whether there is one.
func (es Elements) Get(tag Tag) ([]byte, bool) {
	for _, e := range es {
		if e.Tag == tag {
			return e.Value, true
		}
	}
	return nil, false
}

// Add appends an element. The value is not copied.
func (es *Elements) Add(tag Tag, value []byte) {
	*es = append(*es, Element{Tag: tag, Value: value})
}

// get is Get with an [ErrMissing] error naming the element as name.
func (es Elements) get(tag Tag, name fmt.Stringer) ([]byte, error) {
	v, ok := es.Get(tag)
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrMissing, name)
	}
	return v, nil
}

func malformed(name fmt.Stringer, format string, args ...any) error {
	return fmt.Errorf("%w: %v element: %s", ErrMalformed, name, fmt.Sprintf(format, args...))
}

// Uint8 returns the first element with the tag as a 1-byte value: REASON,
// VERSION, AUTH_TYPE, KEY_TYPE, CURVE or CERTIFICATE_TYPE in CAPF, STATUS in
// TVS ([TVSFrame.Status] names it better in errors). The error matches
// [ErrMissing] if there is none and [ErrMalformed] if it is not one byte.
func (es Elements) Uint8(tag Tag) (uint8, error) { return es.uint8(tag, tag) }

func (es Elements) uint8(tag Tag, name fmt.Stringer) (uint8, error) {
	v, err := es.get(tag, name)
	if err != nil {
		return 0, err
	}
	x, ok := tlv.ParseUint8(v)
	if !ok {
		return 0, malformed(name, "%d bytes, want 1", len(v))
	}
	return x, nil
}

// Uint16 returns the first element with the tag as a 2-byte big-endian value
// (KEY_SIZE). Errors are as for [Elements.Uint8].
func (es Elements) Uint16(tag Tag) (uint16, error) {
	v, err := es.get(tag, tag)
	if err != nil {
		return 0, err
	}
	x, ok := tlv.ParseUint16(v)
	if !ok {
		return 0, malformed(tag, "%d bytes, want 2", len(v))
	}
	return x, nil
}

// Uint32 returns the first element with the tag as a 4-byte big-endian value
// (the TTL of TVS). Errors are as for [Elements.Uint8].
func (es Elements) Uint32(tag Tag) (uint32, error) { return es.uint32(tag, tag) }

func (es Elements) uint32(tag Tag, name fmt.Stringer) (uint32, error) {
	v, err := es.get(tag, name)
	if err != nil {
		return 0, err
	}
	x, ok := tlv.ParseUint32(v)
	if !ok {
		return 0, malformed(name, "%d bytes, want 4", len(v))
	}
	return x, nil
}

// Text returns the first element with the tag as NUL-terminated text
// (DEVICE_NAME, PASSWORD): the value must end in its only NUL byte. The text
// is returned as sent; its character set (ASCII or UTF-8) is not checked.
// Errors are as for [Elements.Uint8].
func (es Elements) Text(tag Tag) (string, error) {
	v, err := es.get(tag, tag)
	if err != nil {
		return "", err
	}
	s, ok := tlv.ParseString(v)
	if !ok {
		return "", malformed(tag, "not NUL-terminated text")
	}
	return s, nil
}

// Password returns the PASSWORD element, or "" if there is none: the
// reference client always sends it (empty is a lone NUL), Cisco Jabber
// omits it. Compare it with crypto/subtle.
func (es Elements) Password() (string, error) {
	if _, ok := es.Get(TagPassword); !ok {
		return "", nil
	}
	return es.Text(TagPassword)
}

// AddUint8 appends a 1-byte element.
func (es *Elements) AddUint8(tag Tag, v uint8) {
	es.Add(tag, []byte{v})
}

// AddUint16 appends a 2-byte big-endian element.
func (es *Elements) AddUint16(tag Tag, v uint16) {
	es.Add(tag, []byte{byte(v >> 8), byte(v)})
}

// AddUint32 appends a 4-byte big-endian element.
func (es *Elements) AddUint32(tag Tag, v uint32) {
	es.Add(tag, []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// AddString appends s followed by a NUL byte. It fails, adding nothing, if s
// holds a NUL ([ErrMalformed]) or is too long for an element ([ErrTooLong]).
func (es *Elements) AddString(tag Tag, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return malformed(tag, "string holds a NUL byte")
	}
	if len(s)+1 > tlv.MaxLength {
		return fmt.Errorf("%w: %v element: string of %d bytes", ErrTooLong, tag, len(s))
	}
	v := make([]byte, len(s)+1)
	copy(v, s)
	es.Add(tag, v)
	return nil
}

// Certificate returns the first CAPF CERTIFICATE element (tag 4), unwrapped
// with [UnwrapCertificate]. The DER aliases the frame. ([TVSFrame.Certificate]
// reads the TVS one, which has another tag and no wrapper.)
func (es Elements) Certificate() (certType uint8, der []byte, err error) {
	v, err := es.get(TagCertificate, TagCertificate)
	if err != nil {
		return 0, nil, err
	}
	return UnwrapCertificate(v)
}

// AddCertificate appends a CAPF CERTIFICATE element wrapping der with
// [WrapCertificate].
func (es *Elements) AddCertificate(certType uint8, der []byte) error {
	v, err := WrapCertificate(certType, der)
	if err != nil {
		return err
	}
	es.Add(TagCertificate, v)
	return nil
}

// certWrapperSize is the size of the CERTIFICATE wrapper before the DER.
const certWrapperSize = 5

// MaxCertificateSize is the longest DER that fits a CERTIFICATE element.
const MaxCertificateSize = tlv.MaxLength - certWrapperSize

// WrapCertificate returns the value of a CERTIFICATE element (tag 4):
//
//	0x01, u16 BE (= len(der) + 2), 0x00, certType, der
//
// certType is normally [CertificateTypeLSC] or [CertificateTypeMIC]. The
// leading 0x01 is probably an inner tag or count; the meaning of the 0x00 is
// unknown. Real CUCM sends the same wrapper. der must not be empty, nor longer
// than [MaxCertificateSize].
func WrapCertificate(certType uint8, der []byte) ([]byte, error) {
	if len(der) == 0 {
		return nil, malformed(TagCertificate, "empty certificate")
	}
	if len(der) > MaxCertificateSize {
		return nil, fmt.Errorf("%w: %v element: certificate of %d bytes, limit %d", ErrTooLong, TagCertificate, len(der), MaxCertificateSize)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, certWrapperSize+len(der)))
	b.AddUint8(0x01)
	b.AddUint16(uint16(len(der) + 2))
	b.AddUint8(0x00)
	b.AddUint8(certType)
	b.AddBytes(der)
	return b.Bytes()
}

// UnwrapCertificate parses the value of a CERTIFICATE element. Where the
// reference readers just skip five bytes, it checks them: the first is 0x01,
// the length field equals len(der) + 2 exactly, the fourth is 0x00, and der is
// not empty. der aliases v and is not parsed as X.509.
func UnwrapCertificate(v []byte) (certType uint8, der []byte, err error) {
	s := cryptobyte.String(v)
	var first, zero uint8
	var n uint16
	if !s.ReadUint8(&first) || !s.ReadUint16(&n) || !s.ReadUint8(&zero) || !s.ReadUint8(&certType) {
		return 0, nil, malformed(TagCertificate, "%d bytes, shorter than its %d-byte wrapper", len(v), certWrapperSize)
	}
	switch {
	case first != 0x01:
		return 0, nil, malformed(TagCertificate, "wrapper starts with 0x%02x, want 0x01", first)
	case zero != 0x00:
		return 0, nil, malformed(TagCertificate, "wrapper byte 3 is 0x%02x, want 0x00", zero)
	case int(n) != len(s)+2:
		return 0, nil, malformed(TagCertificate, "wrapper length %d, want %d (DER length + 2)", n, len(s)+2)
	case len(s) == 0:
		return 0, nil, malformed(TagCertificate, "empty certificate")
	}
	return certType, s, nil
}

// WrapSHA2SignedData returns the value of a SHA2_SIGNED_DATA element (tag
// 20): hashID ([HashSHA512] in practice), a u16 BE length, then sig. sig
// must not be empty, nor so long that the value exceeds 65535 bytes.
func WrapSHA2SignedData(hashID uint8, sig []byte) ([]byte, error) {
	if len(sig) == 0 {
		return nil, malformed(TagSHA2SignedData, "empty signature")
	}
	if 3+len(sig) > tlv.MaxLength {
		return nil, fmt.Errorf("%w: %v element: signature of %d bytes", ErrTooLong, TagSHA2SignedData, len(sig))
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, 3+len(sig)))
	b.AddUint8(hashID)
	b.AddUint16(uint16(len(sig)))
	b.AddBytes(sig)
	return b.Bytes()
}

// UnwrapSHA2SignedData parses the value of a SHA2_SIGNED_DATA element. The
// length must cover the rest of v exactly and the signature must not be
// empty; the hash id is returned unchecked. sig aliases v.
func UnwrapSHA2SignedData(v []byte) (hashID uint8, sig []byte, err error) {
	s := cryptobyte.String(v)
	var n uint16
	if !s.ReadUint8(&hashID) || !s.ReadUint16(&n) {
		return 0, nil, malformed(TagSHA2SignedData, "%d bytes, too short", len(v))
	}
	if int(n) != len(s) {
		return 0, nil, malformed(TagSHA2SignedData, "length %d, but %d bytes follow", n, len(s))
	}
	if n == 0 {
		return 0, nil, malformed(TagSHA2SignedData, "empty signature")
	}
	return hashID, s, nil
}
