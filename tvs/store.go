package tvs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ucsec/ucsec/ctl"
)

// MaxTTL is the longest TTL an [Entry] may have: 30 days, the most the
// reference's tvsctl allows (2592000 seconds).
const MaxTTL = 30 * 24 * time.Hour

// MaxCertificateSize is the longest certificate DER an [Entry] may hold:
// 65535 bytes, more than a TVS request can carry (its payload length is
// 16 bits), so no phone could ask about a longer one.
const MaxCertificateSize = 65535

// MaxRecordSize is the length of the longest record this package writes
// to a [Store], now and in later versions: 128 KiB. A Store must keep
// records of any length from 1 to MaxRecordSize bytes.
const MaxRecordSize = 128 << 10

// An Entry is a certificate the TVS vouches for, with its roles.
type Entry struct {
	// Certificate is the certificate. A store keeps its DER (Raw);
	// [Lookup] and [Entries] give back a certificate parsed from it.
	Certificate *x509.Certificate
	// Roles are what the certificate is trusted for: at least one, each a
	// role package ctl knows (SAST, CCM, CCM+TFTP, TFTP, CAPF, APP-SERVER,
	// TVS), none twice. Lookup and Entries return them in the reference's
	// fixed order, which is the order of their numbers: SAST 0, CCM 1,
	// CCM+TFTP 2, TFTP 3, CAPF 4, APP-SERVER 7, TVS 21.
	Roles []ctl.Role
	// TTL is how long a phone may cache the verdict: a whole number of
	// seconds from 1s to [MaxTTL], or 0 for the server's default.
	TTL time.Duration
}

// Sum returns the SHA-256 hash of the certificate's DER, the key a
// [Store] keeps its record under and that a phone's request is looked up
// by. An entry without a certificate has the zero sum.
func (e *Entry) Sum() [32]byte {
	if e.Certificate == nil {
		return [32]byte{}
	}
	return sha256.Sum256(e.Certificate.Raw)
}

// A Store keeps the records of a TVS: for each certificate the service
// vouches for, a record, an opaque byte string that this package encodes
// and decodes, under the certificate's sum, the SHA-256 hash of its DER
// (32 bytes). A Store is a map from 32-byte keys to byte strings and
// knows nothing of certificates or roles, as
// golang.org/x/crypto/acme/autocert.Cache knows nothing of what it
// caches: a backend (a table of two columns, say) does not change when
// records gain fields, and this package checks every record it reads.
//
// Read and write entries with [Lookup], [Put], [Entries],
// [LoadTrustList] and [LoadCertificates], and remove one with the
// store's Delete; the other methods are what a backend implements.
// [OpenBoltStore] is the durable store of one process; [NewMemoryStore]
// is for tests and examples. Package tvs/tvstest checks that a Store
// keeps this contract: run its TestStore in the backend's tests, and its
// TestSharedStore too for a store that several servers share.
//
// An implementation must:
//
//   - Be safe for concurrent use, with each call atomic: a Get alongside
//     a Put or Delete of the same sum gives the record as it was before
//     or after, whole, and never reports ErrNotFound while a record is
//     only being replaced. Records of different sums are independent.
//   - Give back exactly the bytes put, of any length from 1 to
//     [MaxRecordSize]. It must not keep or change the slice given to Put
//     once Put returns, and the slices it returns are the caller's,
//     which may change them (this package keeps certificates parsed in
//     place).
//   - Be durable, if it is persistent: once Put or Delete returns nil,
//     the change survives a crash of the process or the machine, and
//     every later call, from any process sharing the store, sees it.
//   - Report a sum it holds no record for, and that alone, with an error
//     wrapping [ErrNotFound]. Any other failure (a database that cannot
//     be reached, a timeout) must be another error: the [Server] then
//     gives the phone no answer, so that the phone treats the service
//     as unreachable, instead of answering that the certificate is not
//     trusted (fail closed).
//   - Honour ctx: a call whose ctx is done before it starts returns an
//     error wrapping ctx.Err() and changes nothing; a call that ctx cuts
//     short returns an error wrapping ctx.Err(), whether or not its
//     change was made.
//   - After Close, return an error wrapping [ErrStoreClosed] from every
//     call. Closing a closed store returns nil.
type Store interface {
	// Get returns the record held under sum, or an error wrapping
	// [ErrNotFound]. It is what every phone request costs, and never
	// writes.
	Get(ctx context.Context, sum [32]byte) ([]byte, error)
	// Put stores record under sum, replacing the record held there, if
	// any, in one step.
	Put(ctx context.Context, sum [32]byte, record []byte) error
	// Delete removes the record held under sum, or returns an error
	// wrapping [ErrNotFound].
	Delete(ctx context.Context, sum [32]byte) error
	// List returns every record, keyed by sum; an empty store gives an
	// empty (or nil) map. Each record is whole, as Get would give it.
	List(ctx context.Context) (map[[32]byte][]byte, error)
	// Close releases the store.
	Close() error
}

