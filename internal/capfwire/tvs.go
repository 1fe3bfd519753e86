package capfwire

import (
	"fmt"
	"io"
	"strings"

	"github.com/ucsec/ucsec/internal/tlv"
)

// A TVSFrame is one TVS message. Its 10-byte header:
//
//	offset 0  u8      protocol id, always 0x57 ([TVSProtocolID])
//	offset 1  u8      protocol version, 1 ([TVSVersion])
//	offset 2  u8      command ([TVSCommand])
//	offset 3  u8      reserved, 0; meaning unknown
//	offset 4  u32 BE  request id (chosen by the client, echoed by the server)
//	offset 8  u16 BE  payload length, header not included
//	offset 10         elements, as in CAPF
//
// Version and Reserved are kept as read and written as set, so decoding is
// exact; whether a version is acceptable is for the protocol layer to judge.
// A frame to send should have Version [TVSVersion] and Reserved 0.
type TVSFrame struct {
	Version  uint8
	Command  TVSCommand
	Reserved uint8
	ID       uint32
	// Elements in wire order, duplicates and unknown tags kept. A nil or
	// empty slice is an empty payload. Its methods are the frame's, except
	// Certificate and AddCertificate, which TVSFrame replaces with the TVS
	// ones (the CAPF methods read tag 4 and its wrapper).
	Elements
}

// ReadTVSFrame reads exactly one TVS frame from r: io.ReadFull of the
// 10-byte header, then of the payload length it announces, and no further
// byte. A first byte other than [TVSProtocolID] is an [ErrProtocol]; EOF,
// truncation, read errors and too many elements are reported as by
// [ReadFrame], and the element values alias one buffer of at most 65535 bytes
// owned by the frame.
func ReadTVSFrame(r io.Reader) (*TVSFrame, error) {
	var hdr [TVSHeaderSize]byte
	elems, err := readFrame(r, hdr[:], TVSProtocolID)
	if err != nil {
		return nil, err
	}
	return &TVSFrame{
		Version:  hdr[1],
		Command:  TVSCommand(hdr[2]),
		Reserved: hdr[3],
		ID:       uint32(hdr[4])<<24 | uint32(hdr[5])<<16 | uint32(hdr[6])<<8 | uint32(hdr[7]),
		Elements: elems,
	}, nil
}

// Marshal returns the whole frame, header and payload, in one buffer. A
// payload or element value longer than 65535 bytes, or more than
// [MaxElements] elements, is an error ([ErrTooLong]), never truncated.
func (f *TVSFrame) Marshal() ([]byte, error) {
	id := f.ID
	return f.Elements.marshal([]byte{TVSProtocolID, f.Version, uint8(f.Command), f.Reserved, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})
}

// WriteTVSFrame marshals f and writes it with a single call to w.Write.
func WriteTVSFrame(w io.Writer, f *TVSFrame) error {
	b, err := f.Marshal()
	return writeFrame(w, b, err, f.Command)
}

// tvsDeviceNamePrefix is the first byte of a DEVICE_NAME value; its meaning
// is unknown, but every source sends it.
const tvsDeviceNamePrefix = 0x01

// WrapTVSDeviceName returns the value of a TVS DEVICE_NAME element: the byte
// 0x01, then name with no NUL, such as "CP-7962-SEP001122334455". name must
// not be empty nor hold a NUL ([ErrMalformed]); its form is not checked.
func WrapTVSDeviceName(name string) ([]byte, error) {
	if err := checkTVSDeviceName(name); err != nil {
		return nil, err
	}
	v := make([]byte, 1+len(name))
	v[0] = tvsDeviceNamePrefix
	copy(v[1:], name)
	return v, nil
}

func checkTVSDeviceName(name string) error {
	switch {
	case name == "":
		return malformed(tvsTag(TVSTagDeviceName), "empty name")
	case strings.IndexByte(name, 0) >= 0:
		return malformed(tvsTag(TVSTagDeviceName), "name holds a NUL byte")
	case 1+len(name) > tlv.MaxLength:
		return fmt.Errorf("%w: %v element: name of %d bytes", ErrTooLong, tvsTag(TVSTagDeviceName), len(name))
	}
	return nil
}

