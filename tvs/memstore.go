package tvs

import (
	"bytes"
	"context"
	"maps"
	"sync"
)

// A MemoryStore is a [Store] that keeps its records in memory, for tests
// and examples. It is safe for concurrent use: lookups share a read lock.
type MemoryStore struct {
	mu      sync.RWMutex
	closed  bool
	records map[[32]byte][]byte // never changed in place: replaced
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: make(map[[32]byte][]byte)}
}

// Get implements [Store].
func (s *MemoryStore) Get(ctx context.Context, sum [32]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	closed, v := s.closed, s.records[sum]
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrStoreClosed
	case v == nil:
		return nil, notFound(sum)
	}
	// Records are never changed in place, so v can be copied without
	// the lock.
	return bytes.Clone(v), nil
}

// Put implements [Store].
func (s *MemoryStore) Put(ctx context.Context, sum [32]byte, record []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := bytes.Clone(record)
	if v == nil {
		v = []byte{} // held, though empty: nil means absent
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	s.records[sum] = v
	return nil
}

// Delete implements [Store].
func (s *MemoryStore) Delete(ctx context.Context, sum [32]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	if s.records[sum] == nil {
		return notFound(sum)
	}
	delete(s.records, sum)
	return nil
}

// List implements [Store].
func (s *MemoryStore) List(ctx context.Context) (map[[32]byte][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrStoreClosed
	}
	records := maps.Clone(s.records)
	s.mu.RUnlock()
	for sum, v := range records {
		records[sum] = bytes.Clone(v)
	}
	return records, nil
}

// Close implements [Store]. Closing a closed store does nothing.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.records = nil
	return nil
}
