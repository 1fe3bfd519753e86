package tftpd

import (
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// MaxNameLength bounds the names the service looks up, in bytes. Cisco
// phones ask for names of a few dozen bytes (SEP001122334455.cnf.xml.sgn,
// Desktops/320x196x4/List.xml); RFC 1350 sets no bound.
const MaxNameLength = 255

// Suffixes of the names the service answers in a special way.
const (
	sgnSuffix    = ".sgn"
	configSuffix = ".cnf.xml"
	encSuffix    = ".cnf.xml.enc.sgn"
	shortSuffix  = ".cnf.xml.sgn"
	tlvSuffix    = ".tlv"
	maxDevice    = 64 // the longest device name, as package capf bounds it
)

// Names of the trust lists.
const (
	ITLName = "ITLFile.tlv"
	CTLName = "CTLFile.tlv"
)

// CleanName checks a name a client asked for and returns it as the path
// it names under the root: one leading '/' is dropped (tftpd-hpa's -s
// reads "/x" as "x" in its directory, and an HTTP path starts with one),
// and what is left must be a relative path of '/'-separated elements none
// of which is empty, "." or "..", in valid UTF-8 without control
// characters, NUL or backslash, of at most MaxNameLength bytes. Anything
// else gives an error wrapping ErrForbidden. It touches no file: a name it
// accepts may still name a symbolic link out of the root, which opening it
// through the root (os.Root) refuses.
func CleanName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	switch {
	case n == "":
		return "", fmt.Errorf("%w: empty name", ErrForbidden)
	case len(n) > MaxNameLength:
		return "", fmt.Errorf("%w: name of %d bytes (at most %d)", ErrForbidden, len(n), MaxNameLength)
	case !utf8.ValidString(n):
		return "", fmt.Errorf("%w: name is not UTF-8", ErrForbidden)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\\' {
			return "", fmt.Errorf("%w: name has character %U", ErrForbidden, r)
		}
	}
	if !fs.ValidPath(n) || n == "." {
		// an absolute path (after the one '/' dropped), "..", ".", "//",
		// or a trailing '/'
		return "", fmt.Errorf("%w: name is not a relative path inside the root", ErrForbidden)
	}
	return n, nil
}

// deviceConfig reports whether name is a device's configuration, under
// one of the names a phone asks for it by: DEV.cnf.xml, DEV.cnf.xml.sgn or
// DEV.cnf.xml.enc.sgn at the top of the root, DEV being a device name
// (SEP001122334455; also "default" of default.cnf.xml, which the
// encryption policy is asked about too). suffix is the form asked for.
func deviceConfig(name string) (device, suffix string, ok bool) {
	for _, suf := range []string{encSuffix, shortSuffix, configSuffix} {
		if dev, found := strings.CutSuffix(name, suf); found {
			if validDevice(dev) {
				return dev, suf, true
			}
			return "", "", false
		}
	}
	return "", "", false
}

// trustList reports whether name is a trust list: ITLFile.tlv or
// CTLFile.tlv, or the per-device names phones ask for first,
// ITL<device>.tlv and CTL<device>.tlv (ITLSEP001122334455.tlv). generic is
// ITLName or CTLName.
func trustList(name string) (generic string, perDevice bool, ok bool) {
	if name == ITLName || name == CTLName {
		return name, false, true
	}
	base, found := strings.CutSuffix(name, tlvSuffix)
	if !found || len(base) < 4 {
		return "", false, false
	}
	prefix, dev := base[:3], base[3:]
	if (prefix != "ITL" && prefix != "CTL") || dev == "File" || !validDevice(dev) {
		return "", false, false
	}
	return prefix + "File.tlv", true, true
}

// validDevice reports whether dev can be a device name in a file name at
// the top of the root: 1 to 64 bytes of printable ASCII without spaces or
// '/', as package capf accepts device names.
func validDevice(dev string) bool {
	if dev == "" || len(dev) > maxDevice {
		return false
	}
	for i := 0; i < len(dev); i++ {
		if c := dev[i]; c <= ' ' || c > '~' || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}

// safeName is name as the log shows it: as asked for when it is a clean
// name, else quoted and cut, so that a hostile name cannot forge log
// lines or fill them.
func safeName(name string) string {
	if n, err := CleanName(name); err == nil {
		return n
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return fmt.Sprintf("%q", name)
}
