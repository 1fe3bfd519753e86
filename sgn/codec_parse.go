package sgn

import (
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/tlv"
)

// minHeader is the size of the version and header-length elements.
const minHeader = 10

// parser walks a header. Offsets are from the start of the file.
type parser struct {
	data     []byte
	h        *rawHeader
	seen     [256]bool
	elements int
	sigStart int
	sigEnd   int
	lastTop  uint8 // tag of the last top-level element read
}

func (p *parser) errAt(off int, tag uint8, msg string) error {
	return &ParseError{Offset: off, Tag: tag, Msg: msg}
}

// parseRaw reads the header at the start of data. The payload (records,
// original file or ciphertext) is data[h.Length:]. Parse checks the layout
// only; it verifies nothing.
//
// Raw, SerialNumber and Signature alias data; TBS is a fresh copy of the
// header without its signature element.
func parseRaw(data []byte) (*rawHeader, error) {
	h := &rawHeader{}
	p := &parser{data: data, h: h, sigStart: -1}

	s := cryptobyte.String(data)
	var tag uint8
	var v cryptobyte.String
	if len(data) > 0 && data[0] != tagVersion {
		return nil, p.errAt(0, data[0], "file does not start with a version element")
	}
	if !tlv.ReadElement(&s, &tag, &v) {
		return nil, p.errAt(0, 0, "file too short for a header")
	}
	if len(v) != 2 {
		return nil, p.errAt(0, tag, "version element is not 2 bytes")
	}
	copy(h.Version[:], v)
	if len(data) > 5 && data[5] != tagHeaderLength {
		return nil, p.errAt(5, data[5], "second element is not a header length")
	}
	if !tlv.ReadElement(&s, &tag, &v) {
		return nil, p.errAt(5, 0, "file too short for a header length")
	}
	n, ok := tlv.ParseUint16(v)
	if !ok {
		return nil, p.errAt(5, tag, "header length is not 2 bytes")
	}
	length := int(n)
	switch {
	case length > len(data):
		return nil, p.errAt(5, tagHeaderLength, "header length past end of file")
	case length < minHeader:
		return nil, p.errAt(5, tagHeaderLength, "header length shorter than the elements before it")
	case length%4 != 0:
		return nil, p.errAt(5, tagHeaderLength, "header length is not a multiple of 4")
	}
	h.Length = length
	p.seen[tagVersion], p.seen[tagHeaderLength] = true, true
	h.Layout = make([]layoutSlot, 2, 24) // real headers have 15 to 21 elements
	h.Layout[0].Tag, h.Layout[1].Tag = tagVersion, tagHeaderLength
	if _, err := p.walk(minHeader, data[minHeader:length], 0); err != nil {
		return nil, err
	}

	for _, req := range []struct {
		tag  uint8
		name string
	}{
		{tagSignerName, "signer name"}, {tagSerialNumber, "serial number"}, {tagIssuerName, "issuer name"},
		{tagHashAlgorithm, "hash algorithm"}, {tagSignatureAlgorithm, "signature algorithm"},
		{tagSignatureModulus, "signature modulus"}, {tagSignature, "signature"},
	} {
		if !p.seen[req.tag] {
			return nil, p.errAt(length, req.tag, "header has no "+req.name+" element")
		}
	}
	if len(h.Signature) != sigSizes[h.ModulusCode] {
		return nil, p.errAt(p.sigStart, tagSignature, "signature size does not match the modulus code")
	}

	h.Raw = data[:length:length]
	h.SigOffset = p.sigStart
	h.TBS = make([]byte, 0, length-(p.sigEnd-p.sigStart))
	h.TBS = append(append(h.TBS, data[:p.sigStart]...), data[p.sigEnd:length]...)
	return h, nil
}

