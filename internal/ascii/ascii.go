// Package ascii holds the ASCII-only text helpers the protocol parsers
// share. Protocol tokens (SDP suite names, SIP header parameters) are
// ASCII; Unicode case folding would let look-alikes such as "ſ" (U+017F)
// match "s", so a byte-matching filter and a parser would disagree.
package ascii

// EqualFold reports whether s and t are equal under ASCII case folding.
// Bytes outside A–Z and a–z must match exactly.
func EqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
