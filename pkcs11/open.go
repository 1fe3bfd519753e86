package pkcs11

import (
	"crypto"
	"crypto/x509"
	"fmt"
)

// A Key is a private key in a token, opened by Open. It is a
// crypto.Signer; an RSA key is also a crypto.Decrypter (test with a type
// assertion, as for the keys of crypto/rsa and crypto/ecdsa). Its methods
// are safe for concurrent use.
//
// Sign takes a digest, as crypto.Signer does: RSA keys sign with
// PKCS #1 v1.5 (CKM_RSA_PKCS over the DigestInfo of MD5, SHA-1, SHA-224,
// SHA-256, SHA-384 or SHA-512, or over crypto.MD5SHA1 or an unhashed
// message with hash 0) or, given *rsa.PSSOptions, with PSS
// (CKM_RSA_PKCS_PSS); ECDSA keys (P-256, P-384, P-521) with CKM_ECDSA,
// the signature ASN.1-encoded as crypto/ecdsa writes it. Decrypt takes
// nil or *rsa.PKCS1v15DecryptOptions (CKM_RSA_PKCS).
type Key interface {
	crypto.Signer

	// Certificate returns the certificate object of the token whose
	// CKA_ID is the key's (or, for a key without one, whose CKA_LABEL
	// is), holding the key's public key. Its errors wrap
	// ErrNoCertificate when there is none.
	Certificate() (*x509.Certificate, error)

	// Close waits for the operations under way, closes the key's
	// sessions (which logs out of the token once no other key of the
	// program uses it) and, when no other key uses the module, finalizes
	// it. Operations after Close fail with ErrClosed. Close is
	// idempotent.
	Close() error
}

// Open opens the private key that uri, a PKCS #11 URI (RFC 7512), names:
// it loads the module (module-path or module-name, or opts.Module),
// finds the one token that the path attributes match, logs in with the
// PIN (pin-source, an allowed pin-value, or opts.PIN), and finds the one
// private key that object (its label), id and type match. The key stays
// logged in until Close.
//
// A module is loaded once for the whole program: keys of one module share
// it, and the last Close finalizes it (the library stays mapped; it is
// initialized again on the next Open). The module must support
// multi-threaded use with the operating system's locks (CKF_OS_LOCKING_OK),
// as every current module does.
//
// The errors of Open are *Error values naming the URI without its
// pin-value, wrapping one of the errors of this package: ErrMalformedURI,
// ErrNoModule, ErrModule, ErrTokenNotFound, ErrAmbiguous, ErrNoPIN,
// ErrPINValue, ErrPINSource, ErrPINIncorrect, ErrPINLocked, ErrLogin,
// ErrKeyNotFound, ErrKeyType, ErrToken, or ErrNoTokenSupport in a program
// built without cgo.
func Open(uri string, opts *Options) (Key, error) {
	if opts == nil {
		opts = new(Options)
	}
	u, err := ParseURI(uri)
	if err != nil {
		return nil, &Error{URI: redactRaw(uri), Op: "open", Err: err}
	}
	k, err := open(u, opts)
	if err != nil {
		return nil, &Error{URI: u.Redacted(), Op: "open", Err: err}
	}
	return k, nil
}

// openChecks are the checks of Open that need no module: the type
// attribute, the module's file and the PIN. They come first, so that a
// mistake in the URI is reported before a module is loaded.
func openChecks(u *URI, opts *Options) (module, pinText string, hasPIN bool, err error) {
	if u.Type != "" && u.Type != TypePrivate {
		return "", "", false, fmt.Errorf("%w: type=%s names no private key: give type=private or leave type out", ErrKeyType, u.Type)
	}
	if module, err = modulePath(u, opts); err != nil {
		return "", "", false, err
	}
	pinText, hasPIN, err = pin(u, opts)
	return module, pinText, hasPIN, err
}

// redactRaw returns a URI that did not parse, for a message: up to its
// query, whose pin-value it might hold.
func redactRaw(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			s = s[:i] + "?..."
			break
		}
	}
	return printable(s)
}
