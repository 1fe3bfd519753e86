package srtpkeys

import (
	"strconv"

	"github.com/pion/srtp/v3"
	"github.com/ucsec/ucsec/internal/ascii"
)

// Suite is an SRTP crypto suite: a cipher, an authentication transform and
// their key, salt and tag lengths. Its String is the SDES name from the IANA
// registry (RFC 4568, RFC 6188, RFC 7714), which differs from the DTLS-SRTP
// names pion prints.
//
// The zero Suite is not a suite; every method on it reports zero lengths or
// an error.
type Suite uint8

// The suites this package knows. Their order is the IANA registry's.
const (
	AES128CM_SHA1_80 Suite = iota + 1 // AES_CM_128_HMAC_SHA1_80 (RFC 4568)
	AES128CM_SHA1_32                  // AES_CM_128_HMAC_SHA1_32 (RFC 4568)
	AES192CM_SHA1_80                  // AES_192_CM_HMAC_SHA1_80 (RFC 6188); pion cannot run it
	AES192CM_SHA1_32                  // AES_192_CM_HMAC_SHA1_32 (RFC 6188); pion cannot run it
	AES256CM_SHA1_80                  // AES_256_CM_HMAC_SHA1_80 (RFC 6188)
	AES256CM_SHA1_32                  // AES_256_CM_HMAC_SHA1_32 (RFC 6188)
	AEADAES128GCM                     // AEAD_AES_128_GCM (RFC 7714)
	AEADAES256GCM                     // AEAD_AES_256_GCM (RFC 7714)
	numSuites        = iota
)

type suiteInfo struct {
	name     string
	aliases  []string // misspellings met in the field, accepted on input only
	key      int      // master and session key length
	salt     int      // master and session salt length
	authKey  int      // session authentication key length (0 for AEAD)
	rtpTag   int      // SRTP authentication tag length
	rtcpTag  int      // SRTCP authentication tag length
	profile  uint16   // DTLS-SRTP protection profile (RFC 5764 §4.1.2); 0 = none
	pionRuns bool
}

// suites is indexed by Suite; entry 0 is the zero Suite.
var suites = [numSuites + 1]suiteInfo{
	AES128CM_SHA1_80: {name: "AES_CM_128_HMAC_SHA1_80", key: 16, salt: 14, authKey: 20, rtpTag: 10, rtcpTag: 10, profile: 0x0001, pionRuns: true},
	AES128CM_SHA1_32: {name: "AES_CM_128_HMAC_SHA1_32", key: 16, salt: 14, authKey: 20, rtpTag: 4, rtcpTag: 10, profile: 0x0002, pionRuns: true},
	AES192CM_SHA1_80: {name: "AES_192_CM_HMAC_SHA1_80", aliases: []string{"AES_CM_192_HMAC_SHA1_80"}, key: 24, salt: 14, authKey: 20, rtpTag: 10, rtcpTag: 10},
	AES192CM_SHA1_32: {name: "AES_192_CM_HMAC_SHA1_32", aliases: []string{"AES_CM_192_HMAC_SHA1_32"}, key: 24, salt: 14, authKey: 20, rtpTag: 4, rtcpTag: 10},
	AES256CM_SHA1_80: {name: "AES_256_CM_HMAC_SHA1_80", aliases: []string{"AES_CM_256_HMAC_SHA1_80"}, key: 32, salt: 14, authKey: 20, rtpTag: 10, rtcpTag: 10, profile: 0x0003, pionRuns: true},
	AES256CM_SHA1_32: {name: "AES_256_CM_HMAC_SHA1_32", aliases: []string{"AES_CM_256_HMAC_SHA1_32"}, key: 32, salt: 14, authKey: 20, rtpTag: 4, rtcpTag: 10, profile: 0x0004, pionRuns: true},
	AEADAES128GCM:    {name: "AEAD_AES_128_GCM", key: 16, salt: 12, rtpTag: 16, rtcpTag: 16, profile: 0x0007, pionRuns: true},
	AEADAES256GCM:    {name: "AEAD_AES_256_GCM", key: 32, salt: 12, rtpTag: 16, rtcpTag: 16, profile: 0x0008, pionRuns: true},
}

func (s Suite) info() *suiteInfo {
	if s == 0 || int(s) > numSuites {
		return &suites[0]
	}
	return &suites[s]
}