// Lookup returns the entry of the certificate whose DER has the SHA-256
// hash sum, or an error wrapping [ErrNotFound] if st holds none. It is
// what a phone's request costs: one [Store.Get], and the decoding of a
// record of a few hundred bytes and of its certificate.
//
// A record that is not one this package writes, or that [Put] wrote for
// a certificate of another hash, gives an error wrapping [ErrCorrupt];
// one that a newer version of this package wrote and this one cannot
// read, an error wrapping [ErrStoreVersion]. Other errors are st's.
// Lookup does not hash the certificate again, which would add a tenth
// to its cost: [Entries] does.
func Lookup(ctx context.Context, st Store, sum [32]byte) (*Entry, error) {
	v, err := st.Get(ctx, sum)
	if err != nil {
		return nil, err
	}
	return parseRecord(sum, v, false)
}

// Put adds e to st, or replaces the entry of the same certificate. An
// entry that breaks the rules of [Entry] gives an error wrapping
// [ErrInvalid], and st is left alone. Put does not change e, nor keep
// any of its memory.
func Put(ctx context.Context, st Store, e *Entry) error {
	r, err := newRecord(e)
	if err != nil {
		return err
	}
	return st.Put(ctx, r.sum, r.marshal())
}

// Entries returns every entry of st, sorted by the certificate's subject
// (as [crypto/x509/pkix.Name.String] gives it), then by sum. A record
// that [Lookup] would not read, or whose certificate does not have the
// SHA-256 hash the record is held under, makes it fail with an error
// wrapping [ErrCorrupt] or [ErrStoreVersion], as Lookup.
func Entries(ctx context.Context, st Store) ([]*Entry, error) {
	records, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	es := make([]keyedEntry, 0, len(records))
	for sum, v := range records {
		e, err := parseRecord(sum, v, true)
		if err != nil {
			return nil, err
		}
		es = append(es, keyedEntry{e.Certificate.Subject.String(), sum, e})
	}
	slices.SortFunc(es, func(a, b keyedEntry) int {
		return cmp.Or(cmp.Compare(a.subject, b.subject), bytes.Compare(a.sum[:], b.sum[:]))
	})
	out := make([]*Entry, len(es))
	for i, k := range es {
		out[i] = k.e
	}
	return out, nil
}

// keyedEntry is an entry with what Entries sorts by.
type keyedEntry struct {
	subject string
	sum     [32]byte
	e       *Entry
}

// A record is an entry as [Put] writes it: checked, with the roles in
// order, sharing no memory with any caller.
type record struct {
	sum   [32]byte // SHA-256 of der
	der   []byte
	roles []ctl.Role
	ttl   time.Duration
}

// newRecord checks e and returns its record.
func newRecord(e *Entry) (*record, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil entry", ErrInvalid)
	}
	if e.Certificate == nil || len(e.Certificate.Raw) == 0 {
		return nil, fmt.Errorf("%w: entry without a certificate", ErrInvalid)
	}
	if n := len(e.Certificate.Raw); n > MaxCertificateSize {
		return nil, fmt.Errorf("%w: the entry's certificate is %d bytes long, more than a TVS request can carry (%d)", ErrInvalid, n, MaxCertificateSize)
	}
	roles, err := checkRoles(e.Roles)
	if err != nil {
		return nil, err
	}
	if err := checkTTL(e.TTL); err != nil {
		return nil, err
	}
	der := bytes.Clone(e.Certificate.Raw)
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("%w: the entry's certificate (Raw) does not parse: %v", ErrInvalid, err)
	}
	return &record{sum: sha256.Sum256(der), der: der, roles: roles, ttl: e.TTL}, nil
}

// knownRole reports whether package ctl knows r, which it shows by having
// a name for it (ShortName gives the number of a role it does not know),
// and whether r fits the one byte a role has in a TVS response.
func knownRole(r ctl.Role) bool {
	return r <= 0xff && r.ShortName() != strconv.Itoa(int(r))
}

// checkRoles checks a list of roles and returns a sorted copy.
func checkRoles(roles []ctl.Role) ([]ctl.Role, error) {
	if len(roles) == 0 {
		return nil, fmt.Errorf("%w: entry without roles", ErrInvalid)
	}
	for _, r := range roles {
		if !knownRole(r) {
			return nil, fmt.Errorf("%w: unknown role %d", ErrInvalid, r)
		}
	}
	sorted := slices.Clone(roles)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, fmt.Errorf("%w: role %s given twice", ErrInvalid, sorted[i].ShortName())
		}
	}
	return sorted, nil
}

func checkTTL(ttl time.Duration) error {
	if ttl != 0 && (ttl < time.Second || ttl > MaxTTL || ttl%time.Second != 0) {
		return fmt.Errorf("%w: TTL %v is neither 0 nor a whole number of seconds from 1s to %v (30 days)", ErrInvalid, ttl, MaxTTL)
	}
	return nil
}

// notFound is the error of a store that holds no record under sum.
func notFound(sum [32]byte) error {
	return fmt.Errorf("%w: SHA-256 %x", ErrNotFound, sum)
}
