package capf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ucsec/ucsec/internal/boltdb"
	bolt "go.etcd.io/bbolt"
)

// ErrStoreLocked reports a store file that another process (or another
// BoltStore in this one) has open.
var ErrStoreLocked = errors.New("capf: store in use")

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
//	meta              "version" -> decimal schema version
//	devices           device name -> record (as the Store receives it)
//	issued            serial -> 8-byte big-endian sequence
//	issued-order      sequence -> log entry: serial and device, each
//	                  a uvarint length and the bytes, then the entry's data
//	issued-by-device  device name, 0x00, sequence -> nothing
//
// The sequence is issued-order's bucket sequence, so both indexes list
// entries in the order they were recorded; issued keeps serials unique.
//
// Version 1 held JSON records under the same bucket names; OpenBoltStore
// refuses such a file with [ErrStoreVersion].
const boltSchema = 2

var (
	bucketDevices  = []byte("devices")
	bucketIssued   = []byte("issued")
	bucketOrder    = []byte("issued-order")
	bucketByDevice = []byte("issued-by-device")
	// The meta bucket and its version key, as package internal/boltdb
	// names them.
	bucketMeta = []byte("meta")
	keyVersion = []byte("version")

	boltSchemaDef = &boltdb.Schema{
		Name:    "CAPF store",
		Version: boltSchema,
		Buckets: [][]byte{bucketDevices, bucketIssued, bucketOrder, bucketByDevice},
	}
)

// A BoltStore is the durable [Store]: one bbolt file, written with a
// synced commit (fdatasync) before a method returns nil, so nothing it
// reported done is lost if the process is killed or the system crashes.
// Writes from concurrent callers are coalesced into shared commits
// ([bolt.DB.Batch]): each write waits up to 10ms for others to join it,
// then for the commit, but many writes share one disk sync. A single
// caller writing in a loop therefore manages about a hundred writes a
// second; many callers at once, thousands.
//
// Only one BoltStore, in one process, can have a file open at a time.
type BoltStore struct {
	h *boltdb.Handle
}

var _ Store = (*BoltStore)(nil)

// boltSentinels are this package's errors for package internal/boltdb.
var boltSentinels = boltdb.Sentinels{
	Prefix:  "capf",
	Locked:  ErrStoreLocked,
	Version: ErrStoreVersion,
	Corrupt: ErrCorrupt,
	Invalid: ErrInvalid,
	Closed:  ErrStoreClosed,
}

// OpenBoltStore opens the store in the file at path, creating it (mode
// 0600) if it does not exist. It fails with [ErrStoreLocked] if another
// process has the file open and does not release it within the timeout,
// with [ErrStoreVersion] if a newer version of this package wrote it or
// an older one that kept another schema, and with [ErrCorrupt] if it is
// not a store file.
func OpenBoltStore(path string, opts *BoltOptions) (*BoltStore, error) {
	var timeout time.Duration
	if opts != nil {
		timeout = opts.Timeout
	}
	h, err := boltdb.OpenHandle(path, timeout, boltSchemaDef, boltSentinels)
	if err != nil {
		return nil, err
	}
	// Package boltdb accepts older versions as they are; this package
	// reads none of them.
	var version []byte
	err = h.DB().View(func(tx *bolt.Tx) error {
		version = bytes.Clone(tx.Bucket(bucketMeta).Get(keyVersion))
		return nil
	})
	if err == nil && string(version) != strconv.Itoa(boltSchema) {
		err = fmt.Errorf("%w: %s has schema version %s, written by an earlier version of this package, which kept device records as JSON; this one reads only version %d (schedule the operations again in a new store)",
			ErrStoreVersion, path, version, boltSchema)
	}
	if err != nil {
		h.Close()
		return nil, err
	}
	return &BoltStore{h: h}, nil
}

// Get implements [Store].
func (s *BoltStore) Get(ctx context.Context, device string) ([]byte, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var data []byte
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		data = bytes.Clone(tx.Bucket(bucketDevices).Get([]byte(device)))
		return nil
	})
	if err != nil {
		return nil, s.h.Wrap(err)
	}
	return data, nil
}

