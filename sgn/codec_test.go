package sgn

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/testkeys"
)

func vector(t testing.TB) []byte { return testkeys.Vector(t, "sgn-sha1/SEP001122334455.cnf.xml.sgn") }

func TestParseVectors(t *testing.T) {
	cert, _ := testkeys.Load(t, "tftp")
	for _, name := range []string{
		"sgn-sha1/SEP001122334455.cnf.xml.sgn", "sgn-sha512/SEP001122334455.cnf.xml.sgn",
		"enc/SEP001122334455.cnf.xml.sgn", "enc/SEP001122334455.cnf.xml.enc.sgn",
		"ITLFile.tlv", "CTLFile-sha512-v1.1.tlv",
	} {
		t.Run(name, func(t *testing.T) {
			data := testkeys.Vector(t, name)
			h, err := parseRaw(data)
			if err != nil {
				t.Fatal(err)
			}
			if h.Length%4 != 0 || len(h.Raw) != h.Length {
				t.Errorf("length %d, raw %d", h.Length, len(h.Raw))
			}
			raw, _, err := h.marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, h.Raw) {
				t.Fatalf("re-encoded header differs:\n got %x\nwant %x", raw, h.Raw)
			}
			if strings.HasSuffix(name, ".sgn") {
				if err := h.checkSigner(cert); err != nil {
					t.Error(err)
				}
				if err := h.verify(data[h.Length:], cert.PublicKey); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	h, err := parseRaw(vector(t))
	if err != nil {
		t.Fatal(err)
	}
	want := rawHeader{
		Version:      [2]uint8{1, 0},
		SignerName:   "CN=Asterisk,O=Asterisk,OU=Asterisk",
		IssuerName:   "CN=Asterisk,O=Asterisk,OU=Asterisk",
		HashCode:     signedfile.HashSHA1,
		ModulusCode:  2,
		Filename:     "SEP001122334455.cnf.xml.sgn",
		Timestamp:    time.Date(2026, 11, 25, 18, 52, 34, 0, time.UTC),
		Padding:      1,
		Length:       424,
		SigOffset:    126,
		SerialNumber: []byte{0x6c, 0x58, 0x09, 0x72, 0xfe, 0x7b, 0x09, 0x60, 0x13, 0xae, 0xc8, 0x7f, 0x33, 0x3a, 0xa6, 0x47},
	}
	got := *h
	if got.Version != want.Version || got.SignerName != want.SignerName || got.IssuerName != want.IssuerName ||
		got.HashCode != want.HashCode || got.ModulusCode != want.ModulusCode || got.Filename != want.Filename ||
		!got.Timestamp.Equal(want.Timestamp) || got.Padding != want.Padding || got.Length != want.Length ||
		got.SigOffset != want.SigOffset || !bytes.Equal(got.SerialNumber, want.SerialNumber) ||
		len(got.Signature) != 256 || got.SignerVersion != nil || got.hash() != crypto.SHA1 {
		t.Fatalf("got %+v", got)
	}
	if len(h.TBS) != h.Length-259 || !bytes.Equal(h.TBS[:126], h.Raw[:126]) || !bytes.Equal(h.TBS[126:], h.Raw[126+259:]) {
		t.Error("TBS is not the header without the signature element")
	}
}

// mutate returns a copy of the vector with f applied.
func mutate(t *testing.T, f func(b []byte) []byte) []byte {
	b := bytes.Clone(vector(t))
	return f(b)
}

// build encodes a header with a custom layout, padded to a multiple of 4,
// followed by a short payload.
func build(t *testing.T, h *rawHeader) []byte {
	t.Helper()
	h.Padding = 0
	raw, _, err := h.marshal()
	if err != nil {
		t.Fatal(err)
	}
	h.Padding = (4 - len(raw)%4) % 4
	raw, _, err = h.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(raw, "payload"...)
}

func validHeader() *rawHeader {
	return &rawHeader{
		Version: [2]uint8{1, 0}, SignerName: "CN=a", IssuerName: "CN=a", SerialNumber: []byte{1},
		HashCode: signedfile.HashSHA1, ModulusCode: 0, Signature: make([]byte, 64), Filename: "f.sgn",
	}
}

func TestParseMalformed(t *testing.T) {
	withLayout := func(mod func(h *rawHeader)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			h := validHeader()
			h.Layout = h.defaultLayout()
			mod(h)
			return build(t, h)
		}
	}
	tests := []struct {
		name   string
		data   func(t *testing.T) []byte
		offset int
		tag    uint8
		msg    string
	}{
		{"empty", func(*testing.T) []byte { return nil }, 0, 0, "too short"},
		{"only version", func(t *testing.T) []byte { return vector(t)[:5] }, 5, 0, "too short"},
		{"cut length", func(t *testing.T) []byte { return vector(t)[:8] }, 5, 0, "too short"},
		{"truncated header", func(t *testing.T) []byte { return vector(t)[:300] }, 5, tagHeaderLength, "past end of file"},
		{"not version first", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[0] = 2; return b }) }, 0, 2, "version"},
		{"version wrong size", func(*testing.T) []byte { return []byte{1, 0, 1, 1, 2, 0, 2, 0, 12, 0, 0, 0} }, 0, 1, "version element is not 2 bytes"},
		{"no header length", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[5] = 3; return b }) }, 5, 3, "header length"},
		{"length not multiple of 4", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[9] = 0xAA; return b }) }, 5, tagHeaderLength, "multiple of 4"},
		{"length too small", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[8], b[9] = 0, 8; return b }) }, 5, tagHeaderLength, "shorter"},
		{"length inside element", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[9] = 0xA4; return b }) }, 416, tagTimestamp, "past the header length"},
		{"garbage after padding", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[9] = 0xAC; return b }) }, 424, '<', "after the header padding"},
		{"container too short", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[110] = 14; return b }) }, 115, tagSignatureAlgorithmInfo, "end of its container"},
		{"string without NUL", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[50] = 'x'; return b }) }, 13, tagSignerName, "NUL-terminated"},
		{"unknown hash", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[114] = 9; return b }) }, 111, tagHashAlgorithm, "unknown hash"},
		{"unknown signature algorithm", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[121] = 1; return b }) }, 118, tagSignatureAlgorithm, "unknown signature algorithm"},
		{"unknown modulus code", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[125] = 4; return b }) }, 122, tagSignatureModulus, "modulus code"},
		{"signature wrong size", func(t *testing.T) []byte { return mutate(t, func(b []byte) []byte { b[125] = 1; return b }) }, 126, tagSignature, "signature size"},
		{"duplicate element", withLayout(func(h *rawHeader) { h.Layout = append(h.Layout, layoutSlot{Tag: tagFilename}) }), 0, tagFilename, "duplicate"},
		{"no signature", withLayout(func(h *rawHeader) { h.Layout = slices.Delete(h.Layout, 11, 12) }), 0, tagSignature, "no signature"},
		{"padding in the middle", withLayout(func(h *rawHeader) {
			// A padding byte (written as 0D 00 00) before the file name.
			h.Layout = slices.Insert(h.Layout, 12, layoutSlot{Tag: 0x0D})
			h.Layout = append(h.Layout, layoutSlot{Tag: 0x42})
			h.Extra = []Element{{Tag: 0x0D}, {Tag: 0x42, Value: []byte{1}}}
		}), 0, 0, "element after the header padding"},
		{"signature moved", withLayout(func(h *rawHeader) {
			h.Layout = append(slices.Delete(h.Layout, 11, 12), layoutSlot{Tag: tagSignature})
		}), 0, tagSignature, "does not follow the signature info"},
		{"unknown element is kept", withLayout(func(h *rawHeader) {
			h.Layout = append(h.Layout, layoutSlot{Tag: 0x99})
			h.Extra = []Element{{Tag: 0x99, Value: []byte{1}}}
		}), 0, 0, "ok"},
		{"timestamp wrong size", func(t *testing.T) []byte {
			data := withLayout(func(h *rawHeader) {
				h.Layout = append(h.Layout, layoutSlot{Tag: 0x99})
				h.Extra = []Element{{Tag: 0x99, Value: []byte{1, 2, 3}}}
			})(t)
			data[bytes.Index(data, []byte{0x99, 0, 3})] = tagTimestamp
			return data
		}, 0, tagTimestamp, "timestamp is not 4 bytes"},
		{"too deep", withLayout(func(h *rawHeader) {
			h.Layout = []layoutSlot{{tagVersion, 0}, {tagHeaderLength, 0},
				{tagSignerInfo, 4}, {tagSignerName, 0}, {tagSerialNumber, 0}, {tagIssuerName, 0},
				{tagSignatureInfo, 1}, {tagSignatureAlgorithmInfo, 2}, {tagSignatureAlgorithm, 0}, {tagSignatureModulus, 0},
				{tagHashAlgorithm, 0}, {tagSignature, 0}, {tagFilename, 0}}
		}), 0, tagSignatureAlgorithmInfo, "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			h, err := parseRaw(data)
			if tt.msg == "ok" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if tt.msg == "" {
				// Built layouts whose length is not a multiple of 4 fail
				// there first; any ParseError is right.
				if err == nil {
					t.Fatalf("parsed %+v", h)
				}
			}
			if h != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, %v; want ErrMalformed", h, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%v is not a *ParseError", err)
			}
			if tt.msg == "" {
				return
			}
			if !strings.Contains(pe.Msg, tt.msg) || (tt.offset != 0 && pe.Offset != tt.offset) || pe.Tag != tt.tag {
				t.Errorf("got offset %d tag %#x %q; want offset %d tag %#x %q", pe.Offset, pe.Tag, pe.Msg, tt.offset, tt.tag, tt.msg)
			}
		})
	}
}

