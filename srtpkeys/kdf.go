package srtpkeys

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
)

// Key derivation labels, RFC 3711 §4.3.2 and §4.3.3.
const (
	labelSRTPEncryption  = 0x00
	labelSRTPAuth        = 0x01
	labelSRTPSalt        = 0x02
	labelSRTCPEncryption = 0x03
	labelSRTCPAuth       = 0x04
	labelSRTCPSalt       = 0x05
)

// MaxKDR is the largest key derivation rate RFC 3711 allows, 2^24.
const MaxKDR = 1 << 24

// Index limits: SRTP packet indexes are 48 bits, SRTCP indexes 31 bits.
const (
	MaxIndexSRTP  = 1<<48 - 1
	MaxIndexSRTCP = 1<<31 - 1
)

// CheckKDR reports whether rate is a key derivation rate RFC 3711 allows:
// 0 (derive once) or a power of two from 1 to 2^24. The error wraps
// [ErrIndex].
func CheckKDR(rate uint64) error {
	if rate == 0 || (rate&(rate-1) == 0 && rate <= MaxKDR) {
		return nil
	}
	return fmt.Errorf("%w: key derivation rate %d is not 0 or a power of two up to 2^24", ErrIndex, rate)
}

// KDRFromExponent returns the key derivation rate 2^n that SDES "KDR=n"
// signals, for n from 0 to 24.
func KDRFromExponent(n int) (uint64, error) {
	if n < 0 || n > 24 {
		return 0, fmt.Errorf("%w: KDR exponent %d is outside 0..24", ErrIndex, n)
	}
	return 1 << n, nil
}

// A Deriver computes session keys from one master key (RFC 3711 §4.3, with
// RFC 6188 for AES-192/256 and RFC 7714 for AEAD). It caches the master
// key's AES cipher, so each derivation costs a handful of AES blocks and
// no allocation. A Deriver is safe for concurrent use.
//
// SRTCP keys use the layout every deployed stack uses (libsrtp, pion,
// ffmpeg; RFC 3711 Erratum 3712): the label sits at salt byte 7 and the
// packet index divided by the rate is 48 bits wide, exactly as for SRTP.
// The original RFC text, and the older NIST and OpenSSL SRTCP vectors that
// follow it, put the label at byte 9; those keys interoperate with no one.
type Deriver struct {
	suite Suite
	block cipher.Block
	salt  [14]byte // the master salt; AEAD's 12 bytes are zero-padded (RFC 7714 §11)
	kdr   uint64
}

// NewDeriver returns a Deriver for k with key derivation rate kdr: 0
// derives one set of session keys for the whole stream, a power of two 2^n
// (n ≤ 24) derives a new set every 2^n packets.
func NewDeriver(k MasterKey, kdr uint64) (*Deriver, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	if err := CheckKDR(kdr); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k.m.b[:k.m.klen])
	if err != nil { // unreachable: the lengths were checked
		return nil, keyErr("%v", err)
	}
	d := &Deriver{suite: k.Suite, block: block, kdr: kdr}
	copy(d.salt[:], k.m.b[k.m.klen:k.m.klen+k.m.slen])
	return d, nil
}

// Suite returns the suite of the master key.
func (d *Deriver) Suite() Suite { return d.suite }

// KDR returns the key derivation rate.
func (d *Deriver) KDR() uint64 { return d.kdr }

// SRTP returns the SRTP session keys in force for the packet with the
// 48-bit index ROC·2^16 + SEQ.
func (d *Deriver) SRTP(index uint64) (SessionKeys, error) {
	if index > MaxIndexSRTP {
		return SessionKeys{}, fmt.Errorf("%w: SRTP index %d is above 2^48-1", ErrIndex, index)
	}
	var s SessionKeys
	d.derive(&s, labelSRTPEncryption, index)
	return s, nil
}

// SRTCP returns the SRTCP session keys in force for the packet with the
// 31-bit SRTCP index.
func (d *Deriver) SRTCP(index uint32) (SessionKeys, error) {
	if index > MaxIndexSRTCP {
		return SessionKeys{}, fmt.Errorf("%w: SRTCP index %d is above 2^31-1", ErrIndex, index)
	}
	var s SessionKeys
	d.derive(&s, labelSRTCPEncryption, uint64(index))
	return s, nil
}

// SRTPInto is [Deriver.SRTP] writing into dst, whose memory it reuses: on a
// hot path that derives keys again and again (a new set every 2^n packets,
// or a media relay's many streams) it allocates only the first time. It
// overwrites the keys dst held, and so those of every copy of dst. On an
// error dst is left as it was.
func (d *Deriver) SRTPInto(dst *SessionKeys, index uint64) error {
	if index > MaxIndexSRTP {
		return fmt.Errorf("%w: SRTP index %d is above 2^48-1", ErrIndex, index)
	}
	d.derive(dst, labelSRTPEncryption, index)
	return nil
}

