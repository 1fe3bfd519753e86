package capf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/pkcs7x"
	"github.com/ucsec/ucsec/internal/testpki"
)

// xcPKI is a throw-away CA hierarchy for the external CA tests: a root, an
// issuing CA under it, and an unrelated CA.
type xcPKI struct {
	root, issuing, other *x509.Certificate
	issuer, otherIssuer  *LocalCA
	roots                *x509.CertPool
}

var (
	xcPKIMu sync.Mutex
	xcPKIs  *xcPKI
)

// xcPKIOnce returns the test PKI, made on first use.
func xcPKIOnce(t testing.TB) *xcPKI {
	t.Helper()
	xcPKIMu.Lock()
	defer xcPKIMu.Unlock()
	if xcPKIs != nil {
		return xcPKIs
	}
	p := &xcPKI{}
	var issKey crypto.Signer
	p.root, p.issuing, issKey = testpki.Chain(t)
	otherKey := testpki.NewKey(t, testpki.EC384)
	p.other = testpki.SelfSigned(t, testpki.CA("Other CA"), otherKey)
	p.issuer = &LocalCA{Certificate: p.issuing, Signer: issKey}
	p.otherIssuer = &LocalCA{Certificate: p.other, Signer: otherKey}
	p.roots = testpki.Pool(p.root)
	xcPKIs = p
	return p
}

// xcFake is a fake external CA. Submit parses the request, checks the RA
// signature (and that the request is not self-signed), issues with the
// issuing CA of xcPKI and answers in format.
type xcFake struct {
	t      *testing.T
	raPub  crypto.PublicKey
	format string
	// answer, if set, replaces the certificate it issued (for wrong
	// answers) or the whole encoded answer (raw).
	cert   func(issued *x509.Certificate, csr *x509.CertificateRequest) *x509.Certificate
	raw    func(encoded []byte) []byte
	err    error
	called int
	csr    []byte
}

func (f *xcFake) Submit(ctx context.Context, der []byte) ([]byte, error) {
	f.called++
	f.csr = der
	if f.err != nil {
		return nil, f.err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("fake CA: bad request: %v", err)
	}
	if err := csr.CheckSignature(); err == nil {
		return nil, errors.New("fake CA: the request is self-signed")
	}
	if err := (&x509.Certificate{PublicKey: f.raPub}).CheckSignature(csr.SignatureAlgorithm, csr.RawTBSCertificateRequest, csr.Signature); err != nil {
		return nil, fmt.Errorf("fake CA: RA signature: %v", err)
	}
	p := xcPKIOnce(f.t)
	issued, err := p.issuer.Issue(ctx, &CertificateRequest{Device: csr.Subject.CommonName, PublicKey: csr.PublicKey})
	if err != nil {
		return nil, err
	}
	if f.cert != nil {
		issued = f.cert(issued, csr)
	}
	b := xcEncode(f.t, f.format, issued, p.issuing, p.root)
	if f.raw != nil {
		b = f.raw(b)
	}
	return b, nil
}

func xcPEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// xcEncode encodes an answer: the issued certificate alone or with its
// chain, in DER, PEM or PKCS#7.
func xcEncode(t testing.TB, format string, leaf, issuing, root *x509.Certificate) []byte {
	p7 := func(certs ...*x509.Certificate) []byte {
		b, err := pkcs7x.CertificatesOnly(certs...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	switch format {
	case "der":
		return leaf.Raw
	case "der-chain":
		return append(append([]byte{}, leaf.Raw...), issuing.Raw...)
	case "pem":
		return xcPEM("CERTIFICATE", leaf.Raw)
	case "pem-chain": // chain first, text around it, CRLF
		b := []byte("\r\nIssued by the test CA\r\n")
		b = append(b, xcPEM("CERTIFICATE", root.Raw)...)
		b = append(b, xcPEM("CERTIFICATE", issuing.Raw)...)
		b = append(b, xcPEM("X509 CRL", []byte{1, 2, 3})...)
		b = append(b, xcPEM("CERTIFICATE", leaf.Raw)...)
		return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	case "p7b-der":
		return p7(issuing, leaf, root)
	case "p7b-pem":
		return xcPEM("PKCS7", p7(leaf, issuing))
	case "p7b-in-certificate-block": // as Microsoft's web enrolment writes it
		return xcPEM("CERTIFICATE", p7(leaf, issuing))
	}
	t.Fatalf("no format %q", format)
	return nil
}

var xcFormats = []string{"der", "der-chain", "pem", "pem-chain", "p7b-der", "p7b-pem", "p7b-in-certificate-block"}

func TestExternalCAFormats(t *testing.T) {
	p := xcPKIOnce(t)
	ra := testpki.NewKey(t, testpki.RSA2048)
	for _, format := range xcFormats {
		for _, phone := range []testpki.KeyKind{testpki.RSA1024, testpki.EC256, testpki.EC521} {
			t.Run(format+"/"+string(phone), func(t *testing.T) {
				fake := &xcFake{t: t, raPub: ra.Public(), format: format}
				// Answers with the issuing CA chain to the root
				// alone; the others need Intermediates.
				ca := &ExternalCA{Submit: fake.Submit, Signer: lcOpaque{ra}, Roots: p.roots, Intermediates: testpki.Pool(p.issuing)}
				pub := testpki.Key(t, phone).Public()
				lsc, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: pub})
				if err != nil {
					t.Fatal(err)
				}
				if fake.called != 1 {
					t.Errorf("Submit called %d times", fake.called)
				}
				if k := lsc.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !k.Equal(pub) || lsc.Subject.CommonName != lcDevice {
					t.Errorf("got a certificate for %q", lsc.Subject.CommonName)
				}
				if !bytes.Equal(lsc.RawIssuer, p.issuing.RawSubject) {
					t.Errorf("issuer %q", lsc.Issuer)
				}
			})
		}
	}
}

// TestExternalCAChain: without Intermediates, a bare certificate from an
// issuing CA under the root does not verify, and the chain in the answer
// makes it verify.
func TestExternalCAChain(t *testing.T) {
	p := xcPKIOnce(t)
	ra := testpki.NewKey(t, testpki.EC256)
	for _, tc := range []struct {
		format string
		ok     bool
	}{
		{"der", false}, {"pem", false}, {"der-chain", true}, {"pem-chain", true}, {"p7b-der", true}, {"p7b-pem", true},
	} {
		fake := &xcFake{t: t, raPub: ra.Public(), format: tc.format}
		ca := &ExternalCA{Submit: fake.Submit, Signer: ra, Roots: p.roots}
		_, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()})
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.format, err)
		}
		if !tc.ok && (!errors.Is(err, ErrIssue) || !strings.Contains(fmtErr(err), "does not chain")) {
			t.Errorf("%s: got %v, want a chain error", tc.format, err)
		}
	}
	// Without Roots, nothing is verified.
	fake := &xcFake{t: t, raPub: ra.Public(), format: "der"}
	ca := &ExternalCA{Submit: fake.Submit, Signer: ra}
	if _, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()}); err != nil {
		t.Errorf("no Roots: %v", err)
	}
}

