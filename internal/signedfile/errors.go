package signedfile

import (
	"errors"
	"fmt"
	"strings"
)

// PublicErrors maps this module's internal errors to those of a public
// package, so that each public package reports its own sentinels and
// prefix without repeating the mapping.
type PublicErrors struct {
	Prefix       string // such as "sgn: "
	Verification error  // returned for ErrVerification
	Signer       error  // wraps ErrSigner errors
	Unsupported  error  // wraps ErrUnsupported errors
	// ParseError makes the package's typed parse error.
	ParseError func(offset int, tag uint8, msg string) error
}

// Map returns err as the public package reports it: a *ParseError as the
// package's parse error, a verification failure as its vague sentinel, the
// other sentinels wrapped with their detail, and anything else with the
// package's prefix and its chain kept (a signer's own error stays
// reachable with errors.Is).
func (p PublicErrors) Map(err error) error {
	var pe *ParseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return p.ParseError(pe.Offset, pe.Tag, pe.Msg)
	case errors.Is(err, ErrVerification):
		return p.Verification
	case p.Signer != nil && errors.Is(err, ErrSigner):
		return fmt.Errorf("%w (%s)", p.Signer, strings.TrimPrefix(err.Error(), ErrSigner.Error()+": "))
	case errors.Is(err, ErrUnsupported):
		return fmt.Errorf("%w: %s", p.Unsupported, strings.TrimPrefix(err.Error(), ErrUnsupported.Error()+": "))
	}
	return &renamedError{msg: p.Prefix + TrimPrefix(err.Error()), err: err}
}

// TrimPrefix removes the prefix of this module's internal packages from
// an error message.
func TrimPrefix(msg string) string {
	for _, p := range []string{"signedfile: ", "trustlist: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// renamedError gives an internal error a public package's prefix and keeps
// its chain.
type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }
