package tftpd

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ipv6HostBits is the prefix under which IPv6 clients count as one host
// for MaxPerHost: a /64 is one IPv6 subnet (RFC 4291 §2.5.1), within which
// a host picks addresses at will (RFC 8981), so counting single addresses
// would bound nothing.
const ipv6HostBits = 64

// limiter bounds what transfers in progress hold: their number in all and
// per host, and the bytes they keep in memory.
type limiter struct {
	maxTransfers int
	perHost      int // 0: no per-host bound
	maxMemory    int64

	mu     sync.Mutex
	active int
	hosts  map[netip.Prefix]int
	memory int64

	lastWarn atomic.Int64 // when a refusal was last logged (Unix ns)
}

func newLimiter(maxTransfers, perHost int, maxMemory int64) *limiter {
	return &limiter{maxTransfers: maxTransfers, perHost: perHost, maxMemory: maxMemory, hosts: map[netip.Prefix]int{}}
}

// hostKey is the unit MaxPerHost counts in: an IPv4 address, or an IPv6
// /64 prefix. ok is false for no address.
func hostKey(a netip.Addr) (netip.Prefix, bool) {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	bits := 32
	if a.Is6() {
		bits = ipv6HostBits
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

// slot is one transfer's share of the limits.
type slot struct {
	l       *limiter
	key     netip.Prefix
	counted bool
	memory  int64
	done    bool
}

// acquire takes a transfer slot for a client at addr, or returns an error
// wrapping ErrBusy.
func (l *limiter) acquire(addr netip.Addr) (*slot, error) {
	key, counted := hostKey(addr)
	counted = counted && l.perHost > 0
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active >= l.maxTransfers {
		return nil, fmt.Errorf("%w: %d transfers in progress", ErrBusy, l.active)
	}
	if counted {
		if n := l.hosts[key]; n >= l.perHost {
			return nil, fmt.Errorf("%w: %d transfers in progress for host %s", ErrBusy, n, hostString(key))
		}
		l.hosts[key]++
	}
	l.active++
	return &slot{l: l, key: key, counted: counted}, nil
}

// reserve sets the bytes the slot holds to n, or returns an error
// wrapping ErrBusy if the transfers in progress would then hold more than
// MaxMemory; a slot that holds more than n gives the rest back. A nil
// slot (Server.Open) reserves nothing.
func (s *slot) reserve(n int64) error {
	if s == nil {
		return nil
	}
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > s.memory && l.memory+n-s.memory > l.maxMemory {
		return fmt.Errorf("%w: transfers in progress hold %d bytes (MaxMemory %d)", ErrBusy, l.memory, l.maxMemory)
	}
	l.memory += n - s.memory
	s.memory = n
	return nil
}

// release gives the slot back; later calls do nothing.
func (s *slot) release() {
	if s == nil {
		return
	}
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	l.memory -= s.memory
	l.active--
	if s.counted {
		if n := l.hosts[s.key] - 1; n > 0 {
			l.hosts[s.key] = n
		} else {
			delete(l.hosts, s.key)
		}
	}
}

func (l *limiter) inUse() (active int, memory int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active, l.memory
}

// warn reports whether a refusal may be logged now: at most once a
// second, so that a flood cannot fill the log.
func (l *limiter) warn() bool {
	now := time.Now().UnixNano()
	prev := l.lastWarn.Load()
	return now-prev > int64(time.Second) && l.lastWarn.CompareAndSwap(prev, now)
}

// hostString is key as logged: an IPv4 address alone, an IPv6 prefix.
func hostString(key netip.Prefix) string {
	if key.Addr().Is4() {
		return key.Addr().String()
	}
	return key.String()
}
