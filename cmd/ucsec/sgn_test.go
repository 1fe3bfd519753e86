package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSgnVerify(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.sgn")
	if err := os.WriteFile(truncated, mustRead(t, sha1SGN)[:300], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"sha1", []string{"--cert", tftpPEM, sha1SGN}, exitOK, "SEP001122334455.cnf.xml.sgn: valid signature by CN=Asterisk,O=Asterisk,OU=Asterisk", ""},
		{"sha512", []string{"--cert", tftpPEM, sha512SGN}, exitOK, "valid signature by", ""},
		{"several", []string{"--cert", tftpPEM, sha1SGN, sha512SGN}, exitOK, "sgn-sha512/", ""},
		{"flags after args", []string{sha1SGN, "--cert", tftpPEM}, exitOK, "valid signature", ""},
		{"one dash", []string{"-cert", tftpPEM, sha1SGN}, exitOK, "valid signature", ""},
		{"wrong signer", []string{"--cert", sastPEM, sha1SGN}, exitInvalid, "", "certificate is not the signer"},
		{"truncated", []string{"--cert", tftpPEM, truncated}, exitError, "", "truncated.sgn: sgn: malformed signed file"},
		{"not signed", []string{"--cert", tftpPEM, plainXML}, exitError, "", "malformed signed file"},
		{"missing file", []string{"--cert", tftpPEM, filepath.Join(dir, "nosuch")}, exitError, "", "no such file"},
		{"unreadable cert", []string{"--cert", filepath.Join(dir, "nosuch.pem"), sha1SGN}, exitError, "", "nosuch.pem: no such file"},
		{"cert without certificate", []string{"--cert", sha1SGN, sha1SGN}, exitError, "", "not a valid certificate"},
		{"EC cert", []string{"--cert", ecPEM, sha1SGN}, exitInvalid, "", "not the signer"},
		{"one valid one wrong", []string{"--cert", tftpPEM, sha1SGN, truncated}, exitError, "valid signature", "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, "", append([]string{"sgn", "verify"}, tt.args...)...)
			r.check(t, tt.code, tt.stdout, tt.stderr)
		})
	}
}

