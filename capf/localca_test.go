package capf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testpki"
)

const lcDevice = "SEP001122334455"

// lcOpaque hides the concrete type of a key, as a PKCS#11 or KMS signer
// does: LocalCA must not need more than crypto.Signer.
type lcOpaque struct{ s crypto.Signer }

func (o lcOpaque) Public() crypto.PublicKey { return o.s.Public() }
func (o lcOpaque) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

// lcAttr builds one AttributeTypeAndValue with a PrintableString or
// UTF8String value.
func lcAttr(oid asn1.ObjectIdentifier, v string, utf8 bool) pkix.AttributeTypeAndValue {
	tag := asn1.TagPrintableString
	if utf8 {
		tag = asn1.TagUTF8String
	}
	return pkix.AttributeTypeAndValue{Type: oid, Value: asn1.RawValue{Tag: tag, Bytes: []byte(v)}}
}

// lcSubjectCA is the subject of the test CAs, in the usual order (C
// first), with a UTF8String O and an emailAddress that is not copied.
var lcSubjectCA = pkix.RDNSequence{
	{lcAttr(oidCountry, "NZ", false)},
	{lcAttr(oidProvince, "Wellington", false)},
	{lcAttr(oidLocality, "Te Aro", false)},
	{lcAttr(oidOrganization, "ucsec Test", true)},
	{lcAttr(oidOrgUnit, "Voice", false)},
	{lcAttr(oidCommonName, "CAPF-test", false)},
	{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte("pki@example.net")}}},
}

// lcCA is the template of a CAPF certificate whose subject is the RDN
// sequence subject, or lcSubjectCA if it is nil: the attributes LocalCA
// copies, byte for byte.
func lcCA(t testing.TB, subject pkix.RDNSequence) *x509.Certificate {
	t.Helper()
	if subject == nil {
		subject = lcSubjectCA
	}
	raw, err := asn1.Marshal(subject)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := testpki.CA("")
	tmpl.RawSubject = raw
	return tmpl
}

// lcOpenSSL returns the openssl binary. Without one the test is skipped,
// and fails in CI (CI set), where it must run.
func lcOpenSSL(t testing.TB) string {
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

// lcWritePEM writes certificates as PEM into dir/name and returns the path.
func lcWritePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func lcRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	oidExtSAN = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidExtSKI = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidExtAKI = asn1.ObjectIdentifier{2, 5, 29, 35}
)

