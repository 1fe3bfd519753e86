package digest

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// Algorithm is a Digest algorithm name as it appears in the algorithm
// parameter. The empty Algorithm means the parameter was absent, which
// RFC 7616 defines as MD5.
type Algorithm string

// The algorithms of RFC 7616 §6.1 (and RFC 8760 for SIP).
const (
	MD5            Algorithm = "MD5"
	MD5Sess        Algorithm = "MD5-sess"
	SHA256         Algorithm = "SHA-256"
	SHA256Sess     Algorithm = "SHA-256-sess"
	SHA512_256     Algorithm = "SHA-512-256"
	SHA512_256Sess Algorithm = "SHA-512-256-sess"
)

var algorithms = []Algorithm{MD5, MD5Sess, SHA256, SHA256Sess, SHA512_256, SHA512_256Sess}

// ParseAlgorithm returns the canonical spelling of a known algorithm name,
// matched without regard to case, or the name as given if it is not one.
func ParseAlgorithm(s string) Algorithm {
	for _, a := range algorithms {
		if strings.EqualFold(s, string(a)) {
			return a
		}
	}
	return Algorithm(s)
}

// canonical returns a with "" read as MD5.
func (a Algorithm) canonical() Algorithm {
	if a == "" {
		return MD5
	}
	return a
}

// Supported reports whether this package implements a ("" counts as MD5).
func (a Algorithm) Supported() bool { return a.size() != 0 }

// code returns a one-byte name of a (1 to 6; "" is MD5's), or 0 for an
// algorithm this package does not implement.
func (a Algorithm) code() byte {
	for i, b := range algorithms {
		if a.canonical() == b {
			return byte(i + 1)
		}
	}
	return 0
}

// Sess reports whether a is a -sess variant.
func (a Algorithm) Sess() bool { return strings.HasSuffix(string(a), "-sess") }

// size returns the digest size in bytes, or 0 for an unknown algorithm.
func (a Algorithm) size() int {
	switch a.canonical() {
	case MD5, MD5Sess:
		return md5.Size
	case SHA256, SHA256Sess, SHA512_256, SHA512_256Sess:
		return 32
	}
	return 0
}

// Strength orders algorithms by the strength of their hash, for a client
// choosing among challenges: 3 for SHA-512-256, 2 for SHA-256, 1 for MD5
// (each with its -sess form, and "" as MD5), 0 for an unknown algorithm.
func (a Algorithm) Strength() int {
	switch a.canonical() {
	case SHA512_256, SHA512_256Sess:
		return 3
	case SHA256, SHA256Sess:
		return 2
	case MD5, MD5Sess:
		return 1
	}
	return 0
}

// maxDigest is the largest digest size of a supported algorithm.
const maxDigest = 32

// sum hashes data with a's hash into out and returns the digest.
func (a Algorithm) sum(out *[maxDigest]byte, data []byte) []byte {
	switch a.canonical() {
	case MD5, MD5Sess:
		s := md5.Sum(data)
		return append(out[:0], s[:]...)
	case SHA256, SHA256Sess:
		s := sha256.Sum256(data)
		return append(out[:0], s[:]...)
	case SHA512_256, SHA512_256Sess:
		s := sha512.Sum512_256(data)
		return append(out[:0], s[:]...)
	}
	return nil
}

