package capf

import (
	"fmt"
	"net/url"
	"strings"
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

// checkDevice checks a record that an Update function returned for the
// device name: the name unchanged, and every enumerated value one the
// package defines (so that the record can be encoded and read back).
func checkDevice(d *Device, name string) error {
	if d.Name != name {
		return fmt.Errorf("%w: update of device %q changed its name to %q", ErrInvalid, name, d.Name)
	}
	if p := d.Pending; p != nil {
		if int(p.Operation) >= len(operationNames) || int(p.Auth) >= len(authNames) || !p.Key.Valid() {
			return fmt.Errorf("%w: device %q: pending operation %v, auth %v, key %v", ErrInvalid, name, p.Operation, p.Auth, p.Key)
		}
	}
	if r := d.Last; r != nil {
		if int(r.Operation) >= len(operationNames) || int(r.Failure) >= len(failureText) {
			return fmt.Errorf("%w: device %q: last operation %v, failure %v", ErrInvalid, name, r.Operation, r.Failure)
		}
	}
	return nil
}

// checkIssued checks a certificate record for RecordIssued and returns the
// key under which its serial number is unique: the serial without leading
// zeros ("0" for zero), so that "0abc" and "abc" are the same serial.
func checkIssued(c *IssuedCertificate) (key string, err error) {
	if c == nil {
		return "", fmt.Errorf("%w: nil issued certificate", ErrInvalid)
	}
	if err := checkDeviceName(c.Device); err != nil {
		return "", err
	}
	s := c.Serial
	if s == "" || len(s) > maxSerial {
		return "", fmt.Errorf("%w: serial number of %d hex digits (want 1 to %d)", ErrInvalid, len(s), maxSerial)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("%w: serial number %q is not lowercase hex", ErrInvalid, s)
		}
	}
	if key = strings.TrimLeft(s, "0"); key == "" {
		key = "0"
	}
	return key, nil
}
