package secstatus

import (
	"fmt"
	"strconv"

	"github.com/ucsec/ucsec/internal/ascii"
)

// Limits on what ParseCallInfo reads. A CUCM callinfo entry is about 120
// bytes with six parameters.
const (
	// MaxCallInfoLength is the longest Call-Info header ParseCallInfo
	// reads, counting its values joined with ", " as one header line.
	MaxCallInfoLength = 8 << 10

	// maxCallInfoParams bounds the Params of a callinfo entry.
	maxCallInfoParams = 32
	// maxParamName and maxParamValue bound one parameter of a callinfo
	// entry. With maxCallInfoParams they keep anything String writes
	// (under 7 KiB) within MaxCallInfoLength, so it always parses back.
	maxParamName  = 64
	maxParamValue = 128
)

// callInfoURN is the URI of Cisco's call information entry; it is
// compared ignoring ASCII case. Other features under the same
// urn:x-cisco-remotecc: prefix (hold, resume, barge, cbarge) are other
// entries.
const callInfoURN = "urn:x-cisco-remotecc:callinfo"

// CallInfo is the Cisco call information entry of a SIP Call-Info header,
// which CUCM and Cisco phones use to carry a call's security status:
//
//	Call-Info: <urn:x-cisco-remotecc:callinfo>; security= Encrypted; orientation= to; gci= 1-17041; isVoip; call-instance= 1
//
// Parameter names are matched ignoring ASCII case; the values of the
// string fields are the known tokens in lower case, or any other value as
// it was sent. The zero CallInfo is an entry with security Unknown.
type CallInfo struct {
	// Security is the security= parameter. An absent or empty
	// parameter, or one that is not one of the four level names, is
	// Unknown, as Cisco phones read it.
	Security Level

	Orientation  string // orientation=: "to", "from", another value as sent, or "" when absent
	UIState      string // ui-state=: "ringout", "busy", "connected", another value, or ""
	CallInstance int    // call-instance=: 1 to 65535, or 0 when absent (other values are ignored)
	Priority     string // priority=: "urgent", "emergency", another value, or "" (normal)
	GCI          string // gci=: the global call id, normally "<cluster>-<call>", or ""

	// Params are the other parameters and flags of the entry (isVoip,
	// x-cisco-video-traffic-class=DESKTOP, …), in order, with names and
	// values as received, so that String writes them back.
	Params []Param
}

// Param is a parameter of a callinfo entry that CallInfo has no field
// for. A flag, such as isVoip, has an empty Value; a parameter written
// "name=" with nothing after the '=' (not valid SIP) is read as a flag.
type Param struct {
	Name  string
	Value string
}

// SyntaxError locates a malformed Call-Info header. It unwraps to
// [ErrMalformed].
type SyntaxError struct {
	// Offset is the byte offset of the problem in the header's values
	// joined with ", ", as if they were one header line.
	Offset int
	Msg    string // what is wrong
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("secstatus: malformed Call-Info header at offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *SyntaxError) Unwrap() error { return ErrMalformed }

// Character classes of a callinfo entry.
const (
	ciName  = 1 << iota // parameter name: an RFC 3261 token character
	ciValue             // parameter value: visible ASCII but ; , = < > " \, or a non-ASCII byte
	ciCtl               // control character (other than tab) or DEL
	ciBare              // ends a URI written without angle brackets
)

var ciClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		switch {
		case b < 0x20 && b != '\t' || b == 0x7f:
			t[c] |= ciCtl | ciBare
		case b == ' ' || b == '\t' || b == ';' || b == ',' || b == '"':
			t[c] |= ciBare
		}
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '-' || b == '.' || b == '!' || b == '%' || b == '*' || b == '_' || b == '+' || b == '`' || b == '\'' || b == '~' {
			t[c] |= ciName
		}
		if b > ' ' && b != 0x7f && b != ';' && b != ',' && b != '=' && b != '<' && b != '>' && b != '"' && b != '\\' {
			t[c] |= ciValue
		}
	}
	return t
}()

// Bits of the parameters CallInfo has fields for.
const (
	ciSecurity uint8 = 1 << iota
	ciOrientation
	ciUIState
	ciCallInstance
	ciPriority
	ciGCI
)

// knownParam returns the bit and lower-case name of a parameter CallInfo
// has a field for, or 0.
func knownParam(name string) (uint8, string) {
	var bit uint8
	var canon string
	switch len(name) {
	case 3:
		bit, canon = ciGCI, "gci"
	case 8:
		if name[0] == 's' || name[0] == 'S' {
			bit, canon = ciSecurity, "security"
		} else if name[0] == 'u' || name[0] == 'U' {
			bit, canon = ciUIState, "ui-state"
		} else {
			bit, canon = ciPriority, "priority"
		}
	case 11:
		bit, canon = ciOrientation, "orientation"
	case 13:
		bit, canon = ciCallInstance, "call-instance"
	}
	if bit == 0 || !ascii.EqualFold(name, canon) {
		return 0, ""
	}
	return bit, canon
}

