package capfwire

import (
	"errors"
	"fmt"
	"io"

	"github.com/ucsec/ucsec/internal/tlv"
	"golang.org/x/crypto/cryptobyte"
)

var (
	// ErrProtocol reports a frame whose first byte is not [ProtocolID].
	ErrProtocol = errors.New("capfwire: not a CAPF frame")
	// ErrMalformed reports a truncated frame, an element that overruns the
	// payload, or an element value that does not have its expected layout.
	ErrMalformed = errors.New("capfwire: malformed frame")
	// ErrTooLong reports a payload or element value longer than 65535 bytes
	// (or a certificate or signature too long for its wrapper) on output.
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
	// empty slice is an empty payload.
	Elements []Element
}

// ReadFrame reads exactly one frame from r: io.ReadFull of the 8-byte
// header, then of the payload length it announces, and no further byte.
//
// If r is at EOF before the first header byte, ReadFrame returns [io.EOF]
// itself, so a caller can tell a peer that closed between frames. A frame cut
// short returns a [*FrameError] that matches both [ErrMalformed] and
// [io.ErrUnexpectedEOF]; other read errors are returned wrapped. The element
// values alias one buffer of at most 65535 bytes owned by the Frame.
func ReadFrame(r io.Reader) (*Frame, error) {
	var hdr [HeaderSize]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		switch {
		case err == io.EOF:
			return nil, io.EOF
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, &FrameError{Offset: n, Msg: fmt.Sprintf("truncated header: %d of %d bytes", n, HeaderSize), Err: ErrMalformed, Cause: io.ErrUnexpectedEOF}
		default:
			return nil, fmt.Errorf("capfwire: reading header: %w", err)
		}
	}
	if hdr[0] != ProtocolID {
		return nil, &FrameError{Offset: 0, Msg: fmt.Sprintf("protocol id 0x%02x, want 0x%02x", hdr[0], ProtocolID), Err: ErrProtocol}
	}
	f := &Frame{
		Command: Command(hdr[1]),
		Session: uint32(hdr[2])<<24 | uint32(hdr[3])<<16 | uint32(hdr[4])<<8 | uint32(hdr[5]),
	}
	n := int(hdr[6])<<8 | int(hdr[7]) // at most MaxPayload
	if n == 0 {
		return f, nil
	}
	payload := make([]byte, n)
	if got, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &FrameError{Offset: HeaderSize + got, Msg: fmt.Sprintf("truncated payload: %d of %d bytes", got, n), Err: ErrMalformed, Cause: io.ErrUnexpectedEOF}
		}
		return nil, fmt.Errorf("capfwire: reading payload: %w", err)
	}
	elems, err := parseElements(payload)
	if err != nil {
		return nil, err
	}
	f.Elements = elems
	return f, nil
}

// parseElements splits a payload into elements. Tag 0x0D is DEVICE_NAME in
// CAPF, not the lone padding byte of signed files, so this uses
// tlv.ReadPlainElement rather than tlv.ReadElement.
func parseElements(payload []byte) ([]Element, error) {
	// Count first, so the slice is allocated once at its exact size.
	count := 0
	for s := cryptobyte.String(payload); len(s) > 0; count++ {
		off := HeaderSize + len(payload) - len(s)
		var tag uint8
		var v cryptobyte.String
		if !tlv.ReadPlainElement(&s, &tag, &v) {
			return nil, &FrameError{Offset: off, Msg: fmt.Sprintf("element %d overruns the payload", count), Err: ErrMalformed}
		}
	}
	elems := make([]Element, 0, count)
	for s := cryptobyte.String(payload); len(s) > 0; {
		var tag uint8
		var v cryptobyte.String
		tlv.ReadPlainElement(&s, &tag, &v) // checked above
		elems = append(elems, Element{Tag: Tag(tag), Value: v})
	}
	return elems, nil
}

// payloadLen checks every element and returns the payload size.
func (f *Frame) payloadLen() (int, error) {
	n := 0
	for i, e := range f.Elements {
		if len(e.Value) > tlv.MaxLength {
			return 0, &FrameError{Offset: HeaderSize + n, Msg: fmt.Sprintf("element %d (%v) value is %d bytes, limit %d", i, e.Tag, len(e.Value), tlv.MaxLength), Err: ErrTooLong}
		}
		n += 3 + len(e.Value)
		if n > MaxPayload {
			return 0, &FrameError{Offset: HeaderSize + n, Msg: fmt.Sprintf("payload exceeds %d bytes at element %d (%v)", MaxPayload, i, e.Tag), Err: ErrTooLong}
		}
	}
	return n, nil
}

// Marshal returns the whole frame, header and payload, in one buffer. A
// payload or element value longer than 65535 bytes is an error ([ErrTooLong]),
// never truncated.
func (f *Frame) Marshal() ([]byte, error) {
	n, err := f.payloadLen()
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, HeaderSize+n))
	b.AddUint8(ProtocolID)
	b.AddUint8(uint8(f.Command))
	b.AddUint32(f.Session)
	b.AddUint16(uint16(n))
	for _, e := range f.Elements {
		tlv.AddBytes(b, uint8(e.Tag), e.Value)
	}
	out, err := b.Bytes()
	if err != nil {
		// Unreachable: the sizes were checked above.
		return nil, fmt.Errorf("capfwire: %w", err)
	}
	return out, nil
}

// WriteFrame marshals f and writes it with a single call to w.Write, as
// phones require (see the package documentation).
func WriteFrame(w io.Writer, f *Frame) error {
	b, err := f.Marshal()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("capfwire: writing %v frame: %w", f.Command, err)
	}
	return nil
}