// lcCheckProfile checks every point of the LSC profile (see LocalCA)
// on a certificate issued at now with the given validity.
func lcCheckProfile(t *testing.T, lsc, ca *x509.Certificate, device string, pub crypto.PublicKey, now time.Time, validity time.Duration) {
	t.Helper()
	if lsc.Version != 3 {
		t.Errorf("version %d", lsc.Version)
	}
	wantAlg := x509.SHA256WithRSA
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); ok {
		wantAlg = x509.ECDSAWithSHA256
	}
	if lsc.SignatureAlgorithm != wantAlg {
		t.Errorf("signature algorithm %v, want %v", lsc.SignatureAlgorithm, wantAlg)
	}
	if err := lsc.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CheckSignatureFrom(CA): %v", err)
	}
	if !bytes.Equal(lsc.RawIssuer, ca.RawSubject) {
		t.Errorf("issuer %q, want the CA subject %q", lsc.Issuer, ca.Subject)
	}
	// Subject: CN (UTF8String), then the copied attributes of the CA
	// subject, byte for byte, in its order.
	want := []lcRDNSET{{{Type: oidCommonName, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(device)}}}}
	var caRDNs []lcRDNSET
	if rest, err := asn1.Unmarshal(ca.RawSubject, &caRDNs); err != nil || len(rest) > 0 {
		t.Fatal(err)
	}
	for _, rdn := range caRDNs {
		for _, atv := range rdn {
			for _, oid := range []asn1.ObjectIdentifier{oidOrganization, oidOrgUnit, oidLocality, oidProvince, oidCountry} {
				if atv.Type.Equal(oid) {
					want = append(want, lcRDNSET{atv})
				}
			}
		}
	}
	if got, err := asn1.Marshal(want); err != nil || !bytes.Equal(lsc.RawSubject, got) {
		t.Errorf("subject\n got %x\nwant %x (%v)", lsc.RawSubject, got, err)
	}
	if lsc.Subject.CommonName != device {
		t.Errorf("CN %q", lsc.Subject.CommonName)
	}
	if !lsc.NotBefore.Equal(now.Truncate(time.Second)) || !lsc.NotAfter.Equal(now.Truncate(time.Second).Add(validity)) {
		t.Errorf("validity %v to %v, want %v from %v", lsc.NotBefore, lsc.NotAfter, validity, now)
	}
	if lsc.SerialNumber.Sign() <= 0 || lsc.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %x", lsc.SerialNumber)
	}
	if k, ok := lsc.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		t.Error("public key is not the device's")
	}
	if !lsc.BasicConstraintsValid || lsc.IsCA {
		t.Error("basic constraints: want CA:FALSE")
	}
	if lsc.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("key usage %b", lsc.KeyUsage)
	}
	if len(lsc.ExtKeyUsage) != 3 || lsc.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth ||
		lsc.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth || lsc.ExtKeyUsage[2] != x509.ExtKeyUsageIPSECEndSystem ||
		len(lsc.UnknownExtKeyUsage) != 0 {
		t.Errorf("extended key usage %v %v", lsc.ExtKeyUsage, lsc.UnknownExtKeyUsage)
	}
	if len(lsc.URIs) != 1 || lsc.URIs[0].String() != device || len(lsc.DNSNames)+len(lsc.EmailAddresses)+len(lsc.IPAddresses) != 0 {
		t.Errorf("SAN: URIs %v DNS %v email %v IP %v", lsc.URIs, lsc.DNSNames, lsc.EmailAddresses, lsc.IPAddresses)
	}
	// The extensions themselves: which, critical or not, and the SAN
	// bytes (one [6] IA5String).
	crit := map[string]bool{}
	for _, e := range lsc.Extensions {
		crit[e.Id.String()] = e.Critical
		if e.Id.Equal(oidExtSAN) {
			sanDER := append([]byte{0x30, byte(len(device) + 2), 0x86, byte(len(device))}, device...)
			if !bytes.Equal(e.Value, sanDER) {
				t.Errorf("SAN %x, want %x", e.Value, sanDER)
			}
		}
		if e.Id.Equal(oidExtKeyUsage) && !bytes.Equal(e.Value, lscKeyUsageDER) {
			t.Errorf("key usage %x", e.Value)
		}
		if e.Id.Equal(oidExtExtKeyUsage) && !bytes.Equal(e.Value, lscExtKeyUsageDER) {
			t.Errorf("extended key usage %x", e.Value)
		}
		if e.Id.Equal(oidExtBasicConstraints) && !bytes.Equal(e.Value, notCADER) {
			t.Errorf("basic constraints %x", e.Value)
		}
	}
	wantCrit := map[string]bool{
		oidExtBasicConstraints.String(): true,
		oidExtKeyUsage.String():         true,
		oidExtExtKeyUsage.String():      false,
		oidExtSAN.String():              false,
	}
	if len(ca.SubjectKeyId) > 0 {
		wantCrit[oidExtAKI.String()] = false
		if !bytes.Equal(lsc.AuthorityKeyId, ca.SubjectKeyId) {
			t.Errorf("AKI %x, want the CA's SKI %x", lsc.AuthorityKeyId, ca.SubjectKeyId)
		}
	}
	if len(crit) != len(wantCrit) {
		t.Errorf("extensions %v, want %v", crit, wantCrit)
	}
	for id, c := range wantCrit {
		if got, ok := crit[id]; !ok || got != c {
			t.Errorf("extension %s: present %v critical %v, want critical %v", id, ok, got, c)
		}
	}
	if _, ok := crit[oidExtSKI.String()]; ok || len(lsc.SubjectKeyId) != 0 {
		t.Error("LSC has a subject key identifier")
	}
}

