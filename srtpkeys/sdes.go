package srtpkeys

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/ucsec/ucsec/internal/ascii"
)

// Limits on what ParseCrypto accepts, so that hostile SDP cannot make it
// allocate without bound.
const (
	// MaxCryptoLen is the longest a=crypto attribute value accepted.
	MaxCryptoLen = 8192
	// MaxKeys is the most inline: keys one attribute (or FEC_KEY) may
	// carry; libsrtp holds at most 16 keys per stream.
	MaxKeys = 16
	// MaxTag is the largest tag: RFC 4568 allows 1 to 9 digits.
	MaxTag = 999999999
)

// MaxWSH is the largest window size hint accepted (2^31, the SRTCP index
// space); NewContext caps the replay window far lower.
const MaxWSH = 1 << 31

// errUnsupportedParam marks a line [Answer] may skip: it uses a session
// parameter this package does not know.
var errUnsupportedParam = errors.New("srtpkeys: unsupported session parameter")

// FEC order values for the FEC_ORDER session parameter (RFC 4568 §6.3.5).
const (
	FECSRTP = "FEC_SRTP" // FEC first, then SRTP (the default)
	SRTPFEC = "SRTP_FEC" // SRTP first, then FEC
)

// SessionParams are the RFC 4568 §6.3 session parameters of one crypto
// attribute. The zero value is what an attribute without any means.
type SessionParams struct {
	// KDR is the key derivation rate itself (SDES sends its base-2
	// logarithm: KDR=n means 2^n); 0 means the parameter was absent and
	// session keys are derived once.
	KDR uint64

	UnencryptedSRTP     bool // UNENCRYPTED_SRTP: SRTP payloads are not encrypted
	UnencryptedSRTCP    bool // UNENCRYPTED_SRTCP: SRTCP packets are not encrypted
	UnauthenticatedSRTP bool // UNAUTHENTICATED_SRTP: SRTP packets carry no tag

	// FECOrder is FECSRTP, SRTPFEC or "" (absent).
	FECOrder string

	// FECKey holds the keys for the FEC stream (FEC_KEY=), if any.
	FECKey []MasterKey

	// WSH is the SRTP window size hint in packets; 0 means absent. RFC 4568
	// asks for at least 64; smaller values are kept as sent.
	WSH uint64

	// Extensions holds parameters this package does not know, verbatim.
	// RFC 4568 §6.3.7 lets only those starting with "-" be ignored, so
	// ParseCrypto refuses the line for any other.
	Extensions []string
}

// Unprotected reports whether p switches off any encryption or
// authentication.
func (p *SessionParams) Unprotected() bool {
	return p.UnencryptedSRTP || p.UnencryptedSRTCP || p.UnauthenticatedSRTP
}

// Crypto is one SDES a=crypto attribute (RFC 4568 §9.1): a tag, a suite,
// one or more master keys with optional lifetime and MKI, and session
// parameters. String, MarshalText (so JSON) and LogValue (so log/slog)
// hide the keys; Value and Attribute write the real line.
type Crypto struct {
	// Tag identifies the attribute within its media section; the answer
	// echoes the tag of the offer it accepts. 0 to MaxTag.
	Tag int

	// Suite is the crypto suite; every key in Keys has it too.
	Suite Suite

	// Keys holds the inline: keys, at least one. When there are several,
	// each needs an MKI, all of the same length.
	Keys []MasterKey

	// Params holds the session parameters.
	Params SessionParams
}

