package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/digest/digesttest"
	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/stores/redis"
)

// testSkew is the clock skew allowed in most tests: the servers and Redis
// share one clock here, and a store's start is this far ahead of the
// moment it is set.
const testSkew = time.Millisecond

// prefixes makes each store of a test binary a namespace of its own.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

// open opens a store on r with opts (a copy: URL-based, with testSkew
// unless set), closed when the test ends.
func open(t testing.TB, r *dbtest.Redis, opts redis.Options) *redis.ReplayStore {
	t.Helper()
	if opts.ClockSkew == 0 {
		opts.ClockSkew = testSkew
	}
	var url string
	if opts.Client == nil {
		url = r.URL()
	}
	s, err := redis.OpenReplayStore(context.Background(), url, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// started waits until the store's start has passed, so that nonces
// issued from then on are accepted.
func started(t testing.TB, s *redis.ReplayStore) time.Time {
	t.Helper()
	start, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(start) + time.Microsecond)
	return start
}

// admin returns a client of its own on r, closed when the test ends.
func admin(t testing.TB, r *dbtest.Redis) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func newRand(seed [32]byte) *mrand.Rand { return mrand.New(mrand.NewChaCha8(seed)) }

func newID() digest.NonceID {
	var id digest.NonceID
	rand.Read(id[:])
	return id
}

// nonce times as a digest.Server makes them: wall clock only.
func wall(t time.Time) time.Time { return time.Unix(0, t.UnixNano()) }

// use calls s.Use with a nonce issued at issued, valid for ten minutes,
// and fails the test on an error.
func use(t testing.TB, s digest.ReplayStore, id digest.NonceID, nc uint32, issued time.Time) bool {
	t.Helper()
	ok, err := s.Use(context.Background(), id, nc, issued, issued.Add(digest.DefaultNonceValidity))
	if err != nil {
		t.Fatalf("Use(%s, %d): %v", id, nc, err)
	}
	return ok
}

func TestReplayStore(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
		s := open(t, r, redis.Options{KeyPrefix: newPrefix()})
		started(t, s)
		return s
	})
}

// TestReplayStoreFlushed runs the suite on one store whose Redis is
// emptied behind its back before each subtest, as a restart without
// persistence would: the store must notice and start anew.
func TestReplayStoreFlushed(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	a := admin(t, r)
	s := open(t, r, redis.Options{})
	digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
		if err := a.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		started(t, s)
		return s
	})
}

// TestSharedReplayStore: two stores with clients of their own, as two
// servers of a cluster have, share one state.
func TestSharedReplayStore(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	digesttest.TestSharedReplayStore(t, func(t *testing.T) (a, b digest.ReplayStore) {
		prefix := newPrefix()
		s1 := open(t, r, redis.Options{KeyPrefix: prefix})
		s2 := open(t, r, redis.Options{KeyPrefix: prefix})
		started(t, s1)
		started(t, s2)
		return s1, s2
	})
}

// TestShards runs both suites on stores with several shards.
func TestShards(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	opts := func() redis.Options { return redis.Options{KeyPrefix: newPrefix(), Shards: 7} }
	t.Run("One", func(t *testing.T) {
		digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
			s := open(t, r, opts())
			started(t, s)
			return s
		})
	})
	t.Run("Shared", func(t *testing.T) {
		digesttest.TestSharedReplayStore(t, func(t *testing.T) (a, b digest.ReplayStore) {
			o := opts()
			s1, s2 := open(t, r, o), open(t, r, o)
			started(t, s1)
			started(t, s2)
			return s1, s2
		})
	})
	// Each shard has a start key of its own, and its nonces' keys share
	// its hash tag.
	a := admin(t, r)
	o := opts()
	s := open(t, r, o)
	started(t, s)
	for range 50 {
		use(t, s, newID(), 1, wall(time.Now()))
	}
	keys, err := a.Keys(context.Background(), o.KeyPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	starts, tags := 0, map[string]bool{}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, o.KeyPrefix)
		tag, key, ok := strings.Cut(rest, "}:")
		if !ok || !strings.HasPrefix(tag, "{") {
			t.Fatalf("key %q has no hash tag after the prefix", k)
		}
		tags[tag] = true
		switch {
		case key == "start":
			starts++
		case strings.HasPrefix(key, "n:") && len(key) == 2+24:
		default:
			t.Errorf("unexpected key %q", k)
		}
	}
	if starts != 7 || len(tags) != 7 {
		t.Errorf("%d start keys, %d hash tags; want 7 of each", starts, len(tags))
	}
}

