package pkcs7x

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testpki"
)

// openssl returns the openssl binary. Without one the test is skipped, and
// fails in CI (CI set), where it must run.
func openssl(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed, and CI requires it")
		}
		t.Skip("openssl is not installed")
	}
	return p
}

// certs returns three throw-away certificates: a CA, an intermediate and a
// leaf, with EC P-256 keys.
func certs(t testing.TB) []*x509.Certificate {
	t.Helper()
	root, inter, key := testpki.Chain(t)
	leaf := testpki.Issue(t, testpki.Leaf("SEP001122334455"), inter, testpki.Key(t, testpki.EC256).Public(), key)
	return []*x509.Certificate{root, inter, leaf}
}

func sameCerts(t *testing.T, got, want []*x509.Certificate) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d certificates, want %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			t.Fatalf("certificate %d: got %q, want %q", i, got[i].Subject, want[i].Subject)
		}
	}
}

func TestPKCS7RoundTrip(t *testing.T) {
	cs := certs(t)
	for n := 1; n <= len(cs); n++ {
		p7, err := CertificatesOnly(cs[:n]...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseCertificates(p7)
		if err != nil {
			t.Fatalf("%d certificates: %v", n, err)
		}
		sameCerts(t, got, cs[:n])
	}
	if _, err := CertificatesOnly(); err == nil {
		t.Error("CertificatesOnly() with no certificate: no error")
	}
	if _, err := CertificatesOnly(cs[0], nil); err == nil {
		t.Error("CertificatesOnly with a nil certificate: no error")
	}
}

// TestPKCS7OpenSSL reads a bundle that openssl made and has openssl read
// one that CertificatesOnly made.
func TestPKCS7OpenSSL(t *testing.T) {
	ossl := openssl(t)
	cs := certs(t)
	dir := t.TempDir()
	var args []string
	for i, c := range cs {
		name := filepath.Join(dir, "c"+string(rune('0'+i))+".pem")
		if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-certfile", name)
	}
	out, err := exec.Command(ossl, append([]string{"crl2pkcs7", "-nocrl", "-outform", "DER"}, args...)...).Output()
	if err != nil {
		t.Fatalf("openssl crl2pkcs7: %v", err)
	}
	got, err := ParseCertificates(out)
	if err != nil {
		t.Fatalf("openssl's bundle: %v", err)
	}
	sameCerts(t, got, cs)

	p7, err := CertificatesOnly(cs...)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "ours.p7b")
	if err := os.WriteFile(name, p7, 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command(ossl, "pkcs7", "-inform", "DER", "-in", name, "-print_certs", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs7: %v\n%s", err, text)
	}
	for _, c := range cs {
		if !strings.Contains(string(text), "CN = "+c.Subject.CommonName) {
			t.Errorf("openssl pkcs7 -print_certs does not show %q:\n%s", c.Subject.CommonName, text)
		}
	}
}

// toBER re-encodes every non-empty constructed value of DER with the
// indefinite length form, down to depth levels. (pkcs7 cannot read an empty
// value in that form: see TestPKCS7EmptyIndefinite.)
func toBER(t testing.TB, der []byte, depth int) []byte {
	t.Helper()
	var out []byte
	for len(der) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(der, &v)
		if err != nil {
			t.Fatal(err)
		}
		if v.IsCompound && depth > 0 && len(v.Bytes) > 0 {
			out = append(out, v.FullBytes[0], 0x80)
			out = append(out, toBER(t, v.Bytes, depth-1)...)
			out = append(out, 0, 0)
		} else {
			out = append(out, v.FullBytes...)
		}
		der = rest
	}
	return out
}

func TestPKCS7BER(t *testing.T) {
	cs := certs(t)
	p7, err := CertificatesOnly(cs...)
	if err != nil {
		t.Fatal(err)
	}
	// Outer wrappers only, as streaming encoders write them, then every
	// level (certificates included: the library re-encodes them in DER).
	for _, depth := range []int{4, 100} {
		ber := toBER(t, p7, depth)
		got, err := ParseCertificates(ber)
		if err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		sameCerts(t, got, cs)
	}
}