// TestExternalCARequest checks the PKCS#10 request: the device's key and
// name, the LSC extensions (byte for byte those LocalCA writes), and a
// signature that is the RA's, not the subject's.
func TestExternalCARequest(t *testing.T) {
	ossl := lcOpenSSL(t)
	p := xcPKIOnce(t)
	for _, tc := range []struct{ ra, phone testpki.KeyKind }{{testpki.RSA2048, testpki.EC256}, {testpki.EC256, testpki.RSA2048}, {testpki.EC384, testpki.EC384}} {
		t.Run(string(tc.ra)+"/"+string(tc.phone), func(t *testing.T) {
			ra := testpki.NewKey(t, tc.ra) // never the phone's: the request is not self-signed
			pub := testpki.Key(t, tc.phone).Public()
			fake := &xcFake{t: t, raPub: ra.Public(), format: "der"}
			ca := &ExternalCA{Submit: fake.Submit, Signer: ra}
			lsc, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.ParseCertificateRequest(fake.csr)
			if err != nil {
				t.Fatalf("ParseCertificateRequest: %v", err)
			}
			if !csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Error("the request is not for the device's key")
			}
			spki, _ := x509.MarshalPKIXPublicKey(pub)
			if !bytes.Equal(csr.RawSubjectPublicKeyInfo, spki) {
				t.Error("the request's SubjectPublicKeyInfo is not the device's")
			}
			if csr.Subject.CommonName != lcDevice || len(csr.Subject.Names) != 1 {
				t.Errorf("subject %q", csr.Subject)
			}
			if len(csr.URIs) != 1 || csr.URIs[0].String() != lcDevice {
				t.Errorf("URIs %v", csr.URIs)
			}
			wantAlg := x509.SHA256WithRSA
			if _, ok := ra.Public().(*ecdsa.PublicKey); ok {
				wantAlg = x509.ECDSAWithSHA256
			}
			if csr.SignatureAlgorithm != wantAlg {
				t.Errorf("signature algorithm %v", csr.SignatureAlgorithm)
			}
			// Go's self-signature check fails: the subject did not sign.
			if err := csr.CheckSignature(); err == nil {
				t.Error("CheckSignature succeeded on an RA-signed request")
			}
			// The RA's key verifies the signature over the TBS.
			digest := sha256.Sum256(csr.RawTBSCertificateRequest)
			switch k := ra.Public().(type) {
			case *rsa.PublicKey:
				if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], csr.Signature); err != nil {
					t.Errorf("RA signature: %v", err)
				}
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(k, digest[:], csr.Signature) {
					t.Error("RA signature does not verify")
				}
			}
			// The requested extensions are those of the LSC profile,
			// as LocalCA encodes them.
			local, err := p.issuer.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]pkix.Extension{}
			for _, e := range local.Extensions {
				if !e.Id.Equal(oidExtAKI) {
					want[e.Id.String()] = e
				}
			}
			if len(csr.Extensions) != len(want) {
				t.Errorf("%d requested extensions, want %d", len(csr.Extensions), len(want))
			}
			for _, e := range csr.Extensions {
				w, ok := want[e.Id.String()]
				if !ok || w.Critical != e.Critical || !bytes.Equal(w.Value, e.Value) {
					t.Errorf("requested extension %v critical %v %x, want %v %x", e.Id, e.Critical, e.Value, w.Critical, w.Value)
				}
			}
			if lsc.Subject.CommonName != lcDevice {
				t.Errorf("CN %q", lsc.Subject.CommonName)
			}

			// openssl shows the same, and its self-signature check fails.
			dir := t.TempDir()
			path := filepath.Join(dir, "req.pem")
			if err := os.WriteFile(path, xcPEM("CERTIFICATE REQUEST", fake.csr), 0o600); err != nil {
				t.Fatal(err)
			}
			text := lcRun(t, ossl, "req", "-noout", "-text", "-in", path)
			for _, s := range []string{
				"Subject: CN = " + lcDevice + "\n",
				"Requested Extensions:",
				"X509v3 Basic Constraints: critical",
				"Digital Signature, Key Encipherment",
				"TLS Web Server Authentication, TLS Web Client Authentication, IPSec End System",
				"URI:" + lcDevice + "\n",
			} {
				if !strings.Contains(text, s) {
					t.Errorf("openssl req -text lacks %q:\n%s", s, text)
				}
			}
			// (openssl 3.0 exits 0 after some verify failures: read
			// its words.)
			outb, err := exec.Command(ossl, "req", "-noout", "-verify", "-in", path).CombinedOutput()
			out := string(outb)
			if strings.Contains(out, "verify OK") || err == nil && !strings.Contains(out, "verify failure") {
				t.Errorf("openssl req -verify accepted an RA-signed request: %s", out)
			}
		})
	}
}