// ParseCrypto parses an SDES crypto attribute. s may be the whole SDP line
// ("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:…"), the attribute without
// "a=", or just its value ("1 AES_CM_128_HMAC_SHA1_80 inline:…"); a
// trailing CRLF or LF is ignored.
//
// It is lenient where real peers differ from RFC 4568 and harmless: suite
// names in any case and the common misspellings (see [ParseSuite]), "inline"
// in any case, several spaces or tabs between fields and before the tag
// (RFC 4568 has the tag follow "crypto:" directly), base64 without its
// padding, a lifetime in decimal or 2^n, a single "|" field read as an MKI
// if it holds ":" and as a lifetime otherwise, WSH below 64. It is strict
// where a mistake would change keys: the key‖salt length must match the
// suite, several keys need distinct MKIs of one length, an MKI value must
// fit its length, KDR is 1 to 24, tags have no leading zeros, parameters
// do not repeat, and an unknown parameter not starting with "-" rejects the
// line. Error messages never quote a field that could hold key material.
//
// An unknown suite gives a *SyntaxError that also wraps a *[SuiteError], so
// errors.Is(err, ErrUnknownSuite) tells a line to skip from a broken one.
func ParseCrypto(s string) (*Crypto, error) {
	if len(s) > MaxCryptoLen {
		return nil, &SyntaxError{Offset: MaxCryptoLen, Msg: fmt.Sprintf("attribute longer than %d bytes", MaxCryptoLen)}
	}
	p := newCryptoParser(s)
	return p.parse()
}

// cryptoParser reads an attribute; offsets in its errors count from the
// start of the string given to ParseCrypto.
type cryptoParser struct {
	s   string
	off int
}

// newCryptoParser returns a parser at the value of s, an attribute in any
// form ParseCrypto takes: it drops a trailing CRLF or LF and skips leading
// white space, "a=" and "crypto:" (in any case).
func newCryptoParser(s string) cryptoParser {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	start := 0
	for start < len(s) && isWSP(s[start]) {
		start++
	}
	if strings.HasPrefix(s[start:], "a=") {
		start += 2
	}
	if len(s)-start >= 7 && ascii.EqualFold(s[start:start+7], "crypto:") {
		start += 7
	}
	return cryptoParser{s: s, off: start}
}

// tag reads the tag, the first field: 1 to 9 digits without leading
// zeros, after any white space. It is the one reading of the tag, shared
// by ParseCrypto and Answer's duplicate check.
func (p *cryptoParser) tag() (int, error) {
	f, off := p.field()
	if f == "" {
		return 0, p.errorf(off, "missing tag")
	}
	n, ok := parseDecimal(f, 9)
	if !ok {
		return 0, p.errorf(off, "tag is not 1 to 9 digits without leading zeros")
	}
	return int(n), nil
}

func (p *cryptoParser) errorf(off int, format string, a ...any) *SyntaxError {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, a...)}
}