// TestDifferential compares the store with MemoryReplayStore on random
// sequences of counts, many of them near the edges of the window, to
// check the Lua bit arithmetic.
func TestDifferential(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	s := open(t, r, redis.Options{})
	started(t, s)
	mem := &digest.MemoryReplayStore{Start: time.Now().Add(-time.Hour)}
	issued := wall(time.Now())
	var seed [32]byte
	rand.Read(seed[:])
	t.Logf("seed %x", seed)
	rng := newRand(seed)
	for n := range 100 {
		id := newID()
		high := uint32(1)
		for range 100 {
			var nc uint32
			switch k := rng.IntN(12); {
			case k == 0 && n%8 == 0:
				nc = 0
			case k < 3: // near the highest, or just out of the window
				nc = high - uint32(rng.IntN(70)) + 3
			case k < 5: // in the high half of the map
				nc = high - 32 - uint32(rng.IntN(32))
			case k < 6: // a jump of 31 to 33 or 63 to 65
				nc = high + []uint32{31, 32, 33, 63, 64, 65}[rng.IntN(6)]
			case k < 8: // a small jump
				nc = high + uint32(rng.IntN(32))
			case k < 10: // in the low half of the map
				nc = high - uint32(rng.IntN(32))
			default:
				nc = uint32(rng.IntN(300)) + 1
			}
			if nc > high && nc < 1<<31 {
				high = nc
			}
			want := use(t, mem, id, nc, issued)
			if got := use(t, s, id, nc, issued); got != want {
				t.Fatalf("nonce %d, nc %d: Redis %v, memory %v", n, nc, got, want)
			}
		}
	}
}

