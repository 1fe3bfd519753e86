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

	"golang.org/x/crypto/cryptobyte"

	"github.com/ucsec/ucsec/internal/tlv"
	"github.com/ucsec/ucsec/sgn"
)

// Record element tags: the tag byte of each element of a record.
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

	// Extra holds the elements this package does not interpret, in order.
	Extra []sgn.Element

	// Order is the order of the elements after the record length: tags,
	// where each unknown tag stands for the next element of Extra. When
	// nil, DefaultOrder is used.
	Order []uint8

	// Set by parsing.
	Offset int       // offset of the record in the file
	Raw    []byte    // the record's bytes
	Text   [3][]byte // DNS name, subject and issuer as read, without the NUL; see SetText
}

// SetText sets DNSName, SubjectName and IssuerName from Text, with one
// allocation.
func (r *Record) SetText() {
	var buf [512]byte
	all := string(append(append(append(buf[:0], r.Text[0]...), r.Text[1]...), r.Text[2]...))
	a, b := len(r.Text[0]), len(r.Text[0])+len(r.Text[1])
	r.DNSName, r.SubjectName, r.IssuerName = all[:a], all[a:b], all[b:]
}

// DefaultOrder is the order CUCM writes (ascending tags): record length
// (implicit), DNS name, then each of subject, role, issuer, serial, public
// key, signature, certificate, IP address, certificate hash and hash
// algorithm that is set, then the extra elements. The DNS name and role
// are always written.
func (r *Record) DefaultOrder() []uint8 {
	l := []uint8{TagDNSName}
	add := func(tag uint8, set bool) {
		if set {
			l = append(l, tag)
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
	for _, e := range r.Extra {
		l = append(l, e.Tag)
	}
	return l
}

// Known reports whether the record element tag has a field in Record.
func Known(tag uint8) bool { return tag >= TagRecordLength && tag <= TagHashAlgorithm }

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
	return nil, fmt.Errorf("ctl: no field for record tag 0x%02X", tag)
}

func cstring(s string) ([]byte, error) {
	if slices.Contains([]byte(s), 0) {
		return nil, errors.New("ctl: text value contains a NUL byte")
	}
	return append([]byte(s), 0), nil
}

// Marshal encodes the record, its length element first.
func (r *Record) Marshal() ([]byte, error) {
	order := r.Order
	if order == nil {
		order = r.DefaultOrder()
	}
	values := make([][]byte, len(order))
	size, extra := 5, 0
	for i, tag := range order {
		var v []byte
		switch {
		case tag == TagRecordLength:
			return nil, errors.New("ctl: order repeats the record length")
		case Known(tag):
			var err error
			if v, err = r.value(tag); err != nil {
				return nil, err
			}
		case extra < len(r.Extra) && r.Extra[extra].Tag == tag:
			v = r.Extra[extra].Value
			extra++
		default:
			return nil, fmt.Errorf("ctl: order names element 0x%02X that Extra does not hold", tag)
		}
		if len(v) > tlv.MaxLength {
			return nil, fmt.Errorf("ctl: record element 0x%02X is %d bytes, more than 65535", tag, len(v))
		}
		values[i] = v
		size += 3 + len(v)
	}
	if extra != len(r.Extra) {
		return nil, errors.New("ctl: order leaves out extra elements")
	}
	if size > tlv.MaxLength {
		return nil, fmt.Errorf("ctl: record is %d bytes, more than 65535", size)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, size))
	tlv.AddUint16(b, TagRecordLength, uint16(size))
	for i, tag := range order {
		tlv.AddBytes(b, tag, values[i])
	}
	return b.Bytes()
}

