package digesttest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/digest/digesttest"
	"github.com/ucsec/ucsec/internal/suitetest"
)

// Package digest runs the suite on MemoryReplayStore, which passes it
// (replay_test.go there); these tests check that the suite catches
// stores that break the contract.

// faults are the stores with one fault each that the suite must fail,
// and the subtest that must catch it.
var faults = map[string]string{
	"unshared":          "FirstUse",   // each handle keeps its own uses (TestSharedReplayStore)
	"short-ids":         "FirstUse",   // keyed by the first 8 bytes of the identifier
	"no-window":         "Window",     // every count once, however far below the highest
	"window-65":         "Window",     // refuses counts more than 64 below the highest, not 64 or more
	"no-qop-reusable":   "NoQOP",      // count 0 does not consume the nonce
	"ignores-start":     "Start",      // accepts nonces issued before it started
	"start-in-seconds":  "Start",      // keeps its start to the second, rounded down
	"lazy-start":        "Start",      // a MemoryReplayStore without Start: it starts at its first use
	"stale-start":       "Start",      // keeps its start in the client when the engine is emptied
	"forgets-at-expiry": "Expiry",     // drops a nonce as it expires, then takes it as new
	"racy":              "Concurrent", // reads, then writes, without a lock between
	"ignores-context":   "Context",    // never looks at ctx
}

// engine is the state that the stale-start store shares across opens,
// as a Redis server would be.
var engine = newFaulty("stale-start")

// TestFaultless: the faulty store without a fault passes, so that each
// fault is the only one.
func TestFaultless(t *testing.T) {
	digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
		return newFaulty("")
	})
}

// TestShared: two handles on one state pass the shared suite.
func TestShared(t *testing.T) {
	digesttest.TestSharedReplayStore(t, func(t *testing.T) (a, b digest.ReplayStore) {
		s := newFaulty("")
		return s, &faulty{start: s.start, state: s.state}
	})
}

// TestFaults runs the suite on each faulty store in a child process,
// and checks that it fails, in the subtest that should catch the fault.
func TestFaults(t *testing.T) {
	suitetest.Faults(t, "DIGESTTEST_FAULT", faults, func(t *testing.T, fault string) {
		if fault == "unshared" {
			digesttest.TestSharedReplayStore(t, func(t *testing.T) (a, b digest.ReplayStore) {
				return newFaulty(""), newFaulty("")
			})
			return
		}
		digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
			switch fault {
			case "lazy-start":
				return &digest.MemoryReplayStore{}
			case "stale-start":
				// The engine is emptied behind the back of the store,
				// which keeps the start it had.
				engine.mu.Lock()
				clear(engine.ids)
				engine.mu.Unlock()
				return engine
			}
			return newFaulty(fault)
		})
	})
}

// newFaulty returns a store with the fault (none if ""), started now.
func newFaulty(fault string) *faulty {
	return &faulty{fault: fault, state: &state{m: map[[8]byte]*entry{}, ids: map[digest.NonceID]*entry{}}, start: time.Now()}
}

// faulty is a replay store in memory with one fault; without one, it
// keeps the contract. Several handles may share its state.
type faulty struct {
	fault string
	start time.Time
	*state
}

type state struct {
	mu  sync.Mutex
	m   map[[8]byte]*entry // by the first 8 bytes of the id, if short-ids
	ids map[digest.NonceID]*entry
}

type entry struct {
	expires  time.Time
	max      uint32
	bits     uint64
	used     map[uint32]bool // for no-window
	consumed bool
}

func (s *faulty) Use(ctx context.Context, id digest.NonceID, nc uint32, issued, expires time.Time) (bool, error) {
	if s.fault != "ignores-context" {
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
	start := s.start
	if s.fault == "start-in-seconds" {
		start = start.Truncate(time.Second)
	}
	if issued.Before(start) && s.fault != "ignores-start" {
		return false, nil
	}
	now := time.Now()
	if expires.Add(digest.ReplayGrace).Before(now) {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *entry
	var short [8]byte
	copy(short[:], id[:])
	if s.fault == "short-ids" {
		e = s.m[short]
	} else {
		e = s.ids[id]
	}
	if e != nil && s.fault == "forgets-at-expiry" && !now.Before(e.expires) {
		e = nil
	}
	var next entry
	if e != nil {
		next = *e
	} else {
		next = entry{expires: expires}
	}
	if s.fault == "racy" && e == nil {
		s.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		s.mu.Lock()
	}
	ok := next.use(nc, s.fault)
	if s.fault == "short-ids" {
		s.m[short] = &next
	} else {
		s.ids[id] = &next
	}
	return ok, nil
}

// use records count nc in e and reports whether it was new.
func (e *entry) use(nc uint32, fault string) bool {
	if nc == 0 {
		if fault == "no-qop-reusable" {
			return true
		}
		first := !e.consumed && e.max == 0
		e.consumed = true
		return first
	}
	if e.consumed {
		return false
	}
	if fault == "no-window" {
		if e.used == nil {
			e.used = map[uint32]bool{}
		}
		if e.used[nc] {
			return false
		}
		e.used[nc] = true
		return true
	}
	if nc > e.max {
		if shift := nc - e.max; shift >= 64 {
			e.bits = 1
		} else {
			e.bits = e.bits<<shift | 1
		}
		e.max = nc
		return true
	}
	d := e.max - nc
	limit := uint32(digest.ReplayWindow)
	if fault == "window-65" {
		limit++
	}
	if d >= limit || d < 64 && e.bits&(1<<d) != 0 {
		return false
	}
	if d < 64 {
		e.bits |= 1 << d
	}
	return true
}