// TestRestart: after Redis restarts empty (a shutdown or a crash), a
// nonce used before the restart, or issued before it, is refused; the
// store's start moves to when a server noticed, plus the clock skew; new
// nonces are accepted once it has passed.
func TestRestart(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	for _, tc := range []struct {
		name string
		down func() error
	}{
		{"Shutdown", func() error { return r.Shutdown(context.Background()) }},
		{"Kill", r.Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const skew = 300 * time.Millisecond
			var logs syncBuffer
			s := open(t, r, redis.Options{ClockSkew: skew, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			started(t, s)
			issued := wall(time.Now())
			usedID, unusedID := newID(), newID()
			if !use(t, s, usedID, 1, issued) {
				t.Fatal("a fresh nonce refused")
			}
			before, _ := s.Start(context.Background())
			logs.Reset()

			if err := tc.down(); err != nil {
				t.Fatal(err)
			}
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The first use after the restart, with the client's
			// connections gone, may fail; it fails closed. The start
			// moves at the first use that reaches Redis.
			restarted := time.Now()
			if ok, err := s.Use(context.Background(), usedID, 1, issued, issued.Add(time.Minute)); ok {
				t.Fatal("a nonce count used before the restart accepted again after it")
			} else if err != nil {
				t.Logf("first use after the restart: %v", err)
			}
			for _, tc := range []struct {
				id digest.NonceID
				nc uint32
			}{{usedID, 1}, {usedID, 2}, {usedID, 0}, {unusedID, 1}, {unusedID, 0}} {
				if use(t, s, tc.id, tc.nc, issued) {
					t.Errorf("nonce issued before the restart accepted after it with nc %d", tc.nc)
				}
			}
			noticed := time.Now()
			if !strings.Contains(logs.String(), "lost the replay store's state") {
				t.Errorf("no warning of the loss logged: %q", logs.String())
			}
			start, err := s.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !start.After(before) || start.Before(restarted.Add(skew)) || start.After(noticed.Add(skew)) {
				t.Errorf("start after the restart %v, before it %v; want between %v and %v (when a use noticed, plus the skew)", start, before, restarted.Add(skew), noticed.Add(skew))
			}
			// Issued after the restart but before the start: within the
			// skew allowed, refused.
			if early := wall(time.Now()); early.Before(start) && use(t, s, newID(), 1, early) {
				t.Error("a nonce issued within the clock skew after the restart accepted")
			}
			time.Sleep(time.Until(start) + time.Microsecond)
			fresh := newID()
			if now := wall(time.Now()); !use(t, s, fresh, 1, now) || use(t, s, fresh, 1, now) {
				t.Error("a nonce issued after the new start not accepted exactly once")
			}
		})
	}
}

// TestSnapshotReload: a Redis that restarts from a snapshot has the
// store's start, but not the uses recorded after the snapshot; the
// store sees the new run_id and moves its start, so those uses stay
// refused.
func TestSnapshotReload(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	a := admin(t, r)
	s := open(t, r, redis.Options{})
	started(t, s)
	issued := wall(time.Now())
	id := newID()
	if !use(t, s, id, 1, issued) {
		t.Fatal("a fresh nonce refused")
	}
	ctx := context.Background()
	if err := a.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if !use(t, s, id, 2, issued) {
		t.Fatal("a fresh count refused")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The snapshot came back: count 1 is recorded, count 2 is not.
	n, err := a.Exists(ctx, "ucsec:digest:{0}:n:"+id.String()).Result()
	if err != nil || n != 1 {
		t.Fatalf("the snapshot was not reloaded (EXISTS %d, %v): the test needs a Redis that loads dump.rdb", n, err)
	}
	for range 3 { // the first use may meet a dead connection
		ok, err := s.Use(ctx, id, 2, issued, issued.Add(time.Minute))
		if ok {
			t.Fatal("a count recorded after the snapshot accepted again after the reload")
		}
		if err == nil {
			break
		}
	}
}

// TestRunID: a start key left by another Redis process, or unreadable,
// is a loss: the start moves and every nonce issued before is refused.
func TestRunID(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	a := admin(t, r)
	ctx := context.Background()
	for name, value := range map[string]func(string) string{
		"other-run": func(v string) string {
			f := strings.Fields(v)
			return f[0] + " " + f[1] + " 0123456789abcdef0123456789abcdef01234567"
		},
		"garbage": func(string) string { return "garbage" },
		"later-start-kept": func(v string) string {
			// Another run's start in the future: the new start is no
			// earlier.
			return fmt.Sprintf("%d 5 abcdef", time.Now().Add(time.Hour).Unix())
		},
	} {
		t.Run(name, func(t *testing.T) {
			prefix := newPrefix()
			s := open(t, r, redis.Options{KeyPrefix: prefix})
			started(t, s)
			issued := wall(time.Now())
			id := newID()
			if !use(t, s, id, 1, issued) {
				t.Fatal("a fresh nonce refused")
			}
			key := prefix + "{0}:start"
			v, err := a.Get(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Set(ctx, key, value(v), 0).Err(); err != nil {
				t.Fatal(err)
			}
			if use(t, s, id, 2, issued) || use(t, s, newID(), 1, issued) {
				t.Error("a nonce issued before the start moved accepted")
			}
			start, err := s.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if name == "later-start-kept" {
				if start.Before(time.Now().Add(59 * time.Minute)) {
					t.Errorf("start %v: the later start of the other run was not kept", start)
				}
				return
			}
			time.Sleep(time.Until(start) + time.Microsecond)
			if !use(t, s, newID(), 1, wall(time.Now())) {
				t.Error("a nonce issued after the new start refused")
			}
		})
	}
}

// TestStartSkew: the start of a new store is ClockSkew ahead of its
// clock, DefaultClockSkew by default, to the nanosecond.
func TestStartSkew(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	clock := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		skew, want time.Duration
	}{{0, redis.DefaultClockSkew}, {time.Nanosecond, time.Nanosecond}, {time.Minute, time.Minute}} {
		opts := redis.Options{KeyPrefix: newPrefix(), Time: func() time.Time { return clock }}
		opts.ClockSkew = tc.skew
		if tc.skew == 0 {
			// open sets testSkew for zero; go around it.
			s, err := redis.OpenReplayStore(context.Background(), r.URL(), &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			start, err := s.Start(context.Background())
			if err != nil || !start.Equal(clock.Add(tc.want)) {
				t.Errorf("default skew: start %v, %v; want %v", start, err, clock.Add(tc.want))
			}
			continue
		}
		s := open(t, r, opts)
		start, err := s.Start(context.Background())
		if err != nil || !start.Equal(clock.Add(tc.want)) {
			t.Errorf("skew %v: start %v, %v; want %v", tc.skew, start, err, clock.Add(tc.want))
		}
		// To the nanosecond: a nonce issued 1 ns before is refused.
		if use(t, s, newID(), 1, start.Add(-time.Nanosecond)) {
			t.Errorf("skew %v: a nonce issued 1ns before the start accepted", tc.skew)
		}
		if !use(t, s, newID(), 1, start) {
			t.Errorf("skew %v: a nonce issued at the start refused", tc.skew)
		}
	}
}

// TestExpiry: a nonce's entry expires ReplayGrace plus the clock skew
// after the nonce, on the clock of the server that used it last, and
// never sooner than an earlier use set; the start key never expires.
func TestExpiry(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	a := admin(t, r)
	ctx := context.Background()
	const skew = 2 * time.Second
	prefix := newPrefix()
	s := open(t, r, redis.Options{KeyPrefix: prefix, ClockSkew: skew})
	started(t, s)
	issued := wall(time.Now())
	expires := issued.Add(10 * time.Second)
	id := newID()
	key := prefix + "{0}:n:" + id.String()
	pttl := func() time.Duration {
		t.Helper()
		d, err := a.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// The TTL set by a use that began at from, on a clock offset from
	// ours, is no more than from's (rounded up to the millisecond), and
	// within a second below.
	check := func(from time.Time, offset time.Duration) {
		t.Helper()
		want := expires.Sub(from) - offset + digest.ReplayGrace + skew
		if got := pttl(); got > want+time.Millisecond || got < want-time.Second {
			t.Errorf("TTL %v, want %v (or up to a second less)", got, want)
		}
	}
	from := time.Now()
	if ok, err := s.Use(ctx, id, 1, issued, expires); !ok || err != nil {
		t.Fatal(ok, err)
	}
	check(from, 0)

	// A server whose clock is 30 s behind keeps the entry longer.
	behind := open(t, r, redis.Options{KeyPrefix: prefix, ClockSkew: skew, Time: func() time.Time { return time.Now().Add(-30 * time.Second) }})
	from = time.Now()
	if ok, err := behind.Use(ctx, id, 2, issued, expires); !ok || err != nil {
		t.Fatal(ok, err)
	}
	check(from, -30*time.Second)
	// One whose clock is ahead does not shorten it; nor does a use
	// without qop.
	ahead := open(t, r, redis.Options{KeyPrefix: prefix, ClockSkew: skew, Time: func() time.Time { return time.Now().Add(5 * time.Second) }})
	if ok, _ := ahead.Use(ctx, id, 3, issued, expires); !ok {
		t.Fatal("a fresh count refused")
	}
	if ok, _ := ahead.Use(ctx, id, 0, issued, expires); ok {
		t.Fatal("nc 0 after counts accepted")
	}
	check(from, -30*time.Second)

	// A nonce long expired is refused without asking Redis.
	old := wall(time.Now().Add(-time.Hour))
	if use(t, s, newID(), 1, old) {
		t.Error("a nonce that expired 50 minutes ago accepted")
	}
	// The start key has no expiry.
	if d, err := a.PTTL(ctx, prefix+"{0}:start").Result(); err != nil || d != -1 {
		t.Errorf("start key TTL %v, %v; want none (-1)", d, err)
	}
}

// TestMemory measures the memory each nonce holds in Redis: MEMORY USAGE
// of an entry, and the growth of used_memory per nonce (which counts the
// expiry too).
func TestMemory(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	a := admin(t, r)
	ctx := context.Background()
	s := open(t, r, redis.Options{})
	started(t, s)
	used := func() int64 {
		t.Helper()
		info, err := a.InfoMap(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		fmt.Sscan(info["Memory"]["used_memory"], &n)
		return n
	}
	const n = 20000
	issued := wall(time.Now())
	ids := make([]digest.NonceID, n)
	for i := range ids {
		ids[i] = newID()
	}
	before := used()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				s.Use(ctx, ids[i], 1, issued, issued.Add(time.Hour))
			}
		})
	}
	wg.Wait()
	perNonce := float64(used()-before) / n
	usage, err := a.MemoryUsage(ctx, "ucsec:digest:{0}:n:"+ids[0].String()).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEMORY USAGE of an entry: %d bytes; used_memory per nonce: %.0f bytes", usage, perNonce)
	if usage > 128 || perNonce > 256 {
		t.Errorf("MEMORY USAGE %d bytes (want <= 128), used_memory %.0f per nonce (want <= 256)", usage, perNonce)
	}
}

// TestRoundTrips: a use is one command to Redis (EVALSHA), once the
// script is loaded.
func TestRoundTrips(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	c := admin(t, r)
	counter := &countHook{}
	c.AddHook(counter)
	s := open(t, r, redis.Options{Client: c})
	started(t, s)
	issued := wall(time.Now())
	use(t, s, newID(), 1, issued) // loads the script
	counter.reset()
	id := newID()
	for nc := range uint32(10) {
		use(t, s, id, nc+1, issued)
	}
	if got := counter.get(); len(got) != 10 || strings.Count(strings.Join(got, " "), "evalsha") != 10 {
		t.Errorf("10 uses sent %v; want 10 EVALSHA", got)
	}
	// After Redis restarts, its script cache is empty: EVALSHA, then EVAL.
	if err := r.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	counter.reset()
	for range 3 {
		if _, err := s.Use(context.Background(), id, 11, issued, issued.Add(time.Minute)); err == nil {
			break
		}
	}
	t.Logf("commands of the first use after a restart: %v", counter.get())
	// The caller's client stays open when the store closes.
	s.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Errorf("the caller's client was closed with the store: %v", err)
	}
}

