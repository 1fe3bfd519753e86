package capf

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ucsec/ucsec/internal/boltdb"
	bolt "go.etcd.io/bbolt"
)

// Errors from [OpenBoltStore] and [BoltStore].
var (
	// ErrCorrupt reports a store file, or a record in it, that cannot be
	// read: not a bbolt file, a bad checksum, a record that is not the
	// JSON this package writes, a missing bucket or index entry.
	ErrCorrupt = errors.New("capf: store corrupt")
	// ErrStoreLocked reports a store file that another process (or
	// another BoltStore in this one) has open.
	ErrStoreLocked = errors.New("capf: store in use")
	// ErrStoreVersion reports a store file written by a newer version of
	// this package, with a schema this one does not know.
	ErrStoreVersion = errors.New("capf: store schema version not supported")
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
//	meta              "version" -> decimal schema version
//	devices           device name -> JSON Device
//	issued            canonical serial (no leading zeros) -> JSON IssuedCertificate
//	issued-order      8-byte big-endian sequence -> canonical serial
//	issued-by-device  device name, 0x00, 8-byte big-endian sequence -> canonical serial
//
// The sequence is issued-order's bucket sequence, so both indexes list
// certificates in the order they were recorded.
const boltSchema = 1

var (
	bucketDevices  = []byte("devices")
	bucketIssued   = []byte("issued")
	bucketOrder    = []byte("issued-order")
	bucketByDevice = []byte("issued-by-device")

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
// with [ErrStoreVersion] if a newer version of this package wrote it, and
// with [ErrCorrupt] if it is not a store file.
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

func decodeDevice(name string, v []byte) (*Device, error) {
	d := new(Device)
	if err := json.Unmarshal(v, d); err != nil {
		return nil, fmt.Errorf("%w: device %q: %v", ErrCorrupt, name, err)
	}
	if d.Name != name {
		return nil, fmt.Errorf("%w: record of device %q names %q", ErrCorrupt, name, d.Name)
	}
	return d, nil
}

func decodeIssued(serial, v []byte) (*IssuedCertificate, error) {
	c := new(IssuedCertificate)
	if err := json.Unmarshal(v, c); err != nil {
		return nil, fmt.Errorf("%w: issued certificate %s: %v", ErrCorrupt, serial, err)
	}
	if key, err := checkIssued(c); err != nil || key != string(serial) {
		return nil, fmt.Errorf("%w: record of issued certificate %s has serial %q, device %q", ErrCorrupt, serial, c.Serial, c.Device)
	}
	return c, nil
}

// Device implements [Store].
func (s *BoltStore) Device(ctx context.Context, name string) (*Device, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if checkDeviceName(name) != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownDevice, name)
	}
	var d *Device
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDevices).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("%w: %q", ErrUnknownDevice, name)
		}
		var err error
		d, err = decodeDevice(name, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Devices implements [Store].
func (s *BoltStore) Devices(ctx context.Context) ([]*Device, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var ds []*Device
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		// Keys are in byte order, which is Go's string order.
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(string(k), v)
			if err != nil {
				return err
			}
			ds = append(ds, d)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// Update implements [Store]. Concurrent updates share one commit; fn runs
// inside it, so it must be quick and must not use the store.
func (s *BoltStore) Update(ctx context.Context, name string, create bool, fn func(*Device) error) error {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkDeviceName(name); err != nil {
		if create {
			return err
		}
		return fmt.Errorf("%w: %q", ErrUnknownDevice, name)
	}
	key := []byte(name)
	// An error that leaves the transaction unwritten (unknown device, fn's
	// error, a corrupt record) is passed out through fail rather than
	// returned to Batch, which would roll back and re-run every other
	// update in the batch, then run this one again alone. Batch may call
	// the closure more than once, so each call starts afresh.
	var fail error
	err = s.h.DB().Batch(func(tx *bolt.Tx) error {
		fail = nil
		b := tx.Bucket(bucketDevices)
		var d *Device
		if v := b.Get(key); v != nil {
			var err error
			if d, err = decodeDevice(name, v); err != nil {
				fail = err
				return nil
			}
		} else if create {
			d = &Device{Name: name}
		} else {
			fail = fmt.Errorf("%w: %q", ErrUnknownDevice, name)
			return nil
		}
		if err := fn(d); err != nil {
			fail = err
			return nil
		}
		if err := checkDevice(d, name); err != nil {
			fail = err
			return nil
		}
		v, err := json.Marshal(d)
		if err != nil {
			fail = fmt.Errorf("%w: device %q: %v", ErrInvalid, name, err)
			return nil
		}
		return b.Put(key, v)
	})
	if err != nil {
		return s.h.Wrap(err)
	}
	return fail
}

// Remove implements [Store].
func (s *BoltStore) Remove(ctx context.Context, name string) error {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if checkDeviceName(name) != nil {
		return nil // never stored
	}
	return s.h.Wrap(s.h.DB().Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).Delete([]byte(name))
	}))
}

