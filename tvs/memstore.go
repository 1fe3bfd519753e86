package tvs

import (
	"context"
	"sync"
)

// A MemoryStore is a [Store] that keeps its entries in memory, for tests
// and examples. It checks entries as [BoltStore] does. It is safe for
// concurrent use: lookups share a read lock.
type MemoryStore struct {
	mu      sync.RWMutex
	closed  bool
	records map[[32]byte]*record
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: make(map[[32]byte]*record)}
}

// Lookup implements [Store].
func (s *MemoryStore) Lookup(ctx context.Context, sum [32]byte) (*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	closed, r := s.closed, s.records[sum]
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrStoreClosed
	case r == nil:
		return nil, notFound(sum)
	}
	// Records never change, so r can be copied out without the lock.
	return r.entry()
}

// Put implements [Store].
func (s *MemoryStore) Put(ctx context.Context, e *Entry) error {
	r, err := newRecord(e)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	s.records[r.sum] = r
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

// Entries implements [Store].
func (s *MemoryStore) Entries(ctx context.Context) ([]*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrStoreClosed
	}
	rs := make([]*record, 0, len(s.records))
	for _, r := range s.records {
		rs = append(rs, r)
	}
	s.mu.RUnlock()
	es := make([]*Entry, len(rs))
	for i, r := range rs {
		var err error
		if es[i], err = r.entry(); err != nil {
			return nil, err
		}
	}
	sortEntries(es)
	return es, nil
}

// Close implements [Store]. Closing a closed store does nothing.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.records = nil
	return nil
}