func TestExternalCAWrongAnswers(t *testing.T) {
	p := xcPKIOnce(t)
	ra := testpki.NewKey(t, testpki.EC256)
	pub := testpki.Key(t, testpki.EC256).Public()
	reissue := func(issuer *LocalCA, device string, key crypto.PublicKey) *x509.Certificate {
		c, err := issuer.Issue(context.Background(), &CertificateRequest{Device: device, PublicKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var manyPEM []byte
	for range maxAnswerCerts {
		manyPEM = append(manyPEM, xcPEM("CERTIFICATE", p.root.Raw)...)
	}
	submitErr := errors.New("CA is down")
	for _, tc := range []struct {
		name   string
		format string
		cert   func(*x509.Certificate, *x509.CertificateRequest) *x509.Certificate
		raw    func([]byte) []byte
		err    error
		time   time.Time
		want   string
	}{
		{name: "another key", format: "p7b-der", cert: func(*x509.Certificate, *x509.CertificateRequest) *x509.Certificate {
			return reissue(p.issuer, lcDevice, testpki.Key(t, testpki.EC384).Public())
		}, want: "no certificate for the device's key"},
		{name: "another name", format: "pem-chain", cert: func(*x509.Certificate, *x509.CertificateRequest) *x509.Certificate {
			return reissue(p.issuer, "SEP00112233445F", pub)
		}, want: `"SEP00112233445F", not "SEP001122334455"`},
		{name: "other CA", format: "der", cert: func(*x509.Certificate, *x509.CertificateRequest) *x509.Certificate {
			return reissue(p.otherIssuer, lcDevice, pub)
		}, want: "does not chain"},
		{name: "CA certificate", format: "der", cert: func(*x509.Certificate, *x509.CertificateRequest) *x509.Certificate {
			return testpki.Issue(t, testpki.CA(lcDevice), p.issuing, pub, p.issuer.Signer)
		}, want: "CA certificate"},
		{name: "expired", format: "der-chain", time: time.Now().AddDate(2, 0, 0), want: "valid from"},
		{name: "not yet valid", format: "der-chain", time: time.Now().Add(-time.Hour), want: "valid from"},
		{name: "text", format: "der", raw: func([]byte) []byte { return []byte("Internal Server Error") }, want: "no CERTIFICATE or PKCS7 block"},
		{name: "garbage", format: "der", raw: func([]byte) []byte { return []byte{0x30, 0x03, 1, 2, 3} }, want: "neither a certificate"},
		{name: "empty", format: "der", raw: func([]byte) []byte { return nil }, want: "empty"},
		{name: "truncated DER", format: "der", raw: func(b []byte) []byte { return b[:len(b)-1] }, want: "neither a certificate"},
		{name: "truncated PKCS#7", format: "p7b-der", raw: func(b []byte) []byte { return b[:len(b)-1] }, want: "neither a certificate"},
		{name: "bad PEM certificate", format: "pem", raw: func([]byte) []byte { return xcPEM("CERTIFICATE", []byte{0x30, 0x00}) }, want: "PEM CERTIFICATE block"},
		{name: "PEM without certificates", format: "pem", raw: func([]byte) []byte { return xcPEM("PRIVATE KEY", []byte{1}) }, want: "no CERTIFICATE or PKCS7 block"},
		{name: "too large", format: "pem", raw: func(b []byte) []byte { return append(b, make([]byte, MaxCAAnswer)...) }, want: "at most 1048576"},
		{name: "too many certificates", format: "pem", raw: func(b []byte) []byte { return append(b, manyPEM...) }, want: "more than 32 certificates"},
		{name: "Submit error", format: "der", err: submitErr, want: "CA is down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &xcFake{t: t, raPub: ra.Public(), format: tc.format, cert: tc.cert, raw: tc.raw, err: tc.err}
			ca := &ExternalCA{Submit: fake.Submit, Signer: ra, Roots: p.roots}
			if !tc.time.IsZero() {
				ca.Time = func() time.Time { return tc.time }
			}
			lsc, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: pub})
			if !errors.Is(err, ErrIssue) || errors.Is(err, ErrInvalid) || !strings.Contains(fmtErr(err), tc.want) {
				t.Fatalf("got %v, %v; want ErrIssue with %q", lsc != nil, err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("the Submit error is not wrapped: %v", err)
			}
		})
	}
}

// TestExternalCAClockSkew: a notBefore a little ahead of Time (the CA's
// clock runs ahead) is accepted, one far ahead is not.
func TestExternalCAClockSkew(t *testing.T) {
	p := xcPKIOnce(t)
	ra := testpki.NewKey(t, testpki.EC256)
	now := time.Now()
	for _, tc := range []struct {
		ahead time.Duration
		ok    bool
	}{{0, true}, {4 * time.Minute, true}, {6 * time.Minute, false}} {
		fake := &xcFake{t: t, raPub: ra.Public(), format: "der-chain"}
		ca := &ExternalCA{Submit: fake.Submit, Signer: ra, Roots: p.roots, Time: func() time.Time { return now.Add(-tc.ahead) }}
		_, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()})
		if (err == nil) != tc.ok {
			t.Errorf("CA clock %v ahead: %v", tc.ahead, err)
		}
	}
}

