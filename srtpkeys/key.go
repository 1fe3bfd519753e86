package srtpkeys

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
)

// Lifetime limits from RFC 3711 §9.2: a master key protects at most 2^48
// SRTP packets and 2^31 SRTCP packets.
const (
	MaxLifetimeSRTP  = 1 << 48
	MaxLifetimeSRTCP = 1 << 31
)

// MaxMKILen is the longest master key identifier, in bytes (RFC 4568 §6.1,
// and libsrtp's SRTP_MAX_MKI_LEN).
const MaxMKILen = 128

// maxMaterial is the longest key‖salt: AES-256 with a 14-byte salt.
const maxMaterial = 32 + 14

// MasterKey is an SRTP master key and salt for one direction of one stream,
// with the suite it belongs to and, optionally, a lifetime and an MKI.
//
// The key bytes sit behind an unexported pointer, and String, GoString,
// Format, MarshalText and LogValue all print "[redacted]" instead of them,
// so a MasterKey can be logged with log/slog, printed with fmt (any verb,
// also as a field of another struct) or encoded to JSON without giving the
// key away. Reflection-based dumpers that follow pointers (testify's diffs,
// go-spew) do show the bytes: compare keys in tests with [MasterKey.Equal].
// Read the bytes with [MasterKey.Key], [MasterKey.Salt] and
// [MasterKey.KeySalt].
//
// A MasterKey is a value: copies share the key bytes, which no method
// changes, and the MKI slice, which the package never changes either. The
// zero MasterKey has no suite and no key.
type MasterKey struct {
	// Suite is the crypto suite; it fixes the key and salt lengths.
	Suite Suite

	// Lifetime is the number of packets the key may protect, as signalled
	// in SDES ("|2^31"); 0 means not given, so the RFC 3711 limits apply.
	// pion/srtp does not enforce it: see the package documentation.
	Lifetime uint64

	// MKI is the master key identifier carried in each packet, or nil for
	// none. Its length is the MKI length on the wire (1 to MaxMKILen
	// bytes); its value is big-endian.
	MKI []byte

	m *material
}

type material struct {
	b    [maxMaterial]byte
	klen uint8 // key bytes at b[:klen], salt at b[klen:klen+slen]
	slen uint8
}

// NewMasterKey returns a MasterKey for suite made from copies of key and
// salt, which must have the suite's lengths.
func NewMasterKey(suite Suite, key, salt []byte) (MasterKey, error) {
	if !suite.Valid() {
		return MasterKey{}, &SuiteError{Suite: suite}
	}
	if len(key) != suite.KeyLen() || len(salt) != suite.SaltLen() {
		return MasterKey{}, keyErr("%s needs a %d-byte key and a %d-byte salt, got %d and %d",
			suite, suite.KeyLen(), suite.SaltLen(), len(key), len(salt))
	}
	m := &material{klen: uint8(len(key)), slen: uint8(len(salt))}
	copy(m.b[:], key)
	copy(m.b[len(key):], salt)
	return MasterKey{Suite: suite, m: m}, nil
}

// ParseKeySalt splits the concatenated key‖salt (the form SDES carries and
// libsrtp takes) into a MasterKey for suite.
func ParseKeySalt(suite Suite, keySalt []byte) (MasterKey, error) {
	if !suite.Valid() {
		return MasterKey{}, &SuiteError{Suite: suite}
	}
	n := suite.KeyLen()
	if len(keySalt) != n+suite.SaltLen() {
		return MasterKey{}, keyErr("%s needs %d bytes of key and salt, got %d", suite, n+suite.SaltLen(), len(keySalt))
	}
	return NewMasterKey(suite, keySalt[:n], keySalt[n:])
}

