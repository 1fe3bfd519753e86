// Package trustlist is the codec shared by the CTL and ITL packages: a
// signed-file header (package signedfile) followed by certificate records
// until the end of the file. Each record is a run of tag/length/value
// elements that starts with its own length.
//
// A parsed Record keeps its element layout (order, presence, elements this
// package does not interpret), so that encoding it gives back its bytes.
package trustlist

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/tlv"
	"golang.org/x/crypto/cryptobyte"
)

// Record element tags (formats.md §2.2).
const (
	TagRecordLength    = 0x01
	TagDNSName         = 0x02
	TagSubjectName     = 0x03
	TagRole            = 0x04
	TagIssuerName      = 0x05
	TagSerialNumber    = 0x06
	TagPublicKey       = 0x07
	TagSignature       = 0x08
	TagCertificate     = 0x09
	TagIPAddress       = 0x0A
	TagCertificateHash = 0x0B
	TagHashAlgorithm   = 0x0C
)

// MaxRecords bounds the records a file may hold, so that the memory a parse
// uses stays proportional to its input. Phones accept about 40.
const MaxRecords = 512

// maxRecordElements bounds the elements of one record.
const maxRecordElements = 64

// Element is one record element. For an element this package interprets,
// Value is not used (the value comes from the Record's fields); for any
// other, Value is its value as it was.
type Element struct {
	Tag   uint8
	Value []byte
}

// Record is one certificate record.
type Record struct {
	Role            uint16
	DNSName         string
	SubjectName     string
	IssuerName      string
	SerialNumber    []byte
	PublicKey       []byte
	Signature       []byte
	Certificate     []byte
	IPAddress       []byte
	CertificateHash []byte
	HashAlgorithm   uint8

	// Layout is the order of the elements after the record length. When
	// nil, DefaultLayout is used.
	Layout []Element

	// Set by Parse.
	Offset int    // offset of the record in the file
	Raw    []byte // the record's bytes
}

// DefaultLayout is the order CUCM writes (ascending tags): record length
// (implicit), DNS name, then each of subject, role, issuer, serial, public
// key, signature, certificate, IP address, certificate hash and hash
// algorithm that is set. The DNS name and role are always written.
func (r *Record) DefaultLayout() []Element {
	l := []Element{{Tag: TagDNSName}}
	add := func(tag uint8, set bool) {
		if set {
			l = append(l, Element{Tag: tag})
		}
	}
	add(TagSubjectName, r.SubjectName != "")
	add(TagRole, true)
	add(TagIssuerName, r.IssuerName != "")
	add(TagSerialNumber, len(r.SerialNumber) > 0)
	add(TagPublicKey, len(r.PublicKey) > 0)
	add(TagSignature, len(r.Signature) > 0)
	add(TagCertificate, len(r.Certificate) > 0)
	add(TagIPAddress, len(r.IPAddress) > 0)
	add(TagCertificateHash, len(r.CertificateHash) > 0)
	add(TagHashAlgorithm, r.HashAlgorithm != 0)
	return l
}

func known(tag uint8) bool { return tag >= TagRecordLength && tag <= TagHashAlgorithm }

// value returns the encoded value of a known element.
func (r *Record) value(tag uint8) ([]byte, error) {
	switch tag {
	case TagDNSName:
		return cstring(r.DNSName)
	case TagSubjectName:
		return cstring(r.SubjectName)
	case TagRole:
		return []byte{byte(r.Role >> 8), byte(r.Role)}, nil
	case TagIssuerName:
		return cstring(r.IssuerName)
	case TagSerialNumber:
		return r.SerialNumber, nil
	case TagPublicKey:
		return r.PublicKey, nil
	case TagSignature:
		return r.Signature, nil
	case TagCertificate:
		return r.Certificate, nil
	case TagIPAddress:
		return r.IPAddress, nil
	case TagCertificateHash:
		return r.CertificateHash, nil
	case TagHashAlgorithm:
		return []byte{r.HashAlgorithm}, nil
	}
	return nil, fmt.Errorf("trustlist: no field for record tag 0x%02X", tag)
}

func cstring(s string) ([]byte, error) {
	if slices.Contains([]byte(s), 0) {
		return nil, errors.New("trustlist: text value contains a NUL byte")
	}
	return append([]byte(s), 0), nil
}

// Marshal encodes the record, its length element first.
func (r *Record) Marshal() ([]byte, error) {
	layout := r.Layout
	if layout == nil {
		layout = r.DefaultLayout()
	}
	values := make([][]byte, len(layout))
	size := 5
	for i, e := range layout {
		v := e.Value
		if known(e.Tag) {
			if e.Tag == TagRecordLength {
				return nil, errors.New("trustlist: layout repeats the record length")
			}
			var err error
			if v, err = r.value(e.Tag); err != nil {
				return nil, err
			}
		}
		if len(v) > tlv.MaxLength {
			return nil, fmt.Errorf("trustlist: record element 0x%02X is %d bytes, more than 65535", e.Tag, len(v))
		}
		values[i] = v
		size += 3 + len(v)
	}
	if size > tlv.MaxLength {
		return nil, fmt.Errorf("trustlist: record is %d bytes, more than 65535", size)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, size))
	tlv.AddUint16(b, TagRecordLength, uint16(size))
	for i, e := range layout {
		tlv.AddBytes(b, e.Tag, values[i])
	}
	return b.Bytes()
}