// walk parses the elements in b, which starts at file offset base, adds
// them to the layout and returns how many there are (not counting what
// containers hold).
func (p *parser) walk(base int, b []byte, depth int) (int, error) {
	h := p.h
	count := 0
	s := cryptobyte.String(b)
	inPadding := false
	for !s.Empty() {
		off := base + len(b) - len(s)
		if inPadding && s[0] != tlv.TagPadding {
			return 0, p.errAt(off, s[0], "element after the header padding")
		}
		var tag uint8
		var v cryptobyte.String
		if !tlv.ReadElement(&s, &tag, &v) {
			if depth == 0 {
				return 0, p.errAt(off, b[off-base], "element runs past the header length")
			}
			return 0, p.errAt(off, b[off-base], "element runs past the end of its container")
		}
		if tag == tlv.TagPadding {
			if depth > 0 {
				return 0, p.errAt(off, tag, "padding inside a container")
			}
			inPadding = true
			h.Padding++
			continue
		}
		if p.elements++; p.elements > maxElements {
			return 0, p.errAt(off, tag, "too many header elements")
		}
		count++
		if depth == 0 {
			// The signature is not signed, so where it stands must be
			// fixed, or moving it would make another file that verifies.
			if tag == tagSignature && p.lastTop != tagSignatureInfo {
				return 0, p.errAt(off, tag, "signature does not follow the signature info")
			}
			p.lastTop = tag
		}
		if !known(tag) {
			h.Layout = append(h.Layout, layoutSlot{Tag: tag})
			h.Extra = append(h.Extra, Element{Tag: tag, Value: v})
			continue
		}
		if p.seen[tag] {
			return 0, p.errAt(off, tag, "duplicate element")
		}
		p.seen[tag] = true
		if isContainer(tag) {
			if depth+1 >= maxDepth {
				return 0, p.errAt(off, tag, "containers nested too deeply")
			}
			at := len(h.Layout)
			h.Layout = append(h.Layout, layoutSlot{Tag: tag})
			n, err := p.walk(off+3, v, depth+1)
			if err != nil {
				return 0, err
			}
			h.Layout[at].Children = uint8(n) // n <= maxElements < 256
			continue
		}
		if err := p.field(off, tag, v, depth); err != nil {
			return 0, err
		}
		h.Layout = append(h.Layout, layoutSlot{Tag: tag})
	}
	return count, nil
}

// field decodes the value of a known primitive element into the header.
func (p *parser) field(off int, tag uint8, v []byte, depth int) error {
	h := p.h
	bad := func(msg string) error { return p.errAt(off, tag, msg) }
	var ok bool
	switch tag {
	case tagSignerName:
		if h.SignerName, ok = tlv.ParseString(v); !ok {
			return bad("signer name is not a NUL-terminated string")
		}
	case tagIssuerName:
		if h.IssuerName, ok = tlv.ParseString(v); !ok {
			return bad("issuer name is not a NUL-terminated string")
		}
	case tagFilename:
		if h.Filename, ok = tlv.ParseString(v); !ok {
			return bad("file name is not a NUL-terminated string")
		}
	case tagSerialNumber:
		if len(v) == 0 {
			return bad("empty serial number")
		}
		h.SerialNumber = v[:len(v):len(v)]
	case tagHashAlgorithm:
		if h.HashCode, ok = tlv.ParseUint8(v); !ok {
			return bad("hash algorithm is not 1 byte")
		}
		if signedfile.HashFromCode(h.HashCode) == 0 {
			return bad("unknown hash algorithm code")
		}
	case tagSignatureAlgorithm:
		if h.SignatureAlgorithm, ok = tlv.ParseUint8(v); !ok {
			return bad("signature algorithm is not 1 byte")
		}
		if h.SignatureAlgorithm != signatureRSA {
			return bad("unknown signature algorithm code")
		}
	case tagSignatureModulus:
		if h.ModulusCode, ok = tlv.ParseUint8(v); !ok {
			return bad("signature modulus is not 1 byte")
		}
		if int(h.ModulusCode) >= len(sigSizes) {
			return bad("unknown signature modulus code")
		}
	case tagSignature:
		if depth != 0 {
			return bad("signature inside a container")
		}
		h.Signature = v[:len(v):len(v)]
		p.sigStart, p.sigEnd = off, off+3+len(v)
	case tagTimestamp:
		u, ok := tlv.ParseUint32(v)
		if !ok {
			return bad("timestamp is not 4 bytes")
		}
		h.Timestamp = time.Unix(int64(u), 0).UTC()
	case tagSignerVersion:
		if len(v) != 2 {
			return bad("signer version is not 2 bytes")
		}
		h.SignerVersion = &[2]uint8{v[0], v[1]}
	}
	return nil
}
