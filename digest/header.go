package digest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Limits on what the parsers read. Real headers are a few hundred bytes.
const (
	// MaxHeaderLength is the longest header value ParseChallenges and
	// ParseCredentials read.
	MaxHeaderLength = 4096
	// maxParams bounds the parameters of one challenge or credential.
	maxParams = 32
	// maxChallenges bounds the challenges in one header value.
	maxChallenges = 16
)

// ErrMalformed is wrapped by every error about the syntax of a header.
var ErrMalformed = errors.New("digest: malformed header")

// Param is an authentication parameter this package does not interpret,
// kept as received so that it can be written back.
type Param struct {
	Name   string
	Value  string
	Quoted bool // the value was (and will be written as) a quoted string
}

// Challenge is one Digest challenge of a WWW-Authenticate or
// Proxy-Authenticate header (RFC 7616 §3.3, RFC 3261 §22.4).
type Challenge struct {
	Realm     string
	Domain    string
	Nonce     string
	Opaque    string
	Stale     bool
	Algorithm Algorithm // "" when absent, which means MD5
	QOP       []string  // offered qop values, such as "auth" and "auth-int"; empty when absent
	Charset   string    // "UTF-8" or ""
	UserHash  bool
	Other     []Param // parameters not listed above, in order
}

// Credentials are the Digest credentials of an Authorization or
// Proxy-Authorization header (RFC 7616 §3.4).
type Credentials struct {
	Username  string // with UserHash, the hex hash of username ":" realm
	Realm     string
	Nonce     string
	URI       string
	Response  string // lowercase or uppercase hex, as sent
	Algorithm Algorithm
	CNonce    string
	Opaque    string
	QOP       string // "auth", "auth-int", or "" for an RFC 2069 response
	NC        uint32 // nonce count; 0 when absent
	UserHash  bool
	Other     []Param
}

// SyntaxError locates a malformed header. It unwraps to [ErrMalformed].
type SyntaxError struct {
	Offset int    // byte offset in the header value
	Msg    string // what is wrong
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("digest: malformed header at offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *SyntaxError) Unwrap() error { return ErrMalformed }

// Character classes of RFC 7230/7235.
const (
	classTchar   = 1 << iota // token character
	classToken68             // token68 character (without '=')
	classQDText              // allowed inside a quoted string
	classPlainQD             // allowed inside a quoted string, other than '"' and '\\'
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' {
			t[c] |= classTchar | classToken68
		}
		if strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			t[c] |= classTchar
		}
		if strings.IndexByte("-._~+/", b) >= 0 {
			t[c] |= classToken68
		}
		if b == '\t' || b >= 0x20 && b != 0x7f {
			t[c] |= classQDText
			if b != '"' && b != '\\' {
				t[c] |= classPlainQD
			}
		}
	}
	return t
}()

func isTchar(c byte) bool      { return charClass[c]&classTchar != 0 }
func isToken68(c byte) bool    { return charClass[c]&classToken68 != 0 }
func isQuotedText(c byte) bool { return charClass[c]&classQDText != 0 }

// itemKind is what scanner.next found.
type itemKind uint8

const (
	itemScheme  itemKind = iota + 1 // an auth-scheme: a new challenge or credential
	itemParam                       // an auth-param of the current one
	itemToken68                     // a token68 (another scheme's credentials)
)

// item is one element of a header value.
type item struct {
	kind   itemKind
	name   string // scheme or parameter name
	value  string // parameter value, unescaped
	quoted bool   // the value was a quoted string
	offset int    // where the element starts
}

// scanner reads the RFC 7235 challenge and credentials grammar, one item
// at a time, without allocating (except to unescape a quoted string):
//
//	1#( auth-scheme [ 1*SP ( token68 / #auth-param ) ] )
//	auth-param = token BWS "=" BWS ( token / quoted-string )
type scanner struct {
	it          item // the item next read
	s           string
	pos         int
	started     bool // a scheme has been read
	afterScheme bool // the last item was a scheme
}

