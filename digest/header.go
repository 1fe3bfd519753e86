package digest

import (
	"errors"
	"fmt"
	"strconv"
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

// rawParam is a parameter as the scanner reads it.
type rawParam struct {
	name   string
	value  string
	quoted bool
	offset int
}

// rawChallenge is one challenge or credential as the scanner reads it.
type rawChallenge struct {
	scheme string
	params []rawParam
}

// scanner reads the RFC 7235 challenge/credentials grammar:
//
//	1#( auth-scheme [ 1*SP ( token68 / #auth-param ) ] )
//	auth-param = token BWS "=" BWS ( token / quoted-string )
type scanner struct {
	s   string
	pos int
}

func (p *scanner) fail(msg string) error { return &SyntaxError{Offset: p.pos, Msg: msg} }

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0
}

func (p *scanner) skipOWS() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *scanner) token() string {
	start := p.pos
	for p.pos < len(p.s) && isTchar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// quoted reads a quoted-string at p.pos (which holds '"') and returns its
// unescaped contents.
func (p *scanner) quoted() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	var esc []byte // nil until an escape is seen
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
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
		case !isQuotedText(c):
			return "", p.fail("control character in a quoted string")
		default:
			p.pos++
		}
	}
	return "", p.fail("unterminated quoted string")
}

// isQuotedText reports whether c may appear in a quoted string: HTAB, SP,
// visible ASCII and obs-text.
func isQuotedText(c byte) bool { return c == '\t' || c >= 0x20 && c != 0x7f }

// scan reads a whole header value into challenges (or credentials: the
// grammar is the same).
func (p *scanner) scan() ([]rawChallenge, error) {
	if len(p.s) > MaxHeaderLength {
		return nil, &SyntaxError{Offset: MaxHeaderLength, Msg: fmt.Sprintf("header longer than %d bytes", MaxHeaderLength)}
	}
	var out []rawChallenge
	for {
		// List separators; empty list elements are allowed.
		for p.skipOWS(); p.pos < len(p.s) && p.s[p.pos] == ','; p.skipOWS() {
			p.pos++
		}
		if p.pos >= len(p.s) {
			return out, nil
		}
		start := p.pos
		name := p.token()
		if name == "" {
			return nil, p.fail(fmt.Sprintf("unexpected character %q", p.s[p.pos]))
		}
		afterName := p.pos
		p.skipOWS()
		if len(out) > 0 && p.pos < len(p.s) && p.s[p.pos] == '=' {
			if err := p.param(&out[len(out)-1], name, start); err != nil {
				return nil, err
			}
		} else {
			// A new challenge, name being its scheme, optionally
			// followed by white space and a token68 or its first
			// parameter.
			p.pos = afterName
			if len(out) >= maxChallenges {
				return nil, &SyntaxError{Offset: start, Msg: "too many challenges"}
			}
			if out == nil {
				out = make([]rawChallenge, 0, 2)
			}
			out = append(out, rawChallenge{scheme: name, params: make([]rawParam, 0, 12)})
			if p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
				p.skipOWS()
				if p.pos < len(p.s) && p.s[p.pos] != ',' {
					if p.token68Here() {
						p.skipToken68()
					} else if err := p.firstParam(&out[len(out)-1]); err != nil {
						return nil, err
					}
				}
			}
		}
		p.skipOWS()
		if p.pos < len(p.s) && p.s[p.pos] != ',' {
			return nil, p.fail("expected a comma")
		}
	}
}

// firstParam reads the parameter that follows a scheme.
func (p *scanner) firstParam(c *rawChallenge) error {
	start := p.pos
	name := p.token()
	if name == "" {
		return p.fail(fmt.Sprintf("unexpected character %q", p.s[p.pos]))
	}
	p.skipOWS()
	if p.pos >= len(p.s) || p.s[p.pos] != '=' {
		return p.fail("expected '=' after a parameter name")
	}
	return p.param(c, name, start)
}

// param reads the value of parameter name (p.pos is at its '=') into c.
func (p *scanner) param(c *rawChallenge, name string, start int) error {
	p.pos++
	p.skipOWS()
	par := rawParam{name: name, offset: start}
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		v, err := p.quoted()
		if err != nil {
			return err
		}
		par.value, par.quoted = v, true
	} else if par.value = p.token(); par.value == "" {
		return p.fail("parameter " + name + " has no value")
	}
	if len(c.params) >= maxParams {
		return &SyntaxError{Offset: start, Msg: "too many parameters"}
	}
	for _, q := range c.params {
		if strings.EqualFold(q.name, name) {
			return &SyntaxError{Offset: start, Msg: "duplicate parameter " + name}
		}
	}
	c.params = append(c.params, par)
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

// scanDigest returns the Digest challenges of a header value,
// skipping other schemes.
func scanDigest(s string) ([]rawChallenge, error) {
	p := &scanner{s: s}
	all, err := p.scan()
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if strings.EqualFold(c.scheme, "Digest") {
			out = append(out, c)
		}
	}
	return out, nil
}

