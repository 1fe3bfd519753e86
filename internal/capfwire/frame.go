package capfwire

import (
	"errors"
	"fmt"
	"io"

	"github.com/ucsec/ucsec/internal/tlv"
	"golang.org/x/crypto/cryptobyte"
)

var (
	// ErrProtocol reports a frame whose first byte is not the protocol id
	// expected: [ProtocolID] for [ReadFrame], [TVSProtocolID] for
	// [ReadTVSFrame].
	ErrProtocol = errors.New("capfwire: wrong protocol id")
	// ErrMalformed reports a truncated frame, an element that overruns the
	// payload, a payload of more than [MaxElements] elements, or an element
	// value that does not have its expected layout.
	ErrMalformed = errors.New("capfwire: malformed frame")
	// ErrTooLong reports a payload or element value longer than 65535 bytes
	// (or a certificate or signature too long for its wrapper), or a
	// payload of more than [MaxElements] elements, on output.
	ErrTooLong = errors.New("capfwire: too long")
	// ErrMissing reports that a frame has no element with the requested tag.
	ErrMissing = errors.New("capfwire: element missing")
)

// A FrameError describes a problem in one frame. It unwraps to its Err (one
// of the package's sentinels) and, for a truncated frame, to
// [io.ErrUnexpectedEOF] as well.
type FrameError struct {
	Offset int    // byte offset in the frame, header included
	Msg    string // what is wrong
	Err    error  // ErrProtocol, ErrMalformed or ErrTooLong
	Cause  error  // underlying error, if any
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("capfwire: %s (offset %d)", e.Msg, e.Offset)
}

// Unwrap returns Err and Cause, if set.
func (e *FrameError) Unwrap() []error {
	errs := []error{e.Err}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// An Element is one tag-length-value item of a payload. Its length is
// len(Value).
type Element struct {
	Tag   Tag
	Value []byte
}

// A Frame is one CAPF message.
type Frame struct {
	Command Command
	Session uint32
	// Elements in wire order, duplicates and unknown tags kept. A nil or
	// empty slice is an empty payload. Its methods (Get, Uint8, Add, …)
	// are the frame's.
	Elements
}

// ReadFrame reads exactly one CAPF frame from r: io.ReadFull of the 8-byte
// header, then of the payload length it announces, and no further byte.
//
// If r is at EOF before the first header byte, ReadFrame returns [io.EOF]
// itself, so a caller can tell a peer that closed between frames. A frame cut
// short returns a [*FrameError] that matches both [ErrMalformed] and
// [io.ErrUnexpectedEOF]; other read errors are returned wrapped. A payload of
// more than [MaxElements] elements is an [ErrMalformed]. The element values
// alias one buffer of at most 65535 bytes owned by the Frame.
func ReadFrame(r io.Reader) (*Frame, error) {
	var hdr [HeaderSize]byte
	elems, err := readFrame(r, hdr[:], ProtocolID)
	if err != nil {
		return nil, err
	}
	return &Frame{
		Command:  Command(hdr[1]),
		Session:  uint32(hdr[2])<<24 | uint32(hdr[3])<<16 | uint32(hdr[4])<<8 | uint32(hdr[5]),
		Elements: elems,
	}, nil
}

// Marshal returns the whole frame, header and payload, in one buffer. A
// payload or element value longer than 65535 bytes, or more than
// [MaxElements] elements, is an error ([ErrTooLong]), never truncated.
func (f *Frame) Marshal() ([]byte, error) {
	s := f.Session
	return f.Elements.marshal([]byte{ProtocolID, uint8(f.Command), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)})
}

// WriteFrame marshals f and writes it with a single call to w.Write, as
// phones require (see the package documentation).
func WriteFrame(w io.Writer, f *Frame) error {
	b, err := f.Marshal()
	return writeFrame(w, b, err, f.Command)
}

// The code below is shared by both frame types. Their headers start with the
// protocol id and end with the u16 BE payload length; only what lies between
// (and so the header size) differs.

