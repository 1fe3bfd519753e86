package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/pemutil"
	"github.com/ucsec/ucsec/sgn"
)

// Trust-list vectors: an ITL with one record of each role, signed by
// sast.pem, and a CTL (SAST, CCM+TFTP) with SHA-512 and signer version 1.1.
var (
	itlVector = filepath.Join(vectors, "ITLFile.tlv")
	ctlVector = filepath.Join(vectors, "CTLFile-sha512-v1.1.tlv")
)

// buildArgs returns the arguments of "tlv build" signed by sast.pem with
// SHA-1, with a SAST record for sast.pem and one record per role=file.
func buildArgs(args ...string) []string {
	return append([]string{"tlv", "build", "--cert", sastPEM, "--key", sastPEM, "--hash", "sha1", "--record", "sast=" + sastPEM}, args...)
}

// writeTemp writes data to the file name in dir and returns its path.
func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLVHelp(t *testing.T) {
	for _, args := range [][]string{{"tlv", "-h"}, {"tlv", "parse", "-h"}, {"tlv", "build", "-h"}, {"help", "tlv", "verify"}} {
		r := mustRun(t, exitOK, args...)
		if !strings.HasPrefix(r.stdout, "Usage: ucsec tlv") || !strings.Contains(r.stdout, "Example") {
			t.Errorf("ucsec %s: help lacks usage or example:\n%s", strings.Join(args, " "), r.stdout)
		}
	}
	r := mustRun(t, exitOK, "tlv", "build", "-h")
	for _, want := range []string{"--record ROLE=CERT", "--ctl", "--itl", "--signer-version VERSION", "--version VERSION", "(default 1.2)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("tlv build help lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := mustRun(t, exitOK, "tlv", "parse", "-h"); !strings.Contains(r.stdout, "verifies nothing") {
		t.Errorf("tlv parse help does not say it verifies nothing:\n%s", r.stdout)
	}
}

func TestTLVParse(t *testing.T) {
	r := mustRun(t, exitOK, "tlv", "parse", itlVector)
	for _, want := range []string{
		"Version:          1.2\n",
		"Header Length:    388 bytes\n",
		"Signer Version:   1.0\n",
		"Signer Name:      CN=SAST,O=SAST,OU=SAST\n",
		"Serial Number:    c31d16959420cb8fc84d225bcbc88fde\n",
		"Hash Algorithm:   SHA1\n",
		"Signature:        256 bytes\n",
		"Filename:         ITLFile.tlv\n",
		"Timestamp:        2026-11-25 18:52:33 UTC\n",
		"\nRecord #1 (offset 388)\nRecord Length:    1485 bytes\n",
		"Role:             System Administrator Security Token\n",
		"Certificate Hash: d418b9080a8138cae0d16ccc0bbf9ee8c67449fe\n",
		"Role:             TFTP\nPublic Key:       97 bytes\n",
		"Key Algorithm:    EC\n",
		"Role:             APP-SERVER\n",
		"Record #7 (offset ",
		"Role:             TVS\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	// certutils records have no DNS name: no line for it.
	if strings.Contains(r.stdout, "DNS Name") || strings.Count(r.stdout, "Record #") != 7 {
		t.Errorf("output:\n%s", r.stdout)
	}

	r = mustRun(t, exitOK, "tlv", "parse", ctlVector)
	for _, want := range []string{"Signer Version:   1.1\n", "Hash Algorithm:   SHA512\n", "Filename:         CTLFile.tlv\n", "Role:             CCM+TFTP\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestTLVParseJSON(t *testing.T) {
	r := mustRun(t, exitOK, "tlv", "parse", "--json", itlVector)
	var got tlvReport
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if got.File != itlVector || got.HeaderLength != 388 || got.SignerVersion == nil || *got.SignerVersion != "1.0" ||
		got.SignerName != "CN=SAST,O=SAST,OU=SAST" || got.SerialNumber != "c31d16959420cb8fc84d225bcbc88fde" ||
		got.HashAlgorithm != "SHA1" || len(got.Signature) != 256 || got.Filename != "ITLFile.tlv" || got.Timestamp == nil {
		t.Errorf("header %+v", got)
	}
	var roles []string
	for _, rec := range got.Records {
		roles = append(roles, rec.RoleName)
	}
	if strings.Join(roles, " ") != "SAST CCM TFTP CCM+TFTP CAPF APP-SERVER TVS" {
		t.Fatalf("roles %q", roles)
	}
	first, tftp := got.Records[0], got.Records[2]
	if first.Offset != 388 || first.Length != 1485 || first.Role != 0 || first.KeyAlgorithm != "RSA" ||
		hex.EncodeToString(first.CertificateSHA1) != "d418b9080a8138cae0d16ccc0bbf9ee8c67449fe" || len(first.Certificate) != 869 {
		t.Errorf("record 1 %+v", first)
	}
	if tftp.Role != 3 || tftp.PublicKeyLength != 97 || tftp.KeyAlgorithm != "EC" || got.Records[6].Role != 21 {
		t.Errorf("records %+v", got.Records)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("not one line:\n%s", r.stdout)
	}
}

func TestTLVVerify(t *testing.T) {
	dir := t.TempDir()
	itl := mustRead(t, itlVector)
	unnamed := writeTemp(t, dir, "list.tlv", itl)
	truncated := writeTemp(t, dir, "ITLtruncated.tlv", itl[:600])
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"ITL", []string{itlVector}, exitOK, "ITLFile.tlv: valid, signed by CN=SAST,O=SAST,OU=SAST (record #1 SAST)\n", ""},
		{"CTL", []string{ctlVector}, exitOK, "CTLFile-sha512-v1.1.tlv: valid, signed by CN=SAST,O=SAST,OU=SAST (record #1 SAST)\n", ""},
		{"ITL and sgn", []string{itlVector, "--sgn", sha1SGN}, exitOK, "SEP001122334455.cnf.xml.sgn: signed by record #4 CCM+TFTP of " + itlVector + "\n", ""},
		{"CTL and sgn", []string{"--sgn", sha1SGN, "--sgn", sha512SGN, ctlVector}, exitOK, "sgn-sha512/SEP001122334455.cnf.xml.sgn: signed by record #2 CCM+TFTP", ""},
		{"name says neither", []string{unnamed}, exitError, "", "cannot tell CTL from ITL by the name; give --ctl or --itl"},
		{"--itl", []string{"--itl", unnamed}, exitOK, "list.tlv: valid", ""},
		{"--ctl", []string{unnamed, "--ctl"}, exitOK, "list.tlv: valid", ""},
		{"both flags", []string{"--ctl", "--itl", itlVector}, exitError, "", "--ctl and --itl cannot be used together"},
		{"truncated", []string{truncated}, exitError, "", "ITLtruncated.tlv: sgn: malformed signed file at offset 388"},
		{"truncated and sgn", []string{truncated, "--sgn", sha1SGN}, exitError, "", "malformed"},
		{"missing", []string{filepath.Join(dir, "CTLFile.tlv")}, exitError, "", "CTLFile.tlv: no such file"},
		{"sgn not signed", []string{itlVector, "--sgn", plainXML}, exitError, "valid", "cnf.xml: sgn: malformed signed file"},
		{"sgn missing", []string{itlVector, "--sgn", filepath.Join(dir, "x.sgn")}, exitError, "valid", "x.sgn: no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, "", append([]string{"tlv", "verify"}, tt.args...)...)
			r.check(t, tt.code, tt.stdout, tt.stderr)
		})
	}
}