func (p *scanner) fail(msg string) error { return &SyntaxError{Offset: p.pos, Msg: msg} }

// skipOWS and token keep the position in a local variable while they
// loop, so that it lives in a register rather than being stored for each
// byte.

func (p *scanner) skipOWS() {
	s, i := p.s, p.pos
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	p.pos = i
}

func (p *scanner) token() string {
	s, start := p.s, p.pos
	i := start
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	p.pos = i
	return s[start:i]
}

// quoted reads a quoted-string at p.pos (which holds '"') and returns its
// unescaped contents.
func (p *scanner) quoted() (string, error) {
	open := p.pos
	p.pos++
	start := p.pos
	var esc []byte // nil until an escape is seen
	for p.pos < len(p.s) {
		p.pos = skipPlainQuoted(p.s, p.pos)
		if p.pos >= len(p.s) {
			break
		}
		switch c := p.s[p.pos]; {
		case c == '"':
			v := p.s[start:p.pos]
			p.pos++
			if esc != nil {
				return string(append(esc, v...)), nil
			}
			return v, nil
		case c == '\\':
			if p.pos+1 >= len(p.s) || !isQuotedText(p.s[p.pos+1]) {
				return "", p.fail("bad escape in a quoted string")
			}
			esc = append(esc, p.s[start:p.pos]...)
			esc = append(esc, p.s[p.pos+1])
			p.pos += 2
			start = p.pos
		default:
			return "", p.fail("control character in a quoted string")
		}
	}
	return "", &SyntaxError{Offset: open, Msg: "unterminated quoted string"}
}

const swarLo, swarHi = 0x0101010101010101, 0x8080808080808080

// swarZero has a high bit set in some byte if x has a zero byte (exact
// for presence, the word-at-a-time test of Hacker's Delight §6.1).
func swarZero(x uint64) uint64 { return (x - swarLo) &^ x & swarHi }

// skipPlainQuoted returns the index of the first byte at or after i that
// is not plain quoted-string text ('"', '\\' or a control character other
// than tab), or len(s). It tests eight bytes at a time.
func skipPlainQuoted(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		// One bounds check for the word, so that the compiler makes the
		// eight byte loads one load.
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// Bytes below 0x20 (those without the 0x80 bit, after
		// subtracting 0x20), 0x7F, '"' and '\\'. A borrow can mark a
		// byte after a marked one, never before: the lowest mark is a
		// byte that stops the run, or a tab, which the loop below
		// passes.
		stop := (x-0x20*swarLo)&^x&swarHi | swarZero(x^0x7f*swarLo) | swarZero(x^'"'*swarLo) | swarZero(x^'\\'*swarLo)
		if stop != 0 {
			i += bits.TrailingZeros64(stop) / 8
			break
		}
	}
	for i < len(s) && charClass[s[i]]&classPlainQD != 0 {
		i++
	}
	return i
}

// next reads the next item into p.it, or reports false at the end of the
// value.
func (p *scanner) next() (ok bool, err error) {
	if p.afterScheme {
		p.afterScheme = false
		// A token68 or the first parameter may follow the scheme after
		// white space, without a comma.
		if p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
			p.skipOWS()
			if p.pos < len(p.s) && p.s[p.pos] != ',' {
				start := p.pos
				if p.token68Here() {
					p.skipToken68()
					p.it = item{kind: itemToken68, offset: start}
					return true, p.separator()
				}
				name := p.token()
				if name == "" {
					return false, p.fail(fmt.Sprintf("unexpected character %q", p.s[p.pos]))
				}
				p.skipOWS()
				if p.pos >= len(p.s) || p.s[p.pos] != '=' {
					return false, p.fail("expected '=' after a parameter name")
				}
				return p.param(name, start)
			}
		}
		if err := p.separator(); err != nil {
			return false, err
		}
	}
	// List separators; empty list elements are allowed.
	for p.skipOWS(); p.pos < len(p.s) && p.s[p.pos] == ','; p.skipOWS() {
		p.pos++
	}
	if p.pos >= len(p.s) {
		return false, nil
	}
	start := p.pos
	name := p.token()
	if name == "" {
		return false, p.fail(fmt.Sprintf("unexpected character %q", p.s[p.pos]))
	}
	after := p.pos
	p.skipOWS()
	if p.started && p.pos < len(p.s) && p.s[p.pos] == '=' {
		return p.param(name, start)
	}
	p.pos = after
	p.started, p.afterScheme = true, true
	p.it = item{kind: itemScheme, name: name, offset: start}
	return true, nil
}

