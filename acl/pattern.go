package acl

import (
	"errors"
	"fmt"
)

// MaxPatternLength bounds the length of a route pattern and of a number
// matched against one. Dial strings are at most a few dozen characters.
const MaxPatternLength = 128

// ErrPattern is wrapped by the errors of ParsePattern.
var ErrPattern = errors.New("acl: invalid route pattern")

// Pattern is a compiled CUCM-style directory number or route pattern.
//
// The syntax supported:
//
//	0-9 * #   the character itself
//	\+        a literal plus (E.164 prefix)
//	X         any one digit 0-9 (x too)
//	!         one or more digits
//	[2-9]     one character from the set: digits, ranges a-b, and a
//	          leading ^ to negate ([^5] is any digit but 5)
//	+         after an element: one or more of it, as in CUCM ([2-9]+)
//	.         ignored: in CUCM it only marks where digit discarding
//	          starts, and does not change what matches
//
// A + that follows no element (at the start, or after a .) is an error:
// write \+ for a literal plus. Other CUCM pattern features (@ for the
// national numbering plan, ? for zero or more, the % wildcard) are not
// supported and are errors.
type Pattern struct {
	text  string
	elems []patElem
}

// patElem is one position of a pattern: a set of characters, possibly
// repeated (one or more times).
type patElem struct {
	set    charSet
	repeat bool
}

// charSet is a set of the dialable characters 0-9, *, #, +.
type charSet uint16

const (
	setStar charSet = 1 << (10 + iota)
	setHash
	setPlus
	setDigits charSet = 1<<10 - 1
)

func charBit(c byte) charSet {
	switch {
	case '0' <= c && c <= '9':
		return 1 << (c - '0')
	case c == '*':
		return setStar
	case c == '#':
		return setHash
	case c == '+':
		return setPlus
	}
	return 0
}

// ParsePattern compiles a pattern; see [Pattern] for the syntax.
func ParsePattern(s string) (*Pattern, error) {
	bad := func(i int, msg string) error {
		return fmt.Errorf("%w %q at %d: %s", ErrPattern, s, i, msg)
	}
	if s == "" {
		return nil, fmt.Errorf("%w: empty pattern", ErrPattern)
	}
	if len(s) > MaxPatternLength {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrPattern, MaxPatternLength)
	}
	p := &Pattern{text: s}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if len(p.elems) == 0 || i > 0 && s[i-1] == '.' {
				return nil, bad(i, `+ repeats the element before it; write \+ for a literal plus`)
			}
			p.elems[len(p.elems)-1].repeat = true
		case charBit(c) != 0:
			p.elems = append(p.elems, patElem{set: charBit(c)})
		case c == '\\' && i+1 < len(s) && s[i+1] == '+':
			p.elems = append(p.elems, patElem{set: setPlus})
			i++
		case c == 'X' || c == 'x':
			p.elems = append(p.elems, patElem{set: setDigits})
		case c == '!':
			p.elems = append(p.elems, patElem{set: setDigits, repeat: true})
		case c == '.':
		case c == '[':
			end := i + 1
			for end < len(s) && s[end] != ']' {
				end++
			}
			if end == len(s) {
				return nil, bad(i, "unterminated [")
			}
			set, err := parseSet(s[i+1 : end])
			if err != nil {
				return nil, bad(i, err.Error())
			}
			p.elems = append(p.elems, patElem{set: set})
			i = end
		default:
			return nil, bad(i, fmt.Sprintf("unsupported character %q", c))
		}
	}
	if len(p.elems) == 0 {
		return nil, fmt.Errorf("%w %q: matches nothing", ErrPattern, s)
	}
	return p, nil
}

// parseSet parses the inside of [...]: digits and ranges, optionally
// negated with a leading ^.
func parseSet(s string) (charSet, error) {
	neg := len(s) > 0 && s[0] == '^'
	if neg {
		s = s[1:]
	}
	if s == "" {
		return 0, errors.New("empty []")
	}
	var set charSet
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("unsupported character %q in []", c)
		}
		if i+2 < len(s) && s[i+1] == '-' {
			hi := s[i+2]
			if hi < c || hi > '9' {
				return 0, fmt.Errorf("bad range %c-%c", c, hi)
			}
			for d := c; d <= hi; d++ {
				set |= charBit(d)
			}
			i += 2
			continue
		}
		set |= charBit(c)
	}
	if neg {
		set = setDigits &^ set
	}
	if set == 0 {
		return 0, errors.New("empty []")
	}
	return set, nil
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.text }

// Match reports whether the whole of number matches the pattern. It runs
// in time proportional to len(number) times the pattern length, whatever
// the pattern (no backtracking). Numbers longer than MaxPatternLength do
// not match.
func (p *Pattern) Match(number string) bool {
	if len(number) == 0 || len(number) > MaxPatternLength {
		return false
	}
	// states has bit i set when the first i elements have matched a
	// prefix of number. Patterns have at most MaxPatternLength elements,
	// so the states fit in three words.
	var cur, next [3]uint64
	cur[0] = 1
	n := len(p.elems)
	for k := 0; k < len(number); k++ {
		b := charBit(number[k])
		if b == 0 {
			return false
		}
		next = [3]uint64{}
		any := false
		for i := 0; i < n; i++ {
			if cur[i/64]&(1<<(i%64)) == 0 {
				continue
			}
			e := p.elems[i]
			if e.set&b == 0 {
				continue
			}
			// Element i consumes number[k].
			next[(i+1)/64] |= 1 << ((i + 1) % 64)
			if e.repeat {
				next[i/64] |= 1 << (i % 64) // ! may take more digits
			}
			any = true
		}
		if !any {
			return false
		}
		cur = next
	}
	return cur[n/64]&(1<<(n%64)) != 0
}
