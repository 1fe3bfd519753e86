package pkcs11

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Scheme is the scheme of a PKCS #11 URI, with its colon.
const Scheme = "pkcs11:"

// Object types a URI's type attribute names (RFC 7512, section 2.3).
const (
	TypePublic    = "public"
	TypePrivate   = "private"
	TypeCert      = "cert"
	TypeSecretKey = "secret-key"
	TypeData      = "data"
)

// A URI is a parsed PKCS #11 URI (RFC 7512): the path attributes that
// select a token and an object in it, and the query attributes that say
// which module to load and where the PIN is.
//
// An attribute that is absent is the zero value. An attribute given with
// an empty value (such as "token=") is treated as absent too: no token
// that a key could be on has an empty label.
type URI struct {
	// Token attributes: CK_TOKEN_INFO's label, manufacturerID,
	// serialNumber and model.
	Token, Manufacturer, Serial, Model string
	// Library attributes: CK_INFO's manufacturerID, libraryDescription and
	// libraryVersion ("M" or "M.N").
	LibraryManufacturer, LibraryDescription, LibraryVersion string
	// Slot attributes: CK_SLOT_INFO's slotDescription and manufacturerID,
	// and the slot ID (HasSlotID reports whether slot-id was given).
	SlotDescription, SlotManufacturer string
	SlotID                            uint64
	HasSlotID                         bool
	// Object attributes: CKA_LABEL, CKA_ID (any bytes, percent-encoded in
	// the URI) and CKA_CLASS as one of the Type constants.
	Object string
	ID     []byte
	Type   string

	// Query attributes. ModulePath is the module's file; ModuleName its
	// name, such as "softhsm2", found in a directory of modules.
	ModulePath, ModuleName string
	// PINSource is a file holding the PIN: a file: URI or a path.
	PINSource string
	// PINValue is the PIN itself. Open refuses it unless
	// Options.AllowPINValue is set: a URI is often a command-line
	// argument, which other users of the machine can read.
	PINValue string
}

// Path attribute names, in the order String writes them.
var pathAttrs = []string{
	"library-manufacturer", "library-description", "library-version",
	"slot-manufacturer", "slot-description", "slot-id",
	"manufacturer", "model", "serial", "token",
	"type", "object", "id",
}

// Query attribute names, in the order String writes them.
var queryAttrs = []string{"module-name", "module-path", "pin-source", "pin-value"}

// field returns the field of u that the attribute name sets, or nil for
// slot-id and id, which are not strings, and for unknown names.
func (u *URI) field(name string) *string {
	switch name {
	case "token":
		return &u.Token
	case "manufacturer":
		return &u.Manufacturer
	case "serial":
		return &u.Serial
	case "model":
		return &u.Model
	case "library-manufacturer":
		return &u.LibraryManufacturer
	case "library-description":
		return &u.LibraryDescription
	case "library-version":
		return &u.LibraryVersion
	case "slot-description":
		return &u.SlotDescription
	case "slot-manufacturer":
		return &u.SlotManufacturer
	case "object":
		return &u.Object
	case "type":
		return &u.Type
	case "module-path":
		return &u.ModulePath
	case "module-name":
		return &u.ModuleName
	case "pin-source":
		return &u.PINSource
	case "pin-value":
		return &u.PINValue
	}
	return nil
}

// maxURILength bounds what ParseURI reads: a URI is a short reference.
const maxURILength = 8 << 10