// param reads the value of parameter name (p.pos is at its '=') into p.it.
func (p *scanner) param(name string, start int) (bool, error) {
	p.pos++
	p.skipOWS()
	it := &p.it
	it.kind, it.name, it.offset, it.quoted = itemParam, name, start, false
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		v, err := p.quoted()
		if err != nil {
			return false, err
		}
		it.value, it.quoted = v, true
	} else if it.value = p.token(); it.value == "" {
		return false, p.fail("parameter " + name + " has no value")
	}
	return true, p.separator()
}

// separator checks that the end or a comma follows an element.
func (p *scanner) separator() error {
	p.skipOWS()
	if p.pos < len(p.s) && p.s[p.pos] != ',' {
		return p.fail("expected a comma")
	}
	return nil
}

// token68Here reports whether a token68 starts at p.pos: token68
// characters, optional '=' padding, then the end or a comma.
func (p *scanner) token68Here() bool {
	i := p.pos
	for i < len(p.s) && isToken68(p.s[i]) {
		i++
	}
	if i == p.pos {
		return false
	}
	for i < len(p.s) && p.s[i] == '=' {
		i++
	}
	for i < len(p.s) && (p.s[i] == ' ' || p.s[i] == '\t') {
		i++
	}
	return i == len(p.s) || p.s[i] == ','
}

func (p *scanner) skipToken68() {
	for p.pos < len(p.s) && (isToken68(p.s[p.pos]) || p.s[p.pos] == '=') {
		p.pos++
	}
}

// digestReader walks the Digest challenges or credentials of a header
// value, skipping other schemes and checking the limits and duplicate
// parameters. known maps a lowercase parameter name to a bit.
type digestReader struct {
	p        scanner
	known    func(name string) uint16
	seen     uint16 // known parameters of the current Digest element
	others   []Param
	params   int
	schemes  int
	inDigest bool
}

// next reads the next Digest item into r.p.it: a scheme (the start of a
// Digest challenge or credential) or one of its parameters, with the name
// in lower case for known parameters (bit != 0).
func (r *digestReader) next() (bit uint16, ok bool, err error) {
	for {
		ok, err = r.p.next()
		if err != nil || !ok {
			return 0, ok, err
		}
		it := &r.p.it
		switch it.kind {
		case itemScheme:
			if r.schemes++; r.schemes > maxChallenges {
				return 0, false, &SyntaxError{Offset: it.offset, Msg: "too many challenges"}
			}
			r.inDigest = strings.EqualFold(it.name, "Digest")
			r.seen, r.params, r.others = 0, 0, nil
			if r.inDigest {
				return 0, true, nil
			}
		case itemToken68:
			if r.inDigest {
				return 0, false, &SyntaxError{Offset: it.offset, Msg: "Digest takes parameters, not a token68"}
			}
		case itemParam:
			if !r.inDigest {
				continue
			}
			if r.params++; r.params > maxParams {
				return 0, false, &SyntaxError{Offset: it.offset, Msg: "too many parameters"}
			}
			// Names are nearly always lower case already, as the known
			// names are.
			bit = r.known(it.name)
			if bit == 0 {
				if lower := lowerASCII(it.name); lower != it.name {
					if bit = r.known(lower); bit != 0 {
						it.name = lower
					}
				}
			}
			if bit != 0 {
				if r.seen&bit != 0 {
					return 0, false, &SyntaxError{Offset: it.offset, Msg: "duplicate parameter " + it.name}
				}
				r.seen |= bit
				return bit, true, nil
			}
			for _, o := range r.others {
				if len(o.Name) == len(it.name) && strings.EqualFold(o.Name, it.name) {
					return 0, false, &SyntaxError{Offset: it.offset, Msg: "duplicate parameter " + it.name}
				}
			}
			r.others = append(r.others, Param{Name: it.name, Value: it.value, Quoted: it.quoted})
			return 0, true, nil
		}
	}
}

