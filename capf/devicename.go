package capf

import (
	"fmt"
	"net/url"
)

// maxDeviceName is the longest device name a store accepts, in bytes. The
// name becomes the subject common name of the LSC, and RFC 5280 bounds a
// common name at 64 characters (ub-common-name). Phone names are 15
// (SEP + 12 hex digits); Jabber (CSF…), application user and CTI names are
// longer but within this bound.
const maxDeviceName = 64

// maxSerial is the longest serial number a store accepts, in hex digits.
// RFC 5280 allows 20 octets (40 digits); the bound is generous so that a
// certificate from a nonconforming external CA can still be recorded.
const maxSerial = 128

// checkDeviceName reports whether name can be a device name, the one
// check for the stores, the server, scheduling and the issuer:
//
//   - 1 to [maxDeviceName] bytes;
//   - printable ASCII without spaces (so also without NUL, which the wire
//     protocol uses as a terminator and the bolt store as a key separator;
//     the SAN URI of the LSC is an IA5String);
//   - read back as itself by Go's URL parser, with no host part, so that
//     crypto/x509 parses the LSC's SAN URI and sees this name in it.
//
// Real names (SEP001122334455, CSFJSMITH, BOT…, TCT…, CIPC…,
// CP-7962-SEP001122334455) all pass. The error wraps [ErrInvalid].
func checkDeviceName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty device name", ErrInvalid)
	}
	if len(name) > maxDeviceName {
		return fmt.Errorf("%w: device name of %d bytes (at most %d)", ErrInvalid, len(name), maxDeviceName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: device name %q has byte 0x%02x at %d (want printable ASCII without spaces)", ErrInvalid, name, c, i)
		}
	}
	if u, err := url.Parse(name); err != nil || u.Host != "" || u.String() != name {
		return fmt.Errorf("%w: device name %q would not read back from the certificate's URI name", ErrInvalid, name)
	}
	return nil
}

// validSerial reports whether s is a serial number as the issued log
// keeps it: 1 to [maxSerial] lowercase hex digits, as [SerialHex] gives
// for a positive serial.
func validSerial(s string) bool {
	if s == "" || len(s) > maxSerial {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