// An lcRDNSET is an RDN whose values keep their encoding (string type
// included), unlike pkix.RDNSequence, which re-encodes them.
type lcRDNSET []lcATV

type lcATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// lcOpenSSLText checks the profile as openssl prints it, and that openssl
// verifies the chain.
func lcOpenSSLText(t *testing.T, ossl string, lsc *x509.Certificate, device string, chain ...*x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	lscPath := lcWritePEM(t, dir, "lsc.pem", lsc)
	text := lcRun(t, ossl, "x509", "-noout", "-text", "-in", lscPath)
	wantSig := "sha256WithRSAEncryption"
	if _, ok := chain[0].PublicKey.(*ecdsa.PublicKey); ok {
		wantSig = "ecdsa-with-SHA256"
	}
	for _, re := range []string{
		`Version: 3 \(0x2\)`,
		`Signature Algorithm: ` + wantSig,
		`Subject: CN = ` + device + `, `,
		`X509v3 Basic Constraints: critical\s+CA:FALSE`,
		`X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n`,
		`X509v3 Extended Key Usage: \s+TLS Web Server Authentication, TLS Web Client Authentication, IPSec End System\n`,
		`X509v3 Subject Alternative Name: \s+URI:` + device + `\n`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("openssl x509 -text does not match %q:\n%s", re, text)
		}
	}
	for _, absent := range []string{"Subject Key Identifier", "CRL Distribution", "Authority Information Access"} {
		if strings.Contains(text, absent) {
			t.Errorf("openssl x509 -text shows %s:\n%s", absent, text)
		}
	}
	if strings.Contains(text, "Authority Key Identifier") != (len(chain[0].SubjectKeyId) > 0) {
		t.Errorf("AKI shown: %v, CA has an SKI: %v", strings.Contains(text, "Authority Key Identifier"), len(chain[0].SubjectKeyId) > 0)
	}
	// Issuer as openssl prints the CA's subject.
	caPath := lcWritePEM(t, dir, "ca.pem", chain[0])
	caSubj := strings.TrimSpace(lcRun(t, ossl, "x509", "-noout", "-subject", "-in", caPath))
	lscIss := strings.TrimSpace(lcRun(t, ossl, "x509", "-noout", "-issuer", "-in", lscPath))
	if strings.TrimPrefix(caSubj, "subject=") != strings.TrimPrefix(lscIss, "issuer=") {
		t.Errorf("openssl: LSC %s, CA %s", lscIss, caSubj)
	}
	args := []string{"verify", "-CAfile", lcWritePEM(t, dir, "root.pem", chain[len(chain)-1])}
	if len(chain) > 1 {
		args = append(args, "-untrusted", lcWritePEM(t, dir, "inter.pem", chain[:len(chain)-1]...))
	}
	if out := lcRun(t, ossl, append(args, lscPath)...); !strings.Contains(out, "lsc.pem: OK") {
		t.Errorf("openssl verify: %s", out)
	}
}

func TestLocalCAProfile(t *testing.T) {
	ossl := lcOpenSSL(t)
	now := time.Now().Add(-time.Minute) // a notBefore with a fraction of a second
	for _, caKind := range []testpki.KeyKind{testpki.RSA2048, testpki.EC256} {
		caKey := testpki.NewKey(t, caKind)
		caCert := testpki.SelfSigned(t, lcCA(t, nil), caKey)
		ca := &LocalCA{Certificate: caCert, Signer: lcOpaque{caKey}, Time: func() time.Time { return now }}
		for _, phone := range []testpki.KeyKind{testpki.RSA1024, testpki.RSA2048, testpki.EC256, testpki.EC384, testpki.EC521} {
			t.Run("ca-"+string(caKind)+"/"+string(phone), func(t *testing.T) {
				pub := testpki.Key(t, phone).Public()
				lsc, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: pub})
				if err != nil {
					t.Fatal(err)
				}
				lcCheckProfile(t, lsc, caCert, lcDevice, pub, now, DefaultValidity)
				if _, err := lsc.Verify(x509.VerifyOptions{Roots: testpki.Pool(caCert), CurrentTime: now,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Errorf("Verify: %v", err)
				}
				lcOpenSSLText(t, ossl, lsc, lcDevice, caCert)
			})
		}
	}
}