// Bits of the known challenge parameters.
const (
	chRealm uint16 = 1 << iota
	chDomain
	chNonce
	chOpaque
	chStale
	chAlgorithm
	chQOP
	chCharset
	chUserHash
)

func challengeParam(name string) uint16 {
	switch name {
	case "realm":
		return chRealm
	case "domain":
		return chDomain
	case "nonce":
		return chNonce
	case "opaque":
		return chOpaque
	case "stale":
		return chStale
	case "algorithm":
		return chAlgorithm
	case "qop":
		return chQOP
	case "charset":
		return chCharset
	case "userhash":
		return chUserHash
	}
	return 0
}

// ParseChallenges returns the Digest challenges of a WWW-Authenticate or
// Proxy-Authenticate header value, which may hold several challenges, in
// order. Challenges of other schemes are skipped. Parameter names are
// case-insensitive; a parameter given twice, a challenge without realm or
// nonce, or a value that is not a token or quoted string is an error
// wrapping [ErrMalformed]. A header with no Digest challenge gives an
// empty slice and no error.
func ParseChallenges(header string) ([]*Challenge, error) {
	if len(header) > MaxHeaderLength {
		return nil, &SyntaxError{Offset: MaxHeaderLength, Msg: fmt.Sprintf("header longer than %d bytes", MaxHeaderLength)}
	}
	r := &digestReader{p: scanner{s: header}, known: challengeParam}
	var out []*Challenge
	var c *Challenge
	var seen uint16 // known parameters of c
	finish := func() error {
		if c != nil && seen&(chRealm|chNonce) != chRealm|chNonce {
			return &SyntaxError{Msg: "Digest challenge without realm or nonce"}
		}
		return nil
	}
	for {
		bit, ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		it := &r.p.it
		if it.kind == itemScheme {
			if err := finish(); err != nil {
				return nil, err
			}
			c, seen = &Challenge{}, 0
			out = append(out, c)
			continue
		}
		seen |= bit
		switch bit {
		case chRealm:
			c.Realm = it.value
		case chDomain:
			c.Domain = it.value
		case chNonce:
			c.Nonce = it.value
		case chOpaque:
			c.Opaque = it.value
		case chStale:
			c.Stale = strings.EqualFold(it.value, "true")
		case chAlgorithm:
			c.Algorithm = ParseAlgorithm(it.value)
		case chQOP:
			for _, q := range strings.Split(it.value, ",") {
				if q = strings.TrimSpace(q); q != "" {
					c.QOP = append(c.QOP, q)
				}
			}
		case chCharset:
			c.Charset = it.value
		case chUserHash:
			c.UserHash = strings.EqualFold(it.value, "true")
		default:
			c.Other = r.others
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if out == nil {
		out = []*Challenge{}
	}
	return out, nil
}

// Bits of the known credential parameters; the first five are required.
const (
	crUsername uint16 = 1 << iota
	crRealm
	crNonce
	crURI
	crResponse
	crAlgorithm
	crCNonce
	crOpaque
	crQOP
	crNC
	crUserHash
)

var requiredCredentialParams = [...]string{"username", "realm", "nonce", "uri", "response"}

func credentialParam(name string) uint16 {
	switch name {
	case "username":
		return crUsername
	case "realm":
		return crRealm
	case "nonce":
		return crNonce
	case "uri":
		return crURI
	case "response":
		return crResponse
	case "algorithm":
		return crAlgorithm
	case "cnonce":
		return crCNonce
	case "opaque":
		return crOpaque
	case "qop":
		return crQOP
	case "nc":
		return crNC
	case "userhash":
		return crUserHash
	}
	return 0
}

// ParseCredentials parses an Authorization or Proxy-Authorization header
// value holding one Digest credential. It checks the syntax, that username,
// realm, nonce, uri and response are present, that nc is 8 hexadecimal
// digits and comes with qop and cnonce, and that qop is a single value. It
// checks nothing against a challenge; see [Server.Verify].
func ParseCredentials(header string) (*Credentials, error) {
	c := &Credentials{}
	if err := parseCredentials(c, header); err != nil {
		return nil, err
	}
	return c, nil
}

// parseCredentials is ParseCredentials into c, which Verify keeps on its
// stack.
func parseCredentials(c *Credentials, header string) error {
	if len(header) > MaxHeaderLength {
		return &SyntaxError{Offset: MaxHeaderLength, Msg: fmt.Sprintf("header longer than %d bytes", MaxHeaderLength)}
	}
	if parseCanonicalCredentials(c, header) {
		return nil
	}
	*c = Credentials{}
	return parseAnyCredentials(c, header)
}

// parseCanonicalCredentials parses header into c if it has the shape
// nearly every client sends, and Credentials.String writes: "Digest",
// one space, then known parameters in lower case, each once, separated by
// a comma and at most one space, with token values or quoted values
// without escapes, and every check of parseAnyCredentials passing. It
// reports false for anything else, which parseAnyCredentials then reads
// (and refuses, if it must, with its error): whatever this accepts,
// parseAnyCredentials reads the same (FuzzParseCredentials checks). It
// exists for speed: it reads a header in one pass, without the general
// scanner's items.
func parseCanonicalCredentials(c *Credentials, s string) bool {
	const scheme = "Digest "
	if len(s) <= len(scheme) || !strings.EqualFold(s[:len(scheme)-1], scheme[:len(scheme)-1]) || s[len(scheme)-1] != ' ' {
		return false
	}
	var seen uint16
	i := len(scheme)
	for {
		// name=, one of the known names in lower case
		bit, n := canonicalName(s[i:])
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		i += n
		// value: a quoted string without escapes, or a token
		var v string
		if i < len(s) && s[i] == '"' {
			end := skipPlainQuoted(s, i+1)
			if end >= len(s) || s[end] != '"' {
				return false
			}
			v, i = s[i+1:end], end+1
		} else {
			start := i
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			if i == start {
				return false
			}
			v = s[start:i]
		}
		switch bit {
		case crUsername:
			c.Username = v
		case crRealm:
			c.Realm = v
		case crNonce:
			c.Nonce = v
		case crURI:
			c.URI = v
		case crResponse:
			c.Response = v
		case crAlgorithm:
			c.Algorithm = ParseAlgorithm(v)
		case crCNonce:
			c.CNonce = v
		case crOpaque:
			c.Opaque = v
		case crQOP:
			c.QOP = v
		case crNC:
			n, ok := parseHex32(v)
			if !ok || n == 0 {
				return false
			}
			c.NC = n
		case crUserHash:
			c.UserHash = strings.EqualFold(v, "true")
		}
		// the end, or a comma and at most one space
		if i == len(s) {
			break
		}
		if s[i] != ',' {
			return false
		}
		i++
		if i < len(s) && s[i] == ' ' {
			i++
		}
	}
	return checkCredentials(c, seen) == nil
}

// canonicalName reports which known credential parameter s starts with,
// in lower case and followed by '=', and the length of both; 0, 0 if none.
// It compares constant strings, which the compiler turns into a few word
// comparisons.
func canonicalName(s string) (uint16, int) {
	has := func(p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
	if len(s) == 0 {
		return 0, 0
	}
	switch s[0] {
	case 'u':
		switch {
		case has("username="):
			return crUsername, 9
		case has("uri="):
			return crURI, 4
		case has("userhash="):
			return crUserHash, 9
		}
	case 'r':
		switch {
		case has("realm="):
			return crRealm, 6
		case has("response="):
			return crResponse, 9
		}
	case 'n':
		switch {
		case has("nonce="):
			return crNonce, 6
		case has("nc="):
			return crNC, 3
		}
	case 'a':
		if has("algorithm=") {
			return crAlgorithm, 10
		}
	case 'c':
		if has("cnonce=") {
			return crCNonce, 7
		}
	case 'o':
		if has("opaque=") {
			return crOpaque, 7
		}
	case 'q':
		if has("qop=") {
			return crQOP, 4
		}
	}
	return 0, 0
}

// parseAnyCredentials is parseCredentials for any header the grammar
// allows.
func parseAnyCredentials(c *Credentials, header string) error {
	r := &digestReader{p: scanner{s: header}, known: credentialParam}
	found := false
	var seen uint16
	for {
		bit, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		it := &r.p.it
		if it.kind == itemScheme {
			if found {
				return &SyntaxError{Offset: it.offset, Msg: "more than one Digest credential"}
			}
			found = true
			continue
		}
		switch bit {
		case crUsername:
			c.Username = it.value
		case crRealm:
			c.Realm = it.value
		case crNonce:
			c.Nonce = it.value
		case crURI:
			c.URI = it.value
		case crResponse:
			c.Response = it.value
		case crAlgorithm:
			c.Algorithm = ParseAlgorithm(it.value)
		case crCNonce:
			c.CNonce = it.value
		case crOpaque:
			c.Opaque = it.value
		case crQOP:
			c.QOP = it.value
		case crNC:
			if len(it.value) != 8 {
				return &SyntaxError{Offset: it.offset, Msg: "nc is not 8 hexadecimal digits"}
			}
			n, ok := parseHex32(it.value)
			if !ok || n == 0 {
				return &SyntaxError{Offset: it.offset, Msg: "nc is not 8 hexadecimal digits, or is zero"}
			}
			c.NC = n
		case crUserHash:
			c.UserHash = strings.EqualFold(it.value, "true")
		default:
			c.Other = r.others
		}
		seen = r.seen
	}
	if !found {
		return &SyntaxError{Msg: "no Digest credentials"}
	}
	return checkCredentials(c, seen)
}

// checkCredentials checks that credentials c with the known parameters
// seen have the required ones and a consistent qop, nc and cnonce.
func checkCredentials(c *Credentials, seen uint16) error {
	const required = 1<<len(requiredCredentialParams) - 1
	if seen&required != required {
		for i, req := range requiredCredentialParams {
			if seen&(1<<i) == 0 {
				return &SyntaxError{Msg: "Digest credentials without " + req}
			}
		}
	}
	switch {
	case !singleValue(c.QOP):
		return &SyntaxError{Msg: "qop in credentials must be a single value"}
	case c.QOP != "" && (c.NC == 0 || seen&crCNonce == 0):
		return &SyntaxError{Msg: "qop without nc and cnonce"}
	case c.QOP == "" && seen&(crNC|crCNonce) != 0:
		return &SyntaxError{Msg: "nc or cnonce without qop"}
	}
	return nil
}

// singleValue reports whether s holds no list separator (a comma or
// white space).
func singleValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == ' ' || c == '\t' {
			return false
		}
	}
	return true
}

// parseHex32 parses 8 hexadecimal digits.
func parseHex32(s string) (uint32, bool) {
	var n uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint32(c)
	}
	return n, len(s) == 8
}