// ParseRecords parses the records in data, which starts at file offset
// base, until its end.
func ParseRecords(data []byte, base int) ([]Record, error) {
	var recs []Record
	for off := 0; off < len(data); {
		if len(recs) == MaxRecords {
			return nil, &signedfile.ParseError{Offset: base + off, Msg: "too many records"}
		}
		r, err := parseRecord(data[off:], base+off)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
		off += len(r.Raw)
	}
	return recs, nil
}

func parseRecord(data []byte, base int) (Record, error) {
	r := Record{Offset: base}
	bad := func(off int, tag uint8, msg string) error {
		return &signedfile.ParseError{Offset: base + off, Tag: tag, Msg: msg}
	}
	s := cryptobyte.String(data)
	var tag uint8
	var v cryptobyte.String
	if len(data) > 0 && data[0] != TagRecordLength {
		return r, bad(0, data[0], "record does not start with a record length")
	}
	if !tlv.ReadElement(&s, &tag, &v) {
		return r, bad(0, TagRecordLength, "truncated record length")
	}
	n, ok := tlv.ParseUint16(v)
	switch {
	case !ok:
		return r, bad(0, tag, "record length is not 2 bytes")
	case int(n) < 5:
		return r, bad(0, tag, "record length shorter than the record length element")
	case int(n) > len(data):
		return r, bad(0, tag, "record length past end of file")
	}
	r.Raw = data[:n:n]
	body := cryptobyte.String(data[5:n])
	var seen [TagHashAlgorithm + 1]bool
	seen[TagRecordLength] = true
	for !body.Empty() {
		off := int(n) - len(body)
		if len(r.Layout) == maxRecordElements {
			return r, bad(off, body[0], "too many record elements")
		}
		if !tlv.ReadElement(&body, &tag, &v) {
			return r, bad(off, body[0], "element runs past the record length")
		}
		if tag == tlv.TagPadding {
			return r, bad(off, tag, "padding inside a record")
		}
		if !known(tag) {
			r.Layout = append(r.Layout, Element{Tag: tag, Value: v})
			continue
		}
		if seen[tag] {
			return r, bad(off, tag, "duplicate record element")
		}
		seen[tag] = true
		if msg := r.field(tag, v); msg != "" {
			return r, bad(off, tag, msg)
		}
		r.Layout = append(r.Layout, Element{Tag: tag})
	}
	if !seen[TagRole] {
		return r, bad(0, TagRole, "record has no role")
	}
	return r, nil
}

// field decodes a known element into r, or says what is wrong with it.
func (r *Record) field(tag uint8, v []byte) string {
	var ok bool
	switch tag {
	case TagDNSName:
		if r.DNSName, ok = tlv.ParseString(v); !ok {
			return "DNS name is not a NUL-terminated string"
		}
	case TagSubjectName:
		if r.SubjectName, ok = tlv.ParseString(v); !ok {
			return "subject name is not a NUL-terminated string"
		}
	case TagIssuerName:
		if r.IssuerName, ok = tlv.ParseString(v); !ok {
			return "issuer name is not a NUL-terminated string"
		}
	case TagRole:
		if r.Role, ok = tlv.ParseUint16(v); !ok {
			return "role is not 2 bytes"
		}
	case TagSerialNumber:
		if len(v) == 0 {
			return "empty serial number"
		}
		r.SerialNumber = v
	case TagPublicKey:
		r.PublicKey = v
	case TagSignature:
		r.Signature = v
	case TagCertificate:
		r.Certificate = v
	case TagIPAddress:
		if len(v) != 4 && len(v) != 16 {
			return "IP address is not 4 or 16 bytes"
		}
		r.IPAddress = v
	case TagCertificateHash:
		r.CertificateHash = v
	case TagHashAlgorithm:
		if r.HashAlgorithm, ok = tlv.ParseUint8(v); !ok {
			return "hash algorithm is not 1 byte"
		}
	}
	return ""
}

// File is a parsed trust list.
type File struct {
	Header  *signedfile.Header
	Records []Record
}

// Parse parses a trust list: a header, then records to the end of data.
func Parse(data []byte) (*File, error) {
	h, err := signedfile.Parse(data)
	if err != nil {
		return nil, err
	}
	recs, err := ParseRecords(data[h.Length:], h.Length)
	if err != nil {
		return nil, err
	}
	return &File{Header: h, Records: recs}, nil
}

// Marshal encodes records one after another.
func Marshal(records []Record) ([]byte, error) {
	var out []byte
	for i := range records {
		b, err := records[i].Marshal()
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
		out = append(out, b...)
	}
	return out, nil
}