// ParseCallInfo reads the Cisco callinfo entry of a SIP message's
// Call-Info header. Each of values is the value of one Call-Info header
// line (without "Call-Info:"), and may be a comma-separated list whose
// other entries (other URIs, other urn:x-cisco-remotecc: features such as
// hold or barge) are skipped, with their quoted strings and angle
// brackets. A message without a callinfo entry (or with no Call-Info
// header: no values) gives security Unknown, present false and no error.
//
// The URI is matched ignoring ASCII case, with or without the angle
// brackets that RFC 3261 requires: the Cisco SIP Line Messaging Guide
// writes urn:X-cisco-remotecc:callinfo bare, so that is accepted too,
// although Cisco's phone decoder would ignore it. Blanks (spaces and
// tabs) around ';' and '=' are optional: CUCM writes "; security=
// Encrypted", other producers "security=Encrypted". An unknown security
// token is Unknown, not an error.
//
// The error, a *[SyntaxError] wrapping [ErrMalformed], is for
//   - a header longer than [MaxCallInfoLength], an unterminated quoted
//     string or '<', or a control character anywhere (CR and LF included:
//     folded header lines must be unfolded first);
//   - in the callinfo entry: a parameter name that is not a token, a
//     value with a blank inside or any of ; , = < > " \ (so no quoted
//     strings), more than 32 other parameters, a name over 64 bytes or a
//     value over 128, or a security, orientation, ui-state,
//     call-instance, priority or gci parameter given twice;
//   - a second callinfo entry, in the same header line or another.
//
// Those are the inputs that different readers would read differently
// (Cisco's decoder does not know quotes, reads only the first entry of a
// line and lets a later line override an earlier one), so a caller should
// treat the call as security Unknown.
func ParseCallInfo(values ...string) (ci CallInfo, present bool, err error) {
	total := 0
	for i, v := range values {
		if i > 0 {
			total += len(", ")
		}
		if total += len(v); total > MaxCallInfoLength {
			return CallInfo{}, false, &SyntaxError{Offset: MaxCallInfoLength, Msg: "header longer than " + strconv.Itoa(MaxCallInfoLength) + " bytes"}
		}
	}
	base := 0
	for _, v := range values {
		p := ciParser{s: v, base: base}
		if err := p.header(&ci, &present); err != nil {
			return CallInfo{}, false, err
		}
		base += len(v) + len(", ")
	}
	return ci, present, nil
}

// ciParser reads one Call-Info header value.
type ciParser struct {
	s    string
	pos  int
	base int // offset of s in the joined header values
}

func (p *ciParser) fail(at int, msg string) error {
	return &SyntaxError{Offset: p.base + at, Msg: msg}
}

// unexpected reports the byte at p.pos, which cannot be where it is.
func (p *ciParser) unexpected() error {
	switch c := p.s[p.pos]; {
	case ciClass[c]&ciCtl != 0:
		return p.fail(p.pos, fmt.Sprintf("control character 0x%02x", c))
	case c == '"':
		return p.fail(p.pos, "quoted string in a callinfo entry")
	case c >= 0x80:
		return p.fail(p.pos, fmt.Sprintf("unexpected byte 0x%02x", c))
	default:
		return p.fail(p.pos, fmt.Sprintf("unexpected character %q", c))
	}
}

func (p *ciParser) skipBlanks() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// header reads the entries of a header value into ci, setting *present
// at the callinfo entry.
func (p *ciParser) header(ci *CallInfo, present *bool) error {
	for {
		// Empty list elements are allowed.
		for p.skipBlanks(); p.pos < len(p.s) && p.s[p.pos] == ','; p.skipBlanks() {
			p.pos++
		}
		if p.pos == len(p.s) {
			return nil
		}
		start := p.pos
		uri, err := p.uri()
		if err != nil {
			return err
		}
		if ascii.EqualFold(uri, callInfoURN) {
			if *present {
				return p.fail(start, "more than one callinfo entry")
			}
			*present = true
			err = p.params(ci)
		} else {
			err = p.skipEntry()
		}
		if err != nil {
			return err
		}
	}
}

