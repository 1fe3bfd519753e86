package secstatus

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ucsec/ucsec/internal/ascii"
)

// Level is the security status of a device, leg, call or conference, as
// CUCM orders it: Unknown < NotAuthenticated < Authenticated < Encrypted.
// The zero Level is Unknown, which behaves as nonsecure.
type Level uint8

// The four levels. Their String forms are the Call-Info tokens.
const (
	Unknown          Level = iota // no status known; shows no icon
	NotAuthenticated              // signalling not authenticated; no icon
	Authenticated                 // TLS signalling, media not encrypted; shield
	Encrypted                     // TLS signalling and SRTP media; lock
)

var levelNames = [...]string{"Unknown", "NotAuthenticated", "Authenticated", "Encrypted"}

// String returns the Call-Info token: "Unknown", "NotAuthenticated",
// "Authenticated" or "Encrypted"; "Level(n)" for a value out of range.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Valid reports whether l is one of the four levels.
func (l Level) Valid() bool { return int(l) < len(levelNames) }

// ParseLevel returns the level named by s, ignoring ASCII case and
// surrounding blanks, and whether s named one. Anything else is Unknown,
// as Cisco phones read an unrecognised Call-Info security token.
func ParseLevel(s string) (Level, bool) {
	s = strings.Trim(s, " \t")
	for i, n := range levelNames {
		if ascii.EqualFold(s, n) {
			return Level(i), true
		}
	}
	return Unknown, false
}

// MarshalText returns String; a value out of range is an error.
func (l Level) MarshalText() ([]byte, error) {
	if !l.Valid() {
		return nil, fmt.Errorf("%w: level %d", ErrInvalid, uint8(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText accepts the four names in any ASCII case and refuses
// anything else (unlike ParseLevel, which reads it as Unknown), so a typo
// in a call description is an error, not a silent downgrade.
func (l *Level) UnmarshalText(b []byte) error {
	v, ok := ParseLevel(string(b))
	if !ok {
		return fmt.Errorf("%w: security level %q is not Unknown, NotAuthenticated, Authenticated or Encrypted", ErrInvalid, truncate(string(b)))
	}
	*l = v
	return nil
}

// Min returns the lowest of levels (the least secure), or Unknown for
// none. It is CUCM's rule for a call: the least of its parts. A value that
// is not one of the four levels counts as Unknown, here and everywhere in
// this package, so it can never pass for more than Encrypted.
func Min(levels ...Level) Level {
	if len(levels) == 0 {
		return Unknown
	}
	m := levels[0].norm()
	for _, l := range levels[1:] {
		if l := l.norm(); l < m {
			m = l
		}
	}
	return m
}

// norm maps a value out of range to Unknown.
func (l Level) norm() Level {
	if !l.Valid() {
		return Unknown
	}
	return l
}

// truncate shortens s for an error message, on a rune boundary.
func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	n := 40
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// enumString returns names[v], or "typ(v)" for a value out of range.
func enumString(names []string, v uint8, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

// marshalEnum returns names[v], or an error naming what for a value out of
// range.
func marshalEnum(names []string, v uint8, what string) ([]byte, error) {
	if int(v) >= len(names) {
		return nil, fmt.Errorf("%w: %s %d", ErrInvalid, what, v)
	}
	return []byte(names[v]), nil
}

// unmarshalEnum sets *v to the index of the name b (ASCII case and
// surrounding blanks ignored) in names, or returns an error naming what.
func unmarshalEnum(b []byte, names []string, v *uint8, what string) error {
	s := strings.Trim(string(b), " \t")
	for i, n := range names {
		if ascii.EqualFold(s, n) {
			*v = uint8(i)
			return nil
		}
	}
	last := len(names) - 1
	return fmt.Errorf("%w: %s %q is not %s or %s", ErrInvalid, what, truncate(s), strings.Join(names[:last], ", "), names[last])
}
