// Package capf is a Cisco-compatible Certificate Authority Proxy Function:
// the service that issues phones their Locally Significant Certificates
// (LSCs), and the phone's side of the same protocol.
//
// An administrator schedules an operation for a device: install (or
// upgrade) an LSC, fetch the device's certificate ("Troubleshoot"), or
// delete its LSC, with an authentication mode and optionally a deadline.
// The device connects to TCP port 3804 over TLS, proves who it is, and the
// server carries the operation out: for an install, the device generates a
// key pair and sends the public key, and the server returns a certificate
// signed by its CA.
//
// # Where to start
//
//   - A CAPF server: a [Store] ([OpenBoltStore]), an [Issuer] ([LocalCA],
//     or [ExternalCA] for a CA reached by PKCS #10), and a [Server] with the
//     CAPF certificate in its TLSConfig; then [Server.Serve].
//   - Scheduling: [ScheduleOperation] and [CancelOperation] on the same
//     store; [ListDevices] and [LookupDevice] report operations and
//     results, [Device.Status] gives the status text CUCM shows, and
//     [ListIssued] lists the certificates issued.
//   - A phone, or a lab client: [Client].
//
// # Authentication modes
//
// [AuthString] compares the PASSWORD a device sends with the scheduled
// 4–10 digit string, in constant time and inside a store transaction, so
// that concurrent guesses are counted exactly; after
// [Server.MaxAuthFailures] wrong strings the operation fails with
// [FailLocked] and must be scheduled again. [AuthNull] accepts any device
// that names itself. [AuthLSC] and [AuthMIC] require the device to sign
// its name and certificate with the certificate's key over SHA-512, and
// over SHA-1 too if it sends that signature (RSA signatures over the bare
// digest, as phones make them, or the standard form; ECDSA in ASN.1), and
// the certificate to chain to the LSC roots (the local CA) or the
// manufacturing roots, within its validity unless [Server.AllowExpiredMIC]
// is set, and to name the device. An LSC this server issued must be the
// one the device last acknowledged: a replaced, deleted or never stored
// LSC does not authenticate. Which of LSC and MIC a device presents is
// the device's choice (its capfAuthMode); both modes accept either.
//
// # Security
//
// The protocol has weaknesses this package cannot fix and callers should
// know:
//
//   - The device sends a bare public key: there is no proof that it holds
//     the private key. A device that authenticates may obtain a certificate
//     for any key. Authentication is what protects issuance.
//   - The certificate-mode signatures cover the device name and the
//     certificate, not the session: anyone who once saw them inside TLS can
//     replay them. Only the optional SUDI data is bound to the session.
//   - [AuthNull] authenticates nothing.
//   - The CAPF certificate signs every LSC, and LSCs are TLS server
//     certificates too, so a phone must trust the CAPF certificate of its
//     trust list's CAPF record itself, never anything that chains to it:
//     any enrolled phone could otherwise run a CAPF, collect other
//     phones' authentication strings and delete their certificates. A
//     [Client] pins [Client.CAPFCertificates] so, and stores only an LSC
//     that the pinned certificate (or [Client.LSCIssuers]) signed.
//   - A SUDI proves something only if it chains to Cisco's SUDI roots:
//     without [Server.SUDIRoots] only its signatures are checked, so a
//     self-made SUDI passes. Set SUDIRoots, and [Server.RequireSUDI] to
//     demand one.
//
// The server goes further than the reference implementation: the
// authenticating certificate must name the device (the reference accepts
// any valid MIC for any device), chains are built and checked in full,
// the authentication string is compared in constant time with a lockout,
// operations have deadlines, and a result is committed only after the
// device acknowledges the certificate. Every certificate is recorded in
// the store's issued log before it leaves the server, and one operation
// issues at most one certificate, also with several servers on one store
// (see Stores and clusters below).
//
// Nothing is written to the store for a device that has not
// authenticated, with two exceptions: the count of wrong authentication
// strings, and the end of an operation whose deadline has passed. Anyone
// who knows a device name can therefore use up a string-mode operation
// with wrong strings (it then fails with [FailLocked] and must be
// scheduled again): that is the price of a lockout.
//
// Bad input from the network ends the session with END_SESSION reason 7
// and a typed error; frames are bounded at 65,543 bytes and every read has
// a deadline. Concurrent sessions are bounded in all by [Server.MaxConns]
// and from one host by [Server.MaxConnsPerHost], so that one host cannot
// take every place. A host is an IPv4 address, or an IPv6 /64 prefix,
// within which a host picks its addresses at will (RFC 4291 §2.5.1, RFC
// 8981). Connections beyond a bound are closed at once, and logged at most
// once a second. A connection that sends nothing is closed after
// [Server.FirstByteTimeout], well before the [Server.HandshakeTimeout]
// that bounds the whole handshake. [Server.ServeConn] leaves both bounds
// to its caller.
//
// # Stores and clusters
//
// A [Store] keeps one record per device and the log of issued
// certificates, as opaque bytes: this package encodes and versions the
// records (each starts with a version byte; a record of a newer version
// than this package reads is refused with [ErrStoreVersion], never read
// in part), so a backend, such as a database in its own module, knows
// nothing of their layout. [OpenBoltStore] keeps them in a file for one
// server, [NewMemoryStore] in memory; package
// [github.com/ucsec/ucsec/capf/capftest] tests any store against the
// contract.
//
// Several Servers may share a store that they all reach (a database).
// The store serializes the updates of each device's record and writes a
// certificate's log entry together with its device's record, with a
// unique serial number; on these guarantees, stated in full on [Store],
// the servers keep their invariants:
//
//   - Every certificate is in the issued log before it is sent: a store
//     that fails makes the session fail, and no certificate leaves.
//   - One operation issues at most one certificate. A session claims the
//     operation in the store before it asks for a certificate; the claim
//     names its Server (a random identity each) and session, and lapses
//     after a lease as long as the session can last. A session that finds
//     a live claim of another goes no further, and a session records its
//     certificate only if the claim on the operation is still its own
//     and the operation has issued none, in the transaction that writes
//     the log entry; only a recorded certificate is sent. An
//     operation whose certificate went out in a session that could not
//     record the device's answer (its server stopped) ends with
//     [FailStore] at the next session after the lease.
//   - A result is recorded only after the device's acknowledgement.
//
// Claims lapse by the clock of the server that made them, compared with
// the others' clocks: servers sharing a store need clocks that agree to
// well within a minute.
//
// # Compatibility
//
// The wire protocol follows the frames observed between the reference
// peers (usecallmanagernz capfd/capfc) and real CUCM/Jabber captures; see
// the internal capfwire package. The server announces VERSION 3 and
// AUTH_TYPE 0, accepts versions 1–3 (Jabber sends 2), a missing PASSWORD,
// and any number (up to 16) of REQUEST_IN_PROGRESS frames; it sends only
// element tags the reference client knows. Unknown element tags from a
// device are ignored; a repeated tag is a protocol error.
//
// Ends of sessions: reason 1 after an install or delete, 0 after a fetch
// or when nothing is scheduled, 9 for an unknown device, 7 for any failure.
// The reference server sends 0 after a failed fetch and 1 after a failed
// store; this one sends 7.
//
// TLS is 1.2 or later unless [Server.LegacyTLS] enables TLS 1.0 with the
// CBC and RSA key exchange suites that 7900-series phones need.
//
// The server refuses to start with a CAPF certificate whose KeyUsage
// extension lacks digitalSignature: every TLS handshake but one with RSA
// key exchange signs with the key (RFC 5246 §7.4.2, RFC 8446 §4.4.2.2),
// and Cisco requires digitalSignature and keyCertSign from CUCM 14SU2 on.
// A certificate without a KeyUsage extension is not restricted (RFC 5280
// §4.2.1.3) and is accepted. keyEncipherment matters only for RSA key
// exchange, offered under LegacyTLS with an RSA key: its absence is
// logged as a warning rather than refused, since whether 7900-series
// phones check it is unknown. Certificates chosen by GetCertificate or
// GetConfigForClient are not checked.
//
// The meaning of commands 5–8, 16 and 18–23 is unknown (no public source
// describes them); they are protocol errors here. Real phones may encode
// ECDSA signatures differently from the ASN.1 form assumed.
package capf
