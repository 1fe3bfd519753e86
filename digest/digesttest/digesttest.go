package digesttest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/digest"
)

// validity is how long the nonces of the suite are valid, as a Server's
// are by default.
const validity = digest.DefaultNonceValidity

// TestReplayStore checks that the stores open returns keep the contract
// of [digest.ReplayStore]: each count accepted once, the window of
// [digest.ReplayWindow] counts, count 0 for a single use, the start
// before which nonces are refused, uses kept past expiry for
// [digest.ReplayGrace], atomic uses under concurrency, and context
// cancellation. It runs in well under a second against a store in
// memory, and does a few thousand uses in all, of at most a few hundred
// nonces at a time.
//
// open is called once for each subtest, in turn (subtests do not run in
// parallel), and returns a new store: one that remembers no use, and
// whose start is no earlier than the moment open was called and no later
// than the moment it returns (a [digest.MemoryReplayStore] with Start set
// to the time it is made, say). The suite takes that as the store's
// start: nonces issued before open was called must be refused, nonces
// issued after it returned accepted. open may prepare what the store
// needs (an empty database), and should release the store when t ends
// (t.Cleanup). A store of a shared engine can be tested as a cluster
// uses it: open may empty the engine behind the back of a store that is
// already in use and return that store, which must notice the loss and
// start anew.
//
// The suite issues nonces on the local clock (time.Now), as the servers
// of a cluster do on theirs; their issue times, like those of a Server's
// nonces, carry no monotonic clock reading.
func TestReplayStore(t *testing.T, open func(t *testing.T) digest.ReplayStore) {
	t.Helper()
	run(t, func(t *testing.T) (a, b digest.ReplayStore) {
		s := open(t)
		return s, s
	})
}

// TestSharedReplayStore checks a [digest.ReplayStore] of which several
// handles (the servers of a cluster, each with its own connection)
// share one state, such as a store in Redis: what one accepts, the other
// must refuse. open returns two handles, opened separately, on a new
// store, as for [TestReplayStore]. The suite runs the checks of
// TestReplayStore with the uses of each nonce spread over both handles,
// concurrent ones too. A shared store should pass TestReplayStore as
// well.
func TestSharedReplayStore(t *testing.T, open func(t *testing.T) (a, b digest.ReplayStore)) {
	t.Helper()
	run(t, open)
}

// run runs the suite on the handles open returns (the same one twice,
// unless shared).
func run(t *testing.T, open func(t *testing.T) (a, b digest.ReplayStore)) {
	for _, tc := range []struct {
		name string
		test func(c *tester)
	}{
		{"FirstUse", testFirstUse},
		{"Window", testWindow},
		{"NoQOP", testNoQOP},
		{"Start", testStart},
		{"Expiry", testExpiry},
		{"Concurrent", testConcurrent},
		{"Context", testContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := now()
			a, b := open(t)
			after := now()
			if a == nil || b == nil {
				t.Fatal("open returned a nil store")
			}
			c := &tester{t: t, handles: [2]digest.ReplayStore{a, b}, before: before, after: after, issued: after, expires: after.Add(validity)}
			if !c.use(newID(), 1) {
				t.Fatal("the first use of a nonce issued after open returned was refused: has the store not started yet (a MemoryReplayStore without Start starts at its first use)?")
			}
			tc.test(c)
		})
	}
}

// A tester uses nonces of one store, through its handles in turn.
type tester struct {
	t       *testing.T
	handles [2]digest.ReplayStore
	calls   atomic.Uint32
	before  time.Time // when open was called
	after   time.Time // when open returned
	issued  time.Time // of the nonces used by default
	expires time.Time
}

// next returns the handle of the next use: each in turn.
func (c *tester) next() digest.ReplayStore {
	return c.handles[c.calls.Add(1)%2]
}

// now returns the current time as a nonce carries it: Unix nanoseconds,
// without a monotonic clock reading.
func now() time.Time { return time.Unix(0, time.Now().UnixNano()) }

// newID returns a random nonce identifier, as a Server makes them.
func newID() digest.NonceID {
	var id digest.NonceID
	rand.Read(id[:])
	return id
}

// use calls Use with the tester's issue and expiry times and reports its
// answer; an error fails the test.
func (c *tester) use(id digest.NonceID, nc uint32) bool {
	c.t.Helper()
	return c.useAt(id, nc, c.issued, c.expires)
}

func (c *tester) useAt(id digest.NonceID, nc uint32, issued, expires time.Time) bool {
	c.t.Helper()
	ok, err := c.next().Use(context.Background(), id, nc, issued, expires)
	if err != nil {
		c.t.Fatalf("Use(%s, nc %d): %v", id, nc, err)
	}
	return ok
}

