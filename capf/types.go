package capf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"time"
)

// An Operation is what the administrator scheduled for a device, CUCM's
// "Certificate Operation".
type Operation uint8

// Operations. The zero value is "no pending operation".
const (
	OpNone    Operation = iota // No Pending Operation
	OpInstall                  // Install/Upgrade: the phone makes a key, the CAPF issues an LSC
	OpFetch                    // Troubleshoot: the phone sends its certificate
	OpDelete                   // Delete: the phone removes its LSC
)

var operationNames = [...]string{OpNone: "none", OpInstall: "install", OpFetch: "fetch", OpDelete: "delete"}

// String returns "none", "install", "fetch" or "delete".
func (o Operation) String() string {
	if int(o) < len(operationNames) {
		return operationNames[o]
	}
	return fmt.Sprintf("Operation(%d)", uint8(o))
}

// ParseOperation parses the names [Operation.String] returns. "upgrade" is
// accepted for install and "troubleshoot" for fetch, as CUCM names them.
func ParseOperation(s string) (Operation, error) {
	switch s {
	case "none":
		return OpNone, nil
	case "install", "upgrade":
		return OpInstall, nil
	case "fetch", "troubleshoot":
		return OpFetch, nil
	case "delete":
		return OpDelete, nil
	}
	return 0, fmt.Errorf("%w: unknown operation %q (want install, fetch, delete or none)", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (o Operation) MarshalText() ([]byte, error) {
	if int(o) >= len(operationNames) {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, o)
	}
	return []byte(o.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Operation) UnmarshalText(b []byte) error {
	v, err := ParseOperation(string(b))
	if err == nil {
		*o = v
	}
	return err
}

// An AuthMode is how a device proves who it is before an operation, CUCM's
// "Authentication Mode". The phone's own setting (capfAuthMode in its
// configuration file) must agree: the server does not tell the phone.
type AuthMode uint8

// Authentication modes. The zero value is CUCM's default, By Null String.
const (
	// AuthNull accepts the device without proof ("By Null String"). Use it
	// only on a trusted network or for a first enrolment in a lab.
	AuthNull AuthMode = iota
	// AuthString requires the 4–10 digit authentication string that the
	// user types on the phone ("By Authentication String").
	AuthString
	// AuthLSC requires an existing certificate, the phone's LSC if it has
	// one, else its MIC ("By Existing Certificate (Precedence to LSC)").
	AuthLSC
	// AuthMIC requires an existing certificate, the phone's MIC if it has
	// one, else its LSC ("By Existing Certificate (Precedence to MIC)").
	AuthMIC
)

var authNames = [...]string{AuthNull: "null", AuthString: "string", AuthLSC: "lsc", AuthMIC: "mic"}

// String returns "null", "string", "lsc" or "mic".
func (m AuthMode) String() string {
	if int(m) < len(authNames) {
		return authNames[m]
	}
	return fmt.Sprintf("AuthMode(%d)", uint8(m))
}

// ParseAuthMode parses the names [AuthMode.String] returns.
func ParseAuthMode(s string) (AuthMode, error) {
	for i, n := range authNames {
		if s == n {
			return AuthMode(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown authentication mode %q (want string, null, lsc or mic)", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (m AuthMode) MarshalText() ([]byte, error) {
	if int(m) >= len(authNames) {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, m)
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *AuthMode) UnmarshalText(b []byte) error {
	v, err := ParseAuthMode(string(b))
	if err == nil {
		*m = v
	}
	return err
}

// A KeySpec is the key pair an install operation asks the device to make.
type KeySpec uint8

// Key specifications. The zero value means the default, [RSA2048].
const (
	KeyDefault KeySpec = iota
	RSA1024
	RSA2048
	RSA3072
	RSA4096
	EC256 // ECDSA on P-256 (secp256r1)
	EC384 // ECDSA on P-384 (secp384r1)
	EC521 // ECDSA on P-521 (secp521r1)
)

var keyNames = [...]string{KeyDefault: "default", RSA1024: "rsa1024", RSA2048: "rsa2048", RSA3072: "rsa3072",
	RSA4096: "rsa4096", EC256: "ec256", EC384: "ec384", EC521: "ec521"}

// String returns "rsa2048", "ec256" and so on.
func (k KeySpec) String() string {
	if int(k) < len(keyNames) {
		return keyNames[k.resolve()]
	}
	return fmt.Sprintf("KeySpec(%d)", uint8(k))
}

// ParseKeySpec parses the names [KeySpec.String] returns.
func ParseKeySpec(s string) (KeySpec, error) {
	for i, n := range keyNames {
		if i > 0 && s == n {
			return KeySpec(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown key %q (want rsa1024, rsa2048, rsa3072, rsa4096, ec256, ec384 or ec521)", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (k KeySpec) MarshalText() ([]byte, error) {
	if int(k) >= len(keyNames) {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *KeySpec) UnmarshalText(b []byte) error {
	v, err := ParseKeySpec(string(b))
	if err == nil {
		*k = v
	}
	return err
}

func (k KeySpec) resolve() KeySpec {
	if k == KeyDefault {
		return RSA2048
	}
	return k
}

// RSABits returns the RSA modulus size, or 0 for an EC key.
func (k KeySpec) RSABits() int {
	switch k.resolve() {
	case RSA1024:
		return 1024
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

// Curve returns the elliptic curve, or nil for an RSA key.
func (k KeySpec) Curve() elliptic.Curve {
	switch k.resolve() {
	case EC256:
		return elliptic.P256()
	case EC384:
		return elliptic.P384()
	case EC521:
		return elliptic.P521()
	}
	return nil
}

// Valid reports whether k is one of the defined specifications.
func (k KeySpec) Valid() bool { return int(k) < len(keyNames) }

// Matches reports whether pub is a key of this specification.
func (k KeySpec) Matches(pub crypto.PublicKey) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return k.RSABits() != 0 && p.N.BitLen() == k.RSABits()
	case *ecdsa.PublicKey:
		return k.Curve() != nil && p.Curve == k.Curve()
	}
	return false
}

// SpecOf returns the KeySpec of a public key, or false if the key is of no
// specification.
func SpecOf(pub crypto.PublicKey) (KeySpec, bool) {
	for k := RSA1024; k <= EC521; k++ {
		if k.Matches(pub) {
			return k, true
		}
	}
	return 0, false
}

// A Schedule is an operation as an administrator schedules it
// ([ScheduleOperation]) and as a [Device] view shows it pending.
type Schedule struct {
	Operation Operation
	Auth      AuthMode
	// AuthString is the string the user must type, for [AuthString]. It is
	// a secret: ScheduleOperation stores it, but the Schedule of a Device
	// view leaves it empty (Auth says whether there is one), and
	// [Schedule.String], [Schedule.LogValue] and the CLI never print it.
	AuthString string
	Key        KeySpec
	// Deadline is CUCM's "Operation Completes By": after it the operation
	// fails with [FailDeadline]. Zero means no deadline.
	Deadline time.Time
	// Scheduled is when the operation was scheduled; ScheduleOperation
	// sets it if zero.
	Scheduled time.Time
	// Failures counts failed authentication attempts for this operation.
	// The server keeps it; ScheduleOperation ignores it.
	Failures int
}

// String describes the schedule without its authentication string.
func (s Schedule) String() string {
	str := fmt.Sprintf("%v, auth %v", s.Operation, s.Auth)
	if s.Auth == AuthString || s.AuthString != "" {
		str += " (string set)"
	}
	if s.Operation == OpInstall {
		str += ", key " + s.Key.String()
	}
	if !s.Deadline.IsZero() {
		str += ", by " + s.Deadline.UTC().Format(time.RFC3339)
	}
	return str
}

// LogValue implements slog.LogValuer, leaving the authentication string out.
func (s Schedule) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Failure says why an operation failed. The zero value means it succeeded.
type Failure uint8

// Failures, with the CUCM status text each maps to.
const (
	FailNone            Failure = iota
	FailAuthString              // Invalid Authentication String
	FailAuthCertificate         // Invalid Certificate (signature, chain or name)
	FailLocked                  // Authentication Locked (too many bad strings)
	FailDeadline                // User Initiated Request Late
	FailKeyGeneration           // Key Generation Failed (no or wrong public key)
	FailIssue                   // Certificate Issuing Failed (the CA refused or failed)
	FailStore                   // Phone Failed to Store Certificate
	FailNoCertificate           // No Certificate on the phone (fetch or delete)
	FailProtocol                // Protocol Error (unexpected or malformed frame, timeout)
	FailCancelled               // Operation Cancelled
)

var failureText = [...]string{
	FailNone:            "",
	FailAuthString:      "Invalid Authentication String",
	FailAuthCertificate: "Invalid Certificate",
	FailLocked:          "Authentication Locked",
	FailDeadline:        "User Initiated Request Late",
	FailKeyGeneration:   "Key Generation Failed",
	FailIssue:           "Certificate Issuing Failed",
	FailStore:           "Phone Failed to Store Certificate",
	FailNoCertificate:   "No Certificate on Phone",
	FailProtocol:        "Protocol Error",
	FailCancelled:       "Operation Cancelled",
}

// String returns the CUCM-style reason text.
func (f Failure) String() string {
	if int(f) < len(failureText) {
		return failureText[f]
	}
	return fmt.Sprintf("Failure(%d)", uint8(f))
}

// A Result is the outcome of the device's last operation.
type Result struct {
	Operation Operation
	Failure   Failure
	Time      time.Time
	// Serial is the serial number of the certificate installed or fetched,
	// in lowercase hex.
	Serial string
}

// Status returns the text CUCM shows as "Certificate Operation Status",
// for example "Upgrade Success" or "Upgrade Failed: Invalid Authentication
// String".
func (r *Result) Status() string {
	verb := "Upgrade"
	switch r.Operation {
	case OpFetch:
		verb = "Troubleshoot"
	case OpDelete:
		verb = "Delete"
	case OpNone:
		verb = "Operation"
	}
	if r.Failure == FailNone {
		return verb + " Success"
	}
	return verb + " Failed: " + r.Failure.String()
}

// A Device is a view of what the store keeps about one device (a phone,
// SEP…, or an application user or CTI instance), as [LookupDevice] and
// [ListDevices] return it. It is a copy: changing it changes nothing in
// the store. It leaves out the authentication string and the server's
// own bookkeeping (which session carries an operation out).
type Device struct {
	Name string
	// Pending is the scheduled operation, or nil.
	Pending *Schedule
	// Last is the outcome of the last operation, or nil.
	Last *Result
	// Certificate is the DER of the LSC last installed on the device, or
	// nil (none, or deleted).
	Certificate []byte
	// Fetched is the DER of the certificate the device last sent in a
	// fetch (Troubleshoot), or nil.
	Fetched []byte
	// LastSeen is when the device last connected.
	LastSeen time.Time
	// VoidBefore is the time of the last successful delete: while the
	// device has no recorded LSC, an LSC whose notBefore is at or before
	// it does not authenticate.
	VoidBefore time.Time
}

// Status returns the text CUCM shows for the device: "Operation Pending"
// while an operation is scheduled, else the status of the last result, or
// "None".
func (d *Device) Status() string {
	switch {
	case d.Pending != nil && d.Pending.Operation != OpNone:
		return "Operation Pending"
	case d.Last != nil:
		return d.Last.Status()
	}
	return "None"
}

// An IssuedCertificate is one certificate the server issued, recorded
// before it is sent to the device, so that no issued certificate is ever
// unaccounted for; [ListIssued] returns them.
type IssuedCertificate struct {
	Serial string // lowercase hex, as SerialHex gives it
	Device string
	Issued time.Time
	DER    []byte
}