// ParseRecords parses the records in data, which starts at file offset
// base, until its end.
func ParseRecords(data []byte, base int) ([]Record, error) {
	recs := make([]Record, 0, CountRecords(data))
	err := EachRecord(data, base, func(r *Record) error {
		r.SetText()
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// EachRecord parses the records in data, which starts at file offset base,
// and calls fn with each. The *Record is reused: fn must copy what it keeps
// (the slices in it are not reused). Its text fields are left empty, for fn
// to make from Text as it likes (see SetText). For a loop without a
// function value, use a RecordReader.
func EachRecord(data []byte, base int, fn func(*Record) error) error {
	rd := NewRecordReader(data, base)
	var r Record
	for {
		ok, err := rd.Next(&r)
		if err != nil || !ok {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}

// A RecordReader reads the records of a trust list one at a time into a
// Record of the caller's, which may then live on the caller's stack: the
// allocation-light path for callers that convert records to their own
// type.
type RecordReader struct {
	data   []byte
	base   int
	off, n int
	orders []uint8 // one buffer for the element orders of all records
}

// NewRecordReader returns a reader of the records in data, which starts at
// file offset base.
func NewRecordReader(data []byte, base int) RecordReader {
	return RecordReader{data: data, base: base, orders: make([]uint8, 0, min(len(data)/64+16, 4096))}
}

// Next parses the next record into r, which it clears first, and reports
// whether there was one. The slices in r alias the data or a buffer of
// the reader's, and are not reused; its text fields are left empty (see
// SetText).
func (rd *RecordReader) Next(r *Record) (bool, error) {
	if rd.off >= len(rd.data) {
		return false, nil
	}
	if rd.n == MaxRecords {
		return false, &sgn.ParseError{Offset: rd.base + rd.off, Msg: "too many records"}
	}
	*r = Record{}
	if err := parseRecord(r, rd.data[rd.off:], rd.base+rd.off, &rd.orders); err != nil {
		return false, err
	}
	rd.off += len(r.Raw)
	rd.n++
	return true, nil
}

// CountRecords returns how many records data holds if it is well formed,
// at most MaxRecords, reading only their lengths, so that callers can
// allocate once. EachRecord calls its function at most that many times.
func CountRecords(data []byte) int {
	n := 0
	for off := 0; off+5 <= len(data) && n < MaxRecords; n++ {
		l := int(data[off+3])<<8 | int(data[off+4])
		if l < 5 {
			break
		}
		off += l
	}
	return n
}

// parseRecord parses the record at the start of data into r, appending
// its element order to orders.
func parseRecord(r *Record, data []byte, base int, orders *[]uint8) error {
	r.Offset = base
	bad := func(off int, tag uint8, msg string) error {
		return &sgn.ParseError{Offset: base + off, Tag: tag, Msg: msg}
	}
	s := cryptobyte.String(data)
	var tag uint8
	var v cryptobyte.String
	if len(data) > 0 && data[0] != TagRecordLength {
		return bad(0, data[0], "record does not start with a record length")
	}
	if !tlv.ReadElement(&s, &tag, &v) {
		return bad(0, TagRecordLength, "truncated record length")
	}
	n, ok := tlv.ParseUint16(v)
	switch {
	case !ok:
		return bad(0, tag, "record length is not 2 bytes")
	case int(n) < 5:
		return bad(0, tag, "record length shorter than the record length element")
	case int(n) > len(data):
		return bad(0, tag, "record length past end of file")
	}
	r.Raw = data[:n:n]
	start := len(*orders)
	body := cryptobyte.String(data[5:n])
	text := &r.Text
	var seen [TagHashAlgorithm + 1]bool
	seen[TagRecordLength] = true
	for !body.Empty() {
		off := int(n) - len(body)
		if len(*orders)-start == maxRecordElements {
			return bad(off, body[0], "too many record elements")
		}
		if !tlv.ReadElement(&body, &tag, &v) {
			return bad(off, body[0], "element runs past the record length")
		}
		if tag == tlv.TagPadding {
			return bad(off, tag, "padding inside a record")
		}
		*orders = append(*orders, tag)
		if !Known(tag) {
			r.Extra = append(r.Extra, sgn.Element{Tag: tag, Value: v})
			continue
		}
		if seen[tag] {
			return bad(off, tag, "duplicate record element")
		}
		seen[tag] = true
		if msg := r.field(tag, v, text); msg != "" {
			return bad(off, tag, msg)
		}
	}
	if !seen[TagRole] {
		return bad(0, TagRole, "record has no role")
	}
	r.Order = (*orders)[start:len(*orders):len(*orders)]
	return nil
}

// field decodes a known element into r, or says what is wrong with it.
// The text elements go into text (DNS name, subject, issuer), to be made
// strings together.
func (r *Record) field(tag uint8, v []byte, text *[3][]byte) string {
	var ok bool
	switch tag {
	case TagDNSName:
		if text[0], ok = tlv.ParseText(v); !ok {
			return "DNS name is not a NUL-terminated string"
		}
	case TagSubjectName:
		if text[1], ok = tlv.ParseText(v); !ok {
			return "subject name is not a NUL-terminated string"
		}
	case TagIssuerName:
		if text[2], ok = tlv.ParseText(v); !ok {
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