// want checks the answers to uses of id with the counts ncs, in order.
func (c *tester) want(id digest.NonceID, accepted bool, ncs ...uint32) {
	c.t.Helper()
	for _, nc := range ncs {
		if got := c.use(id, nc); got != accepted {
			c.t.Errorf("Use(%s, nc %d) = %v, want %v", id, nc, got, accepted)
		}
	}
}

func testFirstUse(c *tester) {
	a := newID()
	c.want(a, true, 1)
	c.want(a, false, 1, 1)
	c.want(a, true, 2)
	c.want(a, false, 2, 1)

	// Nonces are independent, even those whose identifiers differ in
	// one bit of their first or last byte, or hold zero bytes.
	b := a
	b[0] ^= 1
	d := a
	d[len(d)-1] ^= 0x80
	var zero, ones digest.NonceID
	for i := range ones {
		ones[i] = 0xff
	}
	for _, id := range []digest.NonceID{b, d, zero, ones} {
		c.want(id, true, 1, 2)
		c.want(id, false, 1, 2)
	}
	// Many nonces, each used once.
	ids := make([]digest.NonceID, 100)
	for i := range ids {
		ids[i] = newID()
		c.want(ids[i], true, 1)
	}
	for _, id := range ids {
		c.want(id, false, 1)
	}
	c.want(a, false, 1, 2)
}

func testWindow(c *tester) {
	const w = digest.ReplayWindow

	// Out of order within the window: each once.
	a := newID()
	c.want(a, true, 5, 3, 4, 1, 2)
	c.want(a, false, 1, 2, 3, 4, 5)
	// The highest moves to 5+w: 5 is now w below it, out of the window;
	// 6 is w-1 below, in it.
	c.want(a, true, 5+w)
	c.want(a, false, 5, 4, 1)
	c.want(a, true, 6, 7)
	c.want(a, false, 6, 7, 5+w)
	// A jump further than the window: everything below it is forgotten
	// and refused, the window starts anew.
	high := uint32(5 + w + 1000)
	c.want(a, true, high)
	c.want(a, false, 5+w, high-w, 6+w)
	c.want(a, true, high-w+1, high-1)
	c.want(a, false, high-w+1, high-1, high)

	// A count of 1 and then w+1: 1 is w below, refused; 2 is not.
	b := newID()
	c.want(b, true, 1, w+1)
	c.want(b, false, 1)
	c.want(b, true, 2)

	// The top of the 32-bit range.
	d := newID()
	const top = ^uint32(0)
	c.want(d, true, top, top-w+1)
	c.want(d, false, top, top-w, top-w+1, 1)

	// A count below the window stays refused; the lowest count in it is
	// still accepted.
	e := newID()
	c.want(e, true, 100)
	c.want(e, false, 100-w, 100-w)
	c.want(e, true, 100-w+1)
}

func testNoQOP(c *tester) {
	// Count 0 as the first use: accepted once, and the nonce is used up.
	a := newID()
	c.want(a, true, 0)
	c.want(a, false, 0, 1, 2, 0)

	// Count 0 after counts: refused, and it uses the nonce up too.
	b := newID()
	c.want(b, true, 1)
	c.want(b, false, 0)
	c.want(b, false, 2, 3, 0)

	// Another nonce is not affected.
	d := newID()
	c.want(d, true, 1, 2)
}

func testStart(c *tester) {
	t, before, after := c.t, c.before, c.after
	// Issued before the store began (however shortly): it cannot know
	// whether another store, or itself before it lost its state,
	// accepted them. They stay refused.
	for _, d := range []time.Duration{time.Nanosecond, time.Microsecond, 999 * time.Millisecond, time.Second, time.Hour, validity - time.Second} {
		issued := before.Add(-d)
		id := newID()
		for _, nc := range []uint32{1, 0, 2, 1} {
			if c.useAt(id, nc, issued, issued.Add(validity)) {
				t.Errorf("a nonce issued %v before the store was opened accepted with nc %d", d, nc)
			}
		}
	}
	// Issued once open returned: accepted, once.
	for _, d := range []time.Duration{0, time.Nanosecond, time.Millisecond, time.Second} {
		issued := after.Add(d)
		id := newID()
		if !c.useAt(id, 1, issued, issued.Add(validity)) {
			t.Errorf("a nonce issued %v after open returned refused", d)
		}
		if c.useAt(id, 1, issued, issued.Add(validity)) {
			t.Errorf("a nonce issued %v after open returned accepted twice", d)
		}
	}
	id := newID()
	if !c.useAt(id, 0, after, after.Add(time.Second)) {
		t.Error("a nonce without qop issued after open returned refused")
	}
}

