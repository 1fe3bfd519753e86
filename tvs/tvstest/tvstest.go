package tvstest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/tvs"
)

// TestStore checks that the stores open returns keep the contract of
// [tvs.Store]: records given back byte for byte, of any length up to
// [tvs.MaxRecordSize], under keys of any 32 bytes; replacing in one
// step; absent keys reported with [tvs.ErrNotFound]; no memory shared
// with the caller; atomic calls under concurrent Get, Put, Delete and
// List; context cancellation; [tvs.ErrStoreClosed] after Close; and
// entries written and read through package tvs. It runs in well under a
// second against a store in memory, with a few thousand calls in all.
//
// open is called once for each subtest, in turn (subtests do not run in
// parallel), and returns a new, empty store. It may prepare what the
// store needs (an empty table) and should release the store when t ends
// (t.Cleanup): the suite closes some stores first, so closing a store
// twice must be harmless.
//
// Durability cannot be checked from outside: test that a store keeps
// what it reported written across a reopen in its own tests.
func TestStore(t *testing.T, open func(t *testing.T) tvs.Store) {
	t.Helper()
	run(t, func(t *testing.T) (tvs.Store, tvs.Store) {
		s := open(t)
		return s, s
	}, false)
}

// TestSharedStore checks a [tvs.Store] of which several handles (the
// servers of a cluster, each with its own connection) share one state,
// such as a store in a database. open returns two handles, opened
// separately, on a new, empty store, as for [TestStore]. The suite runs
// the checks of TestStore with writes through one handle and reads, and
// concurrent writes, through the other, and checks that closing one
// handle leaves the other working. A shared store should pass TestStore
// as well.
func TestSharedStore(t *testing.T, open func(t *testing.T) (a, b tvs.Store)) {
	t.Helper()
	run(t, open, true)
}

// run runs the suite on the handles open returns (the same one twice,
// unless shared).
func run(t *testing.T, open func(t *testing.T) (a, b tvs.Store), shared bool) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, a, b tvs.Store)
	}{
		{"Empty", testEmpty},
		{"PutGet", testPutGet},
		{"Replace", testReplace},
		{"Copies", testCopies},
		{"Delete", testDelete},
		{"Context", testContext},
		{"Concurrent", testConcurrent},
		{"Entries", testEntries},
		{"Close", func(t *testing.T, a, b tvs.Store) { testClose(t, a, b, shared) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			if a == nil || b == nil {
				t.Fatal("open returned a nil store")
			}
			tc.test(t, a, b)
		})
	}
}

// key returns a key made of b, then i in its last eight bytes.
func key(b byte, i int) [32]byte {
	var k [32]byte
	for j := range k {
		k[j] = b
	}
	for j := range 8 {
		k[31-j] = byte(i >> (8 * j))
	}
	return k
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func get(t *testing.T, s tvs.Store, k [32]byte) []byte {
	t.Helper()
	v, err := s.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get(%x): %v", k, err)
	}
	return v
}

func put(t *testing.T, s tvs.Store, k [32]byte, v []byte) {
	t.Helper()
	if err := s.Put(context.Background(), k, v); err != nil {
		t.Fatalf("Put(%x, %d bytes): %v", k, len(v), err)
	}
}

func list(t *testing.T, s tvs.Store) map[[32]byte][]byte {
	t.Helper()
	m, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return m
}

// wantGet checks that s holds v under k.
func wantGet(t *testing.T, s tvs.Store, k [32]byte, v []byte) {
	t.Helper()
	if got := get(t, s, k); !bytes.Equal(got, v) {
		t.Errorf("Get(%x) = %s, want %s", k, show(got), show(v))
	}
}

// wantAbsent checks that s holds nothing under k.
func wantAbsent(t *testing.T, s tvs.Store, k [32]byte) {
	t.Helper()
	v, err := s.Get(context.Background(), k)
	if !errors.Is(err, tvs.ErrNotFound) {
		t.Errorf("Get(%x) of an absent key = %s, %v; want an error wrapping tvs.ErrNotFound", k, show(v), err)
	}
}

// wantList checks that s holds exactly want.
func wantList(t *testing.T, s tvs.Store, want map[[32]byte][]byte) {
	t.Helper()
	got := list(t, s)
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("List lacks key %x", k)
		case !bytes.Equal(g, v):
			t.Errorf("List: key %x holds %s, want %s", k, show(g), show(v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("List holds key %x (%s), which was not put or was deleted", k, show(v))
		}
	}
}

// show describes a record in a failure message.
func show(v []byte) string {
	if v == nil {
		return "nil"
	}
	if len(v) > 16 {
		return fmt.Sprintf("%d bytes %x…", len(v), v[:16])
	}
	return fmt.Sprintf("%d bytes %x", len(v), v)
}

// The tests write through a and read through b, which are one handle
// unless the store is shared.

func testEmpty(t *testing.T, a, b tvs.Store) {
	ctx := context.Background()
	for _, k := range [][32]byte{{}, key(0xff, 0), sha256.Sum256([]byte("no such certificate"))} {
		wantAbsent(t, b, k)
		if err := a.Delete(ctx, k); !errors.Is(err, tvs.ErrNotFound) {
			t.Errorf("Delete(%x) of an absent key = %v, want an error wrapping tvs.ErrNotFound", k, err)
		}
	}
	if m := list(t, b); len(m) != 0 {
		t.Errorf("List of an empty store holds %d records", len(m))
	}
}

// records are records of the lengths and contents a store must keep.
func records() [][]byte {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return [][]byte{
		{0},
		{0xff},
		{1, 0, 0, 0, 0, 1, 3},
		[]byte("text\x00with NUL\r\nand 'quotes' \"\\\"; --"),
		{0xc3, 0x28, 0xff, 0xfe}, // not UTF-8
		all,
		randomBytes(1000),
		randomBytes(64 << 10), // beyond 16-bit lengths
		randomBytes(tvs.MaxRecordSize),
	}
}

func testPutGet(t *testing.T, a, b tvs.Store) {
	// Keys of any 32 bytes: zero, all ones, zero bytes inside, and keys
	// that differ in one bit of their first or last byte only.
	base := sha256.Sum256([]byte("base"))
	first, last := base, base
	first[0] ^= 1
	last[31] ^= 0x80
	keys := [][32]byte{{}, key(0xff, 0), key(0, 1), key(0x30, 0x7f), base, first, last}
	rs := records()
	want := make(map[[32]byte][]byte)
	for i, k := range keys {
		v := rs[i%len(rs)]
		put(t, a, k, v)
		want[k] = v
	}
	for i, v := range rs {
		k := key(0xa5, i)
		put(t, a, k, v)
		want[k] = v
	}
	for k, v := range want {
		wantGet(t, b, k, v)
	}
	wantList(t, b, want)
	// A key not put, next to those that are.
	wantAbsent(t, b, key(0xa5, len(rs)))
	wantAbsent(t, b, key(0x30, 0x7e))
}

func testReplace(t *testing.T, a, b tvs.Store) {
	k, other := key(1, 1), key(1, 2)
	put(t, a, other, []byte("other"))
	for i, v := range [][]byte{[]byte("first"), randomBytes(5000), {7}, randomBytes(tvs.MaxRecordSize), []byte("last")} {
		// Through either handle.
		w := a
		if i%2 == 1 {
			w = b
		}
		put(t, w, k, v)
		wantGet(t, b, k, v)
		wantGet(t, a, k, v)
		wantList(t, b, map[[32]byte][]byte{k: v, other: []byte("other")})
	}
	// The same record again.
	put(t, a, k, []byte("last"))
	wantGet(t, b, k, []byte("last"))
}