// Suites returns every suite this package knows, in IANA registry order.
func Suites() []Suite {
	all := make([]Suite, numSuites)
	for i := range all {
		all[i] = Suite(i + 1)
	}
	return all
}

// PionSuites returns the suites pion/srtp can run, strongest first: the
// default preference for [NewOffer] and [Answer].
func PionSuites() []Suite {
	return []Suite{AEADAES256GCM, AEADAES128GCM, AES256CM_SHA1_80, AES128CM_SHA1_80, AES256CM_SHA1_32, AES128CM_SHA1_32}
}

// ParseSuite returns the suite with the SDES name s. Case is ignored, and the
// misspellings AES_CM_192_… and AES_CM_256_… (for RFC 6188's AES_192_CM_…
// and AES_256_CM_…), which several phones and SBCs send, are accepted.
// Other names, including the private AEAD_AES_*_GCM_8 and the F8 suites,
// give an error wrapping [ErrUnknownSuite].
func ParseSuite(s string) (Suite, error) {
	for i := 1; i <= numSuites; i++ {
		in := &suites[i]
		if ascii.EqualFold(s, in.name) {
			return Suite(i), nil
		}
		for _, a := range in.aliases {
			if ascii.EqualFold(s, a) {
				return Suite(i), nil
			}
		}
	}
	return 0, &SuiteError{Name: s}
}

// String returns the suite's SDES name, such as "AES_CM_128_HMAC_SHA1_80",
// or "Suite(n)" for a value that is not a suite.
func (s Suite) String() string {
	if in := s.info(); in.name != "" {
		return in.name
	}
	return "Suite(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the suites this package knows.
func (s Suite) Valid() bool { return s.info().name != "" }

// KeyLen returns the master (and session) key length in bytes.
func (s Suite) KeyLen() int { return s.info().key }

// SaltLen returns the master (and session) salt length in bytes: 14 for the
// AES-CM suites, 12 for AEAD.
func (s Suite) SaltLen() int { return s.info().salt }

// AuthKeyLen returns the session authentication key length in bytes: 20
// (HMAC-SHA1) for the AES-CM suites, 0 for AEAD.
func (s Suite) AuthKeyLen() int { return s.info().authKey }

// AuthTagLen returns the SRTP authentication tag length in bytes: 10 or 4
// for the AES-CM suites, 16 for AEAD.
func (s Suite) AuthTagLen() int { return s.info().rtpTag }

// RTCPAuthTagLen returns the SRTCP authentication tag length in bytes: 10
// for every AES-CM suite (the _32 suites shorten only SRTP tags), 16 for
// AEAD.
func (s Suite) RTCPAuthTagLen() int { return s.info().rtcpTag }

// AEAD reports whether s is an AES-GCM suite (RFC 7714).
func (s Suite) AEAD() bool { in := s.info(); return in.name != "" && in.authKey == 0 }

// DTLSProfile returns the DTLS-SRTP protection profile for s (RFC 5764
// §4.1.2 and RFC 7714 §14.2) and whether one exists. The AES-192 suites have
// none. The AES-256-CM profiles 0x0003 and 0x0004 are the values pion and
// Chrome use; IANA lists them only as reserved, left over from a draft.
func (s Suite) DTLSProfile() (uint16, bool) {
	p := s.info().profile
	return p, p != 0
}

// PionRuns reports whether pion/srtp v3 can run s: every suite except
// AES-192, which pion does not implement.
func (s Suite) PionRuns() bool { return s.info().pionRuns }

// PionProfile returns the pion/srtp protection profile for s, or an error
// wrapping [ErrPionUnsupported] for a suite pion cannot run.
func (s Suite) PionProfile() (srtp.ProtectionProfile, error) {
	in := s.info()
	if !in.pionRuns {
		if in.name == "" {
			return 0, &SuiteError{Suite: s}
		}
		return 0, &PionError{What: "suite " + in.name}
	}
	return srtp.ProtectionProfile(in.profile), nil
}

// SuiteForProfile returns the suite for a DTLS-SRTP protection profile
// number, as pion/dtls and pion/srtp spell it. The NULL-cipher profiles
// (0x0005, 0x0006) give an error wrapping [ErrUnknownSuite]: this package
// never negotiates unencrypted media.
func SuiteForProfile(p uint16) (Suite, error) {
	for i := 1; i <= numSuites; i++ {
		if p != 0 && suites[i].profile == p {
			return Suite(i), nil
		}
	}
	return 0, &SuiteError{Profile: p}
}
