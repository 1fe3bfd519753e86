// Command ucsec signs, verifies, encrypts and inspects the files that Cisco
// IP phones and Unified Communications Manager exchange, makes the
// certificates to test them with, computes and checks SIP Digest
// responses, derives and negotiates SRTP keys, shows the security
// status of calls, runs a CAPF that issues phones their certificates, and
// runs and asks a TVS that vouches for the certificates phones do not hold.
//
// Usage:
//
//	ucsec <group> <command> [flags] [args]
//	ucsec <command> [flags] [args]
//
// The groups follow the library's packages:
//
//	sgn    sign, verify, parse and strip signed files (.sgn)
//	       commands: sign, verify, parse, strip
//	tlv    parse, build and verify trust lists (CTLFile.tlv,
//	       ITLFile.tlv), and tell which phones will accept new ones
//	       commands: parse, build, verify, plan
//	cnf    encrypt, decrypt and parse phone configurations (.enc.sgn);
//	       strip digest credentials
//	       commands: encrypt, decrypt, parse, exclude-digest
//	cert   make lab certificates and compute the certificate hashes
//	       phones use
//	       commands: new, hash
//	digest answer SIP Digest challenges and check captured responses
//	       commands: respond, verify
//	srtp   derive SRTP session keys; parse, offer and answer SDES
//	       a=crypto attributes
//	       commands: derive, sdes parse, sdes offer, sdes answer
//	capf   run a CAPF server, schedule its operations, list them, and
//	       enrol as a phone would; the store is a directory or a
//	       PostgreSQL database that several servers share
//	       commands: serve, schedule, list, cancel, enroll
//	tvs    run a Trust Verification Service vouching for the
//	       certificates of trust lists and files, manage its entries,
//	       and ask one as a phone would
//	       commands: serve, list, add, remove, query
//	tftp   serve phones their files over TFTP and HTTP, signing .sgn
//	       files on the fly and encrypting each known phone's
//	       configuration, as CUCM's TFTP service does
//	       commands: serve
//
// and one command stands alone:
//
//	status show the security level of a call or conference, described
//	       in JSON, and the icon each phone shows (package secstatus)
//
// Run "ucsec -h", "ucsec <group> -h", "ucsec <group> <command> -h" or
// "ucsec <command> -h" for help; "ucsec help <group> <command>" is the
// same.
//
// # Conventions
//
// Flags may come before or after the arguments, with one or two dashes;
// "--" ends the flags. --cert and --key name a certificate and its private
// key, in PEM or DER (PKCS#8, PKCS#1 or SEC1 keys, unencrypted); one PEM
// file holding both may be given to both flags. -o names the output file
// ("-" is standard output) and defaults to the conventional name; the
// output is never written over an input file, and is written to a
// temporary file first and then renamed into place. An input argument of
// "-" reads standard input. --json prints machine-readable output: one
// JSON object per line, with byte strings in lowercase hex and times in
// RFC 3339, UTC.
//
// # Keys in a token
//
// Every flag that names a private key (--key, --ca-key, --phone-key) also
// takes a PKCS #11 URI (RFC 7512) naming a key in a security token or HSM,
// such as
//
//	pkcs11:token=ucsec;object=sast?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/ucsec/pin
//
// The PIN comes from the file pin-source names or from the environment
// variable UCSEC_PKCS11_PIN, never from the command line (a URI's
// pin-value is refused); the module from module-path, module-name or the
// environment variable UCSEC_PKCS11_MODULE. Without --cert, the
// certificate is the token's certificate object with the key's id. The
// key stays open, logged in, until the command ends: the servers (capf
// serve, tvs serve) sign with it from several sessions at once.
//
// PKCS #11 modules are C libraries, so token support needs cgo and is
// built only with the build tag pkcs11:
//
//	CGO_ENABLED=1 go build -tags pkcs11 ./cmd/ucsec
//
// The default build stays pure Go, and refuses a pkcs11: key with an error
// saying how to build a ucsec that takes it. See package
// github.com/ucsec/ucsec/pkcs11.
//
// # Exit status
//
//	0  success
//	1  a signature did not verify, or was not made by the given certificate;
//	   a trust list breaks its policy, or does not vouch for a signed file;
//	   phones would reject a file about to be published (tlv plan);
//	   an encrypted configuration does not decrypt with the given key;
//	   a Digest response does not match the given password or HA1;
//	   an SDES offer has no attribute this end accepts;
//	   a CAPF server refused the enrolment;
//	   a TVS does not trust the certificate
//	2  usage error, or an input that could not be read or is malformed
//
// Errors are printed on standard error as one line starting with "ucsec: ".
package main
