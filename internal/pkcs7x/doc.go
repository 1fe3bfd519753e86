// Package pkcs7x is the module's one wrapper around github.com/smallstep/pkcs7.
// It reads and writes PKCS#7 SignedData "certs-only" bundles (.p7b), the form
// in which external CAs return a certificate with its chain, and nothing else:
// no signing, no verification of SignerInfos, no enveloped data.
//
// Start with [ParseCertificates]; [CertificatesOnly] builds a bundle for tests
// and the CLI.
//
// # Why a wrapper
//
// smallstep/pkcs7 keeps process-wide settings in package-level variables
// (ContentEncryptionAlgorithm, KeyEncryptionAlgorithm, KeyEncryptionHash) and
// behind SetFallbackLegacyX509CertificateParserEnabled. A library must not
// change them, because another package in the same program may depend on
// their values, and reading them races with a writer. This package never
// assigns to any of them nor calls the setter, and no other package of the
// module imports smallstep/pkcs7: everything goes through here, so that rule
// is checked in one place.
//
// # Security
//
// The library's BER-to-DER conversion checks for an end-of-contents marker
// with a search over the rest of the input after every element of an
// indefinite-length constructed value, and recurses once per nesting level:
// a crafted 1 MiB input of many small elements in one indefinite-length
// SEQUENCE takes seconds, and deep nesting takes a stack the size of the
// input, and it allocates an object per element. [ParseCertificates]
// therefore first walks the input itself, in one linear pass that follows
// the library's own reading rules, and refuses input larger than 1 MiB,
// nesting deeper than 64 levels, more than 65536 elements, more than 1024
// elements inside indefinite-length values, an element that overruns the
// value holding it, and any bytes after the outermost value (the library
// ignores them). Only then does it call pkcs7.Parse. A certificate bundle is
// far inside these bounds: a certificate is a few hundred elements.
//
// No panic in pkcs7.Parse is known (its readers check every index, and
// fuzzing found none), but a panic in it is recovered and returned as an
// error, so that a future version of the dependency cannot crash a server.
//
// The SignerInfos of a bundle are ignored and its certificates are not
// verified: callers verify the certificate they pick (for example with
// x509.Certificate.Verify).
//
// # Compatibility
//
// BER input with indefinite lengths (as some CAs emit) is accepted, except
// an empty value in that form (30 80 00 00), which the library misreads: it
// takes the end-of-contents octets for an element. The high-tag-number
// form, which no PKCS#7 or X.509 structure uses, is refused.
// Certificates are parsed by crypto/x509, never by the library's copy of the
// pre-Go 1.23 parser.
package pkcs7x