// TestParseLayouts checks headers written in other legal shapes: Cisco
// firmware (no timestamp, 1.1), unknown elements, a signer version.
func TestParseLayouts(t *testing.T) {
	_, key := testkeys.Load(t, "tftp")
	sv := [2]uint8{1, 1}
	for name, h := range map[string]*rawHeader{
		"firmware": {Version: [2]uint8{1, 1}, Filename: "dsp.sbn"},
		"trust list": {Version: [2]uint8{1, 2}, Filename: "ITLFile.tlv", SignerVersion: &sv,
			Timestamp: time.Unix(0x6B072E71, 0)},
		"extras": {Version: [2]uint8{2, 0}, Filename: "SEP.cnf.xml.enc.sgn", Timestamp: time.Unix(1, 0),
			Extra: []Element{{Tag: 0x10, Value: []byte{0x11, 0, 0}}, {Tag: 0x1A, Value: []byte{1}}, {Tag: 0x1B, Value: make([]byte, 20)}}},
		"empty strings": {Version: [2]uint8{1, 0}},
	} {
		t.Run(name, func(t *testing.T) {
			h.SignerName, h.IssuerName, h.SerialNumber, h.HashCode = "CN=x;OU=y", "CN=ca", []byte{0, 0x81}, signedfile.HashSHA512
			file, err := signRaw(nil, h, []byte("payload"), key)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseRaw(file)
			if err != nil {
				t.Fatal(err)
			}
			if p.Length%4 != 0 || p.Padding > 3 || string(file[p.Length:]) != "payload" {
				t.Errorf("length %d padding %d", p.Length, p.Padding)
			}
			if err := p.verify(file[p.Length:], key.Public()); err != nil {
				t.Error(err)
			}
			if len(p.Extra) != len(h.Extra) || !bytes.Equal(p.SerialNumber, h.SerialNumber) ||
				(p.SignerVersion == nil) != (h.SignerVersion == nil) {
				t.Errorf("got %+v", p)
			}
			raw, _, err := p.marshal()
			if err != nil || !bytes.Equal(raw, p.Raw) {
				t.Errorf("round trip: %v", err)
			}
		})
	}
}

