package tftpd

import (
	"bytes"
	"context"
	"crypto"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucsec/ucsec/sgn"
)

// FuzzParseRequest parses request packets and negotiates their options:
// no panic, options within their ranges, and a request written back from
// what was parsed parses the same.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range [][]byte{
		rrq("SEP001122334455.cnf.xml.sgn", "octet"),
		rrq("x", "netascii", "blksize", "1428", "tsize", "0", "timeout", "3"),
		rrq("x", "OCTET", "BLKSIZE", "99999", "tsize", "abc", "timeout", "0", "blksize", "8"),
		rrq("../../etc/passwd", "octet", "windowsize", "16"),
		{0, 2, 'x', 0, 'o', 'c', 't', 'e', 't', 0},
		{0, 1, 'x', 0},
		{0, 9},
		{},
	} {
		f.Add(seed, 1024)
	}
	f.Fuzz(func(t *testing.T, p []byte, maxBlock int) {
		maxBlock = 512 + abs(maxBlock)%(65464-512+1)
		r, err := parseRequest(p)
		if err != nil {
			return
		}
		if r.name == "" || r.mode == "" || (r.op != opRRQ && r.op != opWRQ) || len(r.opts) > maxOptions {
			t.Fatalf("bad request %+v", r)
		}
		prm := negotiate(r.opts, maxBlock)
		if prm.blksize < 8 || prm.blksize > maxBlock && prm.blksize != 512 {
			t.Fatalf("blksize %d (max %d)", prm.blksize, maxBlock)
		}
		if prm.timeout < 0 || prm.timeout > 255e9 {
			t.Fatalf("timeout %v", prm.timeout)
		}
		seen := map[string]bool{}
		for _, o := range prm.oack {
			if seen[o.name] || (o.name != "blksize" && o.name != "timeout" && o.name != "tsize") {
				t.Fatalf("OACK %v", prm.oack)
			}
			seen[o.name] = true
		}
		oack := appendOACK(nil, prm.oack, 12345)
		if len(oack) > 2+3*(len("blksize")+1+20+1) {
			t.Fatalf("OACK of %d bytes", len(oack))
		}
		// written back, it parses the same
		var opts []string
		for _, o := range r.opts {
			opts = append(opts, o.name, o.value)
		}
		if bytes.IndexByte([]byte(r.name+r.mode), 0) < 0 {
			b := rrq(r.name, r.mode, opts...)
			b[1] = byte(r.op)
			r2, err := parseRequest(b)
			if err != nil || r2.name != r.name || r2.mode != r.mode || len(r2.opts) != len(r.opts) {
				t.Fatalf("round trip: %+v, %v; want %+v", r2, err, r)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n {
			return 0
		}
		return -n
	}
	return n
}

// FuzzCleanName checks that a name CleanName accepts stays inside any
// directory it is joined to.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"SEP001122334455.cnf.xml", "/a/b", "../x", "a/../../x", "a\\..\\x", "a\x00b", "//x", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, err := CleanName(name)
		if err != nil {
			return
		}
		if !fs.ValidPath(n) || n == "." || strings.ContainsAny(n, "\\\x00") || len(n) > MaxNameLength {
			t.Fatalf("CleanName(%q) = %q", name, n)
		}
		if j := filepath.Join("/srv/tftp", n); !strings.HasPrefix(j, "/srv/tftp/") {
			t.Fatalf("CleanName(%q) = %q, which joins to %q", name, n, j)
		}
		if _, err := CleanName(n); err != nil {
			t.Fatalf("CleanName(%q) accepted, its result %q refused: %v", name, n, err)
		}
	})
}

// FuzzOpen maps names through a root that has symbolic links out of it
// and a secret beside it: whatever the name, Open never returns anything
// but a file of the root, or one signed from a file of the root, and
// never panics.
func FuzzOpen(f *testing.F) {
	fx := newFixture(f)
	outside := f.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("SECRET"), 0o644); err != nil {
		f.Fatal(err)
	}
	rel, _ := filepath.Rel(fx.dir, secret)
	for link, target := range map[string]string{
		"abs-link": secret, "rel-link": rel, "dir-link": outside, "inside-link": "RingList.xml",
	} {
		if err := os.Symlink(target, filepath.Join(fx.dir, link)); err != nil {
			f.Fatal(err)
		}
	}
	fx.srv.Logger = nil
	fx.srv.ExcludeDigest = true
	for _, s := range []string{
		"RingList.xml", "RingList.xml.sgn", "/RingList.xml", "../secret", "abs-link", "rel-link.sgn",
		"dir-link/secret", "dir-link/secret.sgn", "SEP001122334455.cnf.xml.enc.sgn", "ITLSEP001122334455.tlv",
		"English_United_States/g3-tones.xml.sgn", "inside-link.sgn", "fifo", "a\\..\\secret",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		file, err := fx.srv.Open(context.Background(), name)
		if err != nil {
			return
		}
		if bytes.Contains(file.Data, []byte("SECRET")) {
			t.Fatalf("Open(%q) returned the secret", name)
		}
		src, err := os.ReadFile(filepath.Join(fx.dir, file.Source))
		if err != nil {
			t.Fatalf("Open(%q): source %q: %v", name, file.Source, err)
		}
		rel, err := filepath.Rel(fx.dir, filepath.Join(fx.dir, file.Source))
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("Open(%q): source %q outside the root", name, file.Source)
		}
		payload := file.Data
		if file.Signed {
			p, err := sgn.Parse(file.Data)
			if err != nil || p.CheckSignatureFrom(fx.cert) != nil || p.Hash != crypto.SHA1 {
				t.Fatalf("Open(%q): bad signed file: %v", name, err)
			}
			payload = p.Payload
		}
		if !file.Stripped && !bytes.Equal(payload, src) {
			t.Fatalf("Open(%q): not the content of %q", name, file.Source)
		}
	})
}
