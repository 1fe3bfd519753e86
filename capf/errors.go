package capf

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors from this package wrap one of them (or a
// capfwire or crypto error) and start with "capf:".
var (
	// ErrInvalid reports an invalid argument: an unknown name, a malformed
	// authentication string, a bad option.
	ErrInvalid = errors.New("capf: invalid argument")
	// ErrUnknownDevice reports a device the store has no record of.
	ErrUnknownDevice = errors.New("capf: unknown device")
	// ErrDuplicateSerial reports an issued certificate whose serial number
	// is already recorded.
	ErrDuplicateSerial = errors.New("capf: duplicate serial number")
	// ErrStoreClosed reports use of a closed store.
	ErrStoreClosed = errors.New("capf: store closed")
	// ErrCorrupt reports a store, or a record in it, that cannot be read:
	// a record that is not in this package's encoding or that names
	// another device; for [BoltStore], a file that is not a bbolt file, a
	// bad checksum, a missing bucket or index entry.
	ErrCorrupt = errors.New("capf: store corrupt")
	// ErrStoreVersion reports a record, or a [BoltStore] file, in a
	// version this package does not read: written by a newer version of
	// it, or a store file older than it reads.
	ErrStoreVersion = errors.New("capf: store schema version not supported")
	// ErrProtocol reports a peer that broke the CAPF protocol: an
	// unexpected command, a missing or malformed element, a session id
	// mismatch.
	ErrProtocol = errors.New("capf: protocol error")
	// ErrAuth reports failed authentication: wrong string, bad signature,
	// untrusted or mismatched certificate. Deliberately vague.
	ErrAuth = errors.New("capf: authentication failed")
	// ErrRefused reports that the server ended the session with a failure
	// reason (see [*EndError]).
	ErrRefused = errors.New("capf: refused by server")
	// ErrIssue reports that the CA did not issue a certificate.
	ErrIssue = errors.New("capf: certificate not issued")
	// ErrServerClosed is returned by [Server.Serve] after its context is
	// done and every connection has ended.
	ErrServerClosed = errors.New("capf: server closed")
)

// An EndError is the END_SESSION a client received with a reason other
// than success or "no action".
type EndError struct {
	Reason uint8 // capfwire.Reason*: 7 failure, 9 unknown device, …
}

func (e *EndError) Error() string {
	switch e.Reason {
	case 7:
		return "capf: server ended the session: failure (reason 7)"
	case 9:
		return "capf: server ended the session: unknown device (reason 9)"
	}
	return fmt.Sprintf("capf: server ended the session with reason %d", e.Reason)
}

// Unwrap returns [ErrRefused], and [ErrUnknownDevice] for reason 9.
func (e *EndError) Unwrap() []error {
	if e.Reason == 9 {
		return []error{ErrRefused, ErrUnknownDevice}
	}
	return []error{ErrRefused}
}
