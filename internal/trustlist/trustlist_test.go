package trustlist

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

func TestParseVectors(t *testing.T) {
	for name, n := range map[string]int{"ITLFile.tlv": 7, "CTLFile-sha512-v1.1.tlv": 2} {
		data := testkeys.Vector(t, name)
		h, err := sgn.ParseHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		records, err := ParseRecords(data[h.HeaderLength:], h.HeaderLength)
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != n {
			t.Fatalf("%s: %d records", name, len(records))
		}
		out, err := Marshal(records)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data[h.HeaderLength:]) {
			t.Fatalf("%s: records re-encode differently", name)
		}
		// certutils order: 1, 3, 5, 6, 4, 7, 8, 9.
		if got := records[0].Order; !bytes.Equal(got, []byte{3, 5, 6, 4, 7, 8, 9}) {
			t.Errorf("order %v", got)
		}
	}
}

func TestMarshalDefaultOrder(t *testing.T) {
	r := Record{Role: 2, DNSName: "10.48.47.153", IPAddress: []byte{10, 48, 47, 153}, Extra: []sgn.Element{{Tag: 0x42, Value: []byte{1}}}}
	out, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 0, 2, 0, 37, 2, 0, 13, '1', '0', '.', '4', '8', '.', '4', '7', '.', '1', '5', '3', 0, 4, 0, 2, 0, 2, 0x0A, 0, 4, 10, 48, 47, 153, 0x42, 0, 1, 1}
	if !bytes.Equal(out, want) {
		t.Fatalf("got  %x\nwant %x", out, want)
	}
	recs, err := ParseRecords(out, 0)
	if err != nil || len(recs) != 1 || recs[0].DNSName != "10.48.47.153" || len(recs[0].Extra) != 1 {
		t.Fatalf("%+v %v", recs, err)
	}
	bad := Record{Order: []uint8{TagRole, 0x42}}
	if _, err := bad.Marshal(); err == nil {
		t.Error("order naming a missing extra element accepted")
	}
	bad = Record{Order: []uint8{TagRole}, Extra: []sgn.Element{{Tag: 0x42}}}
	if _, err := bad.Marshal(); err == nil {
		t.Error("order leaving out an extra element accepted")
	}
}

func TestParseRecordErrors(t *testing.T) {
	rec := func(body ...byte) []byte {
		n := 5 + len(body)
		return append([]byte{1, 0, 2, byte(n >> 8), byte(n)}, body...)
	}
	for name, in := range map[string][]byte{
		"truncated length": {1, 0, 2, 0},
		"length too small": {1, 0, 2, 0, 4},
		"not a record":     {2, 0, 2, 0, 5},
		"no role":          rec(),
		"padding":          rec(0x0D),
		"duplicate":        rec(4, 0, 2, 0, 0, 4, 0, 2, 0, 0),
		"bad role":         rec(4, 0, 1, 0),
		"bad IP":           rec(4, 0, 2, 0, 0, 0x0A, 0, 3, 1, 2, 3),
		"string":           rec(4, 0, 2, 0, 0, 2, 0, 3, 'a', 'b', 'c'),
		"empty serial":     rec(4, 0, 2, 0, 0, 6, 0, 0),
		"element too long": rec(4, 0, 9, 0, 0),
	} {
		_, err := ParseRecords(in, 100)
		var pe *sgn.ParseError
		if !errors.As(err, &pe) || pe.Offset < 100 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Too many records.
	many := bytes.Repeat(rec(4, 0, 2, 0, 0), MaxRecords+1)
	if _, err := ParseRecords(many, 0); err == nil {
		t.Error("too many records accepted")
	}
}

// FuzzParseRecords checks that record parsing never panics, reports a
// ParseError, and that records that parse re-encode to the same bytes.
func FuzzParseRecords(f *testing.F) {
	data := testkeys.Vector(f, "ITLFile.tlv")
	f.Add(data[388:])
	f.Add([]byte{1, 0, 2, 0, 37, 2, 0, 13, '1', '0', '.', '4', '8', '.', '4', '7', '.', '1', '5', '3', 0, 4, 0, 2, 0, 2, 0x0A, 0, 4, 10, 48, 47, 153, 0x42, 0, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseRecords(data, 0)
		if err != nil {
			var pe *sgn.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		out, err := Marshal(recs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("round trip:\n got %x\nwant %x", out, data)
		}
	})
}