func TestExternalCAInvalid(t *testing.T) {
	ra := testpki.NewKey(t, testpki.EC256)
	pub := testpki.Key(t, testpki.EC256).Public()
	fake := &xcFake{t: t, raPub: ra.Public(), format: "der"}
	for _, tc := range []struct {
		name string
		ca   *ExternalCA
		req  *CertificateRequest
	}{
		{"no Submit", &ExternalCA{Signer: ra}, &CertificateRequest{Device: lcDevice, PublicKey: pub}},
		{"no RA key", &ExternalCA{Submit: fake.Submit}, &CertificateRequest{Device: lcDevice, PublicKey: pub}},
		{"empty name", &ExternalCA{Submit: fake.Submit, Signer: ra}, &CertificateRequest{PublicKey: pub}},
		{"NUL in name", &ExternalCA{Submit: fake.Submit, Signer: ra}, &CertificateRequest{Device: "SEP\x00", PublicKey: pub}},
		{"no key", &ExternalCA{Submit: fake.Submit, Signer: ra}, &CertificateRequest{Device: lcDevice}},
		{"nil request", &ExternalCA{Submit: fake.Submit, Signer: ra}, nil},
	} {
		_, err := tc.ca.Issue(context.Background(), tc.req)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrIssue) {
			t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
		}
	}
	if fake.called != 0 {
		t.Errorf("Submit called %d times", fake.called)
	}
}

func TestExternalCACancelled(t *testing.T) {
	ra := testpki.NewKey(t, testpki.EC256)
	fake := &xcFake{t: t, raPub: ra.Public(), format: "der"}
	ca := &ExternalCA{Submit: fake.Submit, Signer: ra}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ca.Issue(ctx, &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()})
	if !errors.Is(err, ErrIssue) || !errors.Is(err, context.Canceled) || fake.called != 0 {
		t.Errorf("got %v after %d calls, want ErrIssue and context.Canceled before Submit", err, fake.called)
	}
	// A Submit that gives up on its context: the context error shows.
	ca.Submit = func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = ca.Issue(ctx, &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()})
	if !errors.Is(err, ErrIssue) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want ErrIssue and DeadlineExceeded", err)
	}
}

// FuzzExternalCAAnswer: the answer parser never panics, and what it
// returns is bounded.
func FuzzExternalCAAnswer(f *testing.F) {
	p := xcPKIOnce(f)
	leaf, err := p.issuer.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(f, testpki.EC256).Public()})
	if err != nil {
		f.Fatal(err)
	}
	for _, format := range xcFormats {
		f.Add(xcEncode(f, format, leaf, p.issuing, p.root))
	}
	f.Add([]byte("-----BEGIN PKCS7-----\n-----END PKCS7-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := parseCAAnswer(data)
		if err == nil && (len(certs) == 0 || len(certs) > maxAnswerCerts) {
			t.Fatalf("%d certificates", len(certs))
		}
	})
}
