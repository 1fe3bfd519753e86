package main

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/pemutil"
)

func TestCertHash(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--hash", "md5", devicePEM}, "08ecfd597f0051d70826703523dc12ac\n"},
		{[]string{devicePEM, "--hash", "MD5"}, "08ecfd597f0051d70826703523dc12ac\n"},
		{[]string{"--hash", "sha1", tftpPEM}, "0e54614eb79ed24596ba52fe7dc017bd1d7baea2\n"},
		{[]string{"--hash", "sha1", "--base64", tftpPEM}, "DlRhTree0kWWulL+fcAXvR17rqI=\n"},
		{[]string{"--hash", "md5", devicePEM, tftpPEM}, "08ecfd597f0051d70826703523dc12ac  " + devicePEM + "\n"},
	} {
		r := mustRun(t, exitOK, append([]string{"cert", "hash"}, tt.args...)...)
		if !strings.HasPrefix(r.stdout, tt.want) {
			t.Errorf("cert hash %s = %q, want %q", strings.Join(tt.args, " "), r.stdout, tt.want)
		}
	}

	r := mustRun(t, exitOK, "cert", "hash", devicePEM)
	lines := strings.Split(r.stdout, "\n")
	if len(lines) != 5 || lines[0] != "MD5:    08ecfd597f0051d70826703523dc12ac" ||
		!strings.HasPrefix(lines[1], "SHA1:   ") || !strings.HasPrefix(lines[2], "SHA256: ") || !strings.HasPrefix(lines[3], "SHA512: ") {
		t.Errorf("cert hash:\n%s", r.stdout)
	}

	r = mustRun(t, exitOK, "cert", "hash", "--json", devicePEM, tftpPEM)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per file:\n%s", r.stdout)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	if got["file"] != tftpPEM || got["sha1"] != "0e54614eb79ed24596ba52fe7dc017bd1d7baea2" || len(got["sha512"]) != 128 {
		t.Errorf("got %v", got)
	}

	// DER on standard input.
	der := mustParseCert(t, mustRead(t, devicePEM)).Raw
	if r := ucsec(t, string(der), "cert", "hash", "--hash", "md5", "-"); r.stdout != "08ecfd597f0051d70826703523dc12ac\n" {
		t.Errorf("DER on stdin: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := mustRun(t, exitError, "cert", "hash", plainXML); !strings.Contains(r.stderr, "not a valid certificate") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func mustParseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	cert, err := pemutil.ParseCertificate(data)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestQuickStart is the flow of the README: make a TFTP certificate, sign
// a configuration with it, verify it.
func TestQuickStart(t *testing.T) {
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "tftp.pem")
	r := mustRun(t, exitOK, "cert", "new", "--cn", "tftp", "-o", pemFile)
	data := mustRead(t, pemFile)
	fingerprint := sha1.Sum(mustParseCert(t, data).Raw)
	if !strings.Contains(r.stdout, pemFile) || !strings.Contains(r.stdout, hex.EncodeToString(fingerprint[:])) {
		t.Errorf("cert new printed:\n%s", r.stdout)
	}
	if fi, err := os.Stat(pemFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", fi, err)
	}
	if !strings.HasPrefix(string(data), "-----BEGIN CERTIFICATE-----\n") || !strings.Contains(string(data), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("PEM file:\n%s", data)
	}

	in := copyFile(t, plainXML, dir)
	mustRun(t, exitOK, "sgn", "sign", "--cert", pemFile, "--key", pemFile, "--hash", "sha512", in)
	mustRun(t, exitOK, "sgn", "verify", "--cert", pemFile, in+".sgn")
	mustRun(t, exitInvalid, "sgn", "verify", "--cert", tftpPEM, in+".sgn")
	r = mustRun(t, exitOK, "sgn", "parse", in+".sgn")
	if !strings.Contains(r.stdout, "Signer Name:      CN=tftp\n") {
		t.Errorf("parse:\n%s", r.stdout)
	}
}

func TestCertNew(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "phone.pem")
	r := mustRun(t, exitOK, "cert", "new", "--json", "--cn", "SEP001122334455", "--ou", "VTG", "--org", "Example",
		"--key-type", "p256", "--days", "30", "-o", out)
	var got struct {
		Output       string `json:"output"`
		SerialNumber string `json:"serial_number"`
		SHA1         string `json:"sha1"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	cert := mustParseCert(t, mustRead(t, out))
	key, err := pemutil.ParseSigner(mustRead(t, out))
	if err != nil {
		t.Fatal(err)
	}
	fingerprint := sha1.Sum(cert.Raw)
	if got.Output != out || got.SHA1 != hex.EncodeToString(fingerprint[:]) || got.SerialNumber != cert.SerialNumber.Text(16) {
		t.Errorf("JSON %+v", got)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		t.Error("key does not match certificate")
	}
	if len(cert.SerialNumber.Bytes()) != 16 {
		t.Errorf("serial number %x is not 16 bytes", cert.SerialNumber)
	}
	var subject pkix.RDNSequence
	if _, err := asn1.Unmarshal(cert.RawSubject, &subject); err != nil {
		t.Fatal(err)
	}
	if len(subject) != 3 || !subject[0][0].Type.Equal(oidCommonName) || subject[0][0].Value != "SEP001122334455" ||
		!subject[1][0].Type.Equal(oidOrganizationUnit) || !subject[2][0].Type.Equal(oidOrganization) {
		t.Errorf("subject %v, want CN, OU, O in that order", subject)
	}
	if cert.IsCA || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "sep001122334455" {
		t.Errorf("IsCA %v, DNS names %v", cert.IsCA, cert.DNSNames)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d < 30*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("validity %v", d)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}

	// The default file name is the lowercased common name.
	t.Chdir(dir)
	mustRun(t, exitOK, "cert", "new", "--cn", "My CA", "--ca", "--key-type", "p256")
	if _, err := os.Stat("my_ca.pem"); err != nil {
		t.Error(err)
	}
}

func TestCertNewErrors(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	leaf := filepath.Join(dir, "leaf.pem")
	otherCA := filepath.Join(dir, "other-ca.pem")
	mustRun(t, exitOK, "cert", "new", "--cn", "leaf", "--key-type", "p256", "-o", leaf)
	mustRun(t, exitOK, "cert", "new", "--cn", "other", "--ca", "--key-type", "p256", "-o", otherCA)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--ou", "x"}, "missing --cn"},
		{[]string{"--cn", "x", "--key-type", "dsa"}, `unknown --key-type "dsa"`},
		{[]string{"--cn", "x", "--days", "0"}, "--days must be between"},
		{[]string{"--cn", "x", "--days", "many"}, "invalid value"},
		{[]string{"--cn", "x", "--ca-cert", leaf}, "missing --ca-key"},
		{[]string{"--cn", "x", "--ca-cert", leaf, "--ca-key", leaf, "-o", ca}, "not a CA certificate"},
		{[]string{"--cn", "x", "--ca-cert", tftpPEM, "--ca-key", leaf, "-o", ca}, "does not match"},
		{[]string{"--cn", "x", "--json", "-o", "-"}, "--json cannot be used when the output goes to standard output"},
		{[]string{"--cn", "x", "--ca-cert", otherCA, "--ca-key", otherCA, "-o", otherCA}, "refusing"},
	} {
		r := ucsec(t, "", append([]string{"cert", "new"}, tt.args...)...)
		if r.code != exitError || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("cert new %s: exit status %d, stderr %q; want 2 and %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.want)
		}
	}
	if _, err := os.Stat(ca); err == nil {
		t.Error("a failed cert new wrote its output")
	}
}

// TestCertNewCA makes a CA and a certificate it signs, and checks the chain.
func TestCertNewCA(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	leafFile := filepath.Join(dir, "leaf.pem")
	mustRun(t, exitOK, "cert", "new", "--cn", "Lab CA", "--org", "Example", "--ca", "--key-type", "p384", "-o", caFile)
	mustRun(t, exitOK, "cert", "new", "--cn", "cucm.example.com", "--ca-cert", caFile, "--ca-key", caFile, "-o", leafFile)

	ca := mustParseCert(t, mustRead(t, caFile))
	leaf := mustParseCert(t, mustRead(t, leafFile))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, key usage %b", ca.IsCA, ca.KeyUsage)
	}
	if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign != 0 || leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Errorf("leaf: IsCA %v, key usage %b", leaf.IsCA, leaf.KeyUsage)
	}
	if string(leaf.RawIssuer) != string(ca.RawSubject) || string(leaf.AuthorityKeyId) != string(ca.SubjectKeyId) || len(ca.SubjectKeyId) == 0 {
		t.Errorf("leaf issuer %q, AKI %x; CA subject %q, SKI %x", leaf.Issuer, leaf.AuthorityKeyId, ca.Subject, ca.SubjectKeyId)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "cucm.example.com"}); err != nil {
		t.Errorf("leaf does not verify against the CA: %v", err)
	}
	// The leaf's key signs files the verifier accepts.
	in := copyFile(t, plainXML, dir)
	mustRun(t, exitOK, "sgn", "sign", "--cert", leafFile, "--key", leafFile, "--hash", "sha1", in)
	mustRun(t, exitOK, "sgn", "verify", "--cert", leafFile, in+".sgn")
}