// SRTCPInto is [Deriver.SRTCP] writing into dst, as [Deriver.SRTPInto]
// does.
func (d *Deriver) SRTCPInto(dst *SessionKeys, index uint32) error {
	if index > MaxIndexSRTCP {
		return fmt.Errorf("%w: SRTCP index %d is above 2^31-1", ErrIndex, index)
	}
	d.derive(dst, labelSRTCPEncryption, uint64(index))
	return nil
}

// derive computes into s the three keys whose labels start at base (0 for
// SRTP, 3 for SRTCP), reusing s's memory if it has some.
func (d *Deriver) derive(s *SessionKeys, base byte, index uint64) {
	var r uint64
	if d.kdr != 0 {
		r = index >> bits.TrailingZeros64(d.kdr)
	}
	// One allocation holds the keys and the PRF's scratch blocks: a
	// stack buffer would escape through the cipher.Block interface.
	m := s.m
	if m == nil {
		m = new(sessionMaterial)
	} else if s.suite != d.suite {
		*m = sessionMaterial{} // a suite of shorter keys keeps no old bytes
	}
	in := d.suite.info()
	outs := [3][]byte{m.key[:in.key], m.auth[:in.authKey], m.salt[:in.salt]}
	// Lay out every counter block first and then encrypt them apart, so
	// the CPU overlaps the independent AES calls. Whole blocks go straight
	// into the keys; the tails of the authentication key and the salt go
	// through m.ks.
	var dst [5][]byte
	var tail [len(m.ks)][]byte
	n, tails := 0, 0
	for i, out := range outs {
		for ctr := 0; len(out) > 0; ctr++ {
			d.counterBlock(&m.in[n], base+byte(i), r, byte(ctr))
			if len(out) >= aes.BlockSize {
				dst[n], out = out[:aes.BlockSize], out[aes.BlockSize:]
			} else {
				dst[n], tail[tails], out = m.ks[tails][:], out, nil
				tails++
			}
			n++
		}
	}
	for j := range n {
		d.block.Encrypt(dst[j], m.in[j][:])
	}
	for t := range tails {
		copy(tail[t], m.ks[t][:])
	}
	clear(m.in[:])
	clear(m.ks[:])
	*s = SessionKeys{suite: d.suite, m: m}
}

// counterBlock writes the AES-CM input block for key_id = label‖r (r 48
// bits) and block counter ctr: x = key_id XOR master salt, IV = x·2^16,
// as RFC 3711 §4.3.1 says.
func (d *Deriver) counterBlock(iv *[aes.BlockSize]byte, label byte, r uint64, ctr byte) {
	copy(iv[:14], d.salt[:])
	iv[7] ^= label
	iv[8] ^= byte(r >> 40)
	iv[9] ^= byte(r >> 32)
	iv[10] ^= byte(r >> 24)
	iv[11] ^= byte(r >> 16)
	iv[12] ^= byte(r >> 8)
	iv[13] ^= byte(r)
	iv[14], iv[15] = 0, ctr // at most 2 blocks per label are ever needed
}

// SessionKeys are the keys one SRTP or SRTCP packet is protected with: the
// session encryption key, salt and (for the AES-CM suites) authentication
// key. Like [MasterKey], it never prints its bytes, and the bytes sit
// behind a pointer so that even reflection-based printing of a struct that
// holds SessionKeys in an unexported field shows only an address.
type SessionKeys struct {
	suite Suite
	m     *sessionMaterial
}

type sessionMaterial struct {
	key  [32]byte
	salt [14]byte
	auth [20]byte
	// The PRF's counter blocks (at most 2 for the key, 2 for the
	// authentication key, 1 for the salt) and the keystream of the
	// partial blocks (the AES-192 key's tail, the authentication key's
	// tail, the salt), zeroed after use.
	in [5][aes.BlockSize]byte
	ks [3][aes.BlockSize]byte
}

// Suite returns the suite the keys belong to.
func (s SessionKeys) Suite() Suite { return s.suite }

// Key returns the session encryption key. The slice aliases s (and its copies).
func (s SessionKeys) Key() []byte {
	if s.m == nil {
		return nil
	}
	return s.m.key[:s.suite.KeyLen()]
}

// Salt returns the session salt (14 bytes, or 12 for AEAD). The slice
// aliases s.
func (s SessionKeys) Salt() []byte {
	if s.m == nil {
		return nil
	}
	return s.m.salt[:s.suite.SaltLen()]
}

// Auth returns the session authentication key (20 bytes; empty for AEAD).
// The slice aliases s (and its copies).
func (s SessionKeys) Auth() []byte {
	if s.m == nil {
		return nil
	}
	return s.m.auth[:s.suite.AuthKeyLen()]
}

// String names the suite and hides the key bytes.
func (s SessionKeys) String() string {
	return "srtpkeys.SessionKeys(" + s.suite.String() + ", [redacted])"
}

// GoString is String.
func (s SessionKeys) GoString() string { return s.String() }

// Format writes String for every verb.
func (s SessionKeys) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// MarshalText returns String, so encoders do not write the keys.
func (s SessionKeys) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue returns String for log/slog.
func (s SessionKeys) LogValue() slog.Value { return slog.StringValue(s.String()) }
