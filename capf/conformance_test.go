package capf_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/capf/capftest"
)

func TestMemoryStoreConformance(t *testing.T) {
	capftest.TestStore(t, func(t *testing.T) capf.Store {
		s := capf.NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltStoreConformance(t *testing.T) {
	capftest.TestStore(t, func(t *testing.T) capf.Store {
		s, err := capf.OpenBoltStore(filepath.Join(t.TempDir(), "capf.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Two handles on one MemoryStore, each closed on its own: a stand-in for
// a store in a database, to run TestSharedStore.
func TestMemoryStoreSharedConformance(t *testing.T) {
	capftest.TestSharedStore(t, func(t *testing.T) (capf.Store, capf.Store) {
		s := capf.NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return &handle{s: s}, &handle{s: s}
	})
}

// A handle is a capf.Store on a shared MemoryStore.
type handle struct {
	s      *capf.MemoryStore
	closed atomic.Bool
}

func (h *handle) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.closed.Load() {
		return capf.ErrStoreClosed
	}
	return nil
}

func (h *handle) Get(ctx context.Context, device string) ([]byte, error) {
	if err := h.check(ctx); err != nil {
		return nil, err
	}
	return h.s.Get(ctx, device)
}

func (h *handle) List(ctx context.Context) ([]capf.DeviceRecord, error) {
	if err := h.check(ctx); err != nil {
		return nil, err
	}
	return h.s.List(ctx)
}

func (h *handle) Update(ctx context.Context, device string, fn func([]byte) ([]byte, error)) error {
	if err := h.check(ctx); err != nil {
		return err
	}
	return h.s.Update(ctx, device, fn)
}

func (h *handle) RecordIssued(ctx context.Context, rec capf.IssuedRecord, fn func([]byte) ([]byte, error)) error {
	if err := h.check(ctx); err != nil {
		return err
	}
	return h.s.RecordIssued(ctx, rec, fn)
}

func (h *handle) Issued(ctx context.Context, device string) ([]capf.IssuedRecord, error) {
	if err := h.check(ctx); err != nil {
		return nil, err
	}
	return h.s.Issued(ctx, device)
}

func (h *handle) Close() error {
	h.closed.Store(true)
	return nil
}
