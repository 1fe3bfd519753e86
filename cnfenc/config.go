package cnfenc

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// MaxConfigSize bounds the configurations that ShortConfig,
// ParseShortConfig and ExcludeDigestCredentials read. Real phone
// configurations are tens of kilobytes.
const MaxConfigSize = 4 << 20

// ErrConfig is wrapped by every error about a configuration file that is
// not the XML these functions expect.
var ErrConfig = errors.New("cnfenc: unusable configuration file")

// maxXMLDepth bounds element nesting. Real phone configurations nest
// fewer than 10 deep.
const maxXMLDepth = 64

// bom is the UTF-8 byte order mark, allowed before the document.
const bom = "\uFEFF"

// span is an element's place in a document: the bytes from the '<' of its
// start tag to the '>' of its end tag.
type span struct {
	name       string
	start, end int
}

// scanElements reads an XML document and returns the name of its root
// element and the spans of the elements that want selects, given their
// depth (1 for the root's children) and name. name.Space is the
// element's namespace (or its prefix, if undeclared), "" for none; the
// span's name is the local name. A selected element's contents are not
// searched further. The document must be well formed and nest at most 64
// deep; a UTF-8 byte order mark may precede it.
func scanElements(doc []byte, want func(depth int, name xml.Name) bool) (root string, spans []span, err error) {
	if len(doc) > MaxConfigSize {
		return "", nil, fmt.Errorf("%w: %d bytes, more than %d", ErrConfig, len(doc), MaxConfigSize)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	depth := 0
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if root != "" {
					return "", nil, fmt.Errorf("%w: more than one root element", ErrConfig)
				}
				root = qualified(t.Name)
			}
			if depth++; depth > maxXMLDepth {
				return "", nil, fmt.Errorf("%w: elements nested more than %d deep", ErrConfig, maxXMLDepth)
			}
			if depth > 1 && want(depth-1, t.Name) {
				if err := d.Skip(); err != nil {
					return "", nil, fmt.Errorf("%w: %w", ErrConfig, err)
				}
				depth--
				spans = append(spans, span{name: t.Name.Local, start: int(start), end: int(d.InputOffset())})
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(bytes.TrimPrefix(t, []byte(bom)))) != 0 {
				return "", nil, fmt.Errorf("%w: text outside the root element", ErrConfig)
			}
		}
	}
	if root == "" {
		return "", nil, fmt.Errorf("%w: no root element", ErrConfig)
	}
	return root, spans, nil
}

