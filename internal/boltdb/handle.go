package boltdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultTimeout is the lock timeout [OpenHandle] uses for a zero one.
const DefaultTimeout = time.Second

// Sentinels are the errors a store package reports a [Handle]'s failures
// under, and the prefix its other errors start with.
type Sentinels struct {
	// Prefix is the package's error prefix, without the colon: "capf".
	Prefix string
	// Locked, Version and Corrupt stand for [ErrLocked], [ErrVersion]
	// and [ErrCorrupt] (see [Error.With]).
	Locked, Version, Corrupt error
	// Invalid reports a negative timeout.
	Invalid error
	// Closed reports use of a closed Handle.
	Closed error
}

// A Handle is an open store file as a store package's BoltStore holds
// it: the database, the file's path for error messages, and a lock that
// lets Close wait for the calls under way. Its methods are safe for
// concurrent use.
type Handle struct {
	db      *bolt.DB
	path    string
	s       Sentinels
	runlock func() // mu.RUnlock, bound once so that Begin does not allocate

	// mu is held for reading by each call (from Begin to done), and for
	// writing by Close, so that Close waits for calls under way.
	mu     sync.RWMutex
	closed bool
}

// OpenHandle opens the store file at path with [Open], waiting up to
// timeout for its lock; zero means [DefaultTimeout], and a negative one
// fails with s.Invalid (the timeout is the store packages'
// BoltOptions.Timeout). Open's errors are reported under s: an [*Error]
// with the sentinel of its kind, any other error with the prefix
// "<s.Prefix>: open store: ".
func OpenHandle(path string, timeout time.Duration, schema *Schema, s Sentinels) (*Handle, error) {
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("%w: negative BoltOptions.Timeout %v", s.Invalid, timeout)
	}
	db, err := Open(path, timeout, schema)
	if err != nil {
		return nil, s.openError(err)
	}
	h := &Handle{db: db, path: path, s: s}
	h.runlock = h.mu.RUnlock
	return h, nil
}

// openError maps an error from Open to s.
func (s *Sentinels) openError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		switch e.Kind {
		case ErrLocked:
			return e.With(s.Locked)
		case ErrVersion:
			return e.With(s.Version)
		case ErrCorrupt:
			return e.With(s.Corrupt)
		}
	}
	return fmt.Errorf("%s: open store: %w", s.Prefix, err)
}

// Begin starts a call: it checks ctx, then that h is open, and holds
// Close off until the caller calls done. On an error (ctx's, or
// Sentinels.Closed) there is nothing to call.
func (h *Handle) Begin(ctx context.Context) (done func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return nil, h.s.Closed
	}
	return h.runlock, nil
}

// DB returns the database, for use between Begin and done.
func (h *Handle) DB() *bolt.DB { return h.db }

// Wrap gives a bbolt error the package prefix and the file's path:
// "<prefix>: store <path>: <err>". Wrap(nil) is nil.
func (h *Handle) Wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: store %s: %w", h.s.Prefix, h.path, err)
}

// Close waits for calls under way, then closes the file (an error from
// that is wrapped as by Wrap). Closing a closed Handle does nothing.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	return h.Wrap(h.db.Close())
}
