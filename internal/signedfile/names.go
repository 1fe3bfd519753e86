package signedfile

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// attribute types: OID → the name we write, plus other spellings seen.
var attrNames = []struct {
	oid     asn1.ObjectIdentifier
	name    string
	aliases []string
}{
	{asn1.ObjectIdentifier{2, 5, 4, 3}, "CN", []string{"COMMONNAME"}},
	{asn1.ObjectIdentifier{2, 5, 4, 11}, "OU", []string{"ORGANIZATIONALUNITNAME"}},
	{asn1.ObjectIdentifier{2, 5, 4, 10}, "O", []string{"ORGANIZATIONNAME"}},
	{asn1.ObjectIdentifier{2, 5, 4, 7}, "L", []string{"LOCALITYNAME"}},
	{asn1.ObjectIdentifier{2, 5, 4, 8}, "ST", []string{"S", "STATEORPROVINCENAME"}},
	{asn1.ObjectIdentifier{2, 5, 4, 6}, "C", []string{"COUNTRYNAME"}},
	{asn1.ObjectIdentifier{2, 5, 4, 9}, "STREET", []string{"STREETADDRESS"}},
	{asn1.ObjectIdentifier{2, 5, 4, 5}, "SERIALNUMBER", nil},
	{asn1.ObjectIdentifier{2, 5, 4, 12}, "T", []string{"TITLE"}},
	{asn1.ObjectIdentifier{2, 5, 4, 17}, "POSTALCODE", nil},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, "DC", []string{"DOMAINCOMPONENT"}},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, "UID", []string{"USERID"}},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, "EMAILADDRESS", []string{"E", "EMAIL"}},
}

func attrName(oid asn1.ObjectIdentifier) string {
	for _, a := range attrNames {
		if a.oid.Equal(oid) {
			return a.name
		}
	}
	return oid.String()
}

// canonType maps any spelling of an attribute type to the name we write.
func canonType(t string) string {
	t = strings.ToUpper(strings.TrimSpace(t))
	for _, a := range attrNames {
		if t == a.name || t == a.oid.String() || slices.Contains(a.aliases, t) {
			return a.name
		}
	}
	return t
}

// FormatName renders a DER-encoded X.509 name the way Cisco writes signer
// and issuer names: TYPE=value pairs in certificate order, joined with ';'
// (for example "CN=tftp;OU=VTG;O=Example"). Values are written as they are;
// a value that is not a string is written as '#' and the hex of its DER.
func FormatName(der []byte) (string, error) {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil || len(rest) != 0 {
		return "", errors.New("certificate name is not a valid DER name")
	}
	var b strings.Builder
	for i, rdn := range rdns {
		if i > 0 {
			b.WriteByte(';')
		}
		for j, atv := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(attrName(atv.Type))
			b.WriteByte('=')
			if s, ok := atv.Value.(string); ok {
				b.WriteString(s)
			} else {
				v, err := asn1.Marshal(atv.Value)
				if err != nil {
					return "", fmt.Errorf("certificate name attribute %v: %w", atv.Type, err)
				}
				b.WriteByte('#')
				b.WriteString(hex.EncodeToString(v))
			}
		}
	}
	return strings.ReplaceAll(b.String(), "\x00", ""), nil
}

// canonName splits a DN string into canonical "TYPE=value" attributes. It
// accepts ';', ',' and '+' as separators, spaces around them, quoted values,
// backslash escapes and any spelling of the attribute types, so that the
// forms written by CUCM, Cisco tokens and the various certutils versions of
// the same name compare equal.
//
// This is deliberately lenient: CUCM writes values unescaped ("O=Cisco
// Systems, Inc." splits like two attributes), and both sides go through the
// same canonical form, so names that differ only in where separators fall
// inside values compare equal. That cannot admit a forgery, since the
// signature must still verify with the certificate's key; it only means a
// header may spell its signer's name loosely.
func canonName(s string) []string {
	var attrs []string
	var cur strings.Builder
	flush := func() {
		a := strings.TrimSpace(cur.String())
		cur.Reset()
		if a == "" {
			return
		}
		t, v, ok := strings.Cut(a, "=")
		if !ok {
			attrs = append(attrs, a)
			return
		}
		attrs = append(attrs, canonType(t)+"="+strings.TrimSpace(v))
	}
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ';' || c == ',' || c == '+'):
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return attrs
}

// NamesEqual reports whether the DN string s names the DER-encoded X.509
// name der, in certificate order or in reversed (RFC 4514) order.
func NamesEqual(s string, der []byte) bool {
	formatted, err := FormatName(der)
	if err != nil {
		return false
	}
	want := canonName(formatted)
	got := canonName(s)
	if slices.Equal(got, want) {
		return true
	}
	slices.Reverse(want)
	return slices.Equal(got, want)
}

// NameStringsEqual reports whether two DN strings name the same name, in
// the same order, whatever their separators, quoting and type spellings.
func NameStringsEqual(a, b string) bool {
	if a == b {
		return true
	}
	return slices.Equal(canonName(a), canonName(b))
}