// field returns the next whitespace-separated field and its offset, or ""
// at the end.
func (p *cryptoParser) field() (string, int) {
	for p.off < len(p.s) && isWSP(p.s[p.off]) {
		p.off++
	}
	start := p.off
	for p.off < len(p.s) && !isWSP(p.s[p.off]) {
		p.off++
	}
	return p.s[start:p.off], start
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func (p *cryptoParser) parse() (*Crypto, error) {
	c := &Crypto{}
	var err error
	if c.Tag, err = p.tag(); err != nil {
		return nil, err
	}

	name, off := p.field()
	if name == "" {
		return nil, p.errorf(off, "missing crypto suite")
	}
	if !isSuiteToken(name) {
		// Not quoted: a misplaced field may be a key.
		return nil, p.errorf(off, "crypto suite field is not a suite name (letters, digits and at least one _)")
	}
	suite, err := ParseSuite(name)
	if err != nil {
		return nil, &SyntaxError{Offset: off, Msg: fmt.Sprintf("unknown crypto suite %q", name), Err: err}
	}
	c.Suite = suite

	kp, off := p.field()
	if kp == "" {
		return nil, p.errorf(off, "missing key parameters")
	}
	if c.Keys, err = parseKeyParams(suite, kp, off); err != nil {
		return nil, err
	}

	for {
		f, off := p.field()
		if f == "" {
			break
		}
		if err := c.Params.parse(suite, f, off); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// isSuiteToken reports whether s can be a suite name: RFC 4568 allows
// letters, digits and "_", and every registered name has an "_", which the
// base64 alphabet lacks, so such a token is never key material and may be
// quoted in errors.
func isSuiteToken(s string) bool {
	if len(s) > 64 || !strings.Contains(s, "_") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseDecimal parses 1 to maxDigits decimal digits without leading zeros
// ("0" itself is fine).
func parseDecimal(s string, maxDigits int) (uint64, bool) {
	if s == "" || len(s) > maxDigits || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// parseKeyParams parses key-param *(";" key-param) starting at offset base.
func parseKeyParams(suite Suite, s string, base int) ([]MasterKey, error) {
	var keys []MasterKey
	for off := 0; ; {
		end := strings.IndexByte(s[off:], ';')
		if end < 0 {
			end = len(s)
		} else {
			end += off
		}
		if len(keys) == MaxKeys {
			return nil, &SyntaxError{Offset: base + off, Msg: fmt.Sprintf("more than %d keys", MaxKeys)}
		}
		k, err := parseKeyParam(suite, s[off:end], base+off)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		if end == len(s) {
			break
		}
		off = end + 1
	}
	if len(keys) > 1 {
		for i, k := range keys {
			if k.MKI == nil {
				return nil, &SyntaxError{Offset: base, Msg: fmt.Sprintf("key %d of %d has no MKI", i+1, len(keys))}
			}
			if len(k.MKI) != len(keys[0].MKI) {
				return nil, &SyntaxError{Offset: base, Msg: "keys have MKIs of different lengths"}
			}
			for _, o := range keys[:i] {
				if string(o.MKI) == string(k.MKI) {
					return nil, &SyntaxError{Offset: base, Msg: "two keys have the same MKI"}
				}
			}
		}
	}
	return keys, nil
}

// parseKeyParam parses "inline:" key-salt ["|" lifetime] ["|" mki ":" len].
func parseKeyParam(suite Suite, s string, base int) (MasterKey, error) {
	const method = "inline:"
	if len(s) < len(method) || !ascii.EqualFold(s[:len(method)], method) {
		return MasterKey{}, &SyntaxError{Offset: base, Msg: "key parameter does not start with inline:"}
	}
	off := len(method)
	parts := strings.Split(s[off:], "|")
	if len(parts) > 3 {
		return MasterKey{}, &SyntaxError{Offset: base, Msg: "key parameter has more than three |-separated fields"}
	}
	keySalt, err := decodeKeySalt(parts[0])
	if err != nil {
		return MasterKey{}, &SyntaxError{Offset: base + off, Msg: "key is not base64"}
	}
	defer clear(keySalt)
	k, err := ParseKeySalt(suite, keySalt)
	if err != nil {
		want := suite.KeyLen() + suite.SaltLen()
		return MasterKey{}, &SyntaxError{Offset: base + off, Msg: fmt.Sprintf("%s needs %d bytes of key and salt, the key has %d", suite, want, len(keySalt)), Err: ErrKey}
	}
	off += len(parts[0]) + 1
	rest := parts[1:]
	if len(rest) == 2 || (len(rest) == 1 && !strings.Contains(rest[0], ":")) {
		if k.Lifetime, err = parseLifetime(rest[0]); err != nil {
			return MasterKey{}, &SyntaxError{Offset: base + off, Msg: err.Error()}
		}
		off += len(rest[0]) + 1
		rest = rest[1:]
	}
	if len(rest) == 1 {
		if k.MKI, err = parseMKI(rest[0]); err != nil {
			return MasterKey{}, &SyntaxError{Offset: base + off, Msg: err.Error()}
		}
	}
	return k, nil
}

// decodeKeySalt decodes standard base64, with or without padding. Unlike
// encoding/base64 it refuses CR and LF inside the key.
func decodeKeySalt(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, errors.New("not base64")
		}
	}
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	return enc.Strict().DecodeString(s)
}

// parseLifetime parses "2^n" or a decimal packet count, 1 to 2^48.
func parseLifetime(s string) (uint64, error) {
	if len(s) > 2 && s[:2] == "2^" {
		n, ok := parseDecimal(s[2:], 2)
		if !ok || n > 48 {
			return 0, errors.New("lifetime is not 2^0 to 2^48")
		}
		return 1 << n, nil
	}
	v, ok := parseDecimal(s, 15)
	if !ok || v == 0 || v > MaxLifetimeSRTP {
		return 0, errors.New("lifetime is not 2^n or a packet count from 1 to 2^48")
	}
	return v, nil
}

// parseMKI parses "value:length" into length big-endian bytes.
func parseMKI(s string) ([]byte, error) {
	v, l, ok := strings.Cut(s, ":")
	if !ok {
		return nil, errors.New("MKI is not value:length")
	}
	n, ok := parseDecimal(l, 3)
	if !ok || n < 1 || n > MaxMKILen {
		return nil, fmt.Errorf("MKI length is not 1 to %d", MaxMKILen)
	}
	// 128 bytes hold at most 309 decimal digits; leading zeros are allowed
	// in the value, so bound the digits after them.
	trimmed := strings.TrimLeft(v, "0")
	if v == "" || len(trimmed) > 309 || strings.Trim(v, "0123456789") != "" {
		return nil, errors.New("MKI value is not a decimal number")
	}
	mki := make([]byte, n)
	if len(trimmed) <= 19 {
		x, err := strconv.ParseUint(v[len(v)-max(len(trimmed), 1):], 10, 64)
		if err != nil {
			return nil, errors.New("MKI value is not a decimal number")
		}
		if n < 8 && x>>(8*n) != 0 {
			return nil, fmt.Errorf("MKI value does not fit in %d bytes", n)
		}
		for i := len(mki) - 1; i >= 0 && x != 0; i-- {
			mki[i] = byte(x)
			x >>= 8
		}
		return mki, nil
	}
	var x big.Int
	x.SetString(trimmed, 10)
	if (x.BitLen()+7)/8 > int(n) {
		return nil, fmt.Errorf("MKI value does not fit in %d bytes", n)
	}
	x.FillBytes(mki)
	return mki, nil
}

// parse reads one session parameter.
func (p *SessionParams) parse(suite Suite, f string, off int) error {
	name, val, hasVal := strings.Cut(f, "=")
	dup := func(seen bool) error {
		if seen {
			return &SyntaxError{Offset: off, Msg: "session parameter " + name + " repeats"} // a known name
		}
		return nil
	}
	flag := func(b *bool) error {
		if hasVal {
			return &SyntaxError{Offset: off, Msg: name + " takes no value"}
		}
		if err := dup(*b); err != nil {
			return err
		}
		*b = true
		return nil
	}
	switch name {
	case "KDR":
		if err := dup(p.KDR != 0); err != nil {
			return err
		}
		// RFC 4568 §6.3.1: KDR=n for n in 1..24, the rate being 2^n. KDR=0
		// (rate 1) is refused: peers that send it may mean "derive once".
		n, ok := parseDecimal(val, 2)
		if !ok || n < 1 || n > 24 {
			return &SyntaxError{Offset: off, Msg: "KDR is not 1 to 24"}
		}
		p.KDR = 1 << n
	case "UNENCRYPTED_SRTP":
		return flag(&p.UnencryptedSRTP)
	case "UNENCRYPTED_SRTCP":
		return flag(&p.UnencryptedSRTCP)
	case "UNAUTHENTICATED_SRTP":
		if suite.AEAD() {
			return &SyntaxError{Offset: off, Msg: "UNAUTHENTICATED_SRTP is not allowed with an AEAD suite (RFC 7714)"}
		}
		return flag(&p.UnauthenticatedSRTP)
	case "FEC_ORDER":
		if err := dup(p.FECOrder != ""); err != nil {
			return err
		}
		if val != FECSRTP && val != SRTPFEC {
			return &SyntaxError{Offset: off, Msg: "FEC_ORDER is not FEC_SRTP or SRTP_FEC"}
		}
		p.FECOrder = val
	case "FEC_KEY":
		if err := dup(p.FECKey != nil); err != nil {
			return err
		}
		keys, err := parseKeyParams(suite, val, off+len("FEC_KEY="))
		if err != nil {
			return err
		}
		p.FECKey = keys
	case "WSH":
		if err := dup(p.WSH != 0); err != nil {
			return err
		}
		n, ok := parseDecimal(val, 10)
		if !ok || n == 0 || n > MaxWSH {
			return &SyntaxError{Offset: off, Msg: "WSH is not a window size from 1 to 2^31"}
		}
		p.WSH = n
	default:
		if !strings.HasPrefix(f, "-") || len(f) == 1 {
			// Not quoted: a misplaced field may be a key.
			return &SyntaxError{Offset: off, Msg: "unknown session parameter (only -prefixed ones may be ignored)", Err: errUnsupportedParam}
		}
		for i := 0; i < len(f); i++ {
			if f[i] < 0x21 || f[i] > 0x7e {
				return &SyntaxError{Offset: off + i, Msg: "session parameter has a character that is not visible ASCII"}
			}
		}
		p.Extensions = append(p.Extensions, f)
	}
	return nil
}

// check validates c before it is written out.
func (c *Crypto) check() error {
	if c.Tag < 0 || c.Tag > MaxTag {
		return fmt.Errorf("%w: tag %d is not 0 to %d", ErrMalformed, c.Tag, MaxTag)
	}
	if !c.Suite.Valid() {
		return &SuiteError{Suite: c.Suite}
	}
	if err := checkKeys(c.Suite, c.Keys, "key"); err != nil {
		return err
	}
	p := &c.Params
	if p.KDR != 0 {
		if err := CheckKDR(p.KDR); err != nil {
			return err
		}
		if p.KDR == 1 {
			return fmt.Errorf("%w: SDES cannot signal key derivation rate 1 (KDR=0 is outside RFC 4568)", ErrMalformed)
		}
	}
	if p.WSH > MaxWSH {
		return fmt.Errorf("%w: WSH %d is above 2^31", ErrMalformed, p.WSH)
	}
	if p.UnauthenticatedSRTP && c.Suite.AEAD() {
		return fmt.Errorf("%w: UNAUTHENTICATED_SRTP is not allowed with an AEAD suite (RFC 7714)", ErrMalformed)
	}
	if p.FECOrder != "" && p.FECOrder != FECSRTP && p.FECOrder != SRTPFEC {
		return fmt.Errorf("%w: FEC order %q is not FEC_SRTP or SRTP_FEC", ErrMalformed, p.FECOrder)
	}
	if p.FECKey != nil {
		if err := checkKeys(c.Suite, p.FECKey, "FEC key"); err != nil {
			return err
		}
	}
	for _, e := range p.Extensions {
		if len(e) < 2 || e[0] != '-' || strings.ContainsFunc(e, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return fmt.Errorf("%w: extension parameter %q is not \"-\" and visible ASCII", ErrMalformed, e)
		}
	}
	return nil
}

func checkKeys(suite Suite, keys []MasterKey, what string) error {
	if len(keys) == 0 || len(keys) > MaxKeys {
		return fmt.Errorf("%w: %d %ss; need 1 to %d", ErrKey, len(keys), what, MaxKeys)
	}
	for i, k := range keys {
		if k.Suite != suite {
			return keyErr("%s %d is for %s, the attribute for %s", what, i+1, k.Suite, suite)
		}
		if err := k.check(); err != nil {
			return err
		}
		if len(keys) > 1 {
			if k.MKI == nil || len(k.MKI) != len(keys[0].MKI) {
				return keyErr("several %ss need MKIs of one length", what)
			}
			for _, o := range keys[:i] {
				if string(o.MKI) == string(k.MKI) {
					return keyErr("two %ss have the same MKI", what)
				}
			}
		}
	}
	return nil
}

// Value returns the attribute value, "1 AES_CM_128_HMAC_SHA1_80
// inline:…", without "a=crypto:", in the minimal form: a lifetime and MKI
// appear only when set, and session parameters only when present. It
// holds the real key bytes; do not log it.
func (c *Crypto) Value() (string, error) {
	if err := c.check(); err != nil {
		return "", err
	}
	return string(c.appendText(nil, false)), nil
}

// Attribute returns the whole SDP line, "a=crypto:" followed by Value,
// with the real key bytes.
func (c *Crypto) Attribute() (string, error) {
	if err := c.check(); err != nil {
		return "", err
	}
	return string(c.appendText([]byte("a=crypto:"), false)), nil
}

// String returns the attribute with "[redacted]" in place of every key,
// for logs and errors.
func (c *Crypto) String() string {
	return "a=crypto:" + string(c.appendText(nil, true))
}

// MarshalText returns String, so that encoding/json and other encoders
// never write the keys. Use Value or Attribute for the real line.
func (c *Crypto) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// LogValue returns String for log/slog.
func (c *Crypto) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c *Crypto) appendText(b []byte, redact bool) []byte {
	b = strconv.AppendInt(b, int64(c.Tag), 10)
	b = append(b, ' ')
	b = append(b, c.Suite.String()...)
	b = append(b, ' ')
	b = appendKeyParams(b, c.Keys, redact)
	p := &c.Params
	if p.KDR != 0 {
		b = append(b, " KDR="...)
		b = strconv.AppendInt(b, int64(bits.TrailingZeros64(p.KDR)), 10)
	}
	if p.UnencryptedSRTP {
		b = append(b, " UNENCRYPTED_SRTP"...)
	}
	if p.UnencryptedSRTCP {
		b = append(b, " UNENCRYPTED_SRTCP"...)
	}
	if p.UnauthenticatedSRTP {
		b = append(b, " UNAUTHENTICATED_SRTP"...)
	}
	if p.FECOrder != "" {
		b = append(b, " FEC_ORDER="...)
		b = append(b, p.FECOrder...)
	}
	if p.FECKey != nil {
		b = append(b, " FEC_KEY="...)
		b = appendKeyParams(b, p.FECKey, redact)
	}
	if p.WSH != 0 {
		b = append(b, " WSH="...)
		b = strconv.AppendUint(b, p.WSH, 10)
	}
	for _, e := range p.Extensions {
		b = append(b, ' ')
		b = append(b, e...)
	}
	return b
}

func appendKeyParams(b []byte, keys []MasterKey, redact bool) []byte {
	for i, k := range keys {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, "inline:"...)
		if redact || k.m == nil {
			b = append(b, "[redacted]"...)
		} else {
			b = base64.StdEncoding.AppendEncode(b, k.keySalt())
		}
		if k.Lifetime != 0 {
			b = append(b, '|')
			b = append(b, formatLifetime(k.Lifetime)...)
		}
		if k.MKI != nil {
			b = append(b, '|')
			b = append(b, formatMKI(k.MKI)...)
		}
	}
	return b
}

// formatMKI writes an MKI as "value:length", value in decimal.
func formatMKI(mki []byte) string {
	if len(mki) <= 8 {
		var x uint64
		for _, c := range mki {
			x = x<<8 | uint64(c)
		}
		return strconv.FormatUint(x, 10) + ":" + strconv.Itoa(len(mki))
	}
	return new(big.Int).SetBytes(mki).String() + ":" + strconv.Itoa(len(mki))
}
