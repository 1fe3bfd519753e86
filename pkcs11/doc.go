// Package pkcs11 opens private keys held in a security token or HSM, named
// by PKCS #11 URIs (RFC 7512), as crypto.Signer and crypto.Decrypter
// values that every package of ucsec takes: the key that signs trust lists
// (the Cisco Site Administrator Security Token of CUCM was such a token),
// the TFTP key, the CAPF CA key, the TVS key.
//
// Start with Open:
//
//	key, err := pkcs11.Open("pkcs11:token=ucsec;object=sast?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/secrets/pin", nil)
//	if err != nil { ... }
//	defer key.Close()
//	signed, err := itl.Create(rand.Reader, tmpl, cert, key) // or sgn.Sign, cnfenc, capf.LocalCA, tls.Certificate ...
//
// The key is logged in until Close. It is safe for concurrent use: each
// operation takes a session of its own from a pool (Options.MaxSessions),
// which the CAPF and TVS servers rely on. When the token drops the
// sessions (reset, removed, an HSM that lost its connection), the
// operation under way fails and the next one logs in again.
//
// The URI's path attributes choose the token (token, manufacturer, serial,
// model, slot-id, slot-description, slot-manufacturer, library-*) and the
// key in it (object is its label, id its CKA_ID, type must be private if
// given); the query attributes say which module to load (module-path, or
// module-name looked up in DefaultModuleDirs) and where the PIN is
// (pin-source: a file, as file:///path or a path). ParseURI reads and
// checks a URI without opening anything.
//
// # Security
//
// The PIN comes from pin-source, or from Options.PIN, which a program
// fills from where its user put it (the ucsec command reads the
// environment variable UCSEC_PKCS11_PIN). A URI's pin-value is refused
// unless Options.AllowPINValue is set: RFC 7512 defines it, but a URI is
// often a command-line argument, which other users of the machine see in
// ps. Messages name a key by its URI with any pin-value replaced
// (URI.Redacted); a pin-source is a file name, not the PIN, and is shown.
//
// The PIN stays in memory while the key is open, to log in again after
// the token dropped the sessions, and for keys that want it for every
// operation (CKA_ALWAYS_AUTHENTICATE).
//
// A token has one login per program: once one key of a token is open,
// another Open of the same token gets CKR_USER_ALREADY_LOGGED_IN, which
// it accepts, so a wrong PIN is noticed only by the first Open.
//
// Loading a module runs its code in the program: module-path must name a
// library the program may trust as it trusts itself.
//
// With *rsa.PKCS1v15DecryptOptions.SessionKeyLen (the TLS RSA key
// exchange), a ciphertext that does not decrypt gives random bytes, as
// crypto/rsa does, but the token's time to fail may differ from its time
// to succeed, which a careful attacker could measure (RFC 5246, section
// 7.4.7.1). Prefer ECDHE suites; the legacy suites are there for old
// phones.
//
// # Compatibility
//
// Keys: RSA (PKCS #1 v1.5 and PSS signatures, PKCS #1 v1.5 decryption)
// and ECDSA on P-256, P-384 and P-521. An EC key needs its public key
// object, or a certificate with its id, on the token: the private key
// object does not hold the point. Tested against SoftHSM2 2.6 (Debian's
// softhsm2); package softhsmtest makes throw-away SoftHSM2 tokens for
// tests.
//
// PKCS #11 modules are C libraries: this package needs cgo (and a C
// compiler to build), through github.com/miekg/pkcs11. Built without cgo
// it still parses URIs, and Open fails with ErrNoTokenSupport. It lives in
// a module of its own so that the rest of ucsec stays pure Go.
package pkcs11
