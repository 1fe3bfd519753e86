package capfwire

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/ucsec/ucsec/internal/testpki"
)

// hx decodes hex written with spaces and | separators between fields.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// testDER stands in for a certificate: the codec does not parse X.509.
var testDER = hx("30 03 02 01 05")

type fixture struct {
	name string
	wire []byte
	want Frame
}

func el(tag Tag, v []byte) Element { return Element{Tag: tag, Value: v} }

func fixtures(t testing.TB) []fixture {
	device := []byte("SEP001122334455\x00")
	certValue := cat(hx("01 0007 00 01"), testDER)
	spki, err := x509.MarshalPKIXPublicKey(testpki.Key(t, testpki.EC256).Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(spki) != 91 {
		t.Fatalf("P-256 SPKI is %d bytes, want 91", len(spki))
	}
	return []fixture{
		{"AUTH_REQUEST", hx("55 01 00000001 0008 | 07 0001 03 | 08 0001 00"),
			Frame{CmdAuthRequest, 1, []Element{el(TagVersion, hx("03")), el(TagAuthType, hx("00"))}}},
		{"AUTH_REQUEST CUCM", hx("55 01 00000002 0004 | 07 0001 03"),
			Frame{CmdAuthRequest, 2, []Element{el(TagVersion, hx("03"))}}},
		{"AUTH_RESPONSE no password", cat(hx("55 02 00000001 001f | 01 0001 01 | 07 0001 03 | 0b 0001 00 | 0d 0010"), device),
			Frame{CmdAuthResponse, 1, []Element{el(TagReason, hx("01")), el(TagVersion, hx("03")), el(TagPassword, hx("00")), el(TagDeviceName, device)}}},
		{"AUTH_RESPONSE password", cat(hx("55 02 00000001 0025 | 01 0001 01 | 07 0001 03 | 0b 0007"), []byte("123456\x00"), hx("0d 0010"), device),
			Frame{CmdAuthResponse, 1, []Element{el(TagReason, hx("01")), el(TagVersion, hx("03")), el(TagPassword, []byte("123456\x00")), el(TagDeviceName, device)}}},
		{"KEY_GENERATE_REQUEST RSA-2048", hx("55 03 00000001 0009 | 0a 0002 0800 | 11 0001 00"),
			Frame{CmdKeyGenerateRequest, 1, []Element{el(TagKeySize, hx("0800")), el(TagKeyType, hx("00"))}}},
		{"KEY_GENERATE_REQUEST RSA-1024", hx("55 03 00000001 0009 | 0a 0002 0400 | 11 0001 00"),
			Frame{CmdKeyGenerateRequest, 1, []Element{el(TagKeySize, hx("0400")), el(TagKeyType, hx("00"))}}},
		{"KEY_GENERATE_REQUEST EC P-256", hx("55 03 00000001 0008 | 11 0001 01 | 12 0001 00"),
			Frame{CmdKeyGenerateRequest, 1, []Element{el(TagKeyType, hx("01")), el(TagCurve, hx("00"))}}},
		{"REQUEST_IN_PROGRESS", hx("55 11 00000001 0000"), Frame{CmdRequestInProgress, 1, nil}},
		{"KEY_GENERATE_RESPONSE P-256", cat(hx("55 04 00000001 005e | 09 005b"), spki),
			Frame{CmdKeyGenerateResponse, 1, []Element{el(TagPublicKey, spki)}}},
		{"STORE_CERTIFICATE_REQUEST", cat(hx("55 09 00000001 0011 | 03 0001 01 | 04 000a"), certValue),
			Frame{CmdStoreCertificateRequest, 1, []Element{el(TagCertificateType, hx("01")), el(TagCertificate, certValue)}}},
		{"STORE_CERTIFICATE_RESPONSE", hx("55 0a 00000001 0004 | 01 0001 01"),
			Frame{CmdStoreCertificateResponse, 1, []Element{el(TagReason, hx("01"))}}},
		{"END_SESSION OK", hx("55 0f 00000001 0004 | 01 0001 01"), Frame{CmdEndSession, 1, []Element{el(TagReason, hx("01"))}}},
		{"END_SESSION none", hx("55 0f 00000001 0004 | 01 0001 00"), Frame{CmdEndSession, 1, []Element{el(TagReason, hx("00"))}}},
		{"END_SESSION fail", hx("55 0f 00000001 0004 | 01 0001 07"), Frame{CmdEndSession, 1, []Element{el(TagReason, hx("07"))}}},
		{"END_SESSION unknown", hx("55 0f 00000001 0004 | 01 0001 09"), Frame{CmdEndSession, 1, []Element{el(TagReason, hx("09"))}}},
		{"FETCH_CERTIFICATE_REQUEST", hx("55 0b 00000001 0000"), Frame{CmdFetchCertificateRequest, 1, nil}},
		{"FETCH_CERTIFICATE_RESPONSE", cat(hx("55 0c 00000001 0011 | 01 0001 01 | 04 000a"), certValue),
			Frame{CmdFetchCertificateResponse, 1, []Element{el(TagReason, hx("01")), el(TagCertificate, certValue)}}},
		{"DELETE_CERTIFICATE_REQUEST", hx("55 0d 00000001 0000"), Frame{CmdDeleteCertificateRequest, 1, nil}},
		{"DELETE_CERTIFICATE_RESPONSE", hx("55 0e 00000001 0004 | 01 0001 01"),
			Frame{CmdDeleteCertificateResponse, 1, []Element{el(TagReason, hx("01"))}}},
	}
}

func equalFrames(a, b *Frame) bool {
	return a.Command == b.Command && a.Session == b.Session && equalElements(a.Elements, b.Elements)
}

func equalElements(a, b Elements) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Tag != b[i].Tag || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func TestFixtures(t *testing.T) {
	for _, tt := range fixtures(t) {
		t.Run(tt.name, func(t *testing.T) {
			// A following frame must stay unread.
			r := bytes.NewReader(cat(tt.wire, hx("55")))
			f, err := ReadFrame(r)
			if err != nil {
				t.Fatal(err)
			}
			if r.Len() != 1 {
				t.Errorf("ReadFrame left %d bytes, want 1", r.Len())
			}
			if !equalFrames(f, &tt.want) {
				t.Errorf("decoded %+v\nwant    %+v", f, tt.want)
			}
			got, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.wire) {
				t.Errorf("re-encoded %x\nwant       %x", got, tt.wire)
			}
			// Building from the expected struct gives the same bytes.
			got, err = tt.want.Marshal()
			if err != nil || !bytes.Equal(got, tt.wire) {
				t.Errorf("built %x, %v\nwant  %x", got, err, tt.wire)
			}
		})
	}
}

