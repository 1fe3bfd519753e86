package pkcs11

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// DefaultMaxSessions is how many sessions a key opens at most, besides
// the one that holds its login, when Options.MaxSessions is 0.
const DefaultMaxSessions = 16

// Options configure Open. The zero value (or nil) is the safe default.
type Options struct {
	// PIN is the user PIN to log in with when the URI gives neither
	// pin-source nor pin-value. A program reads it from where its user
	// put it, such as an environment variable; never from a command-line
	// argument, which other users of the machine can see (ps).
	PIN string

	// AllowPINValue accepts a URI's pin-value. RFC 7512 defines it, but a
	// URI is often a command-line argument, so by default Open refuses it
	// (ErrPINValue) and a PIN comes from pin-source or PIN.
	AllowPINValue bool

	// Module is the module to load when the URI has neither module-path
	// nor module-name.
	Module string

	// ModuleDirs are the directories searched for a URI's module-name.
	// Nil means the usual places of PKCS #11 modules on Debian and other
	// Linux distributions (see DefaultModuleDirs).
	ModuleDirs []string

	// MaxSessions bounds the sessions a key opens for concurrent
	// operations (DefaultMaxSessions if 0; never more than the token
	// allows). An operation beyond it waits for a session to be free.
	MaxSessions int
}

// DefaultModuleDirs returns the directories searched for a module-name
// when Options.ModuleDirs is nil: p11-kit's module directory, Debian's
// multiarch library directories, /usr/lib/pkcs11, /usr/lib/softhsm,
// /usr/local/lib and its softhsm, /usr/lib64 and /usr/lib.
func DefaultModuleDirs() []string {
	var dirs []string
	if triplet, ok := map[string]string{
		"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
		"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu",
	}[runtime.GOARCH]; ok && runtime.GOOS == "linux" {
		dirs = append(dirs, "/usr/lib/"+triplet+"/pkcs11", "/usr/lib/"+triplet+"/softhsm", "/usr/lib/"+triplet)
	}
	return append(dirs, "/usr/lib/pkcs11", "/usr/lib64/pkcs11", "/usr/lib/softhsm", "/usr/lib64/softhsm",
		"/usr/local/lib/softhsm", "/usr/local/lib/pkcs11", "/usr/local/lib", "/usr/lib64", "/usr/lib")
}

// modulePath returns the file of the module u names.
func modulePath(u *URI, opts *Options) (string, error) {
	switch {
	case u.ModulePath != "" && u.ModuleName != "":
		return "", fmt.Errorf("%w: give module-path or module-name, not both", ErrMalformedURI)
	case u.ModulePath != "":
		return checkModule(u.ModulePath)
	case u.ModuleName != "":
		return findModule(u.ModuleName, opts.ModuleDirs)
	case opts.Module != "":
		return checkModule(opts.Module)
	}
	return "", ErrNoModule
}

func checkModule(path string) (string, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("%w %s: no such file", ErrModule, path)
	case err != nil:
		return "", fmt.Errorf("%w %s: %v", ErrModule, path, unwrapPath(err))
	case fi.IsDir():
		return "", fmt.Errorf("%w %s: is a directory", ErrModule, path)
	}
	return path, nil
}

// findModule returns the file of the module called name in dirs (or
// DefaultModuleDirs): name itself, lib<name>.so, or <name>.so.
func findModule(name string, dirs []string) (string, error) {
	if strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%w: module-name %q is a path: give it as module-path", ErrMalformedURI, printable(name))
	}
	if dirs == nil {
		dirs = DefaultModuleDirs()
	}
	ext := ".so"
	switch runtime.GOOS {
	case "darwin":
		ext = ".dylib"
	case "windows":
		ext = ".dll"
	}
	names := []string{name}
	if !strings.HasSuffix(name, ext) {
		names = append(names, "lib"+name+ext, name+ext)
	}
	for _, dir := range dirs {
		for _, n := range names {
			p := filepath.Join(dir, n)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w: module-name %q: no module of that name in %s", ErrModule, printable(name), strings.Join(dirs, ", "))
}

// maxPINLength bounds what a pin-source file is read for.
const maxPINLength = 1024

// pin returns the PIN to log in with, and whether there is one: from the
// URI's pin-source, its pin-value if allowed, or opts.PIN.
func pin(u *URI, opts *Options) (string, bool, error) {
	switch {
	case u.PINSource != "":
		p, err := readPINSource(u.PINSource)
		return p, err == nil, err
	case u.PINValue != "":
		if !opts.AllowPINValue {
			return "", false, ErrPINValue
		}
		return u.PINValue, true, nil
	case opts.PIN != "":
		return opts.PIN, true, nil
	}
	return "", false, nil
}

// readPINSource reads the PIN from the file src names: a file: URI
// (file:///path, file:/path, file://localhost/path) or a path. The PIN is
// the file's first line, without its line ending.
func readPINSource(src string) (string, error) {
	path := src
	if strings.HasPrefix(strings.ToLower(src), "file:") {
		u, err := url.Parse(src)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" || u.RawQuery != "" {
			return "", fmt.Errorf("%w %s: use file:///path or a path", ErrPINSource, printable(src))
		}
		path = u.Path
	} else if i := strings.Index(src, ":"); i > 1 && !strings.ContainsAny(src[:i], `/\`) {
		// Another scheme (p11-kit's "|command" and the like are not
		// supported either). A one-letter prefix is a Windows drive.
		return "", fmt.Errorf("%w %s: only file: URIs and paths are supported", ErrPINSource, printable(src))
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w %s: %v", ErrPINSource, path, unwrapPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPINLength+2))
	if err != nil {
		return "", fmt.Errorf("%w %s: %v", ErrPINSource, path, unwrapPath(err))
	}
	s := string(b)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	switch {
	case len(s) > maxPINLength:
		return "", fmt.Errorf("%w %s: longer than %d bytes", ErrPINSource, path, maxPINLength)
	case s == "":
		return "", fmt.Errorf("%w %s: the file is empty", ErrPINSource, path)
	}
	return s, nil
}

func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}
