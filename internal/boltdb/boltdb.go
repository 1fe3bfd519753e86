// Package boltdb opens the bbolt files that hold this module's durable
// stores (capf, tvs): the part every such store needs, so that they all
// create, lock, version and check their files the same way.
//
// A store file has a "meta" bucket whose "version" key holds the schema
// version as a decimal string, and the buckets its [Schema] names. [Open]
// creates them in a new or empty file, and checks them in an existing one.
//
// Errors from Open that a caller reports in its own terms are [*Error]s:
// their Kind is [ErrLocked], [ErrVersion] or [ErrCorrupt], and
// [Error.With] gives the same error under the caller's own sentinel.
// Open's other errors (a file that cannot be opened or created, a failed
// directory sync) are returned as they are, for the caller to prefix.
//
// A store package's BoltStore holds its file as a [Handle] ([OpenHandle]):
// Open with the package's lock timeout option, its errors under the
// package's own [Sentinels], and the lock that lets Close wait for the
// calls under way ([Handle.Begin]).
package boltdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The kinds of [*Error].
var (
	// ErrLocked reports a file that another process (or another open
	// store in this one) holds, and did not release within the timeout.
	ErrLocked = errors.New("boltdb: file in use")
	// ErrVersion reports a file with a newer schema version than the
	// caller reads.
	ErrVersion = errors.New("boltdb: schema version not supported")
	// ErrCorrupt reports a file that is not a store of the caller's kind:
	// not a bbolt file, a bad checksum, another program's bbolt file, a
	// malformed schema version, a missing bucket.
	ErrCorrupt = errors.New("boltdb: file corrupt")
)

// An Error is a failure of [Open] that the caller reports under its own
// sentinel (see [Error.With]).
type Error struct {
	Kind   error  // ErrLocked, ErrVersion or ErrCorrupt
	Detail string // what is wrong, naming the file
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Detail }

// Unwrap returns e.Kind.
func (e *Error) Unwrap() error { return e.Kind }

// With returns e as the caller reports it: an error that reads
// "<sentinel>: <detail>" and wraps both sentinel and e (so e.Kind too).
func (e *Error) With(sentinel error) error { return &mapped{sentinel, e} }

type mapped struct {
	sentinel error
	e        *Error
}

func (m *mapped) Error() string   { return m.sentinel.Error() + ": " + m.e.Detail }
func (m *mapped) Unwrap() []error { return []error{m.sentinel, m.e} }

// A Schema describes a kind of store file.
type Schema struct {
	// Name is what the file holds, for error messages: "CAPF store".
	Name string
	// Version is the schema version written to new files, and the
	// newest one Open accepts (at least 1). Older versions are accepted
	// as they are: a caller that changes its schema must migrate them.
	Version int
	// Buckets are the top-level buckets besides "meta".
	Buckets [][]byte
}

var (
	bucketMeta = []byte("meta")
	keyVersion = []byte("version")
)

// Open opens the store file at path, creating it (mode 0600, the new
// directory entry synced to disk) if it does not exist, and sets up or
// checks the buckets of schema. It waits up to timeout (which must be
// positive) for the lock that another process may hold. Commits to the
// returned database are synced to disk (fdatasync) before they return.
//
// Open fails with an [*Error] of kind [ErrLocked] if the lock is not
// released in time, [ErrVersion] if the file's schema version is newer
// than schema.Version, and [ErrCorrupt] if the file is not a store of
// this schema. A failed Open leaves the file as it found it (except for
// setting up a new or empty file) and unlocked.
func Open(path string, timeout time.Duration, schema *Schema) (*bolt.DB, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("boltdb: lock timeout %v is not positive", timeout)
	}
	if schema.Version < 1 {
		return nil, fmt.Errorf("boltdb: schema version %d is not positive", schema.Version)
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)

	// NoSync stays false: every commit is synced to disk.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &Error{ErrLocked, fmt.Sprintf("%s is locked by another process (or another BoltStore); gave up after %v", path, timeout)}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, &Error{ErrCorrupt, fmt.Sprintf("%s: %v", path, err)}
	case err != nil:
		return nil, err
	}
	if created {
		// Make the new directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := setup(db, path, schema); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

var errStop = errors.New("stop")

// setup checks the schema version and buckets of a store file, or sets up
// an empty file.
func setup(db *bolt.DB, path string, schema *Schema) error {
	empty := false
	err := db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty = tx.ForEach(func([]byte, *bolt.Bucket) error { return errStop }) == nil
			if !empty {
				return &Error{ErrCorrupt, fmt.Sprintf("%s is a bbolt file, but not a %s (no %q bucket)", path, schema.Name, bucketMeta)}
			}
			return nil
		}
		v := meta.Get(keyVersion)
		n, err := strconv.ParseUint(string(v), 10, 32)
		if err != nil || n == 0 {
			return &Error{ErrCorrupt, fmt.Sprintf("%s: schema version %q", path, v)}
		}
		if n > uint64(schema.Version) {
			return &Error{ErrVersion, fmt.Sprintf("%s has schema version %d, this program reads versions up to %d (use a newer one)", path, n, schema.Version)}
		}
		for _, b := range schema.Buckets {
			if tx.Bucket(b) == nil {
				return &Error{ErrCorrupt, fmt.Sprintf("%s: no %q bucket", path, b)}
			}
		}
		return nil
	})
	if err != nil || !empty {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		for _, b := range schema.Buckets {
			if _, err := tx.CreateBucket(b); err != nil {
				return fmt.Errorf("create %s: %w", path, err)
			}
		}
		return meta.Put(keyVersion, []byte(strconv.Itoa(schema.Version)))
	})
}
