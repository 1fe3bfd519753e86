package secstatus

import "errors"

// Sentinel errors; every error this package returns wraps one of them.
var (
	// ErrInvalid: a call description, level or option value that does not
	// make sense (an unknown enum name, a conference without a bridge).
	ErrInvalid = errors.New("secstatus: invalid call description")

	// ErrMalformed: a Call-Info header that cannot be read. The error is
	// a *SyntaxError.
	ErrMalformed = errors.New("secstatus: malformed Call-Info header")

	// ErrRefused: a conference or barge CUCM would refuse (no bridge, or a
	// party below a Meet-Me minimum).
	ErrRefused = errors.New("secstatus: refused")
)