// lowerASCII returns s in ASCII lower case, without allocating when it
// already is.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// headerWriter builds a header value.
type headerWriter struct {
	b     strings.Builder
	count int
}

func (w *headerWriter) sep() {
	if w.count > 0 {
		w.b.WriteString(", ")
	} else {
		w.b.WriteString("Digest ")
	}
	w.count++
}

// quoted writes name="value", escaping '"' and '\'. Characters that cannot
// appear in a header at all (control characters other than tab) are
// written as spaces, as net/http does with line breaks in header values,
// so that a value can never inject a header line.
func (w *headerWriter) quoted(name, value string) {
	w.sep()
	w.b.WriteString(name)
	w.b.WriteString(`="`)
	for value != "" {
		// Write the plain run at once, then the byte that needs care.
		i := skipPlainQuoted(value, 0)
		w.b.WriteString(value[:i])
		if i == len(value) {
			break
		}
		switch c := value[i]; c {
		case '"', '\\':
			w.b.WriteByte('\\')
			w.b.WriteByte(c)
		default:
			w.b.WriteByte(' ') // a control character
		}
		value = value[i+1:]
	}
	w.b.WriteByte('"')
}

// isToken reports whether s is a non-empty token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return s != ""
}

// token writes name=value for a value that must be a token; a value that
// is not one is written quoted.
func (w *headerWriter) token(name, value string) {
	if !isToken(value) {
		w.quoted(name, value)
		return
	}
	w.sep()
	w.b.WriteString(name)
	w.b.WriteByte('=')
	w.b.WriteString(value)
}

