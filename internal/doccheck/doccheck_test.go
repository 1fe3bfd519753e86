package doccheck

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// privateNote matches a citation of the notes the project was written
// from, which live beside the repository and not in it: the specification
// files by name, their directory, and the shared test vectors.
var privateNote = regexp.MustCompile(`\b(?:ucm-behaviou?r|formats|capf-tvs|digest-acl|srtp|style)\.md\b|shared[/\\]spec\b|\.\.[/\\]vectors\b`)

// sectionSign is the sign that numbers a section (written as an escape, so
// that this file does not trip its own check).
const sectionSign = '\u00a7'

// publicSource matches a public document with numbered sections, which a
// section sign must follow within sectionWindow bytes of prose. Add a
// document here when a comment cites a section of one.
var publicSource = regexp.MustCompile(`\bRFC\s*\d+|\bFIPS\s*\d+|\bSP\s*800-\d+|\bX\.\d{3}\b|Hacker's Delight`)

const sectionWindow = 160

// TestNoPrivateCitations fails when a file of the repository cites the
// project's private notes, or a numbered section of a document it does not
// name (what is left when only the file name of a citation is removed).
// Every file is read whole, Go comments and string literals alike.
func TestNoPrivateCitations(t *testing.T) {
	root := moduleRoot(t)
	names := repoFiles(t, root)
	checked := 0
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree, not yet in git
			}
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b) {
			continue // not text
		}
		checked++
		lines := strings.Split(string(b), "\n")
		for i, line := range lines {
			for _, m := range privateNote.FindAllString(line, -1) {
				t.Errorf("%s:%d: cites %q, which is not in this repository: cite the public source (an RFC, a Cisco document by its title) or write the rule out", name, i+1, m)
			}
		}
		p := newProse(lines)
		for at, r := range p.text {
			if r != sectionSign {
				continue
			}
			before := p.text[max(0, at-sectionWindow):at]
			if publicSource.MatchString(before) || privateNote.MatchString(p.text[max(0, at-40):at]) {
				continue // a public source, or the same citation of a note, reported above
			}
			n := p.line(at)
			t.Errorf("%s:%d: a section number with no public document before it: name the RFC or document it belongs to, or write the rule out\n\t%s",
				name, n, strings.TrimSpace(lines[n-1]))
		}
	}
	if checked < 50 {
		t.Fatalf("only %d text files found under %s: is this the repository?", checked, root)
	}
}

// prose is a file's lines joined by spaces, without the comment markers
// that start them, so that a citation broken across comment lines reads as
// one passage.
type prose struct {
	text   string
	starts []int // offset in text of each line
}

func newProse(lines []string) *prose {
	var p prose
	var sb strings.Builder
	for _, l := range lines {
		l = strings.TrimLeft(l, " \t")
		for _, marker := range []string{"//", "#", "*"} {
			l = strings.TrimPrefix(l, marker)
		}
		p.starts = append(p.starts, sb.Len())
		sb.WriteString(l)
		sb.WriteByte(' ')
	}
	p.text = sb.String()
	return &p
}

// line returns the 1-based line number of the byte at offset at.
func (p *prose) line(at int) int {
	n := 0
	for n < len(p.starts) && p.starts[n] <= at {
		n++
	}
	return n
}

// moduleRoot returns the root of the module, two levels up.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !bytes.Contains(b, []byte("module github.com/ucsec/ucsec\n")) {
		t.Fatalf("%s is not the root of github.com/ucsec/ucsec", root)
	}
	return root
}

// repoFiles returns the files git tracks or would track (not ignored),
// relative to root; without git, every file under root but .git.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err == nil {
		var names []string
		for _, n := range strings.Split(string(out), "\x00") {
			if n != "" {
				names = append(names, filepath.FromSlash(n))
			}
		}
		return names
	}
	t.Logf("git ls-files: %v; checking every file under %s", err, root)
	var names []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
