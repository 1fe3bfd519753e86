package capfwire

import (
	"fmt"

	"github.com/ucsec/ucsec/internal/tlv"
	"golang.org/x/crypto/cryptobyte"
)

// SUDI is the value of a SUDI_DATA element (tag 16): the phone's Secure
// Unique Device Identifier certificate and two signatures by its key over
// the session id (uint32 little-endian) followed by the certificate DER.
// On the wire it is three items of a type byte, a u16 BE length and a
// value: 0 certificate, 1 SHA-1 signature, 3 SHA-512 signature.
type SUDI struct {
	Certificate []byte // DER
	SHA1        []byte // signature over SHA-1; optional on input
	SHA512      []byte // signature over SHA-512
}

// SUDI item types.
const (
	sudiCertificate = 0
	sudiSHA1        = HashSHA1
	sudiSHA512      = HashSHA512
)

// WrapSUDI returns the value of a SUDI_DATA element, the items in the order
// certificate, SHA-1, SHA-512. Empty fields are left out.
func WrapSUDI(s *SUDI) ([]byte, error) {
	var b cryptobyte.Builder
	for _, it := range [...]struct {
		t uint8
		v []byte
	}{{sudiCertificate, s.Certificate}, {sudiSHA1, s.SHA1}, {sudiSHA512, s.SHA512}} {
		if len(it.v) > 0 {
			tlv.AddBytes(&b, it.t, it.v)
		}
	}
	v, err := b.Bytes()
	if err != nil || len(v) > tlv.MaxLength {
		return nil, fmt.Errorf("%w: %v element: %d-byte certificate", ErrTooLong, TagSUDIData, len(s.Certificate))
	}
	return v, nil
}

// UnwrapSUDI parses the value of a SUDI_DATA element. The certificate and
// the SHA-512 signature are required, the SHA-1 signature optional; an
// item of another type, a repeated item or trailing bytes are malformed.
// The fields alias v.
func UnwrapSUDI(v []byte) (*SUDI, error) {
	s := cryptobyte.String(v)
	var out SUDI
	for !s.Empty() {
		var t uint8
		var val cryptobyte.String
		if !tlv.ReadPlainElement(&s, &t, &val) {
			return nil, malformed(TagSUDIData, "truncated item")
		}
		var dst *[]byte
		switch t {
		case sudiCertificate:
			dst = &out.Certificate
		case sudiSHA1:
			dst = &out.SHA1
		case sudiSHA512:
			dst = &out.SHA512
		default:
			return nil, malformed(TagSUDIData, "unknown item type %d", t)
		}
		if *dst != nil {
			return nil, malformed(TagSUDIData, "item type %d repeated", t)
		}
		if len(val) == 0 {
			return nil, malformed(TagSUDIData, "empty item type %d", t)
		}
		*dst = val
	}
	if out.Certificate == nil || out.SHA512 == nil {
		return nil, malformed(TagSUDIData, "certificate or SHA-512 signature missing")
	}
	return &out, nil
}