// List implements [Store].
func (s *BoltStore) List(ctx context.Context) ([]DeviceRecord, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var recs []DeviceRecord
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		// Keys are in byte order.
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			recs = append(recs, DeviceRecord{Device: string(k), Data: bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return nil, s.h.Wrap(err)
	}
	return recs, nil
}

// Update implements [Store]. Concurrent writes share one commit; fn runs
// inside it, so it must be quick.
func (s *BoltStore) Update(ctx context.Context, device string, fn func(old []byte) ([]byte, error)) error {
	if err := checkStoreName(device); err != nil {
		return err
	}
	return s.batch(ctx, func(tx *bolt.Tx) error { return applyBolt(tx, device, fn) })
}

// batch runs write in a shared commit. An error from write leaves the
// transaction unwritten, and is returned as it is; it is passed out past
// Batch, which would roll back and re-run every other write in the batch,
// then run this one again alone. Batch may call the closure more than
// once, so each call starts afresh.
func (s *BoltStore) batch(ctx context.Context, write func(tx *bolt.Tx) error) error {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	var fail error
	err = s.h.DB().Batch(func(tx *bolt.Tx) error {
		fail = nil
		var be boltError
		switch err := write(tx); {
		case errors.As(err, &be):
			return be.err
		case err != nil:
			fail = err
		}
		return nil
	})
	if err != nil {
		return s.h.Wrap(err)
	}
	return fail
}

// A boltError is a bbolt failure inside a batch: the whole transaction
// fails.
type boltError struct{ err error }

func (e boltError) Error() string { return e.err.Error() }

// applyBolt runs fn on the device's record in tx and stores the result.
// fn's error is returned as it is; a bbolt error as a boltError.
func applyBolt(tx *bolt.Tx, device string, fn func(old []byte) ([]byte, error)) error {
	b := tx.Bucket(bucketDevices)
	key := []byte(device)
	// The value is valid for the transaction, which fn runs inside.
	data, err := fn(b.Get(key))
	if err != nil {
		return err
	}
	if len(data) > maxRecord {
		return fmt.Errorf("%w: record of device %q is %d bytes (at most %d)", ErrInvalid, device, len(data), maxRecord)
	}
	if len(data) == 0 {
		err = b.Delete(key)
	} else {
		err = b.Put(key, bytes.Clone(data))
	}
	if err != nil {
		return boltError{err}
	}
	return nil
}

// RecordIssued implements [Store].
func (s *BoltStore) RecordIssued(ctx context.Context, rec IssuedRecord, fn func(old []byte) ([]byte, error)) error {
	if err := checkIssuedRecord(rec); err != nil {
		return err
	}
	serial := []byte(rec.Serial)
	entry := binary.AppendUvarint(nil, uint64(len(rec.Serial)))
	entry = append(entry, rec.Serial...)
	entry = binary.AppendUvarint(entry, uint64(len(rec.Device)))
	entry = append(entry, rec.Device...)
	entry = append(entry, rec.Data...)
	return s.batch(ctx, func(tx *bolt.Tx) error {
		issued := tx.Bucket(bucketIssued)
		if issued.Get(serial) != nil {
			return fmt.Errorf("%w: %s", ErrDuplicateSerial, rec.Serial)
		}
		if err := applyBolt(tx, rec.Device, fn); err != nil {
			return err
		}
		order := tx.Bucket(bucketOrder)
		seq, err := order.NextSequence() // rolled back with the transaction
		if err != nil {
			return boltError{err}
		}
		var seqKey [8]byte
		binary.BigEndian.PutUint64(seqKey[:], seq)
		if err := issued.Put(serial, seqKey[:]); err != nil {
			return boltError{err}
		}
		if err := order.Put(seqKey[:], entry); err != nil {
			return boltError{err}
		}
		if err := tx.Bucket(bucketByDevice).Put(deviceIndexKey(rec.Device, seqKey[:]), nil); err != nil {
			return boltError{err}
		}
		return nil
	})
}

// deviceIndexKey returns the issued-by-device key: name, 0x00, then seq
// (empty seq for the prefix of all the device's keys). Device names hold
// no NUL, so one device's prefix never matches another's.
func deviceIndexKey(name string, seq []byte) []byte {
	k := make([]byte, 0, len(name)+1+len(seq))
	k = append(k, name...)
	k = append(k, 0)
	return append(k, seq...)
}

// decodeEntry decodes an issued-order value.
func decodeEntry(seq, v []byte) (IssuedRecord, error) {
	var rec IssuedRecord
	field := func() (string, bool) {
		n, k := binary.Uvarint(v)
		if k <= 0 || n > uint64(len(v)-k) {
			return "", false
		}
		f := string(v[k : k+int(n)])
		v = v[k+int(n):]
		return f, true
	}
	var ok1, ok2 bool
	rec.Serial, ok1 = field()
	rec.Device, ok2 = field()
	if !ok1 || !ok2 {
		return rec, fmt.Errorf("%w: issued log entry %x is malformed", ErrCorrupt, seq)
	}
	rec.Data = bytes.Clone(v)
	return rec, nil
}

// Issued implements [Store].
func (s *BoltStore) Issued(ctx context.Context, device string) ([]IssuedRecord, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var recs []IssuedRecord
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		order := tx.Bucket(bucketOrder)
		if device == "" {
			return order.ForEach(func(seq, v []byte) error {
				rec, err := decodeEntry(seq, v)
				recs = append(recs, rec)
				return err
			})
		}
		if checkStoreName(device) != nil {
			return nil // never recorded
		}
		prefix := deviceIndexKey(device, nil)
		cur := tx.Bucket(bucketByDevice).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			seq := k[len(prefix):]
			v := order.Get(seq)
			if v == nil {
				return fmt.Errorf("%w: the device index lists issued log entry %x of %q, which is not in the log", ErrCorrupt, seq, device)
			}
			rec, err := decodeEntry(seq, v)
			if err != nil {
				return err
			}
			if rec.Device != device {
				return fmt.Errorf("%w: the device index lists issued log entry %x under %q, but it names %q", ErrCorrupt, seq, device, rec.Device)
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, s.h.Wrap(err)
	}
	return recs, nil
}

// Close waits for calls under way, then closes the file. Closing a closed
// store does nothing.
func (s *BoltStore) Close() error { return s.h.Close() }