func testCopies(t *testing.T, a, b tvs.Store) {
	k := key(2, 1)
	in := []byte("the record as put")
	want := bytes.Clone(in)
	put(t, a, k, in)
	// Changing what Put was given changes nothing.
	in[0] = 'X'
	wantGet(t, b, k, want)
	wantGet(t, a, k, want)
	// Nor changing what Get returned.
	for _, s := range []tvs.Store{a, b} {
		got := get(t, s, k)
		got[0] = 'Y'
		wantGet(t, a, k, want)
		wantGet(t, b, k, want)
	}
	// Nor what List returned.
	m := list(t, b)
	if len(m[k]) == 0 {
		t.Fatalf("List lacks key %x", k)
	}
	m[k][0] = 'Z'
	delete(m, k)
	wantGet(t, b, k, want)
	wantList(t, b, map[[32]byte][]byte{k: want})
	// Two Gets share nothing.
	g1, g2 := get(t, b, k), get(t, b, k)
	g1[1] = 'W'
	if !bytes.Equal(g2, want) {
		t.Errorf("changing what one Get returned changed what another did")
	}
}

func testDelete(t *testing.T, a, b tvs.Store) {
	ctx := context.Background()
	k1, k2 := key(3, 1), key(3, 2)
	put(t, a, k1, []byte("one"))
	put(t, a, k2, []byte("two"))
	if err := a.Delete(ctx, k1); err != nil {
		t.Fatalf("Delete(%x): %v", k1, err)
	}
	wantAbsent(t, b, k1)
	if err := b.Delete(ctx, k1); !errors.Is(err, tvs.ErrNotFound) {
		t.Errorf("Delete(%x) again = %v, want an error wrapping tvs.ErrNotFound", k1, err)
	}
	wantGet(t, b, k2, []byte("two"))
	wantList(t, b, map[[32]byte][]byte{k2: []byte("two")})
	// Put again after Delete.
	put(t, a, k1, []byte("one again"))
	wantGet(t, b, k1, []byte("one again"))
	wantList(t, b, map[[32]byte][]byte{k1: []byte("one again"), k2: []byte("two")})
	// Deleted through the other handle.
	if err := b.Delete(ctx, k2); err != nil {
		t.Fatalf("Delete(%x): %v", k2, err)
	}
	wantAbsent(t, a, k2)
	wantList(t, a, map[[32]byte][]byte{k1: []byte("one again")})
}

