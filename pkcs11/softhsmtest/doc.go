// Package softhsmtest makes throw-away SoftHSM2 tokens for tests of
// programs that use keys in a token through package pkcs11, as
// net/http/httptest makes servers: a token directory under the test's
// temporary directory (SOFTHSM2_CONF points at its configuration for the
// test's duration), tokens initialized with softhsm2-util, keys generated
// in them or imported, certificates stored beside them, and URIs
// (RFC 7512) that name them.
//
// It needs SoftHSM2 (Debian's softhsm2: /usr/lib/softhsm/libsofthsm2.so
// and softhsm2-util) and cgo. Without SoftHSM2 a test that asks for a
// token is skipped, or fails where the environment variable CI is true,
// so that CI cannot pass by skipping.
//
// SoftHSM2 reads its configuration, and sees the tokens, when the module
// is initialized: set up every token and key of a test before the test
// opens a key with pkcs11.Open, and close the keys before the next test
// makes its tokens (package pkcs11 finalizes the module when its last key
// is closed).
//
// # Security
//
// The tokens' PINs are fixed and written to files in the test's
// temporary directory; the keys are for tests only.
package softhsmtest
