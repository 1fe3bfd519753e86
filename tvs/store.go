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

// An Entry is a certificate the TVS vouches for, with its roles.
type Entry struct {
	// Certificate is the certificate. Stores keep its DER (Raw) and
	// give back a certificate parsed from it.
	Certificate *x509.Certificate
	// Roles are what the certificate is trusted for: at least one, each a
	// role package ctl knows (SAST, CCM, CCM+TFTP, TFTP, CAPF, APP-SERVER,
	// TVS), none twice. Stores return them in the reference's fixed
	// order, which is the order of their numbers: SAST 0, CCM 1, CCM+TFTP
	// 2, TFTP 3, CAPF 4, APP-SERVER 7, TVS 21.
	Roles []ctl.Role
	// TTL is how long a phone may cache the verdict: a whole number of
	// seconds from 1s to [MaxTTL], or 0 for the server's default.
	TTL time.Duration
}

// Sum returns the SHA-256 hash of the certificate's DER, the key a
// [Store] keeps it under and that a phone's request is looked up by. An
// entry without a certificate has the zero sum.
func (e *Entry) Sum() [32]byte {
	if e.Certificate == nil {
		return [32]byte{}
	}
	return sha256.Sum256(e.Certificate.Raw)
}

// A Store keeps the certificates a TVS vouches for, keyed by the SHA-256
// hash of their DER. Implementations must be safe for concurrent use,
// durable once a write returns nil (for a persistent store), and must
// not share memory with their callers: they copy entries in and out, so
// a caller may change what it passed or got back.
//
// [OpenBoltStore] is the durable default; [NewMemoryStore] is for tests.
// [LoadTrustList] and [LoadCertificates] fill a store.
type Store interface {
	// Lookup returns the entry of the certificate whose DER has the
	// SHA-256 hash sum, or an error wrapping [ErrNotFound]. It is what
	// every phone request costs, and never writes.
	Lookup(ctx context.Context, sum [32]byte) (*Entry, error)
	// Put adds an entry, or replaces the one of the same certificate. An
	// entry that breaks the rules of [Entry] gives an error wrapping
	// [ErrInvalid]. Put does not change e.
	Put(ctx context.Context, e *Entry) error
	// Delete removes the entry of the certificate whose DER has the
	// SHA-256 hash sum, or returns an error wrapping [ErrNotFound].
	Delete(ctx context.Context, sum [32]byte) error
	// Entries returns every entry, sorted by the certificate's subject
	// (as [crypto/x509/pkix.Name.String] gives it), then by sum.
	Entries(ctx context.Context) ([]*Entry, error)
	// Close releases the store. Later calls return [ErrStoreClosed].
	Close() error
}

// A record is an entry as the stores keep it: checked, with the roles in
// order, sharing no memory with any caller. Once made it never changes.
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

// entry returns a new Entry from r. Its certificate is parsed from a copy
// of the DER, because a parsed certificate's fields share the memory they
// were parsed from.
func (r *record) entry() (*Entry, error) {
	cert, err := x509.ParseCertificate(bytes.Clone(r.der))
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %x does not parse: %v", ErrCorrupt, r.sum, err)
	}
	return &Entry{Certificate: cert, Roles: slices.Clone(r.roles), TTL: r.ttl}, nil
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

func notFound(sum [32]byte) error {
	return fmt.Errorf("%w: SHA-256 %x", ErrNotFound, sum)
}

// sortEntries sorts es by subject, then by sum.
func sortEntries(es []*Entry) {
	type keyed struct {
		subject string
		sum     [32]byte
		e       *Entry
	}
	ks := make([]keyed, len(es))
	for i, e := range es {
		ks[i] = keyed{e.Certificate.Subject.String(), e.Sum(), e}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.subject, b.subject), bytes.Compare(a.sum[:], b.sum[:]))
	})
	for i, k := range ks {
		es[i] = k.e
	}
}