func testContext(t *testing.T, a, b tvs.Store) {
	k, fresh := key(4, 1), key(4, 2)
	put(t, a, k, []byte("kept"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		if _, err := b.Get(tc.ctx, k); !errors.Is(err, tc.want) {
			t.Errorf("Get with a done context = %v, want an error wrapping %v", err, tc.want)
		}
		if err := a.Put(tc.ctx, fresh, []byte("new")); !errors.Is(err, tc.want) {
			t.Errorf("Put with a done context = %v, want an error wrapping %v", err, tc.want)
		}
		if err := a.Put(tc.ctx, k, []byte("replaced")); !errors.Is(err, tc.want) {
			t.Errorf("Put (replacing) with a done context = %v, want an error wrapping %v", err, tc.want)
		}
		if err := a.Delete(tc.ctx, k); !errors.Is(err, tc.want) {
			t.Errorf("Delete with a done context = %v, want an error wrapping %v", err, tc.want)
		}
		if _, err := b.List(tc.ctx); !errors.Is(err, tc.want) {
			t.Errorf("List with a done context = %v, want an error wrapping %v", err, tc.want)
		}
	}
	// Nothing changed.
	wantList(t, b, map[[32]byte][]byte{k: []byte("kept")})
}

func testConcurrent(t *testing.T, a, b tvs.Store) {
	ctx := context.Background()
	// fixed is always there; flip is replaced over and over, never
	// deleted; toggle comes and goes; each writer puts keys of its own.
	fixed, flip, toggle := key(5, 1), key(5, 2), key(5, 3)
	fixedV := []byte("fixed")
	flipA, flipB := bytes.Repeat([]byte{'a'}, 300), bytes.Repeat([]byte{'b'}, 5000)
	toggleV := []byte("toggle")
	put(t, a, fixed, fixedV)
	put(t, a, flip, flipA)

	const (
		readers = 4
		writers = 4
		writes  = 50
	)
	var (
		failed  sync.Once
		failure error
		done    atomic.Bool
		wg      sync.WaitGroup // readers
		ww      sync.WaitGroup // writers
		calls   atomic.Int64
	)
	fail := func(format string, args ...any) {
		failed.Do(func() { failure = fmt.Errorf(format, args...) })
		done.Store(true)
	}
	for r := range readers {
		s := b
		if r == readers-1 {
			s = a // one reads through the writers' handle
		}
		wg.Go(func() {
			for i := 0; !done.Load(); i++ {
				// Yield each round, so that readers do not keep the
				// writers from the cores.
				runtime.Gosched()
				calls.Add(1)
				if r == 0 && i%8 == 0 {
					m, err := s.List(ctx)
					switch {
					case err != nil:
						fail("List: %v", err)
					case !bytes.Equal(m[fixed], fixedV):
						fail("List alongside writes: fixed key holds %s", show(m[fixed]))
					case !bytes.Equal(m[flip], flipA) && !bytes.Equal(m[flip], flipB):
						fail("List alongside writes: replaced key holds %s, neither record put", show(m[flip]))
					case m[toggle] != nil && !bytes.Equal(m[toggle], toggleV):
						fail("List alongside writes: toggled key holds %s", show(m[toggle]))
					}
					continue
				}
				if v, err := s.Get(ctx, fixed); err != nil || !bytes.Equal(v, fixedV) {
					fail("Get of a key no one writes, alongside writes: %s, %v", show(v), err)
				}
				if v, err := s.Get(ctx, flip); err != nil || !bytes.Equal(v, flipA) && !bytes.Equal(v, flipB) {
					fail("Get of a key being replaced: %s, %v; want one of the records put (never ErrNotFound)", show(v), err)
				}
				switch v, err := s.Get(ctx, toggle); {
				case err == nil && !bytes.Equal(v, toggleV):
					fail("Get of a key put and deleted: %s", show(v))
				case err != nil && !errors.Is(err, tvs.ErrNotFound):
					fail("Get of a key put and deleted: %v", err)
				}
			}
		})
	}
	ww.Go(func() {
		for i := range writes {
			v := flipA
			if i%2 == 0 {
				v = flipB
			}
			if err := a.Put(ctx, flip, v); err != nil {
				fail("Put (replacing): %v", err)
				return
			}
		}
	})
	ww.Go(func() {
		for range writes / 2 {
			if err := a.Put(ctx, toggle, toggleV); err != nil {
				fail("Put: %v", err)
				return
			}
			if err := a.Delete(ctx, toggle); err != nil {
				fail("Delete: %v", err)
				return
			}
		}
	})
	// Writers of keys of their own, through both handles.
	mine := func(w, i int) [32]byte { return key(byte(0x60+w), i) }
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		ww.Go(func() {
			for i := range writes / 2 {
				if err := s.Put(ctx, mine(w, i), []byte{byte(w), byte(i)}); err != nil {
					fail("Put: %v", err)
					return
				}
			}
		})
	}
	ww.Wait()
	// Two deleting one key at once, one through each handle: one at
	// least succeeds, and neither fails otherwise than with ErrNotFound.
	shared := key(5, 4)
	put(t, a, shared, []byte("deleted twice"))
	var deleted atomic.Int32
	for _, s := range []tvs.Store{a, b} {
		ww.Go(func() {
			switch err := s.Delete(ctx, shared); {
			case err == nil:
				deleted.Add(1)
			case !errors.Is(err, tvs.ErrNotFound):
				fail("Delete: %v", err)
			}
		})
	}
	ww.Wait()
	done.Store(true)
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	if deleted.Load() == 0 {
		t.Error("two Deletes of one key at once: neither reported it deleted")
	}
	t.Logf("%d reads alongside the writes", calls.Load())

	want := map[[32]byte][]byte{fixed: fixedV, flip: flipA} // the last write put flipA
	for w := range writers {
		for i := range writes / 2 {
			want[mine(w, i)] = []byte{byte(w), byte(i)}
		}
	}
	wantList(t, b, want)
	wantList(t, a, want)
}