// ParseChallenges returns the Digest challenges of a WWW-Authenticate or
// Proxy-Authenticate header value, which may hold several challenges, in
// order. Challenges of other schemes are skipped. Parameter names are
// case-insensitive; a parameter given twice, a challenge without realm or
// nonce, or a value that is not a token or quoted string is an error
// wrapping [ErrMalformed]. A header with no Digest challenge gives an
// empty slice and no error.
func ParseChallenges(header string) ([]*Challenge, error) {
	raws, err := scanDigest(header)
	if err != nil {
		return nil, err
	}
	out := make([]*Challenge, 0, len(raws))
	for _, r := range raws {
		c := &Challenge{}
		var seenRealm, seenNonce bool
		for _, par := range r.params {
			switch strings.ToLower(par.name) {
			case "realm":
				c.Realm, seenRealm = par.value, true
			case "domain":
				c.Domain = par.value
			case "nonce":
				c.Nonce, seenNonce = par.value, true
			case "opaque":
				c.Opaque = par.value
			case "stale":
				c.Stale = strings.EqualFold(par.value, "true")
			case "algorithm":
				c.Algorithm = ParseAlgorithm(par.value)
			case "qop":
				for _, q := range strings.Split(par.value, ",") {
					if q = strings.TrimSpace(q); q != "" {
						c.QOP = append(c.QOP, strings.ToLower(q))
					}
				}
			case "charset":
				c.Charset = par.value
			case "userhash":
				c.UserHash = strings.EqualFold(par.value, "true")
			default:
				c.Other = append(c.Other, Param{Name: par.name, Value: par.value, Quoted: par.quoted})
			}
		}
		if !seenRealm || !seenNonce {
			return nil, &SyntaxError{Offset: 0, Msg: "Digest challenge without realm or nonce"}
		}
		out = append(out, c)
	}
	return out, nil
}

// ParseCredentials parses an Authorization or Proxy-Authorization header
// value holding one Digest credential. It checks the syntax, that username,
// realm, nonce, uri and response are present, that nc is 8 hexadecimal
// digits and comes with qop and cnonce, and that qop is a single value. It
// checks nothing against a challenge; see [Server.Verify].
func ParseCredentials(header string) (*Credentials, error) {
	raws, err := scanDigest(header)
	if err != nil {
		return nil, err
	}
	if len(raws) != 1 {
		return nil, &SyntaxError{Msg: fmt.Sprintf("%d Digest credentials, want 1", len(raws))}
	}
	c := &Credentials{}
	var seen credentialParams
	for _, par := range raws[0].params {
		name := lowerASCII(par.name)
		seen.add(name)
		switch name {
		case "username":
			c.Username = par.value
		case "realm":
			c.Realm = par.value
		case "nonce":
			c.Nonce = par.value
		case "uri":
			c.URI = par.value
		case "response":
			c.Response = par.value
		case "algorithm":
			c.Algorithm = ParseAlgorithm(par.value)
		case "cnonce":
			c.CNonce = par.value
		case "opaque":
			c.Opaque = par.value
		case "qop":
			c.QOP = lowerASCII(par.value)
		case "nc":
			if len(par.value) != 8 {
				return nil, &SyntaxError{Offset: par.offset, Msg: "nc is not 8 hexadecimal digits"}
			}
			n, err := strconv.ParseUint(par.value, 16, 32)
			if err != nil || n == 0 {
				return nil, &SyntaxError{Offset: par.offset, Msg: "nc is not 8 hexadecimal digits, or is zero"}
			}
			c.NC = uint32(n)
		case "userhash":
			c.UserHash = strings.EqualFold(par.value, "true")
		default:
			c.Other = append(c.Other, Param{Name: par.name, Value: par.value, Quoted: par.quoted})
		}
	}
	for i, req := range requiredCredentialParams {
		if seen&(1<<i) == 0 {
			return nil, &SyntaxError{Msg: "Digest credentials without " + req}
		}
	}
	switch {
	case strings.ContainsAny(c.QOP, ", \t"):
		return nil, &SyntaxError{Msg: "qop in credentials must be a single value"}
	case c.QOP != "" && (c.NC == 0 || !seen.has("cnonce")):
		return nil, &SyntaxError{Msg: "qop without nc and cnonce"}
	case c.QOP == "" && (seen.has("nc") || seen.has("cnonce")):
		return nil, &SyntaxError{Msg: "nc or cnonce without qop"}
	}
	return c, nil
}

// credentialParams is a set of the credential parameters of interest.
type credentialParams uint8

// requiredCredentialParams and the two others, by bit.
var requiredCredentialParams = [...]string{"username", "realm", "nonce", "uri", "response"}

func credentialBit(name string) credentialParams {
	for i, n := range requiredCredentialParams {
		if n == name {
			return 1 << i
		}
	}
	switch name {
	case "nc":
		return 1 << 5
	case "cnonce":
		return 1 << 6
	}
	return 0
}

func (s *credentialParams) add(name string)     { *s |= credentialBit(name) }
func (s credentialParams) has(name string) bool { return s&credentialBit(name) != 0 }

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
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case c == '"' || c == '\\':
			w.b.WriteByte('\\')
			w.b.WriteByte(c)
		case !isQuotedText(c):
			w.b.WriteByte(' ')
		default:
			w.b.WriteByte(c)
		}
	}
	w.b.WriteByte('"')
}

// token writes name=value for a value that must be a token; a value that
// is not one is written quoted.
func (w *headerWriter) token(name, value string) {
	ok := value != ""
	for i := 0; i < len(value) && ok; i++ {
		ok = isTchar(value[i])
	}
	if !ok {
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
func (c *Challenge) String() string {
	var w headerWriter
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
// (RFC 3261 §25, RFC 7616 §3.4).
func (c *Credentials) String() string {
	var w headerWriter
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
		w.token("nc", fmt.Sprintf("%08x", c.NC))
	}
	if c.UserHash {
		w.token("userhash", "true")
	}
	w.other(c.Other)
	return w.b.String()
}
