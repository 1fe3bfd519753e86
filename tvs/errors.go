package tvs

import "errors"

// Sentinel errors. Errors from this package wrap one of them (or a context
// error) and start with "tvs:".
var (
	// ErrInvalid reports an invalid argument: an entry without a
	// certificate or roles, a certificate longer than
	// MaxCertificateSize, an unknown or repeated role, a TTL out of
	// range, input that holds no certificate, a bad option.
	ErrInvalid = errors.New("tvs: invalid argument")
	// ErrNotFound reports a certificate the store does not hold: a
	// [Store] holds no record under its SHA-256 hash. A Store returns it
	// for that and nothing else.
	ErrNotFound = errors.New("tvs: certificate not found")
	// ErrStoreClosed reports use of a closed store.
	ErrStoreClosed = errors.New("tvs: store closed")
	// ErrCorrupt reports a store file, or a record in a store, that
	// cannot be read: not a bbolt file, a bad checksum, another
	// program's file, a missing bucket, a key that is not a SHA-256
	// hash, a record that is not what this package writes or whose
	// certificate does not match its key.
	ErrCorrupt = errors.New("tvs: store corrupt")
	// ErrStoreLocked reports a store file that another process (or
	// another BoltStore in this one) has open.
	ErrStoreLocked = errors.New("tvs: store in use")
	// ErrStoreVersion reports a store file, or a record, written by a
	// newer version of this package, in a schema or record format this
	// one cannot read.
	ErrStoreVersion = errors.New("tvs: store schema version not supported")
)
