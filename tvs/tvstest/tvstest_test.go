package tvstest_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/suitetest"
	"github.com/ucsec/ucsec/tvs"
	"github.com/ucsec/ucsec/tvs/tvstest"
)

// Package tvs runs the suite on its own stores, which pass it
// (conformance_test.go there); these tests check that the suite catches
// stores that break the contract.

// faults are the stores with one fault each that the suite must fail,
// and the subtest that must catch it.
var faults = map[string]string{
	"unshared":         "PutGet",     // each handle keeps its own records (TestSharedStore)
	"absent-nil":       "Empty",      // Get of an absent key: nil, nil
	"delete-absent-ok": "Empty",      // Delete of an absent key: nil
	"short-keys":       "PutGet",     // keyed by the first 16 bytes of the sum
	"truncates":        "PutGet",     // keeps 65535 bytes of a record at most
	"shares-output":    "Copies",     // Get returns the held slice
	"keeps-input":      "Copies",     // Put holds the caller's slice
	"ignores-context":  "Context",    // never looks at ctx
	"replace-gap":      "Concurrent", // Put deletes, then inserts
	"stays-open":       "Close",      // Close does nothing
}

// TestFaultless: the faulty store without a fault passes, so that each
// fault is the only one.
func TestFaultless(t *testing.T) {
	tvstest.TestStore(t, func(t *testing.T) tvs.Store { return newFaulty("") })
}

// TestShared: two handles on one state pass the shared suite; the one
// handle of a store in memory, given twice, too.
func TestShared(t *testing.T) {
	tvstest.TestSharedStore(t, func(t *testing.T) (a, b tvs.Store) {
		m := map[string][]byte{}
		mu := new(sync.RWMutex)
		return &faulty{m: m, mu: mu}, &faulty{m: m, mu: mu}
	})
}

// TestFaults runs the suite on each faulty store in a child process,
// and checks that it fails, in the subtest that should catch the fault.
func TestFaults(t *testing.T) {
	suitetest.Faults(t, "TVSTEST_FAULT", faults, func(t *testing.T, fault string) {
		if fault == "unshared" {
			tvstest.TestSharedStore(t, func(t *testing.T) (a, b tvs.Store) {
				return newFaulty(""), newFaulty("")
			})
			return
		}
		tvstest.TestStore(t, func(t *testing.T) tvs.Store { return newFaulty(fault) })
	})
}

// newFaulty returns a store with the fault (none if "").
func newFaulty(fault string) *faulty {
	return &faulty{fault: fault, m: map[string][]byte{}, mu: new(sync.RWMutex)}
}

// faulty is a store in memory with one fault; without one, it keeps the
// contract.
type faulty struct {
	fault  string
	mu     *sync.RWMutex // shared by the handles of one state
	m      map[string][]byte
	closed bool
}

func (s *faulty) key(sum [32]byte) string {
	if s.fault == "short-keys" {
		return string(sum[:16])
	}
	return string(sum[:])
}

func (s *faulty) check(ctx context.Context) error {
	if s.fault != "ignores-context" {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if s.closed {
		return tvs.ErrStoreClosed
	}
	return nil
}

func (s *faulty) Get(ctx context.Context, sum [32]byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v, ok := s.m[s.key(sum)]
	switch {
	case !ok && s.fault == "absent-nil":
		return nil, nil
	case !ok:
		return nil, fmt.Errorf("%w: %x", tvs.ErrNotFound, sum)
	case s.fault == "shares-output":
		return v, nil
	}
	return bytes.Clone(v), nil
}

func (s *faulty) Put(ctx context.Context, sum [32]byte, record []byte) error {
	if s.fault == "replace-gap" {
		if err := s.Delete(ctx, sum); err != nil && ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	v := bytes.Clone(record)
	switch s.fault {
	case "keeps-input":
		v = record
	case "truncates":
		v = v[:min(len(v), 65535)]
	}
	s.m[s.key(sum)] = v
	return nil
}

func (s *faulty) Delete(ctx context.Context, sum [32]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if _, ok := s.m[s.key(sum)]; !ok && s.fault != "delete-absent-ok" {
		return fmt.Errorf("%w: %x", tvs.ErrNotFound, sum)
	}
	delete(s.m, s.key(sum))
	return nil
}

func (s *faulty) List(ctx context.Context) (map[[32]byte][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[[32]byte][]byte)
	for k, v := range maps.Clone(s.m) {
		var sum [32]byte
		copy(sum[:], k)
		out[sum] = bytes.Clone(v)
	}
	return out, nil
}

func (s *faulty) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault != "stays-open" {
		s.closed = true
	}
	return nil
}