// uri reads the URI that starts an entry: <…>, or a bare URI up to a
// blank, ';' or ','.
func (p *ciParser) uri() (string, error) {
	start := p.pos
	if p.s[p.pos] != '<' {
		for p.pos < len(p.s) && ciClass[p.s[p.pos]]&ciBare == 0 {
			p.pos++
		}
		return p.s[start:p.pos], nil
	}
	for i := start + 1; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '>':
			p.pos = i + 1
			return p.s[start+1 : i], nil
		case ciClass[c]&ciCtl != 0:
			p.pos = i
			return "", p.unexpected()
		}
	}
	return "", p.fail(start, "unterminated '<'")
}

// skipEntry skips the rest of an entry that is not callinfo, up to the
// next ',' outside a quoted string or angle brackets (which are not valid
// after the URI, but a reader that knows name-addr would not split there
// either).
func (p *ciParser) skipEntry() error {
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; {
		case c == ',':
			return nil
		case c == '"':
			if err := p.skipQuoted(); err != nil {
				return err
			}
			continue
		case c == '<':
			if _, err := p.uri(); err != nil {
				return err
			}
			continue
		case ciClass[c]&ciCtl != 0:
			return p.unexpected()
		}
		p.pos++
	}
	return nil
}

// skipQuoted skips the quoted string at p.pos.
func (p *ciParser) skipQuoted() error {
	open := p.pos
	for p.pos++; p.pos < len(p.s); p.pos++ {
		switch c := p.s[p.pos]; {
		case c == '"':
			p.pos++
			return nil
		case c == '\\':
			if p.pos+1 < len(p.s) {
				p.pos++
				if ciClass[p.s[p.pos]]&ciCtl != 0 {
					return p.unexpected()
				}
			}
		case ciClass[c]&ciCtl != 0:
			return p.unexpected()
		}
	}
	return p.fail(open, "unterminated quoted string")
}

// params reads the parameters of the callinfo entry into ci, up to the
// end of the entry.
func (p *ciParser) params(ci *CallInfo) error {
	var seen uint8
	for {
		p.skipBlanks()
		if p.pos == len(p.s) || p.s[p.pos] == ',' {
			return nil
		}
		if p.s[p.pos] != ';' {
			return p.unexpected()
		}
		p.pos++
		p.skipBlanks()
		if p.pos == len(p.s) || p.s[p.pos] == ';' || p.s[p.pos] == ',' {
			continue // an empty parameter
		}

		start := p.pos
		for p.pos < len(p.s) && ciClass[p.s[p.pos]]&ciName != 0 {
			p.pos++
		}
		name := p.s[start:p.pos]
		if name == "" {
			return p.unexpected()
		}
		if len(name) > maxParamName {
			return p.fail(start, "parameter name longer than "+strconv.Itoa(maxParamName)+" bytes")
		}
		p.skipBlanks()
		var value string
		if p.pos < len(p.s) && p.s[p.pos] == '=' {
			p.pos++
			p.skipBlanks()
			v := p.pos
			for p.pos < len(p.s) && ciClass[p.s[p.pos]]&ciValue != 0 {
				p.pos++
			}
			if value = p.s[v:p.pos]; len(value) > maxParamValue {
				return p.fail(v, "parameter value longer than "+strconv.Itoa(maxParamValue)+" bytes")
			}
		}

		bit, canon := knownParam(name)
		if bit == 0 {
			if len(ci.Params) == maxCallInfoParams {
				return p.fail(start, "more than "+strconv.Itoa(maxCallInfoParams)+" parameters")
			}
			ci.Params = append(ci.Params, Param{Name: name, Value: value})
			continue
		}
		if seen&bit != 0 {
			return p.fail(start, "duplicate parameter "+canon)
		}
		seen |= bit
		switch bit {
		case ciSecurity:
			ci.Security, _ = ParseLevel(value)
		case ciOrientation:
			ci.Orientation = lowerToken(value, "to", "from", "")
		case ciUIState:
			ci.UIState = lowerToken(value, "ringout", "busy", "connected")
		case ciCallInstance:
			ci.CallInstance = callInstance(value)
		case ciPriority:
			ci.Priority = lowerToken(value, "urgent", "emergency", "")
		case ciGCI:
			ci.GCI = value
		}
	}
}

// lowerToken returns the one of a, b and c that v is in any case, or v.
func lowerToken(v, a, b, c string) string {
	switch {
	case ascii.EqualFold(v, a):
		return a
	case ascii.EqualFold(v, b):
		return b
	case c != "" && ascii.EqualFold(v, c):
		return c
	}
	return v
}

// callInstance returns the call instance v, or 0 if v is not a decimal
// number from 1 to 65535.
func callInstance(v string) int {
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
		if n = n*10 + int(v[i]-'0'); n > 65535 {
			return 0
		}
	}
	return n
}