// UnwrapTVSDeviceName parses the value of a TVS DEVICE_NAME element: 0x01,
// then a name that is not empty and holds no NUL. The name is returned as
// sent; neither its character set nor the CP-<model>-SEP<MAC> form is
// checked (the reference server silently drops names of another form; a
// server should rather answer STATUS invalid).
func UnwrapTVSDeviceName(v []byte) (string, error) {
	if len(v) == 0 || v[0] != tvsDeviceNamePrefix {
		return "", malformed(tvsTag(TVSTagDeviceName), "does not start with 0x01")
	}
	name := string(v[1:])
	if err := checkTVSDeviceName(name); err != nil {
		return "", err
	}
	return name, nil
}

// DeviceName returns the first DEVICE_NAME element, unwrapped with
// [UnwrapTVSDeviceName]. The error matches [ErrMissing] if there is none and
// [ErrMalformed] if it does not have its layout.
func (f *TVSFrame) DeviceName() (string, error) {
	v, err := f.get(TVSTagDeviceName, tvsTag(TVSTagDeviceName))
	if err != nil {
		return "", err
	}
	return UnwrapTVSDeviceName(v)
}

// AddDeviceName appends a DEVICE_NAME element made by [WrapTVSDeviceName].
// It fails, adding nothing, if name is empty, holds a NUL or is too long.
func (f *TVSFrame) AddDeviceName(name string) error {
	v, err := WrapTVSDeviceName(name)
	if err != nil {
		return err
	}
	f.Add(TVSTagDeviceName, v)
	return nil
}

// Certificate returns the first TVS CERTIFICATE element (tag 2): the X.509
// DER as sent, not empty, aliasing the frame and not parsed. Errors are as
// for [TVSFrame.DeviceName].
func (f *TVSFrame) Certificate() ([]byte, error) {
	v, err := f.get(TVSTagCertificate, tvsTag(TVSTagCertificate))
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, malformed(tvsTag(TVSTagCertificate), "empty certificate")
	}
	return v, nil
}

// AddCertificate appends a TVS CERTIFICATE element holding der, which is
// not copied. der must not be empty ([ErrMalformed]) nor longer than 65535
// bytes ([ErrTooLong]); nothing is added then.
func (f *TVSFrame) AddCertificate(der []byte) error {
	switch {
	case len(der) == 0:
		return malformed(tvsTag(TVSTagCertificate), "empty certificate")
	case len(der) > tlv.MaxLength:
		return fmt.Errorf("%w: %v element: certificate of %d bytes", ErrTooLong, tvsTag(TVSTagCertificate), len(der))
	}
	f.Add(TVSTagCertificate, der)
	return nil
}

// Status returns the first STATUS element ([TVSStatusValid],
// [TVSStatusInvalid] or another value, returned unchecked). Errors are as for
// [TVSFrame.DeviceName]. Add one with AddUint8(TVSTagStatus, status).
func (f *TVSFrame) Status() (uint8, error) {
	return f.uint8(TVSTagStatus, tvsTag(TVSTagStatus))
}

// Roles returns the first ROLES element: one byte per role, numbered as in
// ITL files (4 is CAPF, 21 TVS), aliasing the frame. It may be empty. The
// error matches [ErrMissing] if there is none. Add one with
// Add(TVSTagRoles, roles).
func (f *TVSFrame) Roles() ([]byte, error) {
	return f.get(TVSTagRoles, tvsTag(TVSTagRoles))
}

// TTL returns the first TTL element: how many seconds the phone may cache
// the verdict. Errors are as for [TVSFrame.DeviceName]. Add one with
// AddUint32(TVSTagTTL, seconds).
func (f *TVSFrame) TTL() (uint32, error) {
	return f.uint32(TVSTagTTL, tvsTag(TVSTagTTL))
}
