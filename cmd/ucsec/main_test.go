package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// vectors is the directory of the certutils test vectors.
const vectors = "../../testdata/certutils"

// Paths of the vectors the tests use.
var (
	tftpPEM   = filepath.Join(vectors, "keys", "tftp.pem")   // RSA CN=Asterisk, signer of the .sgn vectors
	sastPEM   = filepath.Join(vectors, "keys", "sast.pem")   // another RSA certificate
	devicePEM = filepath.Join(vectors, "keys", "device.pem") // phone certificate
	ecPEM     = filepath.Join(vectors, "keys", "tftp-ec-p384.pem")
	plainXML  = filepath.Join(vectors, "SEP001122334455.cnf.xml")
	sha1SGN   = filepath.Join(vectors, "sgn-sha1", "SEP001122334455.cnf.xml.sgn")
	sha512SGN = filepath.Join(vectors, "sgn-sha512", "SEP001122334455.cnf.xml.sgn")
)

// result is what one run of the command gave.
type result struct {
	code           int
	stdout, stderr string
}

// ucsec runs the command line args in-process, with stdin as standard
// input.
func ucsec(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// check reports an error unless r exited with code, its standard output
// contains stdout and its standard error contains stderr; a failure must
// be reported as one "ucsec: " line.
func (r result) check(t *testing.T, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stdout, stdout) || !strings.Contains(r.stderr, stderr) {
		t.Errorf("exit status %d, stdout %q, stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
	if code != exitOK && !strings.HasPrefix(r.stderr, "ucsec: ") {
		t.Errorf("stderr %q does not start with \"ucsec: \"", r.stderr)
	}
}

// mustRun runs args and fails the test unless the exit status is want.
func mustRun(t *testing.T, want int, args ...string) result {
	t.Helper()
	r := ucsec(t, "", args...)
	if r.code != want {
		t.Fatalf("ucsec %s: exit status %d, want %d\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// mustRead returns the contents of a file the test needs.
func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyFile copies src into dir and returns the copy's path.
func copyFile(t *testing.T, src, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, mustRead(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestHelp(t *testing.T) {
	// Every group and command, from the table, in each way of asking.
	cases := [][]string{{"-h"}, {"--help"}, {"help"}, {"cert", "hash", "FILE", "-h"}}
	var addGroup func(words []string, g *group)
	addGroup = func(words []string, g *group) {
		words = append(words[:len(words):len(words)], g.name)
		cases = append(cases, append(words, "-h"), append([]string{"help"}, words...))
		for _, c := range g.commands {
			w := append(words[:len(words):len(words)], c.name)
			cases = append(cases, append(w, "-h"), append(w, "--help"), append([]string{"help"}, w...))
		}
		for _, sub := range g.groups {
			addGroup(words, sub)
		}
	}
	for _, g := range groups {
		addGroup(nil, g)
	}
	for _, c := range commands {
		cases = append(cases, []string{c.name, "-h"}, []string{c.name, "--help"}, []string{"help", c.name})
	}
	for _, args := range cases {
		r := mustRun(t, exitOK, args...)
		if !strings.HasPrefix(r.stdout, "Usage: ucsec") || !strings.Contains(r.stdout, "Example") {
			t.Errorf("ucsec %s: help lacks usage or example:\n%s", strings.Join(args, " "), r.stdout)
		}
		if r.stderr != "" {
			t.Errorf("ucsec %s: stderr %q", strings.Join(args, " "), r.stderr)
		}
	}
	top := mustRun(t, exitOK, "-h").stdout
	for _, g := range groups {
		if !strings.Contains(top, "  "+g.name+" ") {
			t.Errorf("top-level help does not list %s", g.name)
		}
		if findCommand(commands, g.name) != nil {
			t.Errorf("%s is both a group and a command", g.name)
		}
	}
	for _, c := range commands {
		if !strings.Contains(top, "  "+c.name+" ") {
			t.Errorf("top-level help does not list %s", c.name)
		}
	}
	// A command's help lists its flags, with two dashes for long names.
	r := mustRun(t, exitOK, "sgn", "sign", "-h")
	for _, want := range []string{"--cert FILE", "--key FILE", "--hash ALG", "--no-timestamp", "-o FILE", "--json"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("sgn sign help lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "Usage: ucsec"},
		{[]string{"nosuch"}, `unknown command or group "nosuch"`},
		{[]string{"sgn"}, "Usage: ucsec sgn"},
		{[]string{"sgn", "nosuch"}, `unknown command "sgn nosuch"`},
		{[]string{"sgn", "verify", "--nosuch", sha1SGN}, "flag provided but not defined"},
		{[]string{"sgn", "verify", sha1SGN}, "missing --cert"},
		{[]string{"sgn", "verify", "--cert", tftpPEM}, "missing input file"},
		{[]string{"sgn", "parse", sha1SGN, sha512SGN}, "unexpected argument"},
		{[]string{"cert", "new", "--cn", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"cert", "hash", "--hash", "md4", tftpPEM}, `unknown --hash "md4"`},
	} {
		r := ucsec(t, "", tt.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
			t.Errorf("ucsec %s: exit status %d, stdout %q, stderr %q; want 2 and %q",
				strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, tt.want)
		}
	}
}

func TestErrorIsOneLine(t *testing.T) {
	r := ucsec(t, "", "sgn", "verify", "--cert", tftpPEM, "nosuch.sgn")
	if r.code != exitError || r.stderr != "ucsec: nosuch.sgn: no such file or directory\n" {
		t.Errorf("got %d %q", r.code, r.stderr)
	}
}

func TestPermuteArgs(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("cert", "", "")
	fs.String("o", "", "")
	fs.Bool("json", false, "")
	for _, tt := range []struct{ in, want []string }{
		{[]string{"a.sgn", "--cert", "c.pem"}, []string{"--cert", "c.pem", "--", "a.sgn"}},
		{[]string{"--cert=c.pem", "a", "b"}, []string{"--cert=c.pem", "--", "a", "b"}},
		{[]string{"a", "--json", "b"}, []string{"--json", "--", "a", "b"}},
		{[]string{"a", "-o", "-", "-"}, []string{"-o", "-", "--", "a", "-"}},
		{[]string{"a", "--", "--cert", "b"}, []string{"--", "a", "--cert", "b"}},
		{[]string{"a", "--unknown", "b"}, []string{"--unknown", "--", "a", "b"}},
		{[]string{"a", "--cert"}, []string{"--cert", "--", "a"}},
		{nil, []string{"--"}},
	} {
		if got := permuteArgs(fs, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("permuteArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