// TestBuilders builds the fixture frames, those the reference peers
// exchange, with the typed adders.
func TestBuilders(t *testing.T) {
	want := map[string][]byte{}
	for _, fx := range fixtures(t) {
		want[fx.name] = fx.wire
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, f *Frame) {
		t.Helper()
		got, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[name]) {
			t.Errorf("%s: built %x\nwant %x", name, got, want[name])
		}
	}

	f := &Frame{Command: CmdAuthRequest, Session: 1}
	f.AddUint8(TagVersion, 3)
	f.AddUint8(TagAuthType, AuthNone)
	check("AUTH_REQUEST", f)

	f = &Frame{Command: CmdAuthResponse, Session: 1}
	f.AddUint8(TagReason, ReasonOK)
	f.AddUint8(TagVersion, 3)
	must(f.AddString(TagPassword, "123456"))
	must(f.AddString(TagDeviceName, "SEP001122334455"))
	check("AUTH_RESPONSE password", f)

	f = &Frame{Command: CmdKeyGenerateRequest, Session: 1}
	f.AddUint16(TagKeySize, 2048)
	f.AddUint8(TagKeyType, KeyTypeRSA)
	check("KEY_GENERATE_REQUEST RSA-2048", f)

	f = &Frame{Command: CmdKeyGenerateRequest, Session: 1}
	f.AddUint8(TagKeyType, KeyTypeEC)
	f.AddUint8(TagCurve, CurveP256)
	check("KEY_GENERATE_REQUEST EC P-256", f)

	f = &Frame{Command: CmdStoreCertificateRequest, Session: 1}
	f.AddUint8(TagCertificateType, CertificateTypeLSC)
	must(f.AddCertificate(CertificateTypeLSC, testDER))
	check("STORE_CERTIFICATE_REQUEST", f)

	f = &Frame{Command: CmdFetchCertificateResponse, Session: 1}
	f.AddUint8(TagReason, ReasonOK)
	must(f.AddCertificate(CertificateTypeLSC, testDER))
	check("FETCH_CERTIFICATE_RESPONSE", f)

	for name, r := range map[string]uint8{"OK": ReasonOK, "none": ReasonNoAction, "fail": ReasonFailure, "unknown": ReasonUnknownDevice} {
		f = &Frame{Command: CmdEndSession, Session: 1}
		f.AddUint8(TagReason, r)
		check("END_SESSION "+name, f)
	}
	check("REQUEST_IN_PROGRESS", &Frame{Command: CmdRequestInProgress, Session: 1})
	check("FETCH_CERTIFICATE_REQUEST", &Frame{Command: CmdFetchCertificateRequest, Session: 1, Elements: []Element{}})
}