// TestPKCS7EmptyIndefinite pins a limitation of the library: it reads
// the end-of-contents octets of an empty indefinite-length value as an
// element of it, and so fails on the empty SET of a certs-only bundle in
// that form. The precheck follows the library and rejects it too.
func TestPKCS7EmptyIndefinite(t *testing.T) {
	p7, err := CertificatesOnly(certs(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	// digestAlgorithms, the first empty SET, in indefinite form.
	i := bytes.Index(p7, []byte{0x02, 0x01, 0x01, 0x31, 0x00})
	if i < 0 {
		t.Fatal("no empty digestAlgorithms SET")
	}
	ber := toBER(t, p7, 3)
	j := bytes.Index(ber, []byte{0x02, 0x01, 0x01, 0x31, 0x00})
	if j < 0 {
		t.Fatal("no empty digestAlgorithms SET in the BER form")
	}
	ber = append(ber[:j+4:j+4], append([]byte{0x80, 0, 0}, ber[j+5:]...)...)
	if _, err := ParseCertificates(ber); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
	if _, err := ParseCertificates(toBER(t, p7, 3)); err != nil {
		t.Fatalf("same without the empty SET: %v", err)
	}
}

func TestPKCS7Reject(t *testing.T) {
	cs := certs(t)
	p7, err := CertificatesOnly(cs[0])
	if err != nil {
		t.Fatal(err)
	}
	// A SignedData with no certificates: ContentInfo{signedData,
	// [0]{SignedData{1, {}, ContentInfo{data}, {}}}}.
	noCerts := mustHex(t, "3023 0609 2a864886f70d010702 a016 3014 020101 3100 300b 0609 2a864886f70d010701 3100")
	data := mustHex(t, "300b 0609 2a864886f70d010701") // ContentInfo{data}
	wide := []byte{0x30, 0x80}
	for len(wide) < maxInput-5 {
		wide = append(wide, 0x04, 0x01, 0x41)
	}
	wide = append(wide, 0, 0)
	deep := bytes.Repeat([]byte{0x30, 0x80}, 100)
	deep = append(deep, make([]byte, 200)...)
	flat := []byte{0x30, 0x83, 0x02, 0x00, 0x00}
	flat = append(flat, make([]byte, 0x20000)...) // 65536 empty elements
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0x30}},
		{"garbage", []byte("not a PKCS#7 bundle at all")},
		{"certificate", cs[0].Raw},
		{"trailing byte", append(append([]byte{}, p7...), 0)},
		{"truncated", p7[:len(p7)-1]},
		{"no certificates", noCerts},
		{"data", data},
		{"high tag", []byte{0x3f, 0x81, 0x01, 0x00}},
		{"indefinite primitive", []byte{0x04, 0x80, 0x00, 0x00}},
		{"overrun", []byte{0x30, 0x03, 0x30, 0x03, 0x02, 0x01, 0x00}},
		{"long length", []byte{0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}},
		{"leading zero length", []byte{0x30, 0x82, 0x00, 0x01, 0x00}},
		{"wide indefinite", wide},
		{"deep", deep},
		{"many elements", flat},
		{"too large", make([]byte, maxInput+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, err := ParseCertificates(tc.in)
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %d certificates, error %v; want ErrMalformed", len(got), err)
			}
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestPKCS7IndefiniteBound measures the worst input the bounds let
// through: maxIndefinite elements in indefinite-length values, each followed
// by a long search for an end-of-contents marker.
func TestPKCS7IndefiniteBound(t *testing.T) {
	in := []byte{0x30, 0x80}
	for range maxIndefinite - 1 {
		in = append(in, 0x04, 0x01, 0x41)
	}
	// One last element that fills the input without a 00 00 in it.
	n := maxInput - len(in) - 2 - 5
	in = append(in, 0x04, 0x83, byte(n>>16), byte(n>>8), byte(n))
	in = append(in, bytes.Repeat([]byte{0x41}, n)...)
	in = append(in, 0, 0)
	start := time.Now()
	if _, err := ParseCertificates(in); err == nil {
		t.Fatal("no error")
	}
	t.Logf("%d bytes, %d indefinite elements: %v", len(in), maxIndefinite, time.Since(start))
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	var b []byte
	s = strings.ReplaceAll(s, " ", "")
	for i := 0; i+1 < len(s); i += 2 {
		var v byte
		for _, c := range s[i : i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			default:
				t.Fatalf("bad hex %q", s)
			}
		}
		b = append(b, v)
	}
	return b
}

// FuzzParseCertificates: no panic, bounded time (the input is at most what
// the fuzzer gives, the bounds do the rest); what parses is non-empty and
// survives a round trip through CertificatesOnly.
func FuzzParseCertificates(f *testing.F) {
	cs := certs(f)
	for n := 1; n <= len(cs); n++ {
		p7, err := CertificatesOnly(cs[:n]...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p7)
		f.Add(toBER(f, p7, 4))
	}
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add([]byte{0x30, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseCertificates(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no certificates and no error")
		}
		p7, err := CertificatesOnly(got...)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseCertificates(p7)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		sameCerts(t, again, got)
	})
}