// readFrame fills hdr (a whole header) from r, checks its protocol id, then
// reads and splits the payload whose length ends the header.
func readFrame(r io.Reader, hdr []byte, protocol uint8) (Elements, error) {
	size := len(hdr)
	if n, err := io.ReadFull(r, hdr); err != nil {
		switch {
		case err == io.EOF:
			return nil, io.EOF
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, &FrameError{Offset: n, Msg: fmt.Sprintf("truncated header: %d of %d bytes", n, size), Err: ErrMalformed, Cause: io.ErrUnexpectedEOF}
		default:
			return nil, fmt.Errorf("capfwire: reading header: %w", err)
		}
	}
	if hdr[0] != protocol {
		return nil, &FrameError{Offset: 0, Msg: fmt.Sprintf("protocol id 0x%02x, want 0x%02x", hdr[0], protocol), Err: ErrProtocol}
	}
	n := int(hdr[size-2])<<8 | int(hdr[size-1]) // at most MaxPayload
	if n == 0 {
		return nil, nil
	}
	payload := make([]byte, n)
	if got, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &FrameError{Offset: size + got, Msg: fmt.Sprintf("truncated payload: %d of %d bytes", got, n), Err: ErrMalformed, Cause: io.ErrUnexpectedEOF}
		}
		return nil, fmt.Errorf("capfwire: reading payload: %w", err)
	}
	return parseElements(payload, size)
}

// parseElements splits a payload that follows a header of headerSize bytes
// into elements. Tag 0x0D is DEVICE_NAME in CAPF, not the lone padding byte
// of signed files, so this uses tlv.ReadPlainElement rather than
// tlv.ReadElement.
func parseElements(payload []byte, headerSize int) (Elements, error) {
	// Count first, so the slice is allocated once at its exact size, and
	// only if there are at most MaxElements.
	count := 0
	for s := cryptobyte.String(payload); len(s) > 0; count++ {
		off := headerSize + len(payload) - len(s)
		if count == MaxElements {
			return nil, &FrameError{Offset: off, Msg: fmt.Sprintf("more than %d elements", MaxElements), Err: ErrMalformed}
		}
		var tag uint8
		var v cryptobyte.String
		if !tlv.ReadPlainElement(&s, &tag, &v) {
			return nil, &FrameError{Offset: off, Msg: fmt.Sprintf("element %d overruns the payload", count), Err: ErrMalformed}
		}
	}
	elems := make(Elements, 0, count)
	for s := cryptobyte.String(payload); len(s) > 0; {
		var tag uint8
		var v cryptobyte.String
		tlv.ReadPlainElement(&s, &tag, &v) // checked above
		elems = append(elems, Element{Tag: Tag(tag), Value: v})
	}
	return elems, nil
}

// payloadLen checks every element and returns the payload size. headerSize
// places the error offsets in the whole frame.
func (es Elements) payloadLen(headerSize int) (int, error) {
	if len(es) > MaxElements {
		return 0, &FrameError{Offset: headerSize, Msg: fmt.Sprintf("%d elements, limit %d", len(es), MaxElements), Err: ErrTooLong}
	}
	n := 0
	for i, e := range es {
		if len(e.Value) > tlv.MaxLength {
			return 0, &FrameError{Offset: headerSize + n, Msg: fmt.Sprintf("element %d (tag %d) value is %d bytes, limit %d", i, e.Tag, len(e.Value), tlv.MaxLength), Err: ErrTooLong}
		}
		n += 3 + len(e.Value)
		if n > MaxPayload {
			return 0, &FrameError{Offset: headerSize + n, Msg: fmt.Sprintf("payload exceeds %d bytes at element %d (tag %d)", MaxPayload, i, e.Tag), Err: ErrTooLong}
		}
	}
	return n, nil
}

// marshal returns prefix (the header without its final length field), the
// payload length, then the elements, in one buffer.
func (es Elements) marshal(prefix []byte) ([]byte, error) {
	headerSize := len(prefix) + 2
	n, err := es.payloadLen(headerSize)
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, headerSize+n))
	b.AddBytes(prefix)
	b.AddUint16(uint16(n))
	for _, e := range es {
		tlv.AddBytes(b, uint8(e.Tag), e.Value)
	}
	out, err := b.Bytes()
	if err != nil {
		// Unreachable: the sizes were checked above.
		return nil, fmt.Errorf("capfwire: %w", err)
	}
	return out, nil
}

// writeFrame hands a marshaled frame (or Marshal's error) to a single
// w.Write call.
func writeFrame(w io.Writer, b []byte, err error, cmd fmt.Stringer) error {
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("capfwire: writing %v frame: %w", cmd, err)
	}
	return nil
}
