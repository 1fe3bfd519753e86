// Package cnfenc makes and reads encrypted Cisco phone configuration files
// (SEP<MAC>.cnf.xml.enc.sgn), builds the short signed configuration that
// points a phone to one, and strips digest credentials from a
// configuration.
//
// CUCM's "TFTP Encrypted Config" replaces a phone's configuration with two
// files: the full configuration, encrypted to the phone and signed by the
// TFTP server ([Encrypt]), and a short signed configuration
// (SEP<MAC>.cnf.xml.sgn, see [ShortConfig] and package sgn) that tells the
// phone to fetch it and names, by hash, the certificate it was encrypted to.
// A phone checks that hash against its own certificate
// ([ShortConfigInfo.CertHashMatches]), finds the signer of the encrypted
// file in its trust list (ctl.File.VerifySignedFile or
// ctl.Phone.CheckSignedFile return the record that vouches for it), and
// decrypts the file with its private key ([File.Decrypt], which verifies
// the signature with that record's certificate first). [Decrypt] parses
// and decrypts in one call.
//
// # Format
//
// An .enc.sgn file is a signed file (see package sgn) with header version
// 2.0 whose payload is the configuration encrypted with AES-128-CBC under a
// fresh random key and IV. The plaintext is padded with 1 to 16 bytes of
// 0x0D (carriage return, XML white space), not PKCS#7, and the pad count is
// stored. The AES key is encrypted to the phone certificate's RSA key with
// RSAES-PKCS1-v1_5. After the timestamp the header holds:
//
//	10 ENCRYPTION_INFO
//	   11 IV_INFO:  12 (0), 13 IV (16 bytes), 14 pad count (uint16)
//	   15 KEY_INFO: 16 (0), 17 key size in bits, 18 key algorithm (1 = AES-128), 19 wrapped key
//	1A hash code of the plaintext digest (1 SHA-1, 2 SHA-256, 3 SHA-512)
//	1B digest of the plaintext, before padding
//
// The signature covers all of it and the ciphertext.
//
// # Security
//
// [Parse] verifies nothing. [File.Decrypt] takes the signer's certificate
// (one the caller trusts to sign files: the certificate of the trust-list
// record that vouches for the file) and verifies the signature before it
// decrypts anything, as age.Decrypt authenticates what it decrypts; there
// is no state in which a File is "verified". After decrypting it compares
// the plaintext with the signed digest, so it never returns plaintext that
// the signer did not encrypt. Verification and decryption work on what
// Parse took from its own copy of the file, so what is decrypted is what
// was verified, whatever happens to the File's fields or to the input.
//
// After the signature check, a wrong key, a key unwrap that fails and a
// digest that does not match all give an error wrapping [ErrDecryption].
// With an *rsa.PrivateKey (or any crypto.Decrypter that honours
// rsa.PKCS1v15DecryptOptions.SessionKeyLen) the unwrap runs in constant
// time and bad padding yields a random key, so the answers do not tell bad
// padding from a wrong key; the one detail added is crypto/rsa's refusal
// of a wrapped key numerically larger than the modulus, which anyone can
// see from the public key. A token that reports padding errors itself is
// reported as such (its error is wrapped, for diagnosis); since only files
// with a trusted signature reach the unwrap, an attacker cannot use it as a
// padding oracle without the TFTP key.
//
// RSAES-PKCS1-v1_5 is the format's key transport; it is weaker than OAEP
// and is used here only because phones require it. The digest is not a MAC:
// integrity comes from the TFTP signature. Keys are crypto.Signer and
// crypto.Decrypter values, so a TFTP key or a phone key in a token works.
// The AES key and IV come from the rand argument of [Encrypt] (nil means
// crypto/rand); the RSA encryption of the key draws its own randomness, as
// crypto/rsa does since Go 1.26.
//
// # Compatibility
//
// Confirmed against the independent certutils implementation (enccnf) and
// its generated vectors; no CUCM-made .enc.sgn is public, so these points
// are inferred:
//
//   - Element 0x17 holds the RSA modulus size in bits, as current certutils
//     writes (an earlier version wrote 128). Parse accepts any value.
//   - Elements 0x12 and 0x16 are written as 0 and 0x18 as 1 (AES-128);
//     their meaning is unknown. Parse accepts any 0x12 and 0x16; decryption
//     needs 0x18 = 1.
//   - Header version 2.0, as certutils writes; Parse accepts any version.
//   - Parse requires the plaintext digest (0x1A, 0x1B), which certutils
//     always writes, so that a decryption can always be checked.
//   - The manual-key variant ([EncryptManualKey], [File.DecryptManualKey]:
//     AES-128-CBC with a 128-bit key typed into the phone) is inferred, not
//     confirmed against a CUCM-made file: it is the same envelope with key
//     size 128 and no wrapped key (0x19). The RC4 manual-key variant of
//     older phones is not supported.
//   - EC phone certificates: no CUCM variant is known, so [Encrypt] returns
//     [ErrUnsupportedKey] for them.
//   - [ExcludeDigestCredentials] removes the authName and authPassword
//     elements (in any XML namespace), the SIP digest user and password of
//     each line. Which elements CUCM leaves out is documented only in words
//     ("digest credentials"); the element names are those of CUCM phone
//     configurations.
//   - [ShortConfig] copies the elements it takes from the full
//     configuration byte for byte; certutils re-indents them, so its output
//     can differ from ours in white space only.
package cnfenc