func TestSgnVerifyStdin(t *testing.T) {
	r := ucsec(t, string(mustRead(t, sha1SGN)), "sgn", "verify", "--cert", tftpPEM, "-")
	if r.code != exitOK || r.stdout != "stdin: valid signature by CN=Asterisk,O=Asterisk,OU=Asterisk\n" {
		t.Errorf("got %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestSgnVerifyJSON(t *testing.T) {
	r := ucsec(t, "", "sgn", "verify", "--json", "--cert", sastPEM, sha1SGN, sha512SGN)
	if r.code != exitInvalid || r.stderr != "" {
		t.Fatalf("exit status %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per file, got %q", r.stdout)
	}
	var v verifyResult
	if err := json.Unmarshal([]byte(lines[1]), &v); err != nil {
		t.Fatal(err)
	}
	if v.File != sha512SGN || v.Valid || !strings.Contains(v.Error, "not the signer") {
		t.Errorf("got %+v", v)
	}
	r = mustRun(t, exitOK, "sgn", "verify", "--json", "--cert", tftpPEM, sha1SGN)
	v = verifyResult{}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Valid || v.Error != "" || v.Signer != "CN=Asterisk,O=Asterisk,OU=Asterisk" {
		t.Errorf("got %+v", v)
	}
}

func TestSgnParse(t *testing.T) {
	r := mustRun(t, exitOK, "sgn", "parse", sha1SGN)
	for _, want := range []string{
		"Version:          1.0\n",
		"Header Length:    424 bytes\n",
		"Signer Name:      CN=Asterisk,O=Asterisk,OU=Asterisk\n",
		"Issuer Name:      CN=Asterisk,O=Asterisk,OU=Asterisk\n",
		"Serial Number:    6c580972fe7b096013aec87f333aa647\n",
		"Hash Algorithm:   SHA1\n",
		"Signature:        256 bytes\n",
		"Filename:         SEP001122334455.cnf.xml.sgn\n",
		"Timestamp:        2026-11-25 18:52:34 UTC\n",
		"Padding:          1 byte(s)\n",
		"Payload:          269 bytes\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Verification") {
		t.Errorf("parse without --cert verified:\n%s", r.stdout)
	}

	r = mustRun(t, exitOK, "sgn", "parse", sha512SGN, "--cert", tftpPEM)
	for _, want := range []string{"Hash Algorithm:   SHA512\n", "Verification:     valid\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, exitInvalid, "sgn", "parse", sha512SGN, "--cert", sastPEM)
	if !strings.Contains(r.stdout, "Verification:     invalid\n") || !strings.Contains(r.stderr, "not the signer") {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestSgnParseJSON(t *testing.T) {
	r := mustRun(t, exitOK, "sgn", "parse", "--json", sha1SGN)
	var got sgnReport
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	want := sgnReport{
		headerReport: headerReport{
			File: sha1SGN, Version: "1.0", HeaderLength: 424,
			SignerName: "CN=Asterisk,O=Asterisk,OU=Asterisk", IssuerName: "CN=Asterisk,O=Asterisk,OU=Asterisk",
			SerialNumber: "6c580972fe7b096013aec87f333aa647", HashAlgorithm: "SHA1",
			Filename: "SEP001122334455.cnf.xml.sgn", Padding: 1,
		},
		PayloadLength: 269,
	}
	if got.File != want.File || got.Version != want.Version || got.HeaderLength != want.HeaderLength ||
		got.SignerName != want.SignerName || got.IssuerName != want.IssuerName ||
		got.SerialNumber != want.SerialNumber || got.HashAlgorithm != want.HashAlgorithm ||
		got.Filename != want.Filename || got.Padding != want.Padding || got.PayloadLength != want.PayloadLength {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got.Timestamp == nil || !got.Timestamp.Equal(time.Date(2026, 11, 25, 18, 52, 34, 0, time.UTC)) {
		t.Errorf("timestamp %v", got.Timestamp)
	}
	if got.Valid != nil {
		t.Errorf("valid %v without --cert", *got.Valid)
	}
	// Byte strings are lowercase hex, the timestamp RFC 3339 in UTC.
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	if sig, _ := raw["signature"].(string); len(sig) != 512 || strings.ToLower(sig) != sig {
		t.Errorf("signature %q is not 256 bytes in lowercase hex", sig)
	}
	if ts := raw["timestamp"]; ts != "2026-11-25T18:52:34Z" {
		t.Errorf("timestamp %q", ts)
	}

	r = mustRun(t, exitInvalid, "sgn", "parse", "--json", "--cert", sastPEM, sha1SGN)
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Valid == nil || *got.Valid || got.Error == "" {
		t.Errorf("valid %v, error %q", got.Valid, got.Error)
	}
}

// signArgs returns the arguments of "sgn sign" with the tftp.pem vector.
func signArgs(hash string, args ...string) []string {
	return append([]string{"sgn", "sign", "--cert", tftpPEM, "--key", tftpPEM, "--hash", hash}, args...)
}

func TestSgnSignRoundTrip(t *testing.T) {
	for _, hash := range []string{"sha1", "sha256", "sha512"} {
		t.Run(hash, func(t *testing.T) {
			dir := t.TempDir()
			in := copyFile(t, plainXML, dir)
			out := in + ".sgn"
			r := mustRun(t, exitOK, signArgs(hash, in)...)
			if r.stdout != "" || r.stderr != "" {
				t.Errorf("sign printed %q %q", r.stdout, r.stderr)
			}
			if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
				t.Fatalf("output: %v, %v", fi, err)
			}
			mustRun(t, exitOK, "sgn", "verify", "--cert", tftpPEM, out)
			r = mustRun(t, exitOK, "sgn", "parse", out)
			if !strings.Contains(r.stdout, "Filename:         SEP001122334455.cnf.xml.sgn\n") ||
				!strings.Contains(r.stdout, "Hash Algorithm:   "+strings.ToUpper(hash)+"\n") {
				t.Errorf("parse:\n%s", r.stdout)
			}
			mustRun(t, exitOK, "sgn", "strip", "-o", filepath.Join(dir, "stripped"), out)
			if !bytes.Equal(mustRead(t, filepath.Join(dir, "stripped")), mustRead(t, in)) {
				t.Error("strip did not give back the original")
			}
		})
	}
}

func TestSgnSignOptions(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	out := filepath.Join(dir, "other.sgn")
	r := mustRun(t, exitOK, signArgs("sha512", in, "-o", out, "--json", "--version", "1.1", "--no-timestamp",
		"--filename", "Desktops/320x196x4/List.xml.sgn")...)
	var got struct {
		Output, Filename string
		Bytes            int
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Output != out || got.Filename != "Desktops/320x196x4/List.xml.sgn" || got.Bytes != len(mustRead(t, out)) {
		t.Errorf("got %+v", got)
	}
	r = mustRun(t, exitOK, "sgn", "parse", "--cert", tftpPEM, out)
	for _, want := range []string{"Version:          1.1\n", "Timestamp:        (none)\n", "Filename:         Desktops/320x196x4/List.xml.sgn\n", "valid"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("parse lacks %q:\n%s", want, r.stdout)
		}
	}

	// Without -o, the header names the default output.
	mustRun(t, exitOK, signArgs("sha1", "-o", filepath.Join(dir, "x.sgn"), in)...)
	if r := mustRun(t, exitOK, "sgn", "parse", filepath.Join(dir, "x.sgn")); !strings.Contains(r.stdout, "Filename:         x.sgn\n") {
		t.Errorf("parse:\n%s", r.stdout)
	}
}

func TestSgnSignStdio(t *testing.T) {
	plain := string(mustRead(t, plainXML))
	r := ucsec(t, plain, signArgs("sha1", "--filename", "SEP001122334455.cnf.xml.sgn", "-")...)
	if r.code != exitOK {
		t.Fatalf("sign: %d %s", r.code, r.stderr)
	}
	signed := r.stdout
	r = ucsec(t, signed, "sgn", "verify", "--cert", tftpPEM, "-")
	if r.code != exitOK {
		t.Fatalf("verify: %d %s", r.code, r.stderr)
	}
	r = ucsec(t, signed, "sgn", "strip", "-")
	if r.code != exitOK || r.stdout != plain {
		t.Fatalf("strip: %d %s", r.code, r.stderr)
	}
	// A file to standard output keeps the input's name.
	r = ucsec(t, "", signArgs("sha1", "-o", "-", plainXML)...)
	if r.code != exitOK || !strings.Contains(r.stdout, "SEP001122334455.cnf.xml.sgn\x00") {
		t.Errorf("sign -o -: %d %s", r.code, r.stderr)
	}
	// Standard input to standard output needs --filename.
	if r := ucsec(t, plain, signArgs("sha1", "-")...); r.code != exitError || !strings.Contains(r.stderr, "missing --filename") {
		t.Errorf("got %d %q", r.code, r.stderr)
	}
}

func TestSgnSignErrors(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	key := copyFile(t, tftpPEM, dir)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing hash", []string{"sgn", "sign", "--cert", tftpPEM, "--key", tftpPEM, in}, "ucsec: missing --hash (sha1 or sha512)"},
		{"unknown hash", signArgs("md5", in), `unknown --hash "md5"`},
		{"missing cert", []string{"sgn", "sign", "--key", tftpPEM, "--hash", "sha1", in}, "missing --cert"},
		{"missing key", []string{"sgn", "sign", "--cert", tftpPEM, "--hash", "sha1", in}, "missing --key"},
		{"key mismatch", []string{"sgn", "sign", "--cert", tftpPEM, "--key", sastPEM, "--hash", "sha1", in}, "does not match"},
		{"EC key", []string{"sgn", "sign", "--cert", ecPEM, "--key", ecPEM, "--hash", "sha1", in}, "must be RSA"},
		{"bad version", signArgs("sha1", "--version", "1", in), "invalid --version"},
		{"input as output", signArgs("sha1", "-o", in, in), "refusing to write the output over input file"},
		{"key as output", []string{"sgn", "sign", "--cert", key, "--key", key, "--hash", "sha1", "-o", key, in}, "refusing to write the output over input file"},
		{"json to stdout", signArgs("sha1", "--json", "-o", "-", in), "--json cannot be used when the output goes to standard output"},
		{"missing input", signArgs("sha1", filepath.Join(dir, "nosuch")), "nosuch: no such file"},
		{"output is a directory", signArgs("sha1", "-o", dir, in), "is a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, "", tt.args...)
			if r.code != exitError || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit status %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
	if !bytes.Equal(mustRead(t, in), mustRead(t, plainXML)) || !bytes.Equal(mustRead(t, key), mustRead(t, tftpPEM)) {
		t.Error("input changed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("files left in the directory: %v", entries)
	}
}

func TestSgnTampered(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	mustRun(t, exitOK, signArgs("sha1", in)...)
	signed := mustRead(t, in+".sgn")
	for _, off := range []int{10, 300, len(signed) - 1} { // header, signature, payload
		b := bytes.Clone(signed)
		b[off] ^= 0x01
		name := filepath.Join(dir, "tampered.sgn")
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := ucsec(t, "", "sgn", "verify", "--cert", tftpPEM, name)
		if r.code == exitOK {
			t.Errorf("byte %d flipped: verify succeeded", off)
		}
		if off >= 300 && r.code != exitInvalid {
			t.Errorf("byte %d flipped: exit status %d, want 1 (%s)", off, r.code, r.stderr)
		}
		// strip --cert refuses it, plain strip does not check.
		out := filepath.Join(dir, "stripped")
		if r := ucsec(t, "", "sgn", "strip", "--cert", tftpPEM, "-o", out, name); r.code == exitOK {
			t.Errorf("byte %d flipped: strip --cert succeeded", off)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("byte %d flipped: strip --cert wrote %s", off, out)
		}
	}
}

func TestSgnStrip(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, sha512SGN, dir)
	want := mustRead(t, plainXML)

	mustRun(t, exitOK, "sgn", "strip", in)
	if !bytes.Equal(mustRead(t, filepath.Join(dir, "SEP001122334455.cnf.xml")), want) {
		t.Error("strip did not give back the original")
	}
	r := mustRun(t, exitOK, "sgn", "strip", in, "-o", "-", "--cert", tftpPEM)
	if r.stdout != string(want) {
		t.Error("strip -o - did not give back the original")
	}
	mustRun(t, exitInvalid, "sgn", "strip", "--cert", sastPEM, "-o", "-", in)
	if r := mustRun(t, exitError, "sgn", "strip", "-o", in, in); !strings.Contains(r.stderr, "refusing") {
		t.Errorf("stderr %q", r.stderr)
	}
	mustRun(t, exitError, "sgn", "strip", plainXML)
	if !bytes.Equal(mustRead(t, in), mustRead(t, sha512SGN)) {
		t.Error("input changed")
	}
}

func TestSgnRefusesHardLinkedInput(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	link := filepath.Join(dir, "link")
	if err := os.Link(in, link); err != nil {
		t.Skip("no hard links:", err)
	}
	r := mustRun(t, exitError, signArgs("sha1", "-o", link, in)...)
	if !strings.Contains(r.stderr, "refusing") {
		t.Errorf("stderr %q", r.stderr)
	}
}

// FuzzSgnParse checks that parsing any input exits with 0 or 2, without a
// panic.
func FuzzSgnParse(f *testing.F) {
	f.Add(mustRead(f, sha1SGN))
	f.Add(mustRead(f, sha512SGN))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, args := range [][]string{{"sgn", "parse", "-"}, {"sgn", "parse", "--json", "-"}, {"sgn", "verify", "--cert", tftpPEM, "-"}} {
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

func TestSgnParseExtraElements(t *testing.T) {
	encSGN := filepath.Join(vectors, "enc", "SEP001122334455.cnf.xml.enc.sgn")
	r := mustRun(t, exitOK, "sgn", "parse", encSGN)
	for _, want := range []string{"Version:          2.0\n", "Element 0x10:     306 byte(s)\n", "Element 0x1A:     1 byte(s): 01\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, exitOK, "sgn", "parse", "--json", encSGN)
	var got sgnReport
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Extra) != 3 || got.Extra[1].Tag != 0x1A || string(got.Extra[1].Value) != "\x01" {
		t.Errorf("extra %+v", got.Extra)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"CN=Asterisk;O=Ex ample": "CN=Asterisk;O=Ex ample",
		"CN=Zürich":              "CN=Zürich",
		"CN=\x1b[2Jx":            `CN=\x1b[2Jx`,
		"a\nb\xff":               `a\nb\xff`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
