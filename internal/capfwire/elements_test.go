package capfwire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestTypedGetters(t *testing.T) {
	var fx = map[string]fixture{}
	for _, f := range fixtures(t) {
		fx[f.name] = f
	}
	f := fx["AUTH_RESPONSE password"].want
	if name, err := f.Text(TagDeviceName); err != nil || name != "SEP001122334455" {
		t.Errorf("DEVICE_NAME = %q, %v", name, err)
	}
	if pw, err := f.Password(); err != nil || pw != "123456" {
		t.Errorf("Password = %q, %v", pw, err)
	}
	if v, err := f.Uint8(TagVersion); err != nil || v != 3 {
		t.Errorf("VERSION = %d, %v", v, err)
	}
	f = fx["AUTH_RESPONSE no password"].want
	if pw, err := f.Password(); err != nil || pw != "" {
		t.Errorf("empty Password = %q, %v", pw, err)
	}
	// Jabber: no PASSWORD element at all reads as empty.
	jabber := &Frame{Command: CmdAuthResponse}
	jabber.AddUint8(TagVersion, 2)
	if pw, err := jabber.Password(); err != nil || pw != "" {
		t.Errorf("absent Password = %q, %v", pw, err)
	}
	if _, err := jabber.Text(TagDeviceName); !errors.Is(err, ErrMissing) {
		t.Errorf("absent DEVICE_NAME: %v", err)
	}

	f = fx["KEY_GENERATE_REQUEST RSA-2048"].want
	if n, err := f.Uint16(TagKeySize); err != nil || n != 2048 {
		t.Errorf("KEY_SIZE = %d, %v", n, err)
	}
	f = fx["KEY_GENERATE_REQUEST EC P-256"].want
	if kt, err := f.Uint8(TagKeyType); err != nil || kt != KeyTypeEC {
		t.Errorf("KEY_TYPE = %d, %v", kt, err)
	}
	if c, err := f.Uint8(TagCurve); err != nil || c != CurveP256 {
		t.Errorf("CURVE = %d, %v", c, err)
	}
	if _, err := f.Uint16(TagKeySize); !errors.Is(err, ErrMissing) {
		t.Errorf("absent KEY_SIZE: %v", err)
	}
	f = fx["STORE_CERTIFICATE_REQUEST"].want
	if ct, err := f.Uint8(TagCertificateType); err != nil || ct != CertificateTypeLSC {
		t.Errorf("CERTIFICATE_TYPE = %d, %v", ct, err)
	}
	if ct, der, err := f.Certificate(); err != nil || ct != CertificateTypeLSC || !bytes.Equal(der, testDER) {
		t.Errorf("Certificate = %d %x %v", ct, der, err)
	}
	if _, _, err := jabber.Certificate(); !errors.Is(err, ErrMissing) {
		t.Errorf("absent CERTIFICATE: %v", err)
	}

	bad := &Frame{Elements: []Element{
		el(TagReason, nil), el(TagKeySize, hx("08")), el(TagDeviceName, []byte("SEP")),
		el(TagPassword, []byte("a\x00b\x00")), el(TagCertificate, hx("01 00"))}}
	for _, err := range []error{
		second(bad.Uint8(TagReason)), second(bad.Uint16(TagKeySize)),
		second(bad.Text(TagDeviceName)), second(bad.Password()), third(bad.Certificate()),
	} {
		if !errors.Is(err, ErrMalformed) || !strings.HasPrefix(err.Error(), "capfwire: ") {
			t.Errorf("malformed value: %v", err)
		}
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

func TestAddString(t *testing.T) {
	var f Frame
	if err := f.AddString(TagDeviceName, "SEP\x00"); !errors.Is(err, ErrMalformed) {
		t.Errorf("NUL inside: %v", err)
	}
	if err := f.AddString(TagPassword, strings.Repeat("x", MaxPayload)); !errors.Is(err, ErrTooLong) {
		t.Errorf("too long: %v", err)
	}
	if len(f.Elements) != 0 {
		t.Errorf("failed adds left %d elements", len(f.Elements))
	}
	if err := f.AddString(TagPassword, ""); err != nil || !bytes.Equal(f.Elements[0].Value, []byte{0}) {
		t.Errorf("empty string: %x, %v", f.Elements, err)
	}
}

func TestCertificateWrapper(t *testing.T) {
	v, err := WrapCertificate(CertificateTypeMIC, testDER)
	if err != nil || !bytes.Equal(v, cat(hx("01 0007 00 02"), testDER)) {
		t.Fatalf("WrapCertificate = %x, %v", v, err)
	}
	// What the Jabber capture shows real CUCM sending: 01 <len+2> 00 01 <DER>.
	big := bytes.Repeat([]byte{0x30}, 1000)
	v, err = WrapCertificate(CertificateTypeLSC, big)
	if err != nil || !bytes.Equal(v[:5], hx("01 03ea 00 01")) {
		t.Fatalf("WrapCertificate(1000) = %x…, %v", v[:5], err)
	}
	if ct, der, err := UnwrapCertificate(v); err != nil || ct != 1 || !bytes.Equal(der, big) {
		t.Errorf("UnwrapCertificate = %d, %d bytes, %v", ct, len(der), err)
	}

	for name, in := range map[string][]byte{
		"empty":         nil,
		"wrapper only":  hx("01 0002 00 01"),
		"short wrapper": hx("01 0007 00"),
		"first byte":    cat(hx("02 0007 00 01"), testDER),
		"zero byte":     cat(hx("01 0007 01 01"), testDER),
		"length short":  cat(hx("01 0006 00 01"), testDER),
		"length long":   cat(hx("01 0008 00 01"), testDER),
		"DER length":    cat(hx("01 0005 00 01"), testDER),
		"no wrapper":    testDER,
	} {
		if _, _, err := UnwrapCertificate(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := WrapCertificate(1, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty DER: %v", err)
	}
	if _, err := WrapCertificate(1, make([]byte, MaxCertificateSize+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversize DER: %v", err)
	}
	v, err = WrapCertificate(1, make([]byte, MaxCertificateSize))
	if err != nil || len(v) != MaxPayload {
		t.Errorf("largest DER: %d bytes, %v", len(v), err)
	}
	var f Frame
	if err := f.AddCertificate(1, nil); err == nil || len(f.Elements) != 0 {
		t.Errorf("AddCertificate(empty) = %v, %d elements", err, len(f.Elements))
	}
}

func TestSHA2SignedData(t *testing.T) {
	sig := bytes.Repeat([]byte{0xAB}, 256)
	v, err := WrapSHA2SignedData(HashSHA512, sig)
	if err != nil || !bytes.Equal(v, cat(hx("03 0100"), sig)) {
		t.Fatalf("WrapSHA2SignedData = %x…, %v", v[:3], err)
	}
	if id, got, err := UnwrapSHA2SignedData(v); err != nil || id != HashSHA512 || !bytes.Equal(got, sig) {
		t.Errorf("UnwrapSHA2SignedData = %d, %d bytes, %v", id, len(got), err)
	}
	for name, in := range map[string][]byte{
		"empty":        nil,
		"no length":    hx("03 01"),
		"no signature": hx("03 0000"),
		"short":        hx("03 0002 ab"),
		"long":         hx("03 0001 abab"),
	} {
		if _, _, err := UnwrapSHA2SignedData(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := WrapSHA2SignedData(3, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty signature: %v", err)
	}
	if _, err := WrapSHA2SignedData(3, make([]byte, MaxPayload-2)); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversize signature: %v", err)
	}
}