func (w *headerWriter) other(ps []Param) {
	for _, par := range ps {
		if !isToken(par.Name) {
			continue // it could only break the header; see String
		}
		if par.Quoted {
			w.quoted(par.Name, par.Value)
		} else {
			w.token(par.Name, par.Value)
		}
	}
}

// String returns the challenge as a WWW-Authenticate or Proxy-Authenticate
// header value: `Digest realm="…", nonce="…", …`, with realm, domain,
// nonce, opaque, qop and charset quoted and algorithm, stale and userhash
// as tokens, as SIP peers expect.
//
// A header value cannot carry every string: control characters other than
// tab are written as spaces (as net/http does with line breaks), and Other
// parameters whose names are not tokens are left out, so that no value can
// add a header line or a parameter. Values that came from
// ParseChallenges are always written back exactly.
func (c *Challenge) String() string {
	var w headerWriter
	w.b.Grow(96 + len(c.Realm) + len(c.Domain) + len(c.Nonce) + len(c.Opaque))
	w.quoted("realm", c.Realm)
	if c.Domain != "" {
		w.quoted("domain", c.Domain)
	}
	w.quoted("nonce", c.Nonce)
	if c.Opaque != "" {
		w.quoted("opaque", c.Opaque)
	}
	if c.Stale {
		w.token("stale", "true")
	}
	if c.Algorithm != "" {
		w.token("algorithm", string(c.Algorithm))
	}
	if len(c.QOP) > 0 {
		w.quoted("qop", strings.Join(c.QOP, ","))
	}
	if c.Charset != "" {
		w.token("charset", c.Charset)
	}
	if c.UserHash {
		w.token("userhash", "true")
	}
	w.other(c.Other)
	return w.b.String()
}