// validName reports whether name can be written as the name of a Param.
func validName(name string) bool {
	if name == "" || len(name) > maxParamName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if ciClass[name[i]]&ciName == 0 {
			return false
		}
	}
	bit, _ := knownParam(name)
	return bit == 0
}

// validValue reports whether v can be written as a parameter value.
func validValue(v string) bool {
	if len(v) > maxParamValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		if ciClass[v[i]]&ciValue == 0 {
			return false
		}
	}
	return true
}

// String returns the entry as CUCM writes it, as a Call-Info header value:
//
//	<urn:x-cisco-remotecc:callinfo>; security= Encrypted; orientation= to; ui-state= busy; priority= urgent; gci= 1-17041; call-instance= 1; isVoip
//
// security always, then the other fields that are set, then Params in
// order. ParseCallInfo reads it back to the same CallInfo, for any entry
// ParseCallInfo returned.
//
// String never writes what could change the header's meaning: a
// parameter name that is not a token (or names a field), a value with a
// blank, ; , = < > " \ or a control character (so never a CR or LF), an
// over-long name or value, a CallInstance out of range or Params beyond
// 32 are left out, and a Security that is not one of the four levels is
// written as Unknown. [CallInfo.MarshalText] refuses them instead.
func (ci CallInfo) String() string {
	b, _ := ci.appendText(make([]byte, 0, 128), false)
	return string(b)
}

// MarshalText returns String's text, or an error wrapping [ErrInvalid]
// when String would leave something out or write Unknown for Security.
func (ci CallInfo) MarshalText() ([]byte, error) {
	return ci.appendText(make([]byte, 0, 128), true)
}

// UnmarshalText sets ci to the callinfo entry of the header value text, as
// ParseCallInfo reads it; a value without one is a *SyntaxError.
func (ci *CallInfo) UnmarshalText(text []byte) error {
	v, present, err := ParseCallInfo(string(text))
	if err != nil {
		return err
	}
	if !present {
		return &SyntaxError{Msg: "no <" + callInfoURN + "> entry"}
	}
	*ci = v
	return nil
}

// appendText appends the entry to b. With strict, what String leaves out
// is an error.
func (ci CallInfo) appendText(b []byte, strict bool) ([]byte, error) {
	b = append(b, '<')
	b = append(b, callInfoURN...)
	b = append(b, '>')

	sec := ci.Security
	if !sec.Valid() {
		if strict {
			return nil, fmt.Errorf("%w: Call-Info security level %d", ErrInvalid, uint8(sec))
		}
		sec = Unknown
	}
	b = appendParam(b, "security", sec.String())

	for _, f := range [...]struct{ name, value string }{
		{"orientation", ci.Orientation},
		{"ui-state", ci.UIState},
		{"priority", ci.Priority},
		{"gci", ci.GCI},
	} {
		if f.value == "" {
			continue
		}
		if !validValue(f.value) {
			if strict {
				return nil, fmt.Errorf("%w: Call-Info %s %q cannot be written: it has a blank, ; , = < > \" \\ or a control character, or is over 128 bytes", ErrInvalid, f.name, truncate(f.value))
			}
			continue
		}
		b = appendParam(b, f.name, f.value)
	}

	switch {
	case ci.CallInstance == 0:
	case ci.CallInstance < 0 || ci.CallInstance > 65535:
		if strict {
			return nil, fmt.Errorf("%w: Call-Info call-instance %d is not from 1 to 65535", ErrInvalid, ci.CallInstance)
		}
	default:
		b = append(b, "; call-instance= "...)
		b = strconv.AppendInt(b, int64(ci.CallInstance), 10)
	}

	n := 0
	for _, par := range ci.Params {
		var bad string
		switch {
		case !validName(par.Name):
			bad = "its name is not a token of at most 64 bytes, or is the name of a CallInfo field"
		case !validValue(par.Value):
			bad = "its value has a blank, ; , = < > \" \\ or a control character, or is over 128 bytes"
		case n == maxCallInfoParams:
			bad = "there are more than 32 Params"
		}
		if bad != "" {
			if strict {
				return nil, fmt.Errorf("%w: Call-Info parameter %q cannot be written: %s", ErrInvalid, truncate(par.Name), bad)
			}
			continue
		}
		n++
		if par.Value == "" {
			b = append(b, "; "...)
			b = append(b, par.Name...)
		} else {
			b = appendParam(b, par.Name, par.Value)
		}
	}
	return b, nil
}

// appendParam appends "; name= value", CUCM's spacing.
func appendParam(b []byte, name, value string) []byte {
	b = append(b, "; "...)
	b = append(b, name...)
	b = append(b, "= "...)
	return append(b, value...)
}