// TestLocalCASubjectOrder: the copied attributes keep the CA subject's
// order, whatever it is, multi-valued RDNs are split, other attributes are
// left out, and a CA subject without any gives CN alone.
func TestLocalCASubjectOrder(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	pub := testpki.Key(t, testpki.EC256).Public()
	for _, tc := range []struct {
		name    string
		subject pkix.RDNSequence
		openssl string // the Subject line of openssl x509 -text
	}{
		{"usual", nil, "CN = SEP001122334455, C = NZ, ST = Wellington, L = Te Aro, O = ucsec Test, OU = Voice"},
		{"reversed", pkix.RDNSequence{
			{lcAttr(oidCommonName, "CAPF-test", false)},
			{lcAttr(oidOrgUnit, "Phones", false)},
			{lcAttr(oidOrgUnit, "Voice", false)},
			{lcAttr(oidOrganization, "ucsec Test", false), lcAttr(oidLocality, "Te Aro", false)}, // DER sorts the SET: L, O
			{lcAttr(oidCountry, "NZ", false)},
		}, "CN = SEP001122334455, OU = Phones, OU = Voice, L = Te Aro, O = ucsec Test, C = NZ"},
		{"CN only", pkix.RDNSequence{{lcAttr(oidCommonName, "CAPF-test", false)}}, "CN = SEP001122334455"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caCert := testpki.SelfSigned(t, lcCA(t, tc.subject), key)
			now := time.Now()
			ca := &LocalCA{Certificate: caCert, Signer: key, Time: func() time.Time { return now }}
			lsc, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			lcCheckProfile(t, lsc, caCert, lcDevice, pub, now, DefaultValidity)
			ossl := lcOpenSSL(t)
			p := lcWritePEM(t, t.TempDir(), "lsc.pem", lsc)
			text := lcRun(t, ossl, "x509", "-noout", "-text", "-in", p)
			if !strings.Contains(text, "Subject: "+tc.openssl+"\n") {
				t.Errorf("want Subject: %s\n%s", tc.openssl, text)
			}
		})
	}
}