func TestTLVVerifyJSON(t *testing.T) {
	r := mustRun(t, exitError, "tlv", "verify", "--json", itlVector, "--sgn", sha1SGN, "--sgn", plainXML)
	var got []verifyResult
	for line := range strings.Lines(r.stdout) {
		var v verifyResult
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 3 || r.stderr != "" {
		t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if !got[0].Valid || got[0].File != itlVector || got[0].Signer != "CN=SAST,O=SAST,OU=SAST" ||
		!got[1].Valid || got[1].Signer != "CN=Asterisk,O=Asterisk,OU=Asterisk" ||
		got[2].Valid || got[2].File != plainXML || !strings.HasPrefix(got[2].Error, "sgn: malformed signed file") {
		t.Errorf("got %+v", got)
	}
}

func TestTLVBuild(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ITLFile.tlv")
	r := mustRun(t, exitOK, buildArgs("--record", "tftp="+tftpPEM, "--record", "TVS="+tftpPEM, "-o", out)...)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("build printed %q %q", r.stdout, r.stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("output: %v, %v", fi, err)
	}
	mustRun(t, exitOK, "tlv", "verify", out, "--sgn", sha1SGN)
	r = mustRun(t, exitOK, "tlv", "parse", out)
	for _, want := range []string{
		"Version:          1.2\n", "Filename:         ITLFile.tlv\n", "Hash Algorithm:   SHA1\n",
		"Role:             System Administrator Security Token\n", "Role:             TFTP\n", "Role:             TVS\n",
		"DNS Name:         asterisk\n", "Certificate Hash: 0e54614eb79ed24596ba52fe7dc017bd1d7baea2\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("parse lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Signer Version") || strings.Count(r.stdout, "Record #") != 3 {
		t.Errorf("parse:\n%s", r.stdout)
	}

	// Flipping the last byte, in the last record's certificate, keeps the
	// layout and breaks the signature.
	signed := mustRead(t, out)
	signed[len(signed)-1] ^= 0x01
	tampered := writeTemp(t, dir, "ITLtampered.tlv", signed)
	if r := mustRun(t, exitInvalid, "tlv", "verify", tampered); !strings.Contains(r.stderr, "ITLtampered.tlv: sgn: signature verification failed") {
		t.Errorf("stderr %q", r.stderr)
	}

	// A CTL whose TFTP certificate is only a CCM record: the list is
	// valid, but does not vouch for the files that certificate signs.
	ctl := filepath.Join(dir, "CTLFile.tlv")
	mustRun(t, exitOK, buildArgs("--record", "ccm="+tftpPEM, "-o", ctl)...)
	r = mustRun(t, exitInvalid, "tlv", "verify", ctl, "--sgn", sha1SGN)
	if !strings.Contains(r.stdout, "CTLFile.tlv: valid") || !strings.Contains(r.stderr, "SEP001122334455.cnf.xml.sgn: ctl: signer is not trusted: the signer's record has role CCM") {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestTLVBuildOptions(t *testing.T) {
	dir := t.TempDir()
	// A per-phone copy: the CTL policy by the name, the generic name in the
	// header.
	out := filepath.Join(dir, "CTLSEP001122334455.tlv")
	r := mustRun(t, exitOK, buildArgs("--record", "ccm+tftp="+tftpPEM, "--record", "app-server="+ecPEM,
		"--hash", "sha512", "--signer-version", "1.1", "--version", "1.3", "--json", "-o", out)...)
	var got struct {
		Output, Filename string
		Bytes            int
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Output != out || got.Filename != "CTLFile.tlv" || got.Bytes != len(mustRead(t, out)) {
		t.Errorf("got %+v", got)
	}
	mustRun(t, exitOK, "tlv", "verify", out, "--sgn", sha512SGN)
	r = mustRun(t, exitOK, "tlv", "parse", out)
	for _, want := range []string{"Version:          1.3\n", "Signer Version:   1.1\n", "Hash Algorithm:   SHA512\n", "Filename:         CTLFile.tlv\n", "Role:             APP-SERVER\n", "Key Algorithm:    EC\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("parse lacks %q:\n%s", want, r.stdout)
		}
	}

	// Standard output, then standard input.
	r = mustRun(t, exitOK, buildArgs("--ctl", "-o", "-")...)
	if r := ucsec(t, r.stdout, "tlv", "verify", "--ctl", "-"); r.code != exitOK || r.stdout != "stdin: valid, signed by CN=SAST;O=SAST;OU=SAST (record #1 SAST)\n" {
		t.Errorf("verify stdin: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// --itl names the default output; --filename sets the header's name.
	copyFile(t, sastPEM, dir)
	t.Chdir(dir)
	mustRun(t, exitOK, "tlv", "build", "--cert", "sast.pem", "--key", "sast.pem", "--hash", "sha1",
		"--record", "sast=sast.pem", "--itl", "--filename", "ITLSEP001122334455.tlv")
	if r := mustRun(t, exitOK, "tlv", "parse", "ITLFile.tlv"); !strings.Contains(r.stdout, "Filename:         ITLSEP001122334455.tlv\n") {
		t.Errorf("parse:\n%s", r.stdout)
	}
}

func TestTLVBuildSize(t *testing.T) {
	dir := t.TempDir()
	records := func(n int) []string {
		var args []string
		for range n {
			args = append(args, "--record", "tvs="+tftpPEM)
		}
		return args
	}
	// About 1.5 KB a record: 37 records pass 56 KiB, 43 pass 64 KiB.
	out := filepath.Join(dir, "ITLFile.tlv")
	r := mustRun(t, exitOK, buildArgs(append(records(37), "-o", out)...)...)
	size := len(mustRead(t, out))
	if want := "ucsec: warning: ITL is "; !strings.HasPrefix(r.stderr, want) || !strings.HasSuffix(r.stderr, " bytes; phones reject ITLs over 65536\n") || size < 56*1024 {
		t.Errorf("%d bytes, stderr %q", size, r.stderr)
	}
	mustRun(t, exitOK, "tlv", "verify", out)

	big := filepath.Join(dir, "ITLbig.tlv")
	r = mustRun(t, exitError, buildArgs(append(records(43), "-o", big)...)...)
	if !strings.Contains(r.stderr, "more than the 65536 phones accept") {
		t.Errorf("stderr %q", r.stderr)
	}
	if _, err := os.Stat(big); err == nil {
		t.Error("oversize ITL written")
	}
	// A CTL has no size limit.
	mustRun(t, exitOK, buildArgs(append(records(43), "-o", filepath.Join(dir, "CTLFile.tlv"))...)...)
}

func TestTLVBuildErrors(t *testing.T) {
	dir := t.TempDir()
	cert := copyFile(t, tftpPEM, dir)
	ctl := filepath.Join(dir, "CTLFile.tlv")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"CTL signed by CCM+TFTP", []string{"tlv", "build", "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1", "--record", "sast=" + sastPEM, "--record", "ccm+tftp=" + tftpPEM, "-o", ctl}, "is not a SAST record"},
		{"signer not in list", []string{"tlv", "build", "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1", "--record", "sast=" + sastPEM, "--itl"}, "is not a SAST, TFTP or CCM+TFTP record"},
		{"three SAST", buildArgs("--record", "sast="+tftpPEM, "--record", "sast="+devicePEM, "-o", ctl), "more than 2 SAST records"},
		{"same SAST twice", buildArgs("--record", "sast="+sastPEM, "-o", ctl), "also in record 1"},
		{"missing hash", []string{"tlv", "build", "--cert", sastPEM, "--key", sastPEM, "--record", "sast=" + sastPEM, "-o", ctl}, "ucsec: missing --hash"},
		{"unknown hash", buildArgs("--hash", "md5", "-o", ctl), `unknown --hash "md5"`},
		{"name says neither", buildArgs("-o", filepath.Join(dir, "list.tlv")), "cannot tell CTL from ITL by the name; give --ctl or --itl"},
		{"no output", buildArgs(), "missing -o"},
		{"both kinds", buildArgs("--ctl", "--itl"), "--ctl and --itl cannot be used together"},
		{"no record", []string{"tlv", "build", "--cert", sastPEM, "--key", sastPEM, "--hash", "sha1", "-o", ctl}, "missing --record"},
		{"unknown role", buildArgs("--record", "phone="+tftpPEM, "-o", ctl), `unknown role "phone"`},
		{"record without role", buildArgs("--record", tftpPEM, "-o", ctl), "want ROLE=CERT"},
		{"missing record file", buildArgs("--record", "tftp="+filepath.Join(dir, "nosuch.pem"), "-o", ctl), "nosuch.pem: no such file"},
		{"bad signer version", buildArgs("--signer-version", "1", "-o", ctl), "invalid --signer-version"},
		{"bad version", buildArgs("--version", "x", "-o", ctl), "invalid --version"},
		{"EC signer", []string{"tlv", "build", "--cert", ecPEM, "--key", ecPEM, "--hash", "sha1", "--record", "sast=" + ecPEM, "-o", ctl}, "must be RSA"},
		{"key mismatch", []string{"tlv", "build", "--cert", sastPEM, "--key", tftpPEM, "--hash", "sha1", "--record", "sast=" + sastPEM, "-o", ctl}, "does not match"},
		{"record as output", buildArgs("--record", "tftp="+cert, "--ctl", "-o", cert), "refusing to write the output over input file"},
		{"json to stdout", buildArgs("--ctl", "--json", "-o", "-"), "--json cannot be used"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, "", tt.args...)
			if r.code != exitError || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Errorf("exit status %d, stdout %q, stderr %q; want 2 and %q", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
	if !bytes.Equal(mustRead(t, cert), mustRead(t, tftpPEM)) {
		t.Error("input changed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left in the directory: %v", entries)
	}
}

// FuzzTLVParse checks that parsing and verifying any input exits with 0,
// 1 or 2, without a panic.
func FuzzTLVParse(f *testing.F) {
	f.Add(mustRead(f, itlVector))
	f.Add(mustRead(f, ctlVector))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, args := range [][]string{{"tlv", "parse", "-"}, {"tlv", "parse", "--json", "-"}, {"tlv", "verify", "--itl", "-"}} {
			var stdout, stderr bytes.Buffer
			code := run(args, bytes.NewReader(data), &stdout, &stderr)
			if code != exitOK && code != exitInvalid && code != exitError {
				t.Fatalf("exit status %d", code)
			}
			if code != exitOK && strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("stderr %q is not one line", stderr.String())
			}
		}
	})
}

func TestTLVParseOptionalElements(t *testing.T) {
	pemData := mustRead(t, sastPEM)
	cert := mustParseCert(t, pemData)
	key, err := pemutil.ParseSigner(pemData)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ctl.NewRecord(cert, ctl.RoleSAST)
	if err != nil {
		t.Fatal(err)
	}
	rec.IPAddress = netip.MustParseAddr("192.0.2.10")
	rec.CertificateHash = bytes.Repeat([]byte{0xAB}, 20)
	rec.Extra = []sgn.Element{{Tag: 0x42, Value: []byte{1, 2}}}
	bare := ctl.Record{Role: 99}
	data, err := ctl.Create(rand.Reader, &ctl.File{Header: sgn.Header{Hash: crypto.SHA1}, Records: []ctl.Record{rec, bare}}, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	name := writeTemp(t, t.TempDir(), "CTLFile.tlv", data)
	r := mustRun(t, exitOK, "tlv", "parse", name)
	for _, want := range []string{
		"IP Address:       192.0.2.10\nElement 0x0B:     20 byte(s)\nElement 0x42:     2 byte(s): 0102\n",
		"Record Length:    14 bytes\nRole:             99\nKey Algorithm:    -\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, exitOK, "tlv", "parse", "--json", name)
	var got tlvReport
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 2 || got.Records[0].IPAddress != "192.0.2.10" || len(got.Records[0].Extra) != 2 ||
		got.Records[1].RoleName != "99" || got.Records[1].KeyAlgorithm != "" || got.Records[1].Certificate != nil {
		t.Errorf("records %+v", got.Records)
	}
}
