package capftest_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/capf/capftest"
	"github.com/ucsec/ucsec/internal/suitetest"
)

// Package capf runs the suite on its own stores, which pass it
// (conformance_test.go there); these tests check that the suite catches
// stores that break the contract.

// faults are the stores with one fault each that the suite must fail,
// and the subtest that must catch it.
var faults = map[string]string{
	"unshared":          "RoundTrip",        // each handle keeps its own records (TestSharedStore)
	"unsorted-list":     "RoundTrip",        // List in no order
	"truncates":         "RoundTrip",        // keeps 65535 bytes of a record at most
	"empty-kept":        "ReplaceAndDelete", // an empty record is stored, not a delete
	"fn-error-writes":   "FnError",          // Update stores fn's result despite its error
	"log-apart":         "FnError",          // RecordIssued logs, then updates the record apart
	"first-call-wins":   "LastCallWins",     // calls fn twice, stores the first result
	"shares-output":     "Copies",           // Get returns the held slice
	"keeps-input":       "Copies",           // Update holds fn's slice
	"lost-update":       "UpdateConcurrent", // Update reads, lets go, then writes
	"serial-per-device": "RecordIssued",     // serials unique per device only
	"prefix-filter":     "IssuedOrder",      // Issued(device) matches names that start with it
	"log-by-serial":     "IssuedOrder",      // Issued in serial order
	"ignores-context":   "Context",          // never looks at ctx
	"stays-open":        "Close",            // Close does nothing
}

// TestFaultless: the faulty store without a fault passes, so that each
// fault is the only one.
func TestFaultless(t *testing.T) {
	capftest.TestStore(t, func(t *testing.T) capf.Store { return newFaulty("") })
}

// TestShared: two handles on one state pass the shared suite.
func TestShared(t *testing.T) {
	capftest.TestSharedStore(t, func(t *testing.T) (a, b capf.Store) {
		s := newFaulty("")
		return s, &faulty{state: s.state}
	})
}

// TestFaults runs the suite on each faulty store in a child process,
// and checks that it fails, in the subtest that should catch the fault.
func TestFaults(t *testing.T) {
	suitetest.Faults(t, "CAPFTEST_FAULT", faults, func(t *testing.T, fault string) {
		if fault == "unshared" {
			capftest.TestSharedStore(t, func(t *testing.T) (a, b capf.Store) {
				return newFaulty(""), newFaulty("")
			})
			return
		}
		capftest.TestStore(t, func(t *testing.T) capf.Store { return newFaulty(fault) })
	})
}

// state is what the handles of one faulty store share.
type state struct {
	mu      sync.Mutex
	records map[string][]byte
	log     []capf.IssuedRecord
}

// faulty is a store in memory with one fault; without one, it keeps the
// contract.
type faulty struct {
	fault  string
	state  *state
	closed bool // under state.mu
}

func newFaulty(fault string) *faulty {
	return &faulty{fault: fault, state: &state{records: map[string][]byte{}}}
}

// lock checks ctx and Close, and locks the state.
func (s *faulty) lock(ctx context.Context) error {
	if s.fault != "ignores-context" {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	s.state.mu.Lock()
	if s.closed {
		s.state.mu.Unlock()
		return capf.ErrStoreClosed
	}
	return nil
}

func (s *faulty) Get(ctx context.Context, device string) ([]byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.state.mu.Unlock()
	v := s.state.records[device]
	if s.fault == "shares-output" {
		return v, nil
	}
	return bytes.Clone(v), nil
}

func (s *faulty) List(ctx context.Context) ([]capf.DeviceRecord, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.state.mu.Unlock()
	var recs []capf.DeviceRecord
	for name, v := range s.state.records {
		recs = append(recs, capf.DeviceRecord{Device: name, Data: bytes.Clone(v)})
	}
	if s.fault != "unsorted-list" {
		slices.SortFunc(recs, func(a, b capf.DeviceRecord) int { return strings.Compare(a.Device, b.Device) })
	} else {
		slices.SortFunc(recs, func(a, b capf.DeviceRecord) int { return strings.Compare(b.Device, a.Device) })
	}
	return recs, nil
}

// apply runs fn on the device's record and stores the result; the state
// is locked.
func (s *faulty) apply(device string, fn func([]byte) ([]byte, error)) error {
	old := bytes.Clone(s.state.records[device])
	v, err := fn(old)
	if s.fault == "first-call-wins" && err == nil {
		fn(old)
	}
	if err != nil {
		if s.fault != "fn-error-writes" || v == nil {
			return err
		}
	}
	s.put(device, v)
	return err
}

func (s *faulty) put(device string, v []byte) {
	switch {
	case len(v) == 0 && (s.fault != "empty-kept" || v == nil):
		delete(s.state.records, device)
	case s.fault == "keeps-input":
		s.state.records[device] = v
	case s.fault == "truncates":
		s.state.records[device] = bytes.Clone(v[:min(len(v), 65535)])
	default:
		s.state.records[device] = bytes.Clone(v)
	}
}

func (s *faulty) Update(ctx context.Context, device string, fn func([]byte) ([]byte, error)) error {
	if s.fault == "lost-update" {
		old, err := s.Get(ctx, device)
		if err != nil {
			return err
		}
		runtime.Gosched()
		v, err := fn(old)
		if err != nil {
			return err
		}
		if err := s.lock(ctx); err != nil {
			return err
		}
		defer s.state.mu.Unlock()
		s.put(device, v)
		return nil
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.state.mu.Unlock()
	return s.apply(device, fn)
}

func (s *faulty) RecordIssued(ctx context.Context, rec capf.IssuedRecord, fn func([]byte) ([]byte, error)) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	for _, r := range s.state.log {
		if r.Serial == rec.Serial && (s.fault != "serial-per-device" || r.Device == rec.Device) {
			s.state.mu.Unlock()
			return fmt.Errorf("%w: %s", capf.ErrDuplicateSerial, rec.Serial)
		}
	}
	rec.Data = bytes.Clone(rec.Data)
	if s.fault == "log-apart" {
		s.state.log = append(s.state.log, rec)
		s.state.mu.Unlock()
		return s.Update(ctx, rec.Device, fn)
	}
	defer s.state.mu.Unlock()
	if err := s.apply(rec.Device, fn); err != nil {
		return err
	}
	s.state.log = append(s.state.log, rec)
	return nil
}

func (s *faulty) Issued(ctx context.Context, device string) ([]capf.IssuedRecord, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.state.mu.Unlock()
	var recs []capf.IssuedRecord
	for _, r := range s.state.log {
		if device == "" || r.Device == device || s.fault == "prefix-filter" && strings.HasPrefix(r.Device, device) {
			r.Data = bytes.Clone(r.Data)
			recs = append(recs, r)
		}
	}
	if s.fault == "log-by-serial" {
		slices.SortStableFunc(recs, func(a, b capf.IssuedRecord) int { return strings.Compare(a.Serial, b.Serial) })
	}
	return recs, nil
}

func (s *faulty) Close() error {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if s.fault != "stays-open" {
		s.closed = true
	}
	return nil
}
