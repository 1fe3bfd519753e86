package digest

import (
	"context"
	"encoding/hex"
	"math"
	"sync"
	"time"
)

// A ReplayStore remembers which nonce counts have been used, so that a
// captured request cannot be sent again. It is the only state a [Server]
// keeps. Every server that accepts a nonce must use the same store: the
// servers of a cluster share one (Redis, a database), or a request
// captured on one node can be replayed once on each other node.
// [MemoryReplayStore] is the in-process one, for a single server. Package
// digest/digesttest checks that a ReplayStore keeps this contract: run
// its TestReplayStore in the store's tests, and its TestSharedReplayStore
// too for a store that several servers share.
//
// The Server calls Use only for a response that verified, on a nonce of
// its own that has not expired, and accepts the request only if Use
// reports true with a nil error. An implementation must:
//
//   - Be safe for concurrent use, by any number of servers, each Use
//     atomic: of concurrent uses of one count of one nonce, one at most
//     is accepted. Nonces are independent of each other.
//   - Accept each count of a nonce once at most, and keep a window for
//     counts that arrive out of order (parallel requests): per nonce,
//     the highest count accepted and which of the [ReplayWindow]-1
//     counts below it were. A count above the highest is accepted; one
//     less than ReplayWindow below it, if not used yet, too; one that is
//     ReplayWindow or more below the highest is refused.
//   - Take count 0, a response without qop (RFC 2069), as the nonce's
//     only use: a use with count 0 consumes the nonce. It is accepted if
//     it is the nonce's first use, and every later use of the nonce,
//     with any count, is refused.
//   - Report false whenever it cannot tell whether a count was used: it
//     must never accept a use it may have seen before. So a store has a
//     start, the moment from which it knows every use, and refuses every
//     nonce issued before it: issued is exact to the nanosecond, and a
//     nonce issued even a moment before the start may have been used.
//     A new store's start is no later than the moment it is ready for
//     use, and no earlier than the moment it began empty. A store that
//     may have lost uses it reported (a restart without persistence, the
//     reload of an older snapshot, a failover to a replica that lagged,
//     an eviction) must notice, and move its start to the moment it
//     noticed: a shared store keeps its start in the store itself, so
//     that the loss takes the start with the rest and the next Use sets
//     a new one, and treats anything that may lose acknowledged writes
//     without losing the start (a restart that reloads a snapshot or an
//     append-only file synced once a second, say) as a loss, for
//     instance by storing next to the start an identifier of the
//     engine's run (Redis's run_id) and moving the start when it
//     changes.
//   - Keep a nonce's uses until [ReplayGrace] after it expires, which
//     allows for clock skew between the servers and the store, and
//     refuse a nonce that expired more than ReplayGrace before. A store
//     that bounds its memory, and forgets a nonce early, refuses that
//     nonce from then on (see [MemoryReplayStore]).
//   - Honour ctx: a Use whose ctx is done before it starts returns false
//     and an error wrapping ctx.Err(), having recorded nothing; one that
//     ctx cuts short returns false and an error wrapping ctx.Err(),
//     whether or not it recorded the use.
//   - Report false with any error. An error means that the store cannot
//     answer (it cannot be reached, say): the Server then refuses the
//     request ([Server.Verify] returns the error, and [Server.Answer]
//     gives 500), and never accepts it: it fails closed. A nonce the
//     store refuses because it cannot tell (one issued before its start,
//     one it forgot) is not an error: false alone gets the client a
//     stale challenge and a fresh nonce, and it retries at once.
//
// issued and expires are on the servers' clocks, which the servers of a
// cluster keep in step (within a few seconds); a store that compares them
// with a clock of its own must allow for the difference, on the side of
// refusing.
type ReplayStore interface {
	// Use records that nonce count nc was used with the nonce whose
	// identifier is id, issued at issued and valid until expires, and
	// reports whether that was its first use. nc is 0 for a response
	// without qop, which may use its nonce only once and consumes it.
	Use(ctx context.Context, id NonceID, nc uint32, issued, expires time.Time) (bool, error)
}

// ReplayWindow is how many counts of a nonce a [ReplayStore] keeps track
// of: the highest count seen and those below it, down to
// ReplayWindow-1 below, may each be used once, in any order; a count
// ReplayWindow or more below the highest is refused.
const ReplayWindow = 64

// ReplayGrace is how long after its nonce expires a [ReplayStore] keeps
// its uses, for clock skew between the servers and the store, and after
// which it refuses the nonce.
const ReplayGrace = time.Minute

// DefaultMaxNonces is the capacity of a MemoryReplayStore whose MaxNonces
// is zero.
const DefaultMaxNonces = 100_000

// MemoryReplayStore is a [ReplayStore] in memory, for one server; safe for
// concurrent use. For each nonce it keeps the highest count seen and
// which of the [ReplayWindow]-1 (63) below it were used, so counts may
// arrive out of order but each only once. Entries leave [ReplayGrace] (a
// minute) after their nonce expires; the nonce is refused from then on.
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

// A replayEntry is 16 bytes, so that a map slot with its key is 32.
type replayEntry struct {
	bits    uint64 // bit i: count max-i was used
	expires uint32 // Unix seconds, saturated at 2106
	max     uint32 // highest count seen; 0: used without qop, no further use
}

// expiry returns t's Unix seconds as a replayEntry keeps them: t is at
// least the cutoff of Use, positive; a later time than 32 bits hold keeps
// the entry until then, which only errs on the side of refusing.
func expiry(t int64) uint32 { return uint32(min(t, math.MaxUint32)) }

// Use implements [ReplayStore].
func (s *MemoryReplayStore) Use(ctx context.Context, key NonceID, nc uint32, issued, expires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
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
	cutoff := now().Add(-ReplayGrace).Unix()
	if exp < cutoff {
		return false, nil // expired long ago: its entry may be gone
	}
	s.expire(cutoff)

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
		e = replayEntry{expires: expiry(exp)}
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
	case e.max == 0 || nc == 0:
		e.max, e.bits = 0, 0
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
	if d >= ReplayWindow || e.bits&(1<<d) != 0 {
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
		if e, ok := s.m[s.order[s.head]]; ok && int64(e.expires) >= t {
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
	if e, ok := s.m[s.order[s.head]]; ok && int64(e.expires) > s.floor {
		s.floor = int64(e.expires)
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