// hexSum hashes the concatenation of parts joined by ':' and appends the
// lowercase hex digest to dst.
func (a Algorithm) hexSum(dst []byte, parts ...string) []byte {
	var buf [256]byte
	b := buf[:0]
	for i, p := range parts {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	var out [maxDigest]byte
	return hex.AppendEncode(dst, a.sum(&out, b))
}

// HA1 returns H(username ":" realm ":" password) in lowercase hex, the
// value a server stores instead of the password (one per realm and hash:
// MD5 and MD5-sess share one, as do SHA-256 and SHA-256-sess). It is
// password-equivalent for that realm: keep it secret. It returns "" for an
// unknown algorithm.
func HA1(a Algorithm, username, realm, password string) string {
	if !a.Supported() {
		return ""
	}
	return string(a.hexSum(nil, username, realm, password))
}

// UserHash returns H(username ":" realm) in lowercase hex: the username a
// client sends when the challenge has userhash=true (RFC 7616 §3.4.4).
func UserHash(a Algorithm, username, realm string) string {
	if !a.Supported() {
		return ""
	}
	return string(a.hexSum(nil, username, realm))
}

// responseInput is what a response is computed from, beside HA1.
type responseInput struct {
	alg    Algorithm
	nonce  string
	cnonce string
	nc     uint32
	qop    string // "", "auth" or "auth-int"
	method string
	uri    string
	body   []byte // for auth-int
}

// response appends the lowercase hex response for ha1 (hex) to dst
// (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1).
func (in *responseInput) response(dst []byte, ha1 string) []byte {
	var out [maxDigest]byte
	return hex.AppendEncode(dst, in.responseSum(&out, ha1))
}

// responseSum is response as the digest itself, in sum.
func (in *responseInput) responseSum(sum *[maxDigest]byte, ha1 string) []byte {
	a := in.alg
	var buf [384]byte
	var out [maxDigest]byte

	// HA2 = H(method ":" uri [":" H(body)])
	b := append(buf[:0], in.method...)
	b = append(b, ':')
	b = append(b, in.uri...)
	if strings.EqualFold(in.qop, "auth-int") {
		b = append(b, ':')
		b = hex.AppendEncode(b, a.sum(&out, in.body))
	}
	var ha2buf [2 * maxDigest]byte
	ha2 := hex.AppendEncode(ha2buf[:0], a.sum(&out, b))

	// For -sess, HA1 = H(HA1 ":" nonce ":" cnonce), in hex (RFC 7616).
	if a.Sess() {
		var ha1buf [2 * maxDigest]byte
		b = append(buf[:0], ha1...)
		b = append(b, ':')
		b = append(b, in.nonce...)
		b = append(b, ':')
		b = append(b, in.cnonce...)
		b = append(buf[:0], hex.AppendEncode(ha1buf[:0], a.sum(&out, b))...)
	} else {
		b = append(buf[:0], ha1...)
	}

	// response = H(HA1 ":" nonce [":" nc ":" cnonce ":" qop] ":" HA2)
	b = append(b, ':')
	b = append(b, in.nonce...)
	b = append(b, ':')
	if in.qop != "" {
		b = hex.AppendEncode(b, []byte{byte(in.nc >> 24), byte(in.nc >> 16), byte(in.nc >> 8), byte(in.nc)})
		b = append(b, ':')
		b = append(b, in.cnonce...)
		b = append(b, ':')
		b = append(b, in.qop...)
		b = append(b, ':')
	}
	b = append(b, ha2...)
	return a.sum(sum, b)
}

// equalHexSum reports whether got, a hex string in any case, is the hex
// of sum, in time that depends on the lengths and on got only.
func equalHexSum(got string, sum []byte) bool {
	if len(got) != 2*len(sum) {
		return false
	}
	const digits = "0123456789abcdef"
	var v byte
	for i, b := range sum {
		hi, lo := got[2*i], got[2*i+1]
		if 'A' <= hi && hi <= 'F' {
			hi += 'a' - 'A'
		}
		if 'A' <= lo && lo <= 'F' {
			lo += 'a' - 'A'
		}
		v |= hi ^ digits[b>>4] | lo ^ digits[b&15]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// equalHex reports whether got, a hex string in any case, equals want,
// lowercase hex, in time that depends on the lengths and on got only.
func equalHex(got string, want []byte) bool {
	if len(got) != len(want) {
		return false
	}
	var v byte
	for i := 0; i < len(got); i++ {
		c := got[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		v |= c ^ want[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}