// qualified returns an element name as a message shows it.
func qualified(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// digestElements are the elements that hold a line's SIP digest
// credentials in a CUCM phone configuration.
var digestElements = []string{"authName", "authPassword"}

// ExcludeDigestCredentials returns a copy of config without its SIP digest
// credentials, as CUCM's "Exclude Digest Credentials in Configuration
// File" leaves them out: every authName and authPassword element, at any
// depth and whatever its namespace or prefix (<x:authPassword> too, since
// a phone may match on the local name alone), is removed from its '<' to
// its closing '>'. Nothing else changes, byte for byte, including the
// white space around the removed elements. It also returns how many
// elements it removed.
//
// config must be well-formed XML; it is not changed.
func ExcludeDigestCredentials(config []byte) ([]byte, int, error) {
	_, spans, err := scanElements(config, func(_ int, name xml.Name) bool {
		return slices.Contains(digestElements, name.Local)
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]byte, 0, len(config))
	last := 0
	for _, s := range spans {
		out = append(out, config[last:s.start]...)
		last = s.end
	}
	return append(out, config[last:]...), len(spans), nil
}

// shortElements are the elements a short configuration copies from the
// full one, in the order it writes them.
var shortElements = []string{"ipAddressMode", "loadInformation", "capfAuthMode", "capfList"}

// ShortConfig builds the short configuration that CUCM serves, signed, as
// SEP<MAC>.cnf.xml.sgn when the full configuration is encrypted: a
// <device> with fullConfig false, copies of the ipAddressMode,
// loadInformation, capfAuthMode and capfList elements of full (those it
// has, byte for byte), certHash (see [CertHash]) of the phone certificate
// the full configuration is encrypted to, and encrConfig true.
//
// Sign the result with sgn.Sign for the name [ShortName] gives.
func ShortConfig(full []byte, phone *x509.Certificate) ([]byte, error) {
	if phone == nil {
		return nil, errors.New("cnfenc: no phone certificate")
	}
	root, spans, err := scanElements(full, func(depth int, name xml.Name) bool {
		return depth == 1 && name.Space == "" && shortIndex(name.Local) >= 0
	})
	if err != nil {
		return nil, err
	}
	if root != "device" {
		return nil, fmt.Errorf("%w: the root element is <%s>, not <device>", ErrConfig, root)
	}
	copies := make([][]byte, len(shortElements))
	for _, s := range spans {
		i := shortIndex(s.name)
		if copies[i] != nil {
			return nil, fmt.Errorf("%w: more than one <%s> element", ErrConfig, s.name)
		}
		copies[i] = full[s.start:s.end]
	}
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<device>\n  <fullConfig>false</fullConfig>\n")
	for _, c := range copies {
		if c != nil {
			b.WriteString("  ")
			b.Write(c)
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "  <certHash>%s</certHash>\n  <encrConfig>true</encrConfig>\n</device>\n", CertHash(phone))
	return b.Bytes(), nil
}

func shortIndex(name string) int {
	for i, n := range shortElements {
		if n == name {
			return i
		}
	}
	return -1
}

// CertHash returns the certHash of a phone certificate as a short
// configuration carries it: the lowercase hexadecimal MD5 of the
// certificate's DER encoding. MD5 serves here as an identifier chosen by
// CUCM, not as a security check: the configuration it sits in is signed.
func CertHash(cert *x509.Certificate) string {
	sum := md5.Sum(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// ShortConfigInfo is what a phone reads from a short configuration.
type ShortConfigInfo struct {
	FullConfig bool   // <fullConfig>: false in a short configuration
	EncrConfig bool   // <encrConfig>: the full configuration is encrypted
	CertHash   string // <certHash>, as written
}

// ParseShortConfig reads the fullConfig, encrConfig and certHash elements
// of a configuration's <device>. Missing elements read as false or "".
// It verifies nothing: check the file's signature first (package sgn).
func ParseShortConfig(config []byte) (*ShortConfigInfo, error) {
	wanted := []string{"fullConfig", "encrConfig", "certHash"}
	root, spans, err := scanElements(config, func(depth int, name xml.Name) bool {
		return depth == 1 && name.Space == "" && slices.Contains(wanted, name.Local)
	})
	if err != nil {
		return nil, err
	}
	if root != "device" {
		return nil, fmt.Errorf("%w: the root element is <%s>, not <device>", ErrConfig, root)
	}
	info := &ShortConfigInfo{}
	seen := map[string]bool{}
	for _, s := range spans {
		if seen[s.name] {
			return nil, fmt.Errorf("%w: more than one <%s> element", ErrConfig, s.name)
		}
		seen[s.name] = true
		text, err := elementText(config[s.start:s.end])
		if err != nil {
			return nil, fmt.Errorf("%w: <%s>: %w", ErrConfig, s.name, err)
		}
		switch s.name {
		case "fullConfig", "encrConfig":
			v, ok := map[string]bool{"true": true, "false": false}[text]
			if !ok {
				return nil, fmt.Errorf("%w: <%s> is %q, not true or false", ErrConfig, s.name, text)
			}
			if s.name == "fullConfig" {
				info.FullConfig = v
			} else {
				info.EncrConfig = v
			}
		case "certHash":
			info.CertHash = text
		}
	}
	return info, nil
}

// elementText returns the text of the element that is the whole of doc,
// without surrounding white space. The element must hold text only.
func elementText(doc []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var text strings.Builder
	for depth := 0; ; {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth > 1 {
				return "", fmt.Errorf("holds an element <%s>, not only text", t.Name.Local)
			}
		case xml.EndElement:
			return strings.TrimSpace(text.String()), nil
		case xml.CharData:
			text.Write(t)
		}
	}
}

// CertHashMatches reports whether the short configuration's certHash is
// that of cert, the phone's own certificate (LSC or MIC): the phone's test
// for "the encrypted configuration is for my key". A phone that gets false
// starts a CAPF session to get a certificate CUCM knows. Hexadecimal case
// does not matter.
func (s *ShortConfigInfo) CertHashMatches(cert *x509.Certificate) bool {
	if cert == nil {
		return false
	}
	got, err := hex.DecodeString(s.CertHash)
	want := md5.Sum(cert.Raw)
	return err == nil && subtle.ConstantTimeCompare(got, want[:]) == 1
}