// ParseURI parses a PKCS #11 URI of RFC 7512: "pkcs11:" (any case), path
// attributes separated by ";", then optionally "?" and query attributes
// separated by "&", each name=value with the value percent-encoded.
//
// It refuses what it cannot honour, rather than ignore it and perhaps
// choose another key: an attribute it does not know (vendor attributes,
// "x-..." names, included), one given twice, a fragment, a malformed
// percent-encoding, a type other than the five of RFC 7512, a slot-id that
// is not a decimal number, a library-version that is not "M" or "M.N",
// both pin-source and pin-value, and a URI longer than 8 KiB, as written
// or as String writes it. Its errors wrap ErrMalformedURI and
// never quote a pin-value.
func ParseURI(s string) (*URI, error) {
	if len(s) > maxURILength {
		return nil, uriError("longer than %d bytes", maxURILength)
	}
	if len(s) < len(Scheme) || !strings.EqualFold(s[:len(Scheme)], Scheme) {
		return nil, uriError("does not start with %q", Scheme)
	}
	rest := s[len(Scheme):]
	if strings.Contains(rest, "#") {
		return nil, uriError("has a fragment (#), which RFC 7512 does not define")
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	u := new(URI)
	seen := map[string]bool{}
	if err := u.parseAttrs(path, ";", seen, false); err != nil {
		return nil, err
	}
	if hasQuery {
		if err := u.parseAttrs(query, "&", seen, true); err != nil {
			return nil, err
		}
	}
	if u.PINSource != "" && u.PINValue != "" {
		return nil, uriError("has both pin-source and pin-value")
	}
	// What String writes must parse again: bytes written raw here may be
	// percent-encoded there, three times as long.
	if len(u.String()) > maxURILength {
		return nil, uriError("longer than %d bytes once percent-encoded", maxURILength)
	}
	return u, nil
}

// IsURI reports whether s starts with the scheme of a PKCS #11 URI, in
// any case: whether s is meant as one, valid or not.
func IsURI(s string) bool {
	return len(s) >= len(Scheme) && strings.EqualFold(s[:len(Scheme)], Scheme)
}

func (u *URI) parseAttrs(s, sep string, seen map[string]bool, query bool) error {
	where := "path"
	if query {
		where = "query"
	}
	if s == "" {
		return nil
	}
	for attr := range strings.SplitSeq(s, sep) {
		if attr == "" {
			if query {
				continue // "a=1&&b=2": an empty query attribute is harmless
			}
			return uriError("has an empty path attribute (\";;\" or a trailing \";\")")
		}
		name, enc, ok := strings.Cut(attr, "=")
		if !ok {
			return uriError("%s attribute %q has no \"=\"", where, printable(name))
		}
		name = strings.ToLower(name)
		known := false
		if query {
			known = contains(queryAttrs, name)
		} else {
			known = contains(pathAttrs, name)
		}
		if !known {
			if query && contains(pathAttrs, name) {
				return uriError("%s belongs in the path (before \"?\")", name)
			}
			if !query && contains(queryAttrs, name) {
				return uriError("%s belongs in the query (after \"?\")", name)
			}
			return uriError("unknown %s attribute %q", where, printable(name))
		}
		if seen[name] {
			return uriError("has %s twice", name)
		}
		seen[name] = true
		v, err := pctDecode(enc)
		if err != nil {
			if name == "pin-value" {
				return uriError("pin-value: %v", errors.New("malformed percent-encoding"))
			}
			return uriError("%s: %v", name, err)
		}
		switch name {
		case "id":
			u.ID = []byte(v)
			if len(u.ID) == 0 {
				u.ID = nil
			}
		case "slot-id":
			if v == "" {
				break
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || v[0] == '+' {
				return uriError("slot-id %q is not a decimal number", printable(v))
			}
			u.SlotID, u.HasSlotID = n, true
		case "type":
			switch v {
			case "", TypePublic, TypePrivate, TypeCert, TypeSecretKey, TypeData:
			default:
				return uriError("unknown type %q (public, private, cert, secret-key or data)", printable(v))
			}
			u.Type = v
		case "library-version":
			if v != "" && !validVersion(v) {
				return uriError("library-version %q is not M or M.N", printable(v))
			}
			u.LibraryVersion = v
		default:
			*u.field(name) = v
		}
	}
	return nil
}

// validVersion reports whether v is "M" or "M.N", decimal numbers below
// 256 (CK_VERSION holds two bytes).
func validVersion(v string) bool {
	major, minor, hasMinor := strings.Cut(v, ".")
	ok := func(s string) bool {
		if s == "" || len(s) > 3 || strings.Trim(s, "0123456789") != "" {
			return false
		}
		n, _ := strconv.Atoi(s)
		return n < 256
	}
	return ok(major) && (!hasMinor || ok(minor))
}

// String returns the URI in a canonical form that ParseURI reads back
// to the same URI: attributes in a fixed order, id percent-encoded byte
// by byte, other values percent-encoded where RFC 7512 requires it. It
// includes a pin-value; Redacted does not.
func (u *URI) String() string { return u.format(false) }

// Redacted is String with a pin-value replaced by "xxxxx", for messages
// and logs.
func (u *URI) Redacted() string { return u.format(true) }

func (u *URI) format(redact bool) string {
	var b strings.Builder
	b.WriteString(Scheme)
	n := 0
	for _, name := range pathAttrs {
		var v string
		switch name {
		case "id":
			if len(u.ID) == 0 {
				continue
			}
			var sb strings.Builder
			for _, c := range u.ID {
				fmt.Fprintf(&sb, "%%%02X", c)
			}
			v = sb.String()
		case "slot-id":
			if !u.HasSlotID {
				continue
			}
			v = strconv.FormatUint(u.SlotID, 10)
		default:
			if v = *u.field(name); v == "" {
				continue
			}
			v = pctEncode(v, false)
		}
		if n > 0 {
			b.WriteByte(';')
		}
		n++
		b.WriteString(name + "=" + v)
	}
	n = 0
	for _, name := range queryAttrs {
		v := *u.field(name)
		if v == "" {
			continue
		}
		if name == "pin-value" && redact {
			v = "xxxxx"
		}
		if n == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		n++
		b.WriteString(name + "=" + pctEncode(v, true))
	}
	return b.String()
}

// pctEncode percent-encodes what a value may not hold as it is: every
// byte but RFC 3986's unreserved characters and those RFC 7512 allows in
// a path value (":[]@!$'()*+,=&") or in a query value (":[]@!$'()*+,=/?|"),
// where "&" is the separator instead.
func pctEncode(s string, query bool) string {
	extra := ":[]@!$'()*+,=&"
	if query {
		extra = ":[]@!$'()*+,=/?|"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', strings.IndexByte(extra, c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// pctDecode decodes the percent-encoded octets of s (RFC 3986, section
// 2.1). Every other byte stands for itself.
func pctDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("malformed percent-encoding")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", errors.New("malformed percent-encoding")
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// printable returns s quoted as Go would, without the quotes, so that a
// message cannot carry control characters to a terminal; long strings
// are cut.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func uriError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedURI}, args...)...)
}
