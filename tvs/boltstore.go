package tvs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ucsec/ucsec/ctl"
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
// Version 1 has these buckets (package internal/boltdb sets up and checks
// meta and the others):
//
//	meta          "version" -> decimal schema version
//	certificates  SHA-256 of the certificate's DER (32 bytes) -> record
//
// A record is, in this order:
//
//	4 bytes  TTL in seconds, big-endian; 0 for the server's default
//	1 byte   number of roles, n (at least 1)
//	n bytes  the role numbers (ctl.Role), one byte each, ascending
//	rest     the certificate's DER
//
// so that a lookup, the hot path, costs little more than parsing the
// certificate (JSON, as package capf writes, took as long to decode as
// the certificate to parse).
const boltSchema = 1

var (
	bucketCertificates = []byte("certificates")

	boltSchemaDef = &boltdb.Schema{
		Name:    "TVS store",
		Version: boltSchema,
		Buckets: [][]byte{bucketCertificates},
	}
)

// encodeRecord returns r as the certificates bucket holds it.
func encodeRecord(r *record) []byte {
	v := make([]byte, 0, 5+len(r.roles)+len(r.der))
	v = binary.BigEndian.AppendUint32(v, uint32(r.ttl/time.Second))
	v = append(v, byte(len(r.roles)))
	for _, role := range r.roles {
		v = append(v, byte(role)) // checkRoles allows only roles < 256
	}
	return append(v, r.der...)
}

// decodeRecord checks the value v stored under key and returns it as an
// entry. v must not be used by anything else: the entry's certificate
// shares its memory.
func decodeRecord(key, v []byte) (*Entry, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: record %x: %s", ErrCorrupt, key, fmt.Sprintf(format, args...))
	}
	if len(key) != sha256.Size {
		return nil, corrupt("key is not a SHA-256 hash")
	}
	if len(v) < 5 || len(v) < 5+int(v[4]) {
		return nil, corrupt("truncated (%d bytes)", len(v))
	}
	ttl := binary.BigEndian.Uint32(v)
	if ttl > uint32(MaxTTL/time.Second) {
		return nil, corrupt("TTL %d", ttl)
	}
	roles := make([]ctl.Role, v[4])
	for i := range roles {
		roles[i] = ctl.Role(v[5+i])
	}
	sorted, err := checkRoles(roles)
	if err != nil || !slices.Equal(sorted, roles) {
		return nil, corrupt("roles %v", roles)
	}
	der := v[5+len(roles):]
	if len(der) == 0 {
		return nil, corrupt("no certificate")
	}
	if sum := sha256.Sum256(der); !bytes.Equal(sum[:], key) {
		return nil, corrupt("holds a certificate with another hash, %x", sum)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, corrupt("certificate does not parse: %v", err)
	}
	return &Entry{Certificate: cert, Roles: roles, TTL: time.Duration(ttl) * time.Second}, nil
}

// A BoltStore is the durable [Store]: one bbolt file. Lookup and Entries
// read a consistent snapshot and never write, so any number of them run
// at once, alongside a write. Put and Delete each commit, synced to disk
// (fdatasync), before they return nil, so nothing they reported done is
// lost if the process is killed or the system crashes; writes are an
// administrator's, rare, and are not batched.
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
// with [ErrCorrupt] if it is not a TVS store file.
func OpenBoltStore(path string, opts *BoltOptions) (*BoltStore, error) {
	var timeout time.Duration
	if opts != nil {
		timeout = opts.Timeout
	}
	h, err := boltdb.OpenHandle(path, timeout, boltSchemaDef, boltSentinels)
	if err != nil {
		return nil, err
	}
	return &BoltStore{h: h}, nil
}

// Lookup implements [Store], in a read-only transaction.
func (s *BoltStore) Lookup(ctx context.Context, sum [32]byte) (*Entry, error) {
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
	// Parsed outside the transaction, which then holds the file's pages
	// for less time.
	return decodeRecord(sum[:], v)
}

// Put implements [Store].
func (s *BoltStore) Put(ctx context.Context, e *Entry) error {
	r, err := newRecord(e)
	if err != nil {
		return err
	}
	v := encodeRecord(r)
	done, err := s.h.Begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.h.Wrap(s.h.DB().Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCertificates).Put(r.sum[:], v)
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

// Entries implements [Store].
func (s *BoltStore) Entries(ctx context.Context) ([]*Entry, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var keys, values [][]byte
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCertificates).ForEach(func(k, v []byte) error {
			keys = append(keys, bytes.Clone(k))
			values = append(values, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, s.h.Wrap(err)
	}
	es := make([]*Entry, len(values))
	for i, v := range values {
		if es[i], err = decodeRecord(keys[i], v); err != nil {
			return nil, err
		}
	}
	sortEntries(es)
	return es, nil
}

// Close waits for calls under way, then closes the file. Closing a closed
// store does nothing.
func (s *BoltStore) Close() error { return s.h.Close() }
