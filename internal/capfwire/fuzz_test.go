package capfwire

import (
	"bytes"
	"io"
	"testing"
)

// fuzzRead is the body shared by the frame fuzz targets: read must not
// panic, must consume exactly the header and the payload length it
// announces, must allocate no more than that payload allows, and every frame
// that decodes must re-marshal to the bytes it came from (the element
// encoding has no non-canonical form). It returns the frame, if one decoded.
func fuzzRead[F interface{ Marshal() ([]byte, error) }](t *testing.T, data []byte, headerSize int, read func(io.Reader) (F, error)) (fr F, ok bool) {
	announced := 0
	if len(data) >= headerSize {
		announced = int(data[headerSize-2])<<8 | int(data[headerSize-1])
	}
	r := bytes.NewReader(data)
	got, alloc := allocated(func() (any, error) { return read(r) })
	if limit := readAllocLimit(headerSize, announced); alloc > limit {
		t.Fatalf("allocated %d bytes, limit %d", alloc, limit)
	}
	if got == nil {
		return fr, false
	}
	fr = got.(F)
	n := len(data) - r.Len()
	if n < headerSize || n != headerSize+announced {
		t.Fatalf("consumed %d bytes, header announces %d + %d", n, headerSize, announced)
	}
	b, err := fr.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(b, data[:n]) {
		t.Fatalf("re-marshaled %x\nfrom        %x", b, data[:n])
	}
	return fr, true
}

// FuzzReadFrame: see fuzzRead; also, the CAPF element helpers never panic
// on what ReadFrame returns, and their values round-trip.
func FuzzReadFrame(f *testing.F) {
	for _, fx := range fixtures(f) {
		f.Add(fx.wire)
	}
	f.Add(hx("55 0f 00000001 0004 | 01 0002 01"))
	f.Add(hx("55 01 0000"))
	f.Add(cat(hx("55 0f 00000001"), []byte{0, 3 * MaxElements}, bytes.Repeat(hx("01 0000"), MaxElements)))
	f.Add(cat(hx("55 0f 00000001"), []byte{0, 3 * (MaxElements + 1)}, bytes.Repeat(hx("01 0000"), MaxElements+1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ok := fuzzRead(t, data, HeaderSize, ReadFrame)
		if !ok {
			return
		}
		_, _ = fr.Password()
		_, _ = fr.Uint16(TagKeySize)
		_, _ = fr.Uint32(TagKeySize)
		if v, ok := fr.Get(TagSHA2SignedData); ok {
			if id, sig, err := UnwrapSHA2SignedData(v); err == nil {
				w, err := WrapSHA2SignedData(id, sig)
				if err != nil || !bytes.Equal(w, v) {
					t.Fatalf("SHA2_SIGNED_DATA round trip: %x, %v", w, err)
				}
			}
		}
		if ct, der, err := fr.Certificate(); err == nil {
			w, err := WrapCertificate(ct, der)
			if v, _ := fr.Get(TagCertificate); err != nil || !bytes.Equal(w, v) {
				t.Fatalf("CERTIFICATE round trip: %x, %v", w, err)
			}
		}
	})
}

// FuzzReadTVSFrame: see fuzzRead; also, the TVS element helpers never panic
// on what ReadTVSFrame returns, and their values round-trip.
func FuzzReadTVSFrame(f *testing.F) {
	for _, fx := range tvsFixtures() {
		f.Add(fx.wire)
	}
	f.Add(hx("57 01 02 00 00000001 0004 | 07 0002 00"))
	f.Add(hx("57 01 02 00 0000"))
	f.Add(cat(hx("57 01 02 00 00000001"), []byte{0, 3 * MaxElements}, bytes.Repeat(hx("07 0000"), MaxElements)))
	f.Add(cat(hx("57 01 02 00 00000001 ffff"), bytes.Repeat(hx("07 0000"), MaxPayload/3)))
	f.Add(hx("55 0f 00000001 0004 | 01 0001 01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ok := fuzzRead(t, data, TVSHeaderSize, ReadTVSFrame)
		if !ok {
			return
		}
		_, _ = fr.Status()
		_, _ = fr.Roles()
		_, _ = fr.TTL()
		_, _ = fr.Certificate()
		if name, err := fr.DeviceName(); err == nil {
			w, err := WrapTVSDeviceName(name)
			if v, _ := fr.Get(TVSTagDeviceName); err != nil || !bytes.Equal(w, v) {
				t.Fatalf("DEVICE_NAME round trip: %x, %v", w, err)
			}
		}
	})
}
