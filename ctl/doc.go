// Package ctl parses, verifies and creates Cisco Certificate Trust List
// files (CTLFile.tlv), which tell IP phones which certificates to trust for
// TFTP, CallManager, CAPF and TVS connections, and makes the trust
// decisions a phone makes when a new list or a signed file arrives.
//
// The ITL (ITLFile.tlv) has the same format with another policy: package
// itl uses this package's types.
//
// Read a list with [Parse] and check it with [File.Verify]; make one with
// [NewRecord] and [Create], which take any [crypto.Signer] (a software key,
// a PKCS#11 token, a KMS key). [File.VerifySignedFile] answers whether a
// list vouches for a signed configuration file, and returns the record
// that does (decrypt an encrypted configuration with its certificate), and
// [Phone] applies the phone's decision table (first list, known signer,
// TVS, rollback).
//
// A [File] is a signed-file header (sgn.Header, the one every signed
// Cisco file has) followed by records. The header's errors are package
// sgn's: a malformed list wraps sgn.ErrMalformed and a signature that
// fails is sgn.ErrVerification, as for any signed file.
//
// # Security
//
// [Parse] verifies nothing. [File.Verify] checks the policy and that the
// list is signed by its own SAST record, which proves only that the file is
// intact: whether that signer is trusted is what [Phone.AcceptList]
// decides, from the lists a phone already holds or from TVS. Signatures are
// RSA PKCS#1 v1.5 over the whole file without the signature element, with
// SHA-1 (CUCM's default, accepted), SHA-256 or SHA-512. Record
// certificates may be RSA or EC; the file signer is always RSA.
//
// # Compatibility
//
// Create writes what CUCM writes, as far as public evidence shows: header
// version 1.2, signer info in the order name, serial, issuer, DN strings
// joined with ';', a file name and a timestamp, and record elements in
// ascending tag order with a DNS name in every record. Parse also reads
// the certutils layout (signer info name, issuer, serial; records 1, 3, 5,
// 6, 4, 7, 8, 9; names joined with ','; element 0x1C signer version) and
// keeps elements it does not know, so a parsed list re-encodes to the same
// bytes.
//
// Not confirmed from Cisco-made bytes (no public sample): the exact bytes
// CUCM writes (only "show ctl" listings were available); the meaning of
// record elements 0x0B (certificate hash) and 0x0C (its hash algorithm),
// which are kept but never written unless set; where CUCM would put the
// signer version 0x1C, which Cisco listings never show; whether phones
// accept hash code 2 (SHA-256); and whether phones match the signer by
// serial number only or also by issuer (this package requires both). The
// IP address element is read as 4 (or 16) bytes in network order.
package ctl
