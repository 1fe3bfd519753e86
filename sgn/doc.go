// Package sgn signs, parses, verifies and strips Cisco signed files: the
// .sgn files a TFTP server hands to IP phones (SEP<MAC>.cnf.xml.sgn, ring
// lists, dial plans, locale files), and the same envelope on firmware .sbn
// files and signed .loads files.
//
// A signed file is a header (version, signer, hash and signature, file name,
// optional timestamp) followed by the original file, byte for byte. Start
// with [Sign] to make one, [Parse] and [Header.CheckSignatureFrom] to read
// and verify one, and [Strip] to get the original file back.
//
// The header is the same in every signed Cisco file: trust lists (package
// ctl) and encrypted configurations (package cnfenc) are signed files too.
// [Header] is its one type, which their File types embed, and
// [ErrMalformed], [ErrVerification], [ErrWrongSigner] and
// [ErrUnsupportedAlgorithm] are its errors, which they return; errors.Is
// finds them whatever kind of file failed.
//
// # Security
//
// [Parse] and [Strip] verify nothing: they only check the layout, and
// reject malformed input with an error wrapping [ErrMalformed]. Use
// [Header.CheckSignatureFrom] with the certificate you trust as the file
// signer (a TFTP or CCM+TFTP certificate from the phone's trust list): it
// checks that the header names that certificate (serial number, subject,
// issuer) and that its key made the signature. The signature is RSA PKCS#1
// v1.5 over the whole file without the signature element, with SHA-1,
// SHA-256 or SHA-512 as the header says. SHA-1 is what CUCM writes by
// default and is accepted; callers that want more can check [Header.Hash].
//
// Keys are [crypto.Signer] values, so a key in a PKCS#11 token or a KMS
// works. Only RSA keys of 512, 1024, 2048 or 4096 bits can sign: the header
// has no code for other sizes, and phones support at most 2048 bits.
//
// # Compatibility
//
// Sign writes the element order of Cisco's own files (signer name, serial,
// issuer), names joined with ';' as CUCM writes them, header version 1.0 by
// default (like certutils; Cisco firmware uses 1.1), and a timestamp unless
// told not to. Parse accepts any header version, the signer-info children in
// any order, names joined with ';' or ',', 0 to 3 (or more) padding bytes,
// headers with or without a file name, timestamp or signer version, and
// keeps elements it does not know; a parsed file keeps its exact layout.
package sgn
