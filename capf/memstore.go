package capf

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// A MemoryStore is a [Store] that keeps everything in memory, for tests
// and examples. It is safe for concurrent use; several [Server]s may
// share one.
type MemoryStore struct {
	mu      sync.Mutex
	closed  bool
	records map[string][]byte
	issued  []IssuedRecord // in the order recorded
	serials map[string]bool
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: make(map[string][]byte), serials: make(map[string]bool)}
}

// lock checks ctx, then takes the mutex unless the store is closed. On a
// nil error the caller must unlock s.mu.
func (s *MemoryStore) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrStoreClosed
	}
	return nil
}

// Get implements [Store].
func (s *MemoryStore) Get(ctx context.Context, device string) ([]byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return bytes.Clone(s.records[device]), nil
}

// List implements [Store].
func (s *MemoryStore) List(ctx context.Context) ([]DeviceRecord, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	recs := make([]DeviceRecord, 0, len(s.records))
	for name, data := range s.records {
		recs = append(recs, DeviceRecord{Device: name, Data: bytes.Clone(data)})
	}
	slices.SortFunc(recs, func(a, b DeviceRecord) int { return strings.Compare(a.Device, b.Device) })
	return recs, nil
}

// Update implements [Store]. It calls fn once, with the store locked.
func (s *MemoryStore) Update(ctx context.Context, device string, fn func(old []byte) ([]byte, error)) error {
	if err := checkStoreName(device); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	data, err := s.apply(device, fn)
	if err != nil {
		return err
	}
	s.put(device, data)
	return nil
}

// apply runs fn on the device's record and returns a copy of the new one.
func (s *MemoryStore) apply(device string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	data, err := fn(bytes.Clone(s.records[device]))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecord {
		return nil, fmt.Errorf("%w: record of device %q is %d bytes (at most %d)", ErrInvalid, device, len(data), maxRecord)
	}
	return bytes.Clone(data), nil
}

func (s *MemoryStore) put(device string, data []byte) {
	if len(data) == 0 {
		delete(s.records, device)
	} else {
		s.records[device] = data
	}
}

// RecordIssued implements [Store].
func (s *MemoryStore) RecordIssued(ctx context.Context, rec IssuedRecord, fn func(old []byte) ([]byte, error)) error {
	if err := checkIssuedRecord(rec); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.serials[rec.Serial] {
		return fmt.Errorf("%w: %s", ErrDuplicateSerial, rec.Serial)
	}
	data, err := s.apply(rec.Device, fn)
	if err != nil {
		return err
	}
	s.put(rec.Device, data)
	s.serials[rec.Serial] = true
	rec.Data = bytes.Clone(rec.Data)
	s.issued = append(s.issued, rec)
	return nil
}

// Issued implements [Store].
func (s *MemoryStore) Issued(ctx context.Context, device string) ([]IssuedRecord, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var recs []IssuedRecord
	for _, rec := range s.issued {
		if device == "" || rec.Device == device {
			rec.Data = bytes.Clone(rec.Data)
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

// Close implements [Store]. Closing a closed store does nothing.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.records, s.issued, s.serials = nil, nil, nil
	return nil
}

// checkStoreName checks a device name a store receives to write (see
// [Store]): 1 to 64 printable ASCII bytes without spaces. Errors wrap
// [ErrInvalid].
func checkStoreName(device string) error {
	if device == "" || len(device) > maxDeviceName {
		return fmt.Errorf("%w: device name of %d bytes", ErrInvalid, len(device))
	}
	for i := 0; i < len(device); i++ {
		if c := device[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: device name %q has byte 0x%02x", ErrInvalid, device, c)
		}
	}
	return nil
}

// checkIssuedRecord checks a log entry a store receives (see [Store]).
func checkIssuedRecord(rec IssuedRecord) error {
	if err := checkStoreName(rec.Device); err != nil {
		return err
	}
	if !validSerial(rec.Serial) {
		return fmt.Errorf("%w: serial number %q", ErrInvalid, rec.Serial)
	}
	if len(rec.Data) == 0 || len(rec.Data) > maxRecord {
		return fmt.Errorf("%w: log entry of %d bytes", ErrInvalid, len(rec.Data))
	}
	return nil
}
