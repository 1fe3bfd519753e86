// Package tftpd is the file service Cisco IP phones fetch their trust
// lists and configurations from: CUCM's TFTP service, over TFTP (UDP port
// 69) and over HTTP (TCP port 6970 by convention), serving one directory
// of plain files read-only and making on the fly what phones of a secure
// cluster ask for: signed files, trust lists under per-device names, and
// encrypted configurations.
//
// # Where to start
//
// A [Server] with [Server.Root] (an [os.Root] on the directory served)
// serves its files as they are. Give it the TFTP signer
// ([Server.Certificate], [Server.Key]: CUCM's CallManager certificate of
// the TFTP node, listed in the phones' trust lists in the TFTP or
// CCM+TFTP role) and it signs; give it [Server.ITL] and [Server.CTL] and
// it serves the trust lists; give it [Server.Encrypt] and
// [Server.PhoneCertificates] ([CAPFCertificates] over a capf.Store, or
// [CertDirectory]) and it encrypts configurations. Then run
// [Server.ServeTFTP] on a UDP socket and [Server.ServeHTTPListener] on a
// TCP listener (or mount the Server, an [net/http.Handler], yourself).
// [Server.Open] returns what either would send for a name. "ucsec tftp
// serve" does all of this from the command line.
//
// What is served for a name, as CUCM does:
//
//   - NAME, a file of the root: the file as it is.
//   - NAME.sgn where only NAME exists: NAME signed with the TFTP key in the
//     .sgn form of package sgn, the hash chosen by [Server.Hash] (CUCM's
//     "TFTP File Signature Algorithm": SHA-1 by default, or SHA-512).
//     Signed files are cached under the SHA-256 of the source as read for
//     the request: a source that changed is signed again at its next
//     request, and one that did not is not signed again, so no stale
//     signature is ever served and no request pays for a signature that
//     was made before. Concurrent requests share one signature.
//   - ITLFile.tlv and CTLFile.tlv: [Server.ITL] and [Server.CTL] as given
//     (or the files of that name in the root), also under the per-device
//     names phones ask for first, ITLSEP<MAC>.tlv and CTLSEP<MAC>.tlv
//     (unless the root holds a file of that name).
//   - For a device whose configuration is encrypted ([Server.Encrypt]
//     says so and [Server.PhoneCertificates] knows its certificate, an LSC
//     or MIC): DEVICE.cnf.xml.enc.sgn, its DEVICE.cnf.xml encrypted to
//     that certificate (package cnfenc), and DEVICE.cnf.xml.sgn, the short
//     signed configuration that points to it; DEVICE.cnf.xml is then the
//     short configuration too, never the plain one. A new certificate
//     (a new LSC in the CAPF store) means a new encryption at the next
//     request. A device to encrypt whose certificate is not known yet
//     gets its configuration without digest credentials.
//   - With [Server.ExcludeDigest], configurations served unencrypted
//     (*.cnf.xml and the .sgn made from them) lose their SIP digest
//     credentials (CUCM's "Exclude Digest Credentials in Configuration
//     File").
//
// # Security
//
// The service only reads, through [os.Root]: a name that is absolute,
// holds "..", a NUL, a backslash or a control character is refused
// ([CleanName]), and a symbolic link that leads out of the root is not
// followed. Only regular files are served. TFTP write requests are
// refused, as are HTTP methods other than GET and HEAD.
//
// The service fails closed: a signature, an encryption, a stripping of
// credentials or a lookup of a phone certificate that fails makes the
// request fail ([ErrUnavailable]); it never falls back to the unsigned,
// unencrypted or complete file. The plain configuration of a device whose
// configuration is encrypted never leaves, by any name.
//
// TFTP has no authentication: anyone who reaches the service can read
// every file of the root, and the signed and encrypted products of them.
// Keep secrets out of the root (the digest credentials of a configuration
// are protected only by encryption or [Server.ExcludeDigest]), and keep
// the TFTP key as well as the key of the trust lists, since a phone
// accepts any configuration it signs.
//
// Transfers in progress are bounded in number ([Server.MaxTransfers]),
// per host ([Server.MaxPerHost]: an IPv4 address or an IPv6 /64), in the
// memory they hold ([Server.MaxMemory]) and in duration
// ([Server.TransferTimeout]); a client that stops acknowledging is given
// up after [Server.Retries] retransmissions. A TFTP transfer sends from a
// socket of its own connected to the client, so packets from anyone else
// never reach it, and the service does not answer stray transfer packets
// (so it cannot be used as a reflector). Each transfer sends one version
// of the file, read whole before the first block, whatever happens to it
// meanwhile. Each transfer is logged once to [Server.Logger] (client,
// file, bytes, result, whether signed, encrypted, stripped or cached);
// no key, file content or credential is logged, and client-sent names are
// quoted and cut.
//
// # Compatibility
//
// TFTP is RFC 1350 with the option extension of RFC 2347 and the options
// blksize (RFC 2348; capped by [Server.MaxBlockSize]), timeout and tsize
// (RFC 2349); values out of range are ignored, so the client gets the RFC
// 1350 defaults. Block numbers wrap past 65535, as tftp-hpa and most
// clients expect. "octet" and "netascii" modes are served (netascii
// changes the bytes, so phones ask in octet mode). The tests fetch with
// Debian's tftp-hpa client (which sends no options), curl (tftp:// with
// blksize, tsize and timeout; http:// with ETag) and the client of
// github.com/pin/tftp/v3. The TFTP server is this package's own rather
// than pin/tftp's: that one answers every refusal with error code 1 and
// the handler's error text, while phones and tftp-hpa expect the codes of
// RFC 1350 (not found, access violation) and a refusal must not tell why.
//
// Over HTTP, the answer is the same file with a strong ETag (RFC 9110
// §8.8.3), so If-None-Match gives 304 Not Modified; Range is served.
//
// The names and products follow Cisco's "Security Guide for Cisco Unified
// Communications Manager" (the TFTP service, "Encrypted Phone
// Configuration Files", "Exclude Digest Credentials in Configuration
// File"). Phones that do not support SHA-512 fail to verify files signed
// with it: change [Server.Hash] only when every phone does.
package tftpd
