package tvs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ucsec/ucsec/internal/boltdb"
	bolt "go.etcd.io/bbolt"
)

// BoltOptions configures [OpenBoltStore]. The zero value, or nil, gives
// the defaults.
type BoltOptions struct {
	// Timeout is how long OpenBoltStore waits for the lock on a file that
	// another process has open before it fails with [ErrStoreLocked].
	// Zero means one second.
	Timeout time.Duration
}

// boltSchema is the schema version this package writes and reads.
//
// Version 2 has these buckets (package internal/boltdb sets up and checks
// meta and the others):
//
//	meta          "version" -> decimal schema version
//	certificates  SHA-256 of the certificate's DER (32 bytes) -> record
//
// where a record is what [Put] writes (see recordVersion). Version 1
// held records without the format version and the hash that start those
// of version 2, which are otherwise the same; [OpenBoltStore] migrates a
// version 1 file to version 2 when it opens it, in one transaction.
const boltSchema = 2

var (
	bucketCertificates = []byte("certificates")
	// The meta bucket and its version key, as package internal/boltdb
	// names them, for the migration.
	bucketMeta = []byte("meta")
	keyVersion = []byte("version")

	boltSchemaDef = &boltdb.Schema{
		Name:    "TVS store",
		Version: boltSchema,
		Buckets: [][]byte{bucketCertificates},
	}
)

// migrate brings a version 1 file to version 2: it prefixes every record
// with the format version and its key, which is all that changed.
func migrate(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if string(meta.Get(keyVersion)) != "1" {
			return nil
		}
		b := tx.Bucket(bucketCertificates)
		var keys, values [][]byte
		err := b.ForEach(func(k, v []byte) error {
			keys = append(keys, bytes.Clone(k))
			values = append(values, slices.Concat([]byte{recordVersion}, k, v))
			return nil
		})
		if err != nil {
			return err
		}
		for i, k := range keys {
			if err := b.Put(k, values[i]); err != nil {
				return err
			}
		}
		return meta.Put(keyVersion, []byte(strconv.Itoa(boltSchema)))
	})
}

// A BoltStore is the durable [Store] of one process: one bbolt file. Get
// and List read a consistent snapshot and never write, so any number of
// them run at once, alongside a write. Put and Delete each commit, synced
// to disk (fdatasync), before they return nil, so nothing they reported
// done is lost if the process is killed or the system crashes; writes are
// an administrator's, rare, and are not batched.
//
// Only one BoltStore, in one process, can have a file open at a time.
type BoltStore struct {
	h *boltdb.Handle
}

var _ Store = (*BoltStore)(nil)

// boltSentinels are this package's errors for package internal/boltdb.
var boltSentinels = boltdb.Sentinels{
	Prefix:  "tvs",
	Locked:  ErrStoreLocked,
	Version: ErrStoreVersion,
	Corrupt: ErrCorrupt,
	Invalid: ErrInvalid,
	Closed:  ErrStoreClosed,
}

// OpenBoltStore opens the store in the file at path, creating it (mode
// 0600) if it does not exist. It fails with [ErrStoreLocked] if another
// process has the file open and does not release it within the timeout,
// with [ErrStoreVersion] if a newer version of this package wrote it, and
// with [ErrCorrupt] if it is not a TVS store file. A file of an older
// schema is migrated to the current one.
func OpenBoltStore(path string, opts *BoltOptions) (*BoltStore, error) {
	var timeout time.Duration
	if opts != nil {
		timeout = opts.Timeout
	}
	h, err := boltdb.OpenHandle(path, timeout, boltSchemaDef, boltSentinels)
	if err != nil {
		return nil, err
	}
	if err := migrate(h.DB()); err != nil {
		h.Close()
		return nil, fmt.Errorf("tvs: store %s: migrating to schema version %d: %w", path, boltSchema, err)
	}
	return &BoltStore{h: h}, nil
}

// Get implements [Store], in a read-only transaction.
func (s *BoltStore) Get(ctx context.Context, sum [32]byte) ([]byte, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var v []byte
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		// Copied: bbolt's memory is valid only during the transaction.
		v = bytes.Clone(tx.Bucket(bucketCertificates).Get(sum[:]))
		return nil
	})
	if err != nil {
		return nil, s.h.Wrap(err)
	}
	if v == nil {
		return nil, notFound(sum)
	}
	return v, nil
}

// Put implements [Store].
func (s *BoltStore) Put(ctx context.Context, sum [32]byte, record []byte) error {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.h.Wrap(s.h.DB().Update(func(tx *bolt.Tx) error {
		// bbolt keeps a reference to the value until the commit, which
		// ends before Put returns.
		return tx.Bucket(bucketCertificates).Put(sum[:], record)
	}))
}

// Delete implements [Store].
func (s *BoltStore) Delete(ctx context.Context, sum [32]byte) error {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	err = s.h.DB().Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCertificates)
		if b.Get(sum[:]) == nil {
			return notFound(sum) // rolls back: nothing written
		}
		return b.Delete(sum[:])
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	return s.h.Wrap(err)
}

// List implements [Store]. A key that is not 32 bytes long (which this
// package never writes) makes it fail with [ErrCorrupt].
func (s *BoltStore) List(ctx context.Context) (map[[32]byte][]byte, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	records := make(map[[32]byte][]byte)
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCertificates).ForEach(func(k, v []byte) error {
			if len(k) != sha256.Size {
				return fmt.Errorf("%w: key %x is not a SHA-256 hash", ErrCorrupt, k)
			}
			records[[32]byte(k)] = bytes.Clone(v)
			return nil
		})
	})
	if errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	if err != nil {
		return nil, s.h.Wrap(err)
	}
	return records, nil
}

// Close waits for calls under way, then closes the file. Closing a closed
// store does nothing.
func (s *BoltStore) Close() error { return s.h.Close() }