// testEntries writes and reads entries through package tvs, which
// encodes and decodes the records.
func testEntries(t *testing.T, a, b tvs.Store) {
	ctx := context.Background()
	cb, a1, a2 := certificate(t, "b"), certificate(t, "a"), certificate(t, "a")
	if s1, s2 := sha256.Sum256(a1.Raw), sha256.Sum256(a2.Raw); bytes.Compare(s1[:], s2[:]) > 0 {
		a1, a2 = a2, a1
	}
	in := []*tvs.Entry{
		{Certificate: cb, Roles: []ctl.Role{ctl.RoleTVS, ctl.RoleCCM}, TTL: time.Hour},
		{Certificate: a2, Roles: []ctl.Role{ctl.RoleSAST}},
		{Certificate: a1, Roles: []ctl.Role{ctl.RoleTFTP}, TTL: tvs.MaxTTL},
	}
	for _, e := range in {
		if err := tvs.Put(ctx, a, e); err != nil {
			t.Fatalf("tvs.Put: %v", err)
		}
	}
	got, err := tvs.Lookup(ctx, b, in[0].Sum())
	if err != nil {
		t.Fatalf("tvs.Lookup: %v", err)
	}
	if !got.Certificate.Equal(cb) || !slices.Equal(got.Roles, []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}) || got.TTL != time.Hour {
		t.Errorf("tvs.Lookup = %s %v %v, want %s [CCM TVS] 1h", got.Certificate.Subject, got.Roles, got.TTL, cb.Subject)
	}
	if _, err := tvs.Lookup(ctx, b, sha256.Sum256([]byte("unknown"))); !errors.Is(err, tvs.ErrNotFound) {
		t.Errorf("tvs.Lookup of an unknown certificate = %v, want tvs.ErrNotFound", err)
	}
	es, err := tvs.Entries(ctx, b)
	if err != nil {
		t.Fatalf("tvs.Entries: %v", err)
	}
	var order []*x509.Certificate
	for _, e := range es {
		order = append(order, e.Certificate)
	}
	if len(order) != 3 || !order[0].Equal(a1) || !order[1].Equal(a2) || !order[2].Equal(cb) {
		t.Errorf("tvs.Entries: %d entries, not sorted by subject then sum", len(es))
	}
	if err := a.Delete(ctx, in[0].Sum()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := tvs.Lookup(ctx, b, in[0].Sum()); !errors.Is(err, tvs.ErrNotFound) {
		t.Errorf("tvs.Lookup of a deleted entry = %v, want tvs.ErrNotFound", err)
	}
}

func testClose(t *testing.T, a, b tvs.Store, shared bool) {
	ctx := context.Background()
	k := key(6, 1)
	put(t, a, k, []byte("closed"))
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := a.Get(ctx, k); !errors.Is(err, tvs.ErrStoreClosed) {
		t.Errorf("Get after Close = %v, want an error wrapping tvs.ErrStoreClosed", err)
	}
	if err := a.Put(ctx, k, []byte("x")); !errors.Is(err, tvs.ErrStoreClosed) {
		t.Errorf("Put after Close = %v, want an error wrapping tvs.ErrStoreClosed", err)
	}
	if err := a.Delete(ctx, k); !errors.Is(err, tvs.ErrStoreClosed) {
		t.Errorf("Delete after Close = %v, want an error wrapping tvs.ErrStoreClosed", err)
	}
	if _, err := a.List(ctx); !errors.Is(err, tvs.ErrStoreClosed) {
		t.Errorf("List after Close = %v, want an error wrapping tvs.ErrStoreClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if shared {
		// The other handle still works, and sees what the closed one
		// wrote.
		wantGet(t, b, k, []byte("closed"))
		put(t, b, k, []byte("after"))
		wantGet(t, b, k, []byte("after"))
	}
}

// certificate returns a new self-signed certificate for cn.
func certificate(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"tvstest"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