func TestSignInvariants(t *testing.T) {
	cert, key := testkeys.Load(t, "tftp")
	for n := range 8 {
		h := &rawHeader{Version: [2]uint8{1, 0}, HashCode: signedfile.HashSHA1, Filename: strings.Repeat("f", n+1)}
		if err := h.setSigner(cert); err != nil {
			t.Fatal(err)
		}
		file, err := signRaw(nil, h, nil, key)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseRaw(file)
		if err != nil {
			t.Fatal(err)
		}
		if p.Length != len(file) || p.Length%4 != 0 {
			t.Errorf("filename %d: header length %d, file %d", n+1, p.Length, len(file))
		}
		if err := p.checkSigner(cert); err != nil {
			t.Error(err)
		}
		// 0x07 is always 15 bytes long, 0x09 always 8.
		i := bytes.Index(file, []byte{tagSignatureInfo, 0, 15, tagHashAlgorithm, 0, 1, signedfile.HashSHA1, tagSignatureAlgorithmInfo, 0, 8})
		if i < 0 {
			t.Error("signature info container not as expected")
		}
	}
}

func TestSignRawErrors(t *testing.T) {
	_, ec := testkeys.Load(t, "tftp-ec-p384")
	_, key := testkeys.Load(t, "tftp")
	odd, err := rsa.GenerateKey(nil, 1536)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		h    *rawHeader
		priv crypto.Signer
	}{
		"ec key":       {validHeader(), ec},
		"odd rsa size": {validHeader(), odd},
		"no hash":      {&rawHeader{}, key},
		"NUL in name":  {&rawHeader{HashCode: signedfile.HashSHA1, Filename: "a\x00b"}, key},
		"timestamp":    {&rawHeader{HashCode: signedfile.HashSHA1, Timestamp: time.Unix(1<<33, 0)}, key},
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := signRaw(nil, tc.h, nil, tc.priv); err == nil {
				t.Fatalf("signed %d bytes", len(out))
			}
		})
	}
}