// RecordIssued implements [Store].
func (s *BoltStore) RecordIssued(ctx context.Context, c *IssuedCertificate) error {
	key, err := checkIssued(c)
	if err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("%w: issued certificate %s: %v", ErrInvalid, c.Serial, err)
	}
	done, err := s.h.Begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	serial := []byte(key)
	var dup bool
	err = s.h.DB().Batch(func(tx *bolt.Tx) error {
		dup = false
		issued := tx.Bucket(bucketIssued)
		if issued.Get(serial) != nil {
			dup = true
			return nil
		}
		order := tx.Bucket(bucketOrder)
		seq, err := order.NextSequence() // rolled back with the transaction
		if err != nil {
			return err
		}
		var seqKey [8]byte
		binary.BigEndian.PutUint64(seqKey[:], seq)
		if err := issued.Put(serial, v); err != nil {
			return err
		}
		if err := order.Put(seqKey[:], serial); err != nil {
			return err
		}
		return tx.Bucket(bucketByDevice).Put(deviceIndexKey(c.Device, seqKey[:]), serial)
	})
	if err != nil {
		return s.h.Wrap(err)
	}
	if dup {
		return fmt.Errorf("%w: %s", ErrDuplicateSerial, c.Serial)
	}
	return nil
}

// deviceIndexKey returns the issued-by-device key: name, 0x00, then seq
// (empty seq for the prefix of all the device's keys). checkDeviceName
// keeps NUL out of names, so one device's prefix never matches another's.
func deviceIndexKey(name string, seq []byte) []byte {
	k := make([]byte, 0, len(name)+1+len(seq))
	k = append(k, name...)
	k = append(k, 0)
	return append(k, seq...)
}

// Issued implements [Store]. Oldest first means in the order recorded.
func (s *BoltStore) Issued(ctx context.Context, name string) ([]*IssuedCertificate, error) {
	done, err := s.h.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if name != "" && checkDeviceName(name) != nil {
		return nil, nil // never recorded
	}
	var cs []*IssuedCertificate
	err = s.h.DB().View(func(tx *bolt.Tx) error {
		issued := tx.Bucket(bucketIssued)
		get := func(serial []byte) error {
			v := issued.Get(serial)
			if v == nil {
				return fmt.Errorf("%w: index names issued certificate %s, which is not recorded", ErrCorrupt, serial)
			}
			c, err := decodeIssued(serial, v)
			if err != nil {
				return err
			}
			if name != "" && c.Device != name {
				return fmt.Errorf("%w: index lists issued certificate %s under device %q, but it names %q", ErrCorrupt, serial, name, c.Device)
			}
			cs = append(cs, c)
			return nil
		}
		if name == "" {
			return tx.Bucket(bucketOrder).ForEach(func(_, serial []byte) error { return get(serial) })
		}
		prefix := deviceIndexKey(name, nil)
		cur := tx.Bucket(bucketByDevice).Cursor()
		for k, serial := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, serial = cur.Next() {
			if err := get(serial); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// Close waits for calls under way, then closes the file. Closing a closed
// store does nothing.
func (s *BoltStore) Close() error { return s.h.Close() }
