// Package tvs is a Cisco-compatible Trust Verification Service (TVS): the
// service a phone asks about a certificate that its trust lists do not
// hold, and the phone's side of the same protocol.
//
// A phone meets certificates its ITL does not list: the CallManager's
// SIP-TLS certificate, the signer of a configuration file, an HTTPS
// application server, or the signer of a new ITL after the cluster's keys
// changed. Instead of refusing them it connects to TVS on TCP port 2445
// over TLS, checks the TVS certificate against the TVS records of its
// ITL, and sends the certificate. The service looks it up by the SHA-256
// hash of its DER and answers "valid" with the roles it is trusted in
// (SAST, CCM, CCM+TFTP, TFTP, CAPF, APP-SERVER, TVS) and a TTL for which
// the phone may keep the verdict, or "invalid".
//
// # Where to start
//
//   - A service: a [Store] ([OpenBoltStore], or [NewMemoryStore] for
//     tests) filled with [LoadTrustList] (the certificates of a CTL or
//     ITL, in the roles their records give), [LoadCertificates] (PEM or
//     DER files, in roles of your choice) or [Put] (one [Entry]), and a
//     [Server] with the TVS certificate in its TLSConfig; then
//     [Server.Serve] on a listener. [Lookup] and [Entries] read the
//     store as the server does. "ucsec tvs serve" does all of this from
//     the command line.
//   - The servers of a cluster, sharing one store: a [Store] on a shared
//     database. A Store keeps opaque records, each under the SHA-256 hash
//     of a certificate (a map from 32-byte keys to byte strings), and
//     this package encodes, checks and decodes them, so that a backend
//     knows nothing of certificates and does not change when records
//     gain fields. Package tvs/tvstest checks that a backend keeps the
//     contract of Store.
//   - A phone, or a lab client: [Client], whose [Client.Verify] returns a
//     [Verdict]. A Client is a [ctl.Verifier]: set it as the TVS of a
//     [ctl.Phone], and the phone's decision on a new trust list whose
//     signer it does not hold follows rows P4 (TVS vouches for the signer
//     in the SAST role, the role of a trust-list signer, whatever role the
//     new list gives it: accept) and P5 (TVS does not, or does not answer:
//     reject and keep the old list) of its decision table. So an entry in
//     the SAST role can replace phones' trust lists: give that role only
//     to certificates that may.
//
// # Security
//
// A TVS answer is only as good as the TLS check of the TVS certificate:
// whoever holds a key the phone accepts as TVS can make it trust any
// certificate, a new ITL signer included. A [Client] pins the server's
// certificate to [Client.TVSCertificates], the certificates of the TVS
// records of the phone's ITL, as phones do: the server must present one
// of them itself, and a certificate that one of them issued is refused. No
// host name is checked. Guard the TVS private key as the ITL signing key.
// A Client keeps its pins and its cached verdicts: build a new one when
// the phone's ITL changes (a TVS record replaced after a key compromise).
//
// The service authenticates no client: it asks for no client certificate
// and does not check the device name, so anyone who reaches port 2445 can
// learn whether a certificate is trusted and in which roles. Certificates
// are public, but consider which network may reach the service. Concurrent
// connections are bounded in all by [Server.MaxConns] and from one host
// by [Server.MaxConnsPerHost], so that one host cannot take every place.
// A host is an IPv4 address, or an IPv6 /64 prefix, within which a host
// picks its addresses at will (RFC 4291 §2.5.1, RFC 8981). Connections
// beyond a bound are closed at once, and logged at most once a second.
// Neither bound applies to [Server.ServeConn], whose caller owns the
// accept loop. A connection that sends nothing is closed after
// [Server.FirstByteTimeout], and each exchange, the store lookup
// included, is bounded by [Server.Timeout].
//
// Verdicts outlive the store: a phone, and a [Client], keeps a valid
// verdict for its TTL (a day by default, at most 30 days), so removing a
// certificate from the store takes up to that long to take effect. Choose
// the TTL with that in mind. Invalid verdicts are never cached, so a
// certificate added to the store is trusted at the next question.
//
// Everything in the store is vouched for. [LoadTrustList] does not verify
// the list it loads: verify it, and decide that you trust its signer,
// before loading it ("ucsec tvs serve" loads the lists an operator names,
// as lists the operator built or checked, without verifying them). A
// store that fails, and a record that does not decode (corrupt, or
// written by a newer version of this package), give the phone no answer
// rather than "invalid", so that it treats the service as unreachable:
// only a certificate the store reports absent ([ErrNotFound]) is
// answered "invalid". Whoever can write to the store can make the
// service vouch for any certificate: guard a shared database as the TVS
// key.
//
// # Compatibility
//
// The wire protocol is that of the reference implementation
// (usecallmanagernz tvsd and tvsc), see the internal capfwire package: a
// 10-byte header (protocol 0x57, version 1, command, a reserved byte, a
// request id the client chooses and the server echoes, the payload
// length), then tag-length-value elements. A VERIFY_REQUEST (command 1)
// carries DEVICE_NAME, the byte 0x01 (meaning unknown, but always sent)
// then a name of the form CP-<model>-SEP<MAC> such as
// "CP-7962-SEP001122334455", and CERTIFICATE, the DER. The VERIFY_RESPONSE
// (command 2) carries STATUS 0 with ROLES (one byte per role, in
// ascending order) and TTL (seconds), or STATUS 1 alone.
//
// Where the reference server silently drops a request whose device name
// does not match CP-dddd-SEP followed by 12 uppercase hex digits, this one
// answers it as any other; the name is only logged. A request without a
// certificate is answered STATUS 1. What is not a VERIFY_REQUEST of
// version 1 gets no answer: the connection is closed. That includes
// QUERY_REQUEST and QUERY_RESPONSE (commands 3 and 4), which are defined
// but whose meaning is unknown.
//
// One request is answered per connection, as the reference does; the
// server closes the connection after its answer. Whether phones send
// several requests on one connection is unknown.
//
// The server refuses to start with a TVS certificate whose KeyUsage
// extension lacks digitalSignature, which every TLS handshake but one
// with RSA key exchange needs (RFC 5246 §7.4.2, RFC 8446 §4.4.2.2); one
// without a KeyUsage extension is not restricted (RFC 5280 §4.2.1.3).
// Under LegacyTLS an RSA certificate without keyEncipherment, which RSA
// key exchange calls for, is logged as a warning.
//
// Records carry a format version and room for fields that later
// versions add: a version of this package reads the records of older
// ones, skips fields it does not know that may be ignored, and refuses
// (with [ErrStoreVersion]) records it cannot read safely, so that the
// servers of a cluster can be upgraded one at a time. [BoltStore] files
// of schema version 1 are migrated to version 2 when opened; older
// versions of this package refuse version 2 files.
//
// The server speaks TLS 1.2 and later. The [Client] caches valid verdicts
// only, takes a valid answer without TTL as valid but not to be cached,
// cuts a TTL longer than 30 days to 30 days, and takes any STATUS other
// than 0 as "not trusted".
package tvs
