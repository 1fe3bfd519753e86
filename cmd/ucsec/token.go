package main

import (
	"crypto"
	"crypto/x509"
	"strings"
)

// Keys in a security token or HSM, named by PKCS #11 URIs (RFC 7512). The
// code that opens them needs cgo, so it is built only with the build tag
// pkcs11 (token_pkcs11.go); without it (token_nopkcs11.go), ucsec stays
// pure Go and a pkcs11: key is refused with a message saying how to build
// a ucsec that takes it.

// tokenHowTo says how to build a ucsec with token support.
const tokenHowTo = "build it with `CGO_ENABLED=1 go build -tags pkcs11 ./cmd/ucsec` (cgo needs a C compiler)"

// tokenOpener opens keys in tokens (tokenKeys).
type tokenOpener interface {
	open(uri string) (tokenKey, error)
}

// tokenKey is a key in a token, open until Close.
type tokenKey interface {
	crypto.Signer
	Certificate() (*x509.Certificate, error)
	Close() error
}

// isTokenRef reports whether a key flag's value is a pkcs11: URI rather
// than a file name (the scheme in any case, RFC 3986).
func isTokenRef(ref string) bool {
	return len(ref) >= len("pkcs11:") && strings.EqualFold(ref[:len("pkcs11:")], "pkcs11:")
}

// redactTokenRef returns a pkcs11: URI without its query (module and
// PIN), for a message.
func redactTokenRef(ref string) string {
	if i := strings.IndexByte(ref, '?'); i >= 0 {
		return ref[:i]
	}
	return ref
}