type countHook struct {
	mu   sync.Mutex
	cmds []string
}

func (h *countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.mu.Lock()
		h.cmds = append(h.cmds, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.mu.Lock()
		for _, c := range cmds {
			h.cmds = append(h.cmds, c.Name())
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *countHook) reset() {
	h.mu.Lock()
	h.cmds = nil
	h.mu.Unlock()
}

func (h *countHook) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.cmds...)
}

// TestPassword: the password comes from the URL or Options.Password;
// a missing or wrong one fails to open, and no error shows a password.
func TestPassword(t *testing.T) {
	r := dbtest.NewRedis(t, &dbtest.RedisOptions{Password: "pw-Secret-42"})
	ctx := context.Background()
	noPassword := strings.Replace(r.URL(), ":pw-Secret-42@", "@", 1)
	if noPassword == r.URL() {
		t.Fatalf("URL %s does not hold the password", r.URL())
	}
	wrong := strings.Replace(r.URL(), "pw-Secret-42", "wrong-Guess-7", 1)
	for _, tc := range []struct {
		name string
		url  string
		opts redis.Options
		want error
	}{
		{"url", r.URL(), redis.Options{}, nil},
		{"option", noPassword, redis.Options{Password: "pw-Secret-42"}, nil},
		{"option-overrides-url", wrong, redis.Options{Password: "pw-Secret-42"}, nil},
		{"none", noPassword, redis.Options{}, redis.ErrConnect},
		{"wrong", wrong, redis.Options{}, redis.ErrConnect},
		{"wrong-option", r.URL(), redis.Options{Password: "wrong-Guess-7"}, redis.ErrConnect},
		{"bad-url", "redis://default:pw-Secret-42@[::1", redis.Options{}, redis.ErrInvalid},
		{"bad-scheme", "http://default:pw-Secret-42@127.0.0.1/", redis.Options{}, redis.ErrInvalid},
		{"bad-db", r.URL() + "x", redis.Options{}, redis.ErrInvalid},
		{"no-url", "", redis.Options{}, redis.ErrInvalid},
		{"prefix", r.URL(), redis.Options{KeyPrefix: "a{b}:"}, redis.ErrInvalid},
		{"shards", r.URL(), redis.Options{Shards: redis.MaxShards + 1}, redis.ErrInvalid},
		{"skew", r.URL(), redis.Options{ClockSkew: -time.Second}, redis.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.KeyPrefix = cmpOr(tc.opts.KeyPrefix, newPrefix())
			tc.opts.ClockSkew = cmpOr(tc.opts.ClockSkew, testSkew)
			s, err := redis.OpenReplayStore(ctx, tc.url, &tc.opts)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				started(t, s)
				if !use(t, s, newID(), 1, wall(time.Now())) {
					t.Error("a fresh nonce refused")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			t.Log(err)
			for _, secret := range []string{"pw-Secret-42", "wrong-Guess-7"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a password: %v", err)
				}
			}
		})
	}

	// A caller's client, with the password it was given; Options.Client
	// excludes a URL and a password.
	c := admin(t, r)
	s := open(t, r, redis.Options{Client: c})
	started(t, s)
	if !use(t, s, newID(), 1, wall(time.Now())) {
		t.Error("a fresh nonce refused")
	}
	for _, tc := range []struct {
		url  string
		opts redis.Options
	}{{r.URL(), redis.Options{Client: c}}, {"", redis.Options{Client: c, Password: "x"}}} {
		if _, err := redis.OpenReplayStore(ctx, tc.url, &tc.opts); !errors.Is(err, redis.ErrInvalid) {
			t.Errorf("OpenReplayStore(%q, %+v): %v, want ErrInvalid", tc.url, tc.opts, err)
		}
	}
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

