package capf

import "context"

// A Store keeps what a CAPF server must not forget: one record for each
// device, and the log of the certificates the server issued. Several
// servers may share one store (a database): the guarantees below are what
// keeps them from issuing twice, losing a result or sending an unrecorded
// certificate.
//
// A store keeps bytes. This package encodes and versions the records, as
// [golang.org/x/crypto/acme/autocert.Cache] keeps opaque certificates: a
// store never needs to know their layout, and one written for this
// version of the package keeps working when the layout changes. Device
// records are read with [LookupDevice] and [ListDevices], changed with
// [ScheduleOperation], [CancelOperation], [RemoveDevice] and the
// [Server]; the log is read with [ListIssued].
//
// [OpenBoltStore] is the durable store for one server; [NewMemoryStore] is
// for tests. Package [github.com/ucsec/ucsec/capf/capftest] tests any
// implementation against this contract.
//
// # What a store receives
//
// Device names are 1 to 64 bytes of printable ASCII without spaces (0x21
// to 0x7e); they compare as bytes, case-sensitively. Serial numbers are 1
// to 128 lowercase hexadecimal digits. Records and log entries are at most
// 1 MiB and never empty: an empty record (nil, or of length 0) stands for
// no record. A store may refuse other names or sizes with an error, and
// need not check anything else.
//
// # Guarantees
//
//   - Transactions. [Store.Update] is a read-modify-write of one device's
//     record, serializable per device: concurrent calls for one device,
//     from this process or from other servers on the same store, behave
//     as if run one after another, so no update is lost. fn sees the
//     record as last committed. A store that detects a conflict
//     (a serialization failure) discards fn's result and calls fn again
//     on the newer record, so fn may run more than once: its last run's
//     result is the one stored. Calls for different devices need not be
//     serialized with each other.
//   - The issued log. [Store.RecordIssued] adds an entry to the log and
//     updates its device's record in one such transaction: both are
//     stored, or neither. The store enforces that a serial number is in
//     the log at most once ([ErrDuplicateSerial]); this is what stops
//     two servers, or a CA that repeats itself, from recording one serial
//     twice. The log is never changed or shortened.
//   - Order. [Store.Issued] lists entries in the order they were
//     recorded: an entry whose RecordIssued returned before another's
//     began comes first; entries recorded concurrently come in an order
//     that is the same in every listing.
//   - Reads. [Store.Get], [Store.List] and [Store.Issued] see every write
//     that returned nil before they began, and never part of a write.
//     List need not be a snapshot of all devices at one instant.
//   - Durability. Once a write returns nil, what it wrote survives the
//     process, and for a persistent store a crash of the machine.
//   - Context. A call whose context is already done does nothing and
//     returns an error wrapping ctx.Err(). A context that ends during a
//     call may make it fail with such an error; a write that fails so
//     may or may not have been committed.
//   - Failure. A store that cannot answer (its database is down, a
//     timeout, a lost connection) returns an error; it never reports a
//     success it cannot vouch for. This package then fails closed: no
//     certificate leaves the server unless its log entry was stored, and
//     a session whose store write failed ends with a failure.
//   - Memory. A store copies what it keeps and what it returns: the
//     caller may change any slice it passed or got back. fn must not
//     keep or change old, which may be the store's own memory for the
//     duration of the call.
//   - Close. After [Store.Close] every method returns an error wrapping
//     [ErrStoreClosed]; closing twice is not an error.
//
// fn must not call the store (it may run while the store holds a lock).
// The functions this package passes are quick and have no effects but
// their results.
//
// In SQL, a write is either one transaction that reads the row with
// SELECT … FOR UPDATE (or runs at the SERIALIZABLE isolation level), calls
// fn, then writes with INSERT, UPDATE or DELETE and commits, and runs it
// all again on a serialization failure or deadlock; or, as package
// stores/postgres does, an optimistic read of the row and a version of it,
// then one conditional statement that writes only if the version is
// unchanged, read and fn run again when it is not. RecordIssued inserts
// into a log table, with a unique key on the serial and an identity
// column for the order, in the same transaction or statement as the
// device's write, and maps the unique violation to [ErrDuplicateSerial].
//
// # What the server relies on
//
// These guarantees are what the [Server] needs to keep its invariants
// with several servers on one store (see the package documentation): a
// claim on an operation is taken in an Update before a certificate is
// issued; the certificate is recorded with RecordIssued in the same
// transaction that checks that the claim is still the session's and
// marks the operation as having issued; only then is it sent; and the
// result is committed in an Update after the device's acknowledgement.
// A store that loses an update, records a serial twice, or writes a log
// entry without its record update breaks "one operation, at most one
// certificate".
type Store interface {
	// Get returns the named device's record, or nil if it has none.
	Get(ctx context.Context, device string) ([]byte, error)
	// List returns every device's record, sorted by device name in byte
	// order.
	List(ctx context.Context) ([]DeviceRecord, error)
	// Update calls fn with the named device's record, nil if there is
	// none, and stores what fn returns in its place: a new record, or an
	// empty one (nil) to delete the record. If fn returns an error,
	// Update stores nothing and returns that error, or one that wraps it.
	// fn may be called more than once.
	Update(ctx context.Context, device string, fn func(old []byte) ([]byte, error)) error
	// RecordIssued adds rec to the issued log and updates the record of
	// rec.Device with fn, as Update does, in one transaction. If the log
	// holds rec.Serial already it stores nothing and returns an error
	// wrapping [ErrDuplicateSerial]; if fn returns an error it stores
	// nothing and returns that error, or one that wraps it.
	RecordIssued(ctx context.Context, rec IssuedRecord, fn func(old []byte) ([]byte, error)) error
	// Issued returns the log entries of the named device, or of every
	// device if device is "", in the order they were recorded.
	Issued(ctx context.Context, device string) ([]IssuedRecord, error)
	// Close releases the store. Later calls return an error wrapping
	// [ErrStoreClosed].
	Close() error
}

// A DeviceRecord is one device's record, as [Store.List] returns it.
type DeviceRecord struct {
	Device string
	Data   []byte // encoded by this package
}

// An IssuedRecord is an entry of the issued log: a certificate's serial
// number, which the store keeps unique, the device it was issued to, and
// what this package encoded of it (the certificate, when it was issued).
type IssuedRecord struct {
	Serial string // lowercase hex, as SerialHex gives it
	Device string
	Data   []byte // encoded by this package
}