// readErrorCase is a malformed input of a frame reader, the errors it
// must give and the offset its *FrameError must name.
type readErrorCase struct {
	name   string
	in     []byte
	is     []error
	offset int
}

// testReadErrors checks a frame reader (ReadFrame or ReadTVSFrame) on
// malformed inputs, at the end of the input, and on a failing reader
// after header, a complete header announcing a payload.
func testReadErrors[F any](t *testing.T, read func(io.Reader) (F, error), tests []readErrorCase, header []byte) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := read(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("read = %+v, want error", f)
			}
			if !strings.HasPrefix(err.Error(), "capfwire: ") {
				t.Errorf("error %q lacks the capfwire: prefix", err)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q is not %v", err, target)
				}
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %q is not a *FrameError", err)
			}
			if fe.Offset != tt.offset {
				t.Errorf("offset %d, want %d", fe.Offset, tt.offset)
			}
		})
	}

	t.Run("EOF between frames", func(t *testing.T) {
		if _, err := read(bytes.NewReader(nil)); err != io.EOF {
			t.Errorf("err = %v, want io.EOF", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := read(io.MultiReader(bytes.NewReader(header), errReader{boom}))
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "capfwire: ") {
			t.Errorf("err = %v, want wrapped boom", err)
		}
	})
}