// TestEviction: a Redis that may evict keys is refused when the store
// opens.
func TestEviction(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	a := admin(t, r)
	ctx := context.Background()
	for _, tc := range []struct {
		maxmemory, policy string
		want              error
	}{
		{"0", "allkeys-lru", nil}, // no limit: nothing is evicted
		{"1gb", "noeviction", nil},
		{"1gb", "volatile-ttl", redis.ErrEviction},
		{"1gb", "allkeys-lru", redis.ErrEviction},
	} {
		if err := a.ConfigSet(ctx, "maxmemory", tc.maxmemory).Err(); err != nil {
			t.Fatal(err)
		}
		if err := a.ConfigSet(ctx, "maxmemory-policy", tc.policy).Err(); err != nil {
			t.Fatal(err)
		}
		s, err := redis.OpenReplayStore(ctx, r.URL(), &redis.Options{ClockSkew: testSkew})
		if !errors.Is(err, tc.want) {
			t.Errorf("maxmemory %s, policy %s: %v, want %v", tc.maxmemory, tc.policy, err, tc.want)
		}
		if err == nil {
			s.Close()
		}
	}
}

// TestContext: a use whose context is done fails at once; one that
// Redis holds up (CLIENT PAUSE) ends with its context's deadline.
func TestContext(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	a := admin(t, r)
	s := open(t, r, redis.Options{})
	started(t, s)
	issued := wall(time.Now())
	use(t, s, newID(), 1, issued) // loads the script
	if err := a.Do(context.Background(), "CLIENT", "PAUSE", "2000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer a.Do(context.Background(), "CLIENT", "UNPAUSE")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	ok, err := s.Use(ctx, newID(), 1, issued, issued.Add(time.Minute))
	if ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Use while Redis is paused: %v, %v; want false and DeadlineExceeded", ok, err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Use took %v with a deadline of 200ms", d)
	}
	t.Log(err)
}

// TestClosed: a closed store fails every use.
func TestClosed(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	s := open(t, r, redis.Options{})
	started(t, s)
	s.Close()
	issued := wall(time.Now())
	if ok, err := s.Use(context.Background(), newID(), 1, issued, issued.Add(time.Minute)); ok || !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Use after Close: %v, %v", ok, err)
	}
}

// syncBuffer is a bytes.Buffer for a logger that several goroutines use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

func TestMain(m *testing.M) {
	// go-redis logs dial failures through a logger of its own; the
	// outage tests would fill the output with them.
	goredis.SetLogger(quiet{})
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
