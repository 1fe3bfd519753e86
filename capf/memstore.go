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
// and examples. It checks its arguments as [BoltStore] does. It is safe
// for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	closed  bool
	devices map[string]*Device
	issued  []*IssuedCertificate // in the order recorded
	serials map[string]bool      // keys from checkIssued
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{devices: make(map[string]*Device), serials: make(map[string]bool)}
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

// Device implements [Store].
func (s *MemoryStore) Device(ctx context.Context, name string) (*Device, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	d, ok := s.devices[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownDevice, name)
	}
	return cloneDevice(d), nil
}

// Devices implements [Store].
func (s *MemoryStore) Devices(ctx context.Context) ([]*Device, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ds := make([]*Device, 0, len(s.devices))
	for _, d := range s.devices {
		ds = append(ds, cloneDevice(d))
	}
	slices.SortFunc(ds, func(a, b *Device) int { return strings.Compare(a.Name, b.Name) })
	return ds, nil
}

// Update implements [Store]. It calls fn once, with the store locked, so
// fn must not use the store.
func (s *MemoryStore) Update(ctx context.Context, name string, create bool, fn func(*Device) error) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	var d *Device
	if old, ok := s.devices[name]; ok {
		d = cloneDevice(old)
	} else if !create {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, name)
	} else if err := checkDeviceName(name); err != nil {
		return err
	} else {
		d = &Device{Name: name}
	}
	if err := fn(d); err != nil {
		return err
	}
	if err := checkDevice(d, name); err != nil {
		return err
	}
	// Copy again: fn may keep pointers into d.
	d = cloneDevice(d)
	if d.Pending != nil {
		// As BoltStore reads it back: KeyDefault is encoded as its
		// meaning, RSA2048.
		d.Pending.Key = d.Pending.Key.resolve()
	}
	s.devices[name] = d
	return nil
}

// Remove implements [Store].
func (s *MemoryStore) Remove(ctx context.Context, name string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.devices, name)
	return nil
}

// RecordIssued implements [Store].
func (s *MemoryStore) RecordIssued(ctx context.Context, c *IssuedCertificate) error {
	key, err := checkIssued(c)
	if err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.serials[key] {
		return fmt.Errorf("%w: %s", ErrDuplicateSerial, c.Serial)
	}
	s.serials[key] = true
	s.issued = append(s.issued, cloneIssued(c))
	return nil
}

// Issued implements [Store]. Oldest first means in the order recorded.
func (s *MemoryStore) Issued(ctx context.Context, name string) ([]*IssuedCertificate, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var cs []*IssuedCertificate
	for _, c := range s.issued {
		if name == "" || c.Device == name {
			cs = append(cs, cloneIssued(c))
		}
	}
	return cs, nil
}

// Close implements [Store]. Closing a closed store does nothing.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.devices, s.issued, s.serials = nil, nil, nil
	return nil
}

func cloneDevice(d *Device) *Device {
	c := *d
	if d.Pending != nil {
		p := *d.Pending
		c.Pending = &p
	}
	if d.Last != nil {
		r := *d.Last
		c.Last = &r
	}
	c.Certificate = bytes.Clone(d.Certificate)
	c.Fetched = bytes.Clone(d.Fetched)
	return &c
}

func cloneIssued(c *IssuedCertificate) *IssuedCertificate {
	d := *c
	d.DER = bytes.Clone(c.DER)
	return &d
}
