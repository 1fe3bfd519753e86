package capf

import "context"

// A Store keeps the scheduled operations, device records and issued
// certificates. Implementations must be safe for concurrent use, durable
// once a method returns nil (for a persistent store), and must not hold a
// lock across devices longer than one transaction.
//
// [OpenBoltStore] is the durable default; [NewMemoryStore] is for tests.
type Store interface {
	// Device returns a copy of the named device's record, or an error
	// wrapping [ErrUnknownDevice].
	Device(ctx context.Context, name string) (*Device, error)
	// Devices returns copies of every record, sorted by name.
	Devices(ctx context.Context) ([]*Device, error)
	// Update runs fn on a copy of the named record in one transaction and
	// stores the result if fn returns nil. If there is no record, fn gets
	// a new one (only Name set) when create is true, and Update returns
	// an error wrapping [ErrUnknownDevice] when it is false. fn may be
	// called more than once and must not have other effects.
	Update(ctx context.Context, name string, create bool, fn func(*Device) error) error
	// Remove deletes the named record; removing an absent one is not an
	// error. Issued certificates stay recorded.
	Remove(ctx context.Context, name string) error
	// RecordIssued records an issued certificate. A serial already
	// recorded gives an error wrapping [ErrDuplicateSerial].
	RecordIssued(ctx context.Context, c *IssuedCertificate) error
	// Issued returns the certificates issued to the named device, oldest
	// first, or every issued certificate when name is "".
	Issued(ctx context.Context, name string) ([]*IssuedCertificate, error)
	// Close releases the store. Later calls return [ErrStoreClosed].
	Close() error
}
