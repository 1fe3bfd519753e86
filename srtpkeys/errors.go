package srtpkeys

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// callers can act on it with [errors.Is].
var (
	// ErrUnknownSuite: a suite name, number or DTLS-SRTP profile this
	// package does not know, or a suite with no DTLS-SRTP profile. Most
	// such errors are a *[SuiteError].
	ErrUnknownSuite = errors.New("srtpkeys: unknown crypto suite")

	// ErrKey: a master key or salt of the wrong length, a bad MKI, or a
	// lifetime out of range.
	ErrKey = errors.New("srtpkeys: invalid master key")

	// ErrIndex: a packet index or key derivation rate out of range.
	ErrIndex = errors.New("srtpkeys: index or key derivation rate out of range")

	// ErrPionUnsupported: pion/srtp cannot run what was asked (the AES-192
	// suites, or a key derivation rate other than 0). The error is a
	// *[PionError].
	ErrPionUnsupported = errors.New("srtpkeys: not supported by pion/srtp")

	// ErrContext: pion/srtp refused to build a context, typically because
	// of an option the caller passed; pion's own error is wrapped too.
	ErrContext = errors.New("srtpkeys: pion/srtp refused the context")

	// ErrMalformed: an SDES a=crypto line that does not follow RFC 4568.
	// The error is a *[SyntaxError].
	ErrMalformed = errors.New("srtpkeys: malformed crypto attribute")

	// ErrNoCommonSuite: an offer/answer exchange found no suite both sides
	// accept, or an answer did not match the offer (another tag or suite,
	// changed protection parameters, or the offer's own key sent back).
	ErrNoCommonSuite = errors.New("srtpkeys: no acceptable crypto attribute")

	// ErrRandom: the random source failed or returned the same key twice.
	ErrRandom = errors.New("srtpkeys: random source failed")

	// ErrDTLS: the DTLS connection has no completed handshake or no
	// negotiated SRTP protection profile.
	ErrDTLS = errors.New("srtpkeys: no DTLS-SRTP keys")
)

// SuiteError reports a suite this package does not know, by name (SDES), by
// number or by DTLS-SRTP profile. It wraps [ErrUnknownSuite].
type SuiteError struct {
	Name    string // the SDES name given, if any
	Suite   Suite  // the Suite value given, if any
	Profile uint16 // the DTLS-SRTP profile given, if any
}

func (e *SuiteError) Error() string {
	switch {
	case e.Name != "":
		return fmt.Sprintf("srtpkeys: unknown crypto suite %q", e.Name)
	case e.Profile != 0:
		return fmt.Sprintf("srtpkeys: unknown or unsupported DTLS-SRTP protection profile 0x%04x", e.Profile)
	default:
		return "srtpkeys: unknown crypto suite " + strconv.Itoa(int(e.Suite))
	}
}

func (e *SuiteError) Unwrap() error { return ErrUnknownSuite }

// PionError reports something pion/srtp cannot run. It wraps
// [ErrPionUnsupported].
type PionError struct {
	What string // "suite AES_192_CM_HMAC_SHA1_80", "key derivation rate 65536"
}

func (e *PionError) Error() string {
	return "srtpkeys: pion/srtp cannot run " + e.What
}

func (e *PionError) Unwrap() error { return ErrPionUnsupported }

// SyntaxError reports where an SDES crypto attribute breaks the RFC 4568
// grammar. It wraps [ErrMalformed]. It never holds key bytes.
type SyntaxError struct {
	Offset int    // byte offset in the string given to ParseCrypto
	Msg    string // what is wrong
	Err    error  // an underlying cause, such as *SuiteError, or nil
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("srtpkeys: malformed crypto attribute at offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns ErrMalformed and the underlying cause, if any.
func (e *SyntaxError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformed, e.Err}
	}
	return []error{ErrMalformed}
}

func keyErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrKey}, a...)...)
}
