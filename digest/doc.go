// Package digest implements SIP Digest authentication (RFC 3261 §22,
// RFC 7616, RFC 8760) for servers and clients, independent of any SIP
// stack: it reads and writes header values and leaves the messages to the
// caller (emiago/sipgo or any other).
//
// A [Server] challenges requests and verifies their credentials, with
// stateless nonces that expire (600 s by default, as CUCM's nonce validity
// time) and that every server sharing its secrets accepts, replay
// protection by nonce count, and HA1 lookups through a [CredentialStore]
// so that passwords need not be stored. [Server.Verify] says what to
// answer; [Server.Answer] builds the answer.
//
// A [Client] answers challenges with credentials per realm, as a SIP trunk's
// "SIP Realm" entries do, and only for those realms.
//
// [ParseChallenges], [ParseCredentials] and the String methods read and
// write the header values.
//
// # Security
//
// Digest authenticates a user to a server; it protects neither the
// message (beyond the body with qop=auth-int) nor its confidentiality: use
// TLS for that. HA1 values are password-equivalent for their realm.
//
// Nonces carry their issue time and 96 random bits and are authenticated
// with HMAC-SHA-256, under a key derived from the secret and the realm,
// over the algorithm of their challenge and optionally the client's
// address. A forged or altered nonce, one of another server or realm, or
// one taken from an MD5 challenge to a SHA-256
// response never authenticates: with a right response it is stale (the
// client retries with a fresh nonce), with a wrong one it is refused. The
// response is compared in constant time; an unknown user is checked
// against a random HA1, so it costs the same as a wrong password and gets
// the same error. A right response on an expired nonce, or on one whose
// secret was rotated out, is stale; a wrong one never is.
//
// Each nonce count is accepted once, in any order within a window of 64
// (parallel requests), and only after the response verified; a response
// without qop uses its nonce once. That memory is the [ReplayStore]: one
// per process by default, which refuses nonces issued before the process
// started, however shortly before (their clients get one stale
// challenge). The servers of a cluster must share one store, or a
// captured request can be replayed once against each other node. A
// shared store must refuse every use it cannot vouch for: nonces issued
// before it began remembering, and so after it lost its state (a
// restart without persistence), however shortly before; and a store that
// cannot answer makes Verify fail, so that the request is refused (500),
// never accepted. Package digest/digesttest checks that a store keeps
// the contract of ReplayStore.
//
// Clients answer only realms they have credentials for (the "SIP digest
// leak": a peer must not obtain a crackable response by challenging a
// BYE), and pick the strongest algorithm offered rather than the first.
//
// # Compatibility
//
// MD5 is the default algorithm because SIP phones and CUCM support nothing
// else; SHA-256 and SHA-512-256 (and the -sess forms, with the hex HA1 of
// RFC 7616) are available. The SHA-512-256 values printed in RFC 7616
// §3.9.2 are wrong (they are truncated SHA-512; errata 4897): this package
// computes SHA-512/256 and matches the errata. Header values are written
// with quoted strings and tokens as RFC 3261 §25 wants (algorithm, qop in
// credentials, nc and stale unquoted), and read leniently (quoted tokens,
// any case).
//
// Nonces are 50 characters of base64url and carry their issue time to the
// nanosecond.
package digest