func testExpiry(c *tester) {
	t := c.t
	// A nonce that expires at once: its uses are kept for ReplayGrace
	// after that, which allows for servers whose clocks are behind.
	issued := now()
	expires := issued.Add(100 * time.Millisecond)
	a, b := newID(), newID()
	if !c.useAt(a, 1, issued, expires) || !c.useAt(b, 0, issued, expires) {
		if time.Now().Before(expires) {
			t.Fatal("fresh nonces refused")
		}
		t.Skip("the nonces expired before their first use (a slow machine): a store may refuse them")
	}
	time.Sleep(time.Until(expires) + 50*time.Millisecond)
	if c.useAt(a, 1, issued, expires) {
		t.Error("a count accepted again just after its nonce expired")
	}
	if c.useAt(b, 0, issued, expires) {
		t.Error("a nonce without qop accepted again just after it expired")
	}
	// Other nonces are not affected.
	c.want(newID(), true, 1)
}

func testConcurrent(c *tester) {
	t := c.t
	const (
		w          = digest.ReplayWindow
		goroutines = 8
	)
	ctx := context.Background()
	var errs sync.Map // first error
	use := func(id digest.NonceID, nc uint32) bool {
		ok, err := c.next().Use(ctx, id, nc, c.issued, c.expires)
		if err != nil {
			errs.LoadOrStore("err", fmt.Errorf("Use(%s, nc %d): %w", id, nc, err))
		}
		return ok
	}
	check := func() {
		t.Helper()
		if err, ok := errs.Load("err"); ok {
			t.Fatal(err)
		}
	}

	// One fresh nonce used by every goroutine at once, with count 1 and
	// with count 0: one use accepted.
	for _, nc := range []uint32{1, 0} {
		id := newID()
		var accepted atomic.Int32
		var start, wg sync.WaitGroup
		start.Add(1)
		for range goroutines {
			wg.Go(func() {
				start.Wait()
				if use(id, nc) {
					accepted.Add(1)
				}
			})
		}
		start.Done()
		wg.Wait()
		check()
		if n := accepted.Load(); n != 1 {
			t.Errorf("%d goroutines using one fresh nonce with nc %d at once: %d accepted, want 1", goroutines, nc, n)
		}
	}

	// The counts of one window, each used by four goroutines at once, in
	// different orders: each accepted exactly once.
	id := newID()
	accepted := make([]atomic.Int32, w+1)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range uint32(w / 2) {
				nc := (uint32(g)*w/goroutines+i)%w + 1
				if g%2 == 1 {
					nc = w - nc + 1
				}
				if use(id, nc) {
					accepted[nc].Add(1)
				}
			}
		})
	}
	wg.Wait()
	check()
	for nc := 1; nc <= w; nc++ {
		if n := accepted[nc].Load(); n != 1 {
			t.Errorf("nc %d of a window used by four goroutines at once: accepted %d times, want once", nc, n)
		}
	}

	// Counts far apart, each used by two goroutines, in an order that
	// pushes some out of the window: none is accepted twice, and those
	// within the window of the highest at the end were all accepted
	// once (the window only moves up: they were in it all along).
	const n = 1000
	id = newID()
	counts := make([]atomic.Int32, n+1)
	for g := range goroutines {
		wg.Go(func() {
			for i := range n / goroutines * 2 {
				nc := uint32((i*goroutines/2+g/2)*7919%n + 1) // a permutation of 1..n per pair
				if use(id, nc) {
					counts[nc].Add(1)
				}
			}
		})
	}
	wg.Wait()
	check()
	for nc := 1; nc <= n; nc++ {
		switch got := counts[nc].Load(); {
		case got > 1:
			t.Errorf("nc %d accepted %d times", nc, got)
		case got == 0 && nc > n-w:
			t.Errorf("nc %d, within the window of the highest count (%d), never accepted", nc, n)
		}
	}
	for nc := uint32(1); nc <= n; nc++ {
		if use(id, nc) {
			t.Errorf("nc %d accepted again", nc)
		}
	}
	check()

	// Nonces of their own, used by each goroutine alongside the others:
	// independent.
	for range goroutines {
		wg.Go(func() {
			for range 10 {
				id := newID()
				for nc := range uint32(5) {
					if !use(id, nc+1) {
						errs.LoadOrStore("err", fmt.Errorf("a fresh count %d of a nonce of one goroutine refused", nc+1))
					}
				}
				if use(id, 3) {
					errs.LoadOrStore("err", errors.New("a count of a nonce of one goroutine accepted twice"))
				}
			}
		})
	}
	wg.Wait()
	check()
}

func testContext(c *tester) {
	t := c.t
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	id := newID()
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		for _, nc := range []uint32{1, 0} {
			ok, err := c.next().Use(tc.ctx, id, nc, c.issued, c.expires)
			if ok || !errors.Is(err, tc.want) {
				t.Errorf("Use with a done context (%v), nc %d = %v, %v; want false and an error wrapping %v", tc.want, nc, ok, err, tc.want)
			}
		}
	}
	// Nothing was recorded.
	c.want(id, true, 1)
	c.want(id, false, 1)
}
