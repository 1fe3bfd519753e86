package capfwire

import (
	"bytes"
	"testing"
)

// FuzzReadFrame: no panic; ReadFrame consumes exactly header + payload
// length; every frame that decodes re-marshals to the bytes it came from (the
// element encoding has no non-canonical form); the element helpers never
// panic on what it returns.
func FuzzReadFrame(f *testing.F) {
	for _, fx := range fixtures(f) {
		f.Add(fx.wire)
	}
	f.Add(hx("55 0f 00000001 0004 | 01 0002 01"))
	f.Add(hx("55 01 0000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		fr, err := ReadFrame(r)
		if err != nil {
			return
		}
		n := len(data) - r.Len()
		if n < HeaderSize || n > HeaderSize+MaxPayload || n != HeaderSize+(int(data[6])<<8|int(data[7])) {
			t.Fatalf("consumed %d bytes", n)
		}
		b, err := fr.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if !bytes.Equal(b, data[:n]) {
			t.Fatalf("re-marshaled %x\nfrom        %x", b, data[:n])
		}
		_, _ = fr.Password()
		_, _ = fr.Uint16(TagKeySize)
		_, _, _ = fr.Certificate()
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