// GenerateMasterKey returns a fresh master key and salt for suite, read from
// rand (crypto/rand.Reader when nil).
func GenerateMasterKey(rand io.Reader, suite Suite) (MasterKey, error) {
	if !suite.Valid() {
		return MasterKey{}, &SuiteError{Suite: suite}
	}
	m := &material{klen: uint8(suite.KeyLen()), slen: uint8(suite.SaltLen())}
	b := m.b[:m.klen+m.slen]
	if _, err := io.ReadFull(randOrDefault(rand), b); err != nil {
		return MasterKey{}, fmt.Errorf("%w: %w", ErrRandom, err)
	}
	// A reader that hands out zeros is broken, not random: 2^-240 odds.
	if isZero(b) {
		return MasterKey{}, fmt.Errorf("%w: it returned only zero bytes", ErrRandom)
	}
	return MasterKey{Suite: suite, m: m}, nil
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// IsZero reports whether k holds no key.
func (k MasterKey) IsZero() bool { return k.m == nil }

// Key returns a copy of the master key bytes.
func (k MasterKey) Key() []byte {
	if k.m == nil {
		return nil
	}
	return append([]byte(nil), k.m.b[:k.m.klen]...)
}

// Salt returns a copy of the master salt bytes.
func (k MasterKey) Salt() []byte {
	if k.m == nil {
		return nil
	}
	return append([]byte(nil), k.m.b[k.m.klen:k.m.klen+k.m.slen]...)
}

// KeySalt returns a copy of key‖salt, the form SDES and libsrtp use.
func (k MasterKey) KeySalt() []byte {
	if k.m == nil {
		return nil
	}
	return append([]byte(nil), k.m.b[:k.m.klen+k.m.slen]...)
}

func (k MasterKey) keySalt() []byte {
	if k.m == nil {
		return nil
	}
	return k.m.b[:k.m.klen+k.m.slen]
}

// Equal reports whether k and o hold the same suite, key and salt, in
// constant time with respect to the key bytes. Lifetime and MKI are not
// compared.
func (k MasterKey) Equal(o MasterKey) bool {
	if k.Suite != o.Suite || k.m == nil || o.m == nil {
		return k.Suite == o.Suite && k.m == nil && o.m == nil
	}
	return subtle.ConstantTimeCompare(k.keySalt(), o.keySalt()) == 1
}

// check validates k as something a stream can be keyed with.
func (k MasterKey) check() error {
	if !k.Suite.Valid() {
		return &SuiteError{Suite: k.Suite}
	}
	if k.m == nil || int(k.m.klen) != k.Suite.KeyLen() || int(k.m.slen) != k.Suite.SaltLen() {
		return keyErr("no %s key (build one with NewMasterKey or GenerateMasterKey)", k.Suite)
	}
	if len(k.MKI) > MaxMKILen {
		return keyErr("MKI of %d bytes is longer than %d", len(k.MKI), MaxMKILen)
	}
	if k.MKI != nil && len(k.MKI) == 0 {
		return keyErr("MKI is empty; use nil for none")
	}
	if k.Lifetime > MaxLifetimeSRTP {
		return keyErr("lifetime %d is above the SRTP limit 2^48", k.Lifetime)
	}
	return nil
}

// String describes k without its key bytes, e.g.
// "AES_CM_128_HMAC_SHA1_80 key [redacted] lifetime 2^31 MKI 1:1" (the MKI
// as SDES writes it, value:length).
func (k MasterKey) String() string {
	if k.m == nil {
		return "srtpkeys.MasterKey(none)"
	}
	s := k.Suite.String() + " key [redacted]"
	if k.Lifetime != 0 {
		s += " lifetime " + formatLifetime(k.Lifetime)
	}
	if k.MKI != nil {
		s += " MKI " + formatMKI(k.MKI)
	}
	return s
}

// GoString is String, so %#v does not print the key either.
func (k MasterKey) GoString() string { return k.String() }

// Format writes String for every verb.
func (k MasterKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// MarshalText returns String, so text and JSON encoders do not write the
// key. It is not a serialisation: use KeySalt to store a key.
func (k MasterKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// LogValue returns String for log/slog.
func (k MasterKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// formatLifetime writes a lifetime as SDES does: 2^n for a power of two,
// decimal otherwise.
func formatLifetime(v uint64) string {
	if v != 0 && v&(v-1) == 0 {
		return fmt.Sprintf("2^%d", bits.TrailingZeros64(v))
	}
	return fmt.Sprintf("%d", v)
}

// CallKeys holds the master keys for one call between two endpoints A and
// B: AtoB protects what A sends (and B receives), BtoA the reverse. A call
// controller hands each phone its send key and its receive key, the way
// CUCM fills SCCP StartMediaTransmission and OpenReceiveChannel.
type CallKeys struct {
	AtoB, BtoA MasterKey
}

// GenerateCallKeys returns a fresh key for each direction of a call, read
// from rand (crypto/rand.Reader when nil). The two keys always differ: a
// source that returns the same key (or salt) twice gives an error wrapping
// [ErrRandom] rather than a key set a libsrtp peer would refuse. Keys are
// never reused across calls because each call draws new ones; nothing is
// cached.
func GenerateCallKeys(rand io.Reader, suite Suite) (CallKeys, error) {
	a, err := GenerateMasterKey(rand, suite)
	if err != nil {
		return CallKeys{}, err
	}
	b, err := GenerateMasterKey(rand, suite)
	if err != nil {
		return CallKeys{}, err
	}
	if !distinctKeys(a, b) {
		return CallKeys{}, fmt.Errorf("%w: it returned the same key twice", ErrRandom)
	}
	return CallKeys{AtoB: a, BtoA: b}, nil
}

// distinctKeys reports whether a and b (of one suite) differ in both their
// key and their salt, in constant time. Two directions sharing either one
// would reuse keystream.
func distinctKeys(a, b MasterKey) bool {
	ka, kb := a.keySalt(), b.keySalt()
	if len(ka) != len(kb) || len(ka) == 0 {
		return len(ka) != len(kb)
	}
	n := a.Suite.KeyLen()
	return subtle.ConstantTimeCompare(ka[:n], kb[:n]) == 0 && subtle.ConstantTimeCompare(ka[n:], kb[n:]) == 0
}

// A returns endpoint A's keys: the one it sends with and the one it
// receives with.
func (c CallKeys) A() (send, receive MasterKey) { return c.AtoB, c.BtoA }

// B returns endpoint B's keys: the one it sends with and the one it
// receives with.
func (c CallKeys) B() (send, receive MasterKey) { return c.BtoA, c.AtoB }