func TestReadFrameErrors(t *testing.T) {
	testReadErrors(t, ReadFrame, []readErrorCase{
		{"wrong protocol id", hx("57 01 00000001 0000"), []error{ErrProtocol}, 0},
		{"TVS frame", hx("57 01 01 00 00000001 0004 | 07 0001 00"), []error{ErrProtocol}, 0},
		{"short header", hx("55 01 0000"), []error{ErrMalformed, io.ErrUnexpectedEOF}, 4},
		{"one byte", hx("55"), []error{ErrMalformed, io.ErrUnexpectedEOF}, 1},
		{"short payload", hx("55 0f 00000001 0004 | 01 00"), []error{ErrMalformed, io.ErrUnexpectedEOF}, 10},
		{"no payload", hx("55 0f 00000001 0004"), []error{ErrMalformed, io.ErrUnexpectedEOF}, 8},
		{"element overruns payload", hx("55 0f 00000001 0004 | 01 0002 01"), []error{ErrMalformed}, 8},
		{"second element overruns", hx("55 0f 00000001 0006 | 01 0001 01 | 01 00"), []error{ErrMalformed}, 12},
		{"lone tag", hx("55 0f 00000001 0001 | 01"), []error{ErrMalformed}, 8},
		{"too many elements", cat(hx("55 0f 00000001"), []byte{0, 3 * (MaxElements + 1)}, bytes.Repeat(hx("01 0000"), MaxElements+1)), []error{ErrMalformed}, 8 + 3*MaxElements},
	}, hx("55 0f 00000001 0004"))
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestMarshalTooLong(t *testing.T) {
	big := make([]byte, MaxPayload+1)
	tests := []struct {
		name string
		f    Frame
		ok   bool
	}{
		{"element over 65535", Frame{Command: CmdStoreCertificateRequest, Elements: []Element{el(TagCertificate, big)}}, false},
		{"element of 65535 overflows payload", Frame{Elements: []Element{el(TagCertificate, big[:MaxPayload])}}, false},
		{"payload of 65536", Frame{Elements: []Element{el(TagCertificate, big[:MaxPayload-3-3+1]), el(TagReason, nil)}}, false},
		{"payload of 65535", Frame{Elements: []Element{el(TagCertificate, big[:MaxPayload-3-3]), el(TagReason, nil)}}, true},
		{"too many elements", Frame{Elements: make([]Element, MaxElements+1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.f.Marshal()
			if tt.ok {
				if err != nil || len(b) != HeaderSize+MaxPayload {
					t.Fatalf("Marshal = %d bytes, %v", len(b), err)
				}
				f, err := ReadFrame(bytes.NewReader(b))
				if err != nil || !equalFrames(f, &tt.f) {
					t.Errorf("round trip failed: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTooLong) || b != nil {
				t.Fatalf("Marshal = %d bytes, %v; want ErrTooLong", len(b), err)
			}
			var w countingWriter
			if err := WriteFrame(&w, &tt.f); !errors.Is(err, ErrTooLong) || w.calls != 0 {
				t.Errorf("WriteFrame = %v after %d writes", err, w.calls)
			}
		})
	}
}

type countingWriter struct {
	calls int
	buf   bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls++
	return w.buf.Write(p)
}

func TestWriteFrameOneWrite(t *testing.T) {
	for _, tt := range fixtures(t) {
		var w countingWriter
		if err := WriteFrame(&w, &tt.want); err != nil {
			t.Fatal(err)
		}
		if w.calls != 1 {
			t.Errorf("%s: %d Write calls, want 1", tt.name, w.calls)
		}
		if !bytes.Equal(w.buf.Bytes(), tt.wire) {
			t.Errorf("%s: wrote %x, want %x", tt.name, w.buf.Bytes(), tt.wire)
		}
	}
}

func TestWriteFrameError(t *testing.T) {
	boom := errors.New("boom")
	err := WriteFrame(errWriter{boom}, &Frame{Command: CmdEndSession})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "END_SESSION") {
		t.Errorf("err = %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestDuplicatesAndUnknownTags: kept in order, Get returns the first.
func TestDuplicatesAndUnknownTags(t *testing.T) {
	wire := hx("55 18 ffffffff 0010 | 01 0001 07 | 0e 0000 | 01 0001 01 | ff 0002 abcd")
	f, err := ReadFrame(bytes.NewReader(wire))
	if err != nil {
		t.Fatal(err)
	}
	if f.Command.String() != "24" || f.Session != 0xffffffff || len(f.Elements) != 4 {
		t.Fatalf("got %v %x %d elements", f.Command, f.Session, len(f.Elements))
	}
	if r, err := f.Uint8(TagReason); err != nil || r != ReasonFailure {
		t.Errorf("Uint8(REASON) = %d, %v; want the first, 7", r, err)
	}
	if v, ok := f.Get(14); !ok || len(v) != 0 {
		t.Errorf("Get(14) = %x, %v", v, ok)
	}
	if f.Elements[3].Tag.String() != "255" {
		t.Errorf("tag 255 prints %q", f.Elements[3].Tag)
	}
	if b, _ := f.Marshal(); !bytes.Equal(b, wire) {
		t.Errorf("re-encoded %x", b)
	}
}

// TestValueCapacity: appending to one value must not overwrite the next.
func TestValueCapacity(t *testing.T) {
	f, err := ReadFrame(bytes.NewReader(hx("55 0f 00000001 0008 | 01 0001 01 | 07 0001 03")))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(f.Elements[0].Value, 0xEE)
	if f.Elements[1].Tag != TagVersion || f.Elements[1].Value[0] != 3 {
		t.Error("append to a value clobbered the next element")
	}
}

// allocSlack covers allocator rounding and the frame struct.
const allocSlack = 16384

// readAllocLimit bounds what reading a frame with the given header size and
// payload length may allocate: the payload buffer and at most one Element
// per three payload bytes, and at most MaxElements.
func readAllocLimit(headerSize, payload int) uint64 {
	const elemSize = 32 // Tag + padding + slice header on 64-bit
	return uint64(headerSize + payload + min(payload/3, MaxElements)*elemSize + allocSlack)
}

// allocated runs read and returns its frame (nil on error) and the bytes it
// allocated. (Bytes, not allocation counts: the race detector adds
// allocations.)
func allocated(read func() (any, error)) (any, uint64) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := read()
	runtime.ReadMemStats(&after)
	if err != nil {
		f = nil
	}
	return f, after.TotalAlloc - before.TotalAlloc
}

// TestReadFrameAllocation: see testReadAllocation.
func TestReadFrameAllocation(t *testing.T) {
	testReadAllocation(t, hx("55 0f 00000001"), func(r io.Reader) (Elements, error) {
		f, err := ReadFrame(r)
		if err != nil {
			return nil, err
		}
		return f.Elements, nil
	})
}

// testReadAllocation checks what a frame reader allocates, given the
// header up to its length field. The worst frame, 65535 payload bytes of
// empty elements (21845 of them), is refused as malformed before its
// elements are allocated, so it costs the payload buffer only, as does a
// header that announces 65535 bytes and then stops. A frame of MaxElements
// empty elements is read and costs its payload and its elements.
func testReadAllocation(t *testing.T, prefix []byte, read func(io.Reader) (Elements, error)) {
	t.Helper()
	headerSize := len(prefix) + 2
	var err error
	worst := cat(prefix, hx("ffff"), bytes.Repeat(hx("01 0000"), MaxPayload/3))
	_, got := allocated(func() (any, error) { _, err = read(bytes.NewReader(worst)); return nil, err })
	var fe *FrameError
	if !errors.Is(err, ErrMalformed) || !errors.As(err, &fe) {
		t.Errorf("worst frame: err = %v, want a *FrameError matching ErrMalformed", err)
	} else if want := headerSize + 3*MaxElements; fe.Offset != want {
		t.Errorf("worst frame: error at offset %d, want %d (element %d)", fe.Offset, want, MaxElements+1)
	}
	if limit := uint64(headerSize + MaxPayload + allocSlack); got > limit {
		t.Errorf("worst frame: allocated %d bytes, limit %d", got, limit)
	}

	most := cat(prefix, []byte{0, 3 * MaxElements}, bytes.Repeat(hx("01 0000"), MaxElements))
	var es Elements
	_, got = allocated(func() (any, error) { es, err = read(bytes.NewReader(most)); return nil, err })
	if err != nil || len(es) != MaxElements {
		t.Errorf("frame of %d elements: %d read, %v", MaxElements, len(es), err)
	}
	if limit := readAllocLimit(headerSize, 3*MaxElements); got > limit {
		t.Errorf("frame of %d elements: allocated %d bytes, limit %d", MaxElements, got, limit)
	}

	short := cat(prefix, hx("ffff 01"))
	if _, got := allocated(func() (any, error) { _, err = read(bytes.NewReader(short)); return nil, err }); err == nil {
		t.Error("truncated frame read without error")
	} else if limit := uint64(headerSize + MaxPayload + allocSlack); got > limit {
		t.Errorf("truncated frame: allocated %d bytes, limit %d", got, limit)
	}
}

func TestStrings(t *testing.T) {
	for c := Command(1); c <= 23; c++ {
		if s := c.String(); s == "" || s[0] < 'A' || s[0] > 'Z' {
			t.Errorf("command %d has no name: %q", c, s)
		}
	}
	for _, tag := range []Tag{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20} {
		if s := tag.String(); s == "" || s[0] < 'A' || s[0] > 'Z' {
			t.Errorf("tag %d has no name: %q", tag, s)
		}
	}
	for in, want := range map[string]string{
		CmdAuthRequest.String(): "AUTH_REQUEST", CmdSignCertificateResponse.String(): "SIGN_CERTIFICATE_RESPONSE",
		Command(0).String(): "0", Command(24).String(): "24",
		TagDeviceName.String(): "DEVICE_NAME", TagSHA2SignedData.String(): "SHA2_SIGNED_DATA",
		Tag(0).String(): "0", Tag(14).String(): "14", Tag(15).String(): "15", Tag(21).String(): "21",
	} {
		if in != want {
			t.Errorf("got %q, want %q", in, want)
		}
	}
}
