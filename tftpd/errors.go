package tftpd

import "errors"

// Sentinel errors. Errors from this package wrap one of them (or a
// context error) and start with "tftpd:". Server.Open returns them; the
// TFTP and HTTP services map them to TFTP error codes and HTTP statuses.
var (
	// ErrNotFound means no file answers the name: nothing in the root
	// under it, nothing to sign or encrypt it from, or a name the
	// service owns that it does not serve now (the plain configuration
	// of a device whose configuration is encrypted, say).
	ErrNotFound = errors.New("tftpd: file not found")
	// ErrForbidden means a name the service refuses to look up (an
	// absolute or parent path, a NUL, a backslash, a control character,
	// an over-long name), a path that leaves the root (through a symbolic
	// link, say), or something other than a regular file.
	ErrForbidden = errors.New("tftpd: access violation")
	// ErrTooLarge means a file over Server.MaxFileSize.
	ErrTooLarge = errors.New("tftpd: file too large")
	// ErrBusy means a limit was reached: Server.MaxTransfers,
	// Server.MaxPerHost or Server.MaxMemory. The client may try again.
	ErrBusy = errors.New("tftpd: server busy")
	// ErrUnavailable means the file exists but cannot be served as it
	// must be: the phone-certificate source failed, signing or
	// encryption failed, a configuration to strip is not XML, or the file
	// kept changing while it was read. The service fails closed: it never
	// falls back to serving the file unsigned, unencrypted or with
	// credentials.
	ErrUnavailable = errors.New("tftpd: file unavailable")
	// ErrConfig means a Server whose fields cannot work together (no
	// Root, a key that does not match its certificate, encryption without
	// a signer, ...).
	ErrConfig = errors.New("tftpd: invalid configuration")
)
