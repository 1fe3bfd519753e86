// Package srtpkeys handles SRTP keying: master keys per direction, the
// RFC 3711 key derivation, SDES a=crypto attributes (RFC 4568, RFC 6188,
// RFC 7714), DTLS-SRTP keys (RFC 5764), and ready pion/srtp contexts.
//
// # Where to start
//
//   - A call controller that keys both phones of a call: [GenerateCallKeys],
//     then [CallKeys.A] and [CallKeys.B] for each phone's send and receive
//     keys.
//   - A SIP endpoint doing SDES: [NewOffer] and [Offer.Accept] on the
//     offering side, [Answer] on the answering side; each yields a
//     [Session]. [ParseCrypto] and [Crypto.Attribute] read and write
//     single attributes.
//   - A WebRTC-style endpoint: [DTLSProfiles] for pion/dtls, then
//     [FromDTLS] after the handshake.
//   - Media: [Session.SendContext], [Session.ReceiveContext] or
//     [NewContext] give a *srtp.Context from github.com/pion/srtp/v3.
//   - Own transforms and checks: [NewDeriver] computes session keys for
//     any suite, packet index and key derivation rate.
//
// # Suites
//
// [Suite] covers AES_CM_128_HMAC_SHA1_80/32, AES_192_CM_HMAC_SHA1_80/32,
// AES_256_CM_HMAC_SHA1_80/32, AEAD_AES_128_GCM and AEAD_AES_256_GCM, with
// their SDES names, DTLS-SRTP profile numbers and lengths. pion runs all of
// them but AES-192.
//
// # pion/srtp traps
//
// This package exists partly to step around these; each was confirmed
// against pion/srtp v3.1.3.
//
//   - A bare srtp.CreateContext has no replay protection (only pion's
//     session layer turns it on). [NewContext] turns it on for SRTP and
//     SRTCP.
//   - pion cannot derive keys with a key derivation rate other than 0, and
//     offers no way to hand it session keys; such streams need another
//     SRTP implementation. [NewContext] refuses them with [ErrPionUnsupported]
//     and [Answer] skips offers that ask for them. [Deriver] computes their
//     keys.
//   - pion does not implement AES-192 ([ErrPionUnsupported] again).
//   - pion ignores the SDES key lifetime; it stops only when the packet
//     index runs out (2^48 SRTP, 2^31 SRTCP packets).
//   - A Context is for one direction and one goroutine; use one to send and
//     another to receive, never the same key for both (libsrtp refuses
//     that, and [GenerateCallKeys] never produces it).
//   - All MKIs on one Context have the same length, and a receiver takes
//     the MKI length from the send MKI.
//   - SetIndex sets the last SRTCP index used: the next packet carries the
//     index plus one.
//   - pion's profile names (SRTP_AES128_CM_HMAC_SHA1_80) are DTLS names,
//     not SDES names; use [Suite.String] and [ParseSuite] for SDP.
//
// # Security
//
// [MasterKey], [SessionKeys] and [Crypto] never print their keys through
// fmt, log/slog or encoding/json: String, Format, GoString, MarshalText and
// LogValue all redact. Key bytes leave the package only through methods
// named for it: [MasterKey.Key], [MasterKey.Salt], [MasterKey.KeySalt],
// [SessionKeys.Key], [SessionKeys.Salt], [SessionKeys.Auth],
// [Crypto.Value], [Crypto.Attribute] and [Offer.Attributes]. Parse errors
// never quote a field that could hold key material. Generated keys come
// from crypto/rand unless a reader is injected. SRTCP keys use the
// key-derivation layout of RFC 3711 Erratum 3712, as libsrtp, pion and
// ffmpeg do (see [Deriver]).
//
// No stream ever gets one key for both directions: [GenerateCallKeys]
// refuses a source that repeats itself, [Offer.Accept] refuses an answer
// that sends back a key (or salt) of the offer, and [FromDTLS] checks the
// exported halves differ.
//
// Answering is conservative by default: offers that switch off encryption
// or authentication, or ask for a key derivation rate, are skipped unless
// [AnswerOptions] allows them.
//
// # Compatibility
//
// SDES parsing accepts what real peers send: suite names in any case and
// the common misspellings (AES_CM_256_…, AES_CM_192_…), base64 without
// padding, decimal lifetimes, a lone MKI without a lifetime, Microsoft's
// "|2^31|1:1" and several keys with MKIs. It writes the minimal form
// ("1 AES_CM_128_HMAC_SHA1_80 inline:…") that every SDES peer parses,
// including those, like ffmpeg, that cannot split a lifetime off the key.
// It refuses KDR=0, which RFC 4568 excludes (n is 1 to 24) and which peers
// that send it may mean as "derive once" rather than as rate 2^0.
// Interoperability with libsrtp (through python3-pylibsrtp) and pion/dtls
// is tested.
package srtpkeys