// TestLocalCAIntermediate: under a CA that is not self-signed, the issuer is
// the CA's subject (capfd wrongly writes the CA's issuer) and the chain
// verifies through it.
func TestLocalCAIntermediate(t *testing.T) {
	root, inter, interKey := testpki.Chain(t)
	ca := &LocalCA{Certificate: inter, Signer: interKey}
	pub := testpki.Key(t, testpki.RSA1024).Public()
	lsc, err := ca.Issue(context.Background(), &CertificateRequest{Device: "CSFJSMITH", PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lsc.RawIssuer, inter.RawSubject) || bytes.Equal(lsc.RawIssuer, inter.RawIssuer) {
		t.Errorf("issuer %q", lsc.Issuer)
	}
	if _, err := lsc.Verify(x509.VerifyOptions{Roots: testpki.Pool(root), Intermediates: testpki.Pool(inter)}); err != nil {
		t.Errorf("Verify: %v", err)
	}
	lcOpenSSLText(t, lcOpenSSL(t), lsc, "CSFJSMITH", inter, root)
}

// TestLocalCANoSKI: a CA certificate without a subject key identifier (made
// by openssl; crypto/x509 always gives a CA one) gives an LSC without an
// authority key identifier, exactly capfd's profile.
func TestLocalCANoSKI(t *testing.T) {
	ossl := lcOpenSSL(t)
	dir := t.TempDir()
	key := testpki.NewKey(t, testpki.EC256)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, cnfPath, certPath := filepath.Join(dir, "ca.key"), filepath.Join(dir, "ca.cnf"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cnf := "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nO = ucsec Test\nCN = No SKI CA\n" +
		"[ext]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n" +
		"subjectKeyIdentifier = none\nauthorityKeyIdentifier = none\n"
	if err := os.WriteFile(cnfPath, []byte(cnf), 0o600); err != nil {
		t.Fatal(err)
	}
	lcRun(t, ossl, "req", "-x509", "-new", "-config", cnfPath, "-key", keyPath, "-days", "30", "-out", certPath)
	pemBytes, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(caCert.SubjectKeyId) != 0 {
		t.Fatalf("openssl made a CA with an SKI %x", caCert.SubjectKeyId)
	}
	now := time.Now()
	ca := &LocalCA{Certificate: caCert, Signer: key, Validity: 7 * 24 * time.Hour, Time: func() time.Time { return now }}
	pub := testpki.Key(t, testpki.EC384).Public()
	lsc, err := ca.Issue(context.Background(), &CertificateRequest{Device: lcDevice, PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if len(lsc.AuthorityKeyId) != 0 {
		t.Errorf("AKI %x", lsc.AuthorityKeyId)
	}
	lcCheckProfile(t, lsc, caCert, lcDevice, pub, now, 7*24*time.Hour)
	lcOpenSSLText(t, ossl, lsc, lcDevice, caCert)
}

func TestLocalCASerials(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	ca := &LocalCA{Certificate: testpki.SelfSigned(t, testpki.CA("CAPF-test"), key), Signer: key}
	req := &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()}
	const n = 1000
	seen := make(map[string]bool, n)
	long := 0
	for range n {
		lsc, err := ca.Issue(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		s := lsc.SerialNumber
		h := SerialHex(s)
		if s.Sign() <= 0 || s.BitLen() > 128 || h == "" || len(h) > 32 || strings.HasPrefix(h, "00") || len(h)%2 != 0 {
			t.Fatalf("serial %x, hex %q", s, h)
		}
		if seen[h] {
			t.Fatalf("serial %s issued twice", h)
		}
		seen[h] = true
		if s.BitLen() > 120 {
			long++
		}
	}
	// 16 random bytes: almost all serials use the top byte.
	if long < n*9/10 {
		t.Errorf("only %d of %d serials above 120 bits", long, n)
	}
}

// lcReader returns the bytes it holds, then fails.
type lcReader struct{ b []byte }

func (r *lcReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errors.New("out of randomness")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestLocalCASerialZero(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	ca := &LocalCA{Certificate: testpki.SelfSigned(t, testpki.CA("CAPF-test"), key), Signer: key}
	req := &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()}

	// 16 zero bytes are read again. (ECDSA signing mixes its own entropy
	// into Rand, so Rand may return anything after the serial.)
	ca.Rand = io.MultiReader(bytes.NewReader(make([]byte, 16)), bytes.NewReader(append(bytes.Repeat([]byte{0x0a}, 16), make([]byte, 4096)...)))
	lsc, err := ca.Issue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := SerialHex(lsc.SerialNumber); got != strings.Repeat("0a", 16) {
		t.Errorf("serial %s", got)
	}
	// A source of zeros only, and a failing one.
	for _, r := range []io.Reader{bytes.NewReader(make([]byte, 1<<12)), &lcReader{b: make([]byte, 5)}} {
		ca.Rand = r
		if _, err := ca.Issue(context.Background(), req); !errors.Is(err, ErrIssue) {
			t.Errorf("got %v, want ErrIssue", err)
		}
	}
}

func TestSerialHex(t *testing.T) {
	max128 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	for _, tc := range []struct {
		in   *big.Int
		want string
	}{
		{nil, ""},
		{big.NewInt(0), ""},
		{big.NewInt(1), "01"},
		{big.NewInt(0xff), "ff"},
		{big.NewInt(0x100), "0100"},
		{big.NewInt(0x0a1b), "0a1b"},
		{big.NewInt(0xabcdef), "abcdef"},
		{max128, strings.Repeat("f", 32)},
		{new(big.Int).Lsh(big.NewInt(1), 120), "01" + strings.Repeat("0", 30)},
		{big.NewInt(-1), "-01"},
	} {
		if got := SerialHex(tc.in); got != tc.want {
			t.Errorf("SerialHex(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLocalCAValidity(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	now := time.Date(2030, 6, 1, 12, 0, 0, 500e6, time.UTC)
	tmpl := testpki.CA("CAPF-test")
	tmpl.NotBefore, tmpl.NotAfter = now.AddDate(-1, 0, 0), now.AddDate(3, 0, 0)
	caCert := testpki.SelfSigned(t, tmpl, key)
	req := &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()}
	for _, tc := range []struct {
		validity, want time.Duration
	}{
		{0, 365 * 24 * time.Hour},
		{30 * 24 * time.Hour, 30 * 24 * time.Hour},
		{time.Hour, time.Hour},
	} {
		ca := &LocalCA{Certificate: caCert, Signer: key, Validity: tc.validity, Time: func() time.Time { return now }}
		lsc, err := ca.Issue(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		nb := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
		if !lsc.NotBefore.Equal(nb) || lsc.NotAfter.Sub(lsc.NotBefore) != tc.want {
			t.Errorf("Validity %v: %v to %v", tc.validity, lsc.NotBefore, lsc.NotAfter)
		}
	}

	// Beyond the CA's notAfter, or before its notBefore: refused.
	for _, tc := range []struct {
		name     string
		now      time.Time
		validity time.Duration
		want     string
	}{
		{"outlives CA", now.AddDate(2, 6, 0), 0, "outlive the CA certificate"},
		{"long validity", now, 4 * 365 * 24 * time.Hour, "outlive the CA certificate"},
		{"CA not yet valid", now.AddDate(-2, 0, 0), 0, "not valid before"},
	} {
		ca := &LocalCA{Certificate: caCert, Signer: key, Validity: tc.validity, Time: func() time.Time { return tc.now }}
		_, err := ca.Issue(context.Background(), req)
		if !errors.Is(err, ErrIssue) || errors.Is(err, ErrInvalid) || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrIssue %q", tc.name, err, tc.want)
		}
	}
	// Up to the CA's notAfter exactly: issued.
	ca := &LocalCA{Certificate: caCert, Signer: key, Validity: caCert.NotAfter.Sub(now.Truncate(time.Second)),
		Time: func() time.Time { return now }}
	if _, err := ca.Issue(context.Background(), req); err != nil {
		t.Errorf("up to the CA's notAfter: %v", err)
	}
}

func TestLocalCAInvalid(t *testing.T) {
	rsaKey, ecKey := testpki.Key(t, testpki.RSA2048), testpki.NewKey(t, testpki.EC256)
	good := testpki.SelfSigned(t, testpki.CA("CAPF-test"), ecKey)
	notCA := testpki.SelfSigned(t, testpki.Leaf("CAPF-test"), ecKey)
	noCertSignTmpl := testpki.CA("CAPF-test")
	noCertSignTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	noCertSign := testpki.SelfSigned(t, noCertSignTmpl, ecKey)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edCA := testpki.SelfSigned(t, testpki.CA("CAPF-test"), edKey)
	req := &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()}
	for _, tc := range []struct {
		name string
		ca   *LocalCA
	}{
		{"no certificate", &LocalCA{Signer: ecKey}},
		{"no key", &LocalCA{Certificate: good}},
		{"key does not match", &LocalCA{Certificate: good, Signer: rsaKey}},
		{"other key of the same type", &LocalCA{Certificate: good, Signer: testpki.Key(t, testpki.EC256)}},
		{"not a CA", &LocalCA{Certificate: notCA, Signer: ecKey}},
		{"key usage without certSign", &LocalCA{Certificate: noCertSign, Signer: ecKey}},
		{"Ed25519 CA", &LocalCA{Certificate: edCA, Signer: edKey}},
		{"negative validity", &LocalCA{Certificate: good, Signer: ecKey, Validity: -time.Hour}},
	} {
		_, err := tc.ca.Issue(context.Background(), req)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrIssue) || !strings.HasPrefix(fmtErr(err), "capf: ") {
			t.Errorf("%s: got %v, want ErrInvalid and ErrIssue", tc.name, err)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestLocalCARequestInvalid(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	ca := &LocalCA{Certificate: testpki.SelfSigned(t, testpki.CA("CAPF-test"), key), Signer: key}
	pub := testpki.Key(t, testpki.EC256).Public()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		req  *CertificateRequest
	}{
		{"nil request", nil},
		{"empty name", &CertificateRequest{PublicKey: pub}},
		{"NUL", &CertificateRequest{Device: "SEP0011\x0022", PublicKey: pub}},
		{"space", &CertificateRequest{Device: "SEP 001122334455", PublicKey: pub}},
		{"newline", &CertificateRequest{Device: "SEP001122334455\n", PublicKey: pub}},
		{"not ASCII", &CertificateRequest{Device: "SEPé", PublicKey: pub}},
		{"bad escape", &CertificateRequest{Device: "SEP%zz", PublicKey: pub}},
		{"host", &CertificateRequest{Device: "//SEP001122334455", PublicKey: pub}},
		{"too long", &CertificateRequest{Device: "CSF" + strings.Repeat("X", 62), PublicKey: pub}},
		{"no key", &CertificateRequest{Device: lcDevice}},
		{"Ed25519 key", &CertificateRequest{Device: lcDevice, PublicKey: edPub}},
		{"bad SPKI", &CertificateRequest{Device: lcDevice, RawSubjectPublicKeyInfo: []byte{0x30, 0x00}}},
		{"SPKI of another key", &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC384).Public(), RawSubjectPublicKeyInfo: spki}},
	} {
		_, err := ca.Issue(context.Background(), tc.req)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrIssue) {
			t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
		}
	}
	// The SPKI alone, or with the same key: issued.
	for _, req := range []*CertificateRequest{
		{Device: lcDevice, RawSubjectPublicKeyInfo: spki},
		{Device: lcDevice, PublicKey: pub, RawSubjectPublicKeyInfo: spki},
		{Device: "a:b-c_d.e~1", PublicKey: pub},
	} {
		lsc, err := ca.Issue(context.Background(), req)
		if err != nil {
			t.Fatalf("%q: %v", req.Device, err)
		}
		if !bytes.Equal(lsc.RawSubjectPublicKeyInfo, spki) || lsc.Subject.CommonName != req.Device || lsc.URIs[0].String() != req.Device {
			t.Errorf("%q: key, CN %q or URI %v", req.Device, lsc.Subject.CommonName, lsc.URIs)
		}
	}
}

func TestLocalCACancelled(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	ca := &LocalCA{Certificate: testpki.SelfSigned(t, testpki.CA("CAPF-test"), key), Signer: key}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ca.Issue(ctx, &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()})
	if !errors.Is(err, ErrIssue) || !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want ErrIssue and context.Canceled", err)
	}
}

// TestLocalCAConcurrent issues from several goroutines at once (run with
// -race).
func TestLocalCAConcurrent(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	ca := &LocalCA{Certificate: testpki.SelfSigned(t, testpki.CA("CAPF-test"), key), Signer: lcOpaque{key}}
	req := &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(t, testpki.EC256).Public()}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := ca.Issue(context.Background(), req); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkLocalCAIssue measures one enrolment's signing: an RSA-2048 CA
// signs an RSA-2048 phone key (the CUCM default), and the certificate is
// parsed back. The ECDSA P-256 CA is for comparison.
func BenchmarkLocalCAIssue(b *testing.B) {
	for _, caKind := range []testpki.KeyKind{testpki.RSA2048, testpki.EC256} {
		b.Run(string(caKind), func(b *testing.B) {
			key := testpki.NewKey(b, caKind)
			ca := &LocalCA{Certificate: testpki.SelfSigned(b, testpki.CA("CAPF-test"), key), Signer: key}
			req := &CertificateRequest{Device: lcDevice, PublicKey: testpki.Key(b, testpki.RSA2048).Public()}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ca.Issue(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