// String returns the credentials as an Authorization or
// Proxy-Authorization header value, with username, realm, nonce, uri,
// response, cnonce and opaque quoted and algorithm, qop and nc as tokens
// (RFC 3261 §25, RFC 7616 §3.4). Strings a header cannot carry are written
// as Challenge.String writes them; Respond refuses them instead.
func (c *Credentials) String() string {
	var w headerWriter
	w.b.Grow(128 + len(c.Username) + len(c.Realm) + len(c.Nonce) + len(c.URI) + len(c.Response) + len(c.CNonce) + len(c.Opaque))
	w.quoted("username", c.Username)
	w.quoted("realm", c.Realm)
	w.quoted("nonce", c.Nonce)
	w.quoted("uri", c.URI)
	w.quoted("response", c.Response)
	if c.Algorithm != "" {
		w.token("algorithm", string(c.Algorithm))
	}
	if c.CNonce != "" || c.QOP != "" {
		w.quoted("cnonce", c.CNonce)
	}
	if c.Opaque != "" {
		w.quoted("opaque", c.Opaque)
	}
	if c.QOP != "" {
		w.token("qop", c.QOP)
		var nc [8]byte
		hex.Encode(nc[:], []byte{byte(c.NC >> 24), byte(c.NC >> 16), byte(c.NC >> 8), byte(c.NC)})
		w.token("nc", string(nc[:]))
	}
	if c.UserHash {
		w.token("userhash", "true")
	}
	w.other(c.Other)
	return w.b.String()
}