func TestVerifyFailures(t *testing.T) {
	cert, _ := testkeys.Load(t, "tftp")
	other, _ := testkeys.Load(t, "sast")
	ec, _ := testkeys.Load(t, "tftp-ec-p384")
	data := vector(t)
	h, err := parseRaw(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.verify(data[h.Length:], other.PublicKey); !errors.Is(err, ErrVerification) {
		t.Errorf("wrong key: %v", err)
	}
	if err := h.verify(data[h.Length:], ec.PublicKey); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("ec key: %v", err)
	}
	if err := h.checkSigner(other); !errors.Is(err, ErrWrongSigner) {
		t.Errorf("wrong signer: %v", err)
	}
	if err := h.verify(append(bytes.Clone(data[h.Length:]), 0), cert.PublicKey); !errors.Is(err, ErrVerification) {
		t.Errorf("longer payload: %v", err)
	}
}

// FuzzParseHeaderLayout checks that Parse never panics, that every error is a
// *ParseError wrapping ErrMalformed, and that re-encoding a parsed header
// gives back its bytes.
func FuzzParseHeaderLayout(f *testing.F) {
	for _, name := range []string{"sgn-sha1/SEP001122334455.cnf.xml.sgn", "enc/SEP001122334455.cnf.xml.enc.sgn", "CTLFile-sha512-v1.1.tlv"} {
		f.Add(testkeys.Vector(f, name))
	}
	f.Add([]byte{1, 0, 2, 1, 0, 2, 0, 12, 0x0D, 0x0D})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseRaw(data)
		if err != nil {
			var pe *ParseError
			if h != nil || !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) {
				t.Fatalf("bad error %v (header %v)", err, h)
			}
			return
		}
		raw, sigOff, err := h.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, data[:h.Length]) || sigOff != h.SigOffset {
			t.Fatalf("round trip:\n got %x\nwant %x", raw, data[:h.Length])
		}
	})
}

func TestMarshalLayoutErrors(t *testing.T) {
	for name, mod := range map[string]func(h *rawHeader){
		"extra not in layout":      func(h *rawHeader) { h.Layout = h.defaultLayout(); h.Extra = []Element{{Tag: 0x42}} },
		"layout without extra":     func(h *rawHeader) { h.Layout = append(h.defaultLayout(), layoutSlot{Tag: 0x42}) },
		"layout ends in container": func(h *rawHeader) { h.Layout = []layoutSlot{{tagSignerInfo, 2}, {Tag: tagSignerName}} },
		"children under a value":   func(h *rawHeader) { h.Layout = []layoutSlot{{tagFilename, 1}, {Tag: tagSignerName}} },
	} {
		h := validHeader()
		mod(h)
		if _, _, err := h.marshal(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
