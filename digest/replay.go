package digest

import (
	"context"
	"encoding/hex"
	"sync"
	"time"
)

// A ReplayStore remembers which nonce counts have been used, so that a
// captured request cannot be sent again. It is the only state a [Server]
// keeps. Every server that accepts a nonce must use the same store: the
// servers of a cluster share one (a database, say), or a request captured
// on one node can be replayed once on each other node. [MemoryReplayStore]
// is the in-process one, for a single server.
type ReplayStore interface {
	// Use records that nonce count nc was used with the nonce whose
	// identifier is id, issued at issued and valid until expires, and
	// reports whether that was its first use. nc is 0 for a response
	// without qop, which may use its nonce only once and consumes it. A
	// store that cannot tell (it restarted after the nonce was issued, or
	// dropped its entry) must report false, never true. issued is the
	// moment the nonce was made, to the nanosecond, so a store that
	// started at t may accept the nonces issued at t or after and must
	// refuse the others. Entries may be dropped once their
	// nonce has expired, allowing for clock skew between the servers and
	// the store.
	Use(ctx context.Context, id NonceID, nc uint32, issued, expires time.Time) (bool, error)
}

// replayWindow is how far below the highest nonce count seen a count may
// arrive (parallel requests reorder them) and still be accepted once.
const replayWindow = 64

// DefaultMaxNonces is the capacity of a MemoryReplayStore whose MaxNonces
// is zero.
const DefaultMaxNonces = 100_000

// MemoryReplayStore is a [ReplayStore] in memory, for one server; safe for
// concurrent use. For each nonce it keeps the highest count seen and
// which of the 64 below it were used, so counts may arrive out of order
// but each only once. Entries leave a minute after their nonce expires.
//
// It refuses nonces issued before Start (or, if Start is zero, before its
// first use), to the nanosecond: after a restart it cannot know what the
// previous process accepted, however shortly before, so their clients get
// one stale challenge and a fresh nonce.
// When MaxNonces nonces are held, the oldest entry is dropped and every
// unknown nonce that expires no later than it is refused from then on, so
// that memory stays bounded without ever accepting a replay.
type MemoryReplayStore struct {
	// MaxNonces bounds the nonces held; zero means DefaultMaxNonces.
	MaxNonces int
	// Start is when the store began remembering; nonces issued before it
	// are refused. Zero means the time of the first Use. A Server that
	// makes its own store sets it to the time the Server starts.
	Start time.Time
	// Time returns the current time; nil means time.Now.
	Time func() time.Time

	mu    sync.Mutex
	m     map[NonceID]replayEntry
	order []NonceID // ring of keys in insertion order
	head  int       // index of the oldest key in order
	n     int       // keys in order
	floor int64     // unknown nonces expiring at or before this are refused
}

// NonceID identifies a nonce in a ReplayStore: its 96 random bits. A
// shared store may key on String().
type NonceID [nonceRandom]byte

// String returns the identifier in hexadecimal.
func (id NonceID) String() string { return hex.EncodeToString(id[:]) }

type replayEntry struct {
	expires  int64  // Unix seconds
	max      uint32 // highest count seen
	bits     uint64 // bit i: count max-i was used
	consumed bool   // used without qop: no further use
}

// replayGrace is how long after its nonce expires an entry is kept, for
// clock skew between the server and the store.
const replayGrace = time.Minute

// Use implements ReplayStore.
func (s *MemoryReplayStore) Use(_ context.Context, key NonceID, nc uint32, issued, expires time.Time) (bool, error) {
	now := time.Now
	if s.Time != nil {
		now = s.Time
	}
	exp := expires.Unix()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[NonceID]replayEntry)
		if s.Start.IsZero() {
			s.Start = now()
		}
	}
	s.expire(now().Add(-replayGrace).Unix())

	e, ok := s.m[key]
	if !ok {
		if exp <= s.floor || issued.Before(s.Start) {
			return false, nil // dropped, or before our time: cannot tell
		}
		switch {
		case s.n == s.capacity():
			s.dropOldest()
		case s.n == len(s.order):
			s.grow()
		}
		e = replayEntry{expires: exp, consumed: nc == 0}
		if nc != 0 {
			e.max, e.bits = nc, 1
		}
		s.m[key] = e
		s.order[(s.head+s.n)%len(s.order)] = key
		s.n++
		return true, nil
	}
	ok = s.use(&e, nc)
	s.m[key] = e
	return ok, nil
}

// use records count nc in e and reports whether it was new.
func (s *MemoryReplayStore) use(e *replayEntry, nc uint32) bool {
	switch {
	case e.consumed || nc == 0:
		e.consumed = true
		return false
	case nc > e.max:
		if shift := nc - e.max; shift >= 64 {
			e.bits = 1
		} else {
			e.bits = e.bits<<shift | 1
		}
		e.max = nc
		return true
	}
	d := e.max - nc
	if d >= replayWindow || e.bits&(1<<d) != 0 {
		return false
	}
	e.bits |= 1 << d
	return true
}

func (s *MemoryReplayStore) capacity() int {
	if s.MaxNonces > 0 {
		return s.MaxNonces
	}
	return DefaultMaxNonces
}

// expire removes entries, oldest first, whose nonce expired before t.
func (s *MemoryReplayStore) expire(t int64) {
	for s.n > 0 {
		if e, ok := s.m[s.order[s.head]]; ok && e.expires >= t {
			return
		}
		s.pop()
	}
}

// grow enlarges the ring of keys, up to the capacity.
func (s *MemoryReplayStore) grow() {
	size := min(max(2*len(s.order), 64), s.capacity())
	order := make([]NonceID, size)
	for i := range s.n {
		order[i] = s.order[(s.head+i)%len(s.order)]
	}
	s.order, s.head = order, 0
}

// dropOldest removes the oldest entry and raises the floor to its expiry.
func (s *MemoryReplayStore) dropOldest() {
	if e, ok := s.m[s.order[s.head]]; ok && e.expires > s.floor {
		s.floor = e.expires
	}
	s.pop()
}

func (s *MemoryReplayStore) pop() {
	delete(s.m, s.order[s.head])
	s.head = (s.head + 1) % len(s.order)
	s.n--
}

// Len returns the number of nonces held.
func (s *MemoryReplayStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
