package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/stores/redis"
)

const (
	realm = "test.local"
	uri   = "sip:test.local"
)

// newServer returns a digest.Server on the replay store.
func newServer(replay digest.ReplayStore) *digest.Server {
	users := &digest.MemoryStore{}
	users.AddPassword("alice", realm, "s3cret")
	return &digest.Server{Realm: realm, Credentials: users, Secrets: [][]byte{[]byte("0123456789abcdef-secret")}, Replay: replay}
}

// challenge returns a fresh challenge of the server.
func challenge(t testing.TB, s *digest.Server) *digest.Challenge {
	t.Helper()
	chs, err := s.Challenges(&digest.Request{Method: "REGISTER", URI: uri}, false)
	if err != nil {
		t.Fatal(err)
	}
	return chs[0]
}

// request returns a REGISTER with alice's response to ch with count nc.
func request(t testing.TB, ch *digest.Challenge, nc uint32) *digest.Request {
	t.Helper()
	opts := digest.RespondOptions{Username: "alice", Password: "s3cret", Method: "REGISTER", URI: uri, QOP: "auth", CNonce: fmt.Sprintf("c%d", nc), NC: nc}
	if nc == 0 {
		// RFC 2069, without qop: the nonce's only use.
		opts.QOP, opts.CNonce = "", ""
		c := *ch
		c.QOP = nil
		ch = &c
	}
	cr, err := digest.Respond(ch, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &digest.Request{Method: "REGISTER", URI: uri, Authorization: []string{cr.String()}, RemoteAddr: netip.MustParseAddr("127.0.0.1")}
}

// verify verifies r with a deadline, and returns the status of the
// answer (200 if Verify accepted r) and Verify's error.
func verify(t testing.TB, s *digest.Server, r *digest.Request) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.Verify(ctx, r)
	if err == nil {
		return 200, nil
	}
	a, aerr := s.Answer(r, err)
	if aerr != nil && a.Status != 500 {
		t.Fatalf("Answer: %v", aerr)
	}
	return a.Status, err
}

// TestOutage stops Redis under a digest.Server that verifies requests:
// every verification fails (500), none is accepted; when Redis is back,
// empty, verification recovers without a new Server, and what was used
// before the outage stays refused.
func TestOutage(t *testing.T) {
	r := dbtest.NewRedis(t, nil)
	const skew = 100 * time.Millisecond
	store := open(t, r, redis.Options{ClockSkew: skew})
	started(t, store)
	srv := newServer(store)

	ch := challenge(t, srv)
	before := request(t, ch, 1)
	if status, err := verify(t, srv, before); err != nil {
		t.Fatalf("before the outage: %v (%d)", err, status)
	}

	// Requests verify in a loop while Redis goes down.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for g := range 8 {
		wg.Go(func() {
			ch := challenge(t, srv)
			for nc := uint32(1); ; nc++ {
				select {
				case <-stop:
					return
				default:
				}
				status, _ := verify(t, srv, request(t, ch, nc+uint32(g)<<24))
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	clear(statuses)
	mu.Unlock()
	// Redis is down: from here on, nothing may be accepted.
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("answers while Redis was down: %v", statuses)
	if statuses[200] != 0 || statuses[500] == 0 {
		t.Errorf("answers while Redis was down: %v; want only 500", statuses)
	}

	// One by one, with fresh nonces and counts, old and new.
	ch2 := challenge(t, srv)
	for _, req := range []*digest.Request{before, request(t, ch, 2), request(t, ch2, 1), request(t, ch2, 0)} {
		begin := time.Now()
		status, err := verify(t, srv, req)
		t.Logf("Verify while Redis is down: %v after %v", err, time.Since(begin).Round(time.Millisecond))
		if err == nil || status != 500 || errors.Is(err, digest.ErrReplay) || errors.Is(err, digest.ErrStale) {
			t.Errorf("while Redis is down: %v, %d; want a store error and 500", err, status)
		}
	}

	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The client reconnects: go-redis, after failing to dial as many
	// times as its pool has connections, dials again once a second.
	// Meanwhile Verify fails.
	restarted := time.Now()
	for {
		status, err := verify(t, srv, before)
		if status != 500 {
			t.Logf("Redis answers again after %v", time.Since(restarted).Round(time.Millisecond))
			break
		}
		if time.Since(restarted) > 10*time.Second {
			t.Fatalf("Verify still fails 10 s after Redis is back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Redis came back empty: the request used before the outage, and
	// the nonces issued before it, are stale (a new challenge), never
	// accepted.
	for _, req := range []*digest.Request{before, request(t, ch, 3), request(t, ch2, 2)} {
		status, err := verify(t, srv, req)
		if !errors.Is(err, digest.ErrReplay) || status != 401 {
			t.Errorf("after the outage, a nonce issued before it: %v, %d; want ErrReplay and 401", err, status)
		}
	}
	// The client retries with each new challenge, as a phone does after
	// stale=true; it gets in once the start (the clock skew after the
	// restart was noticed) has passed.
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		ch := challenge(t, srv)
		status, err := verify(t, srv, request(t, ch, 1))
		if err == nil {
			t.Logf("accepted at attempt %d, %v after the restart was noticed", attempt, time.Since(begin))
			if status, err := verify(t, srv, request(t, ch, 1)); !errors.Is(err, digest.ErrReplay) || status != 401 {
				t.Errorf("a replay after recovery: %v, %d", err, status)
			}
			break
		}
		if !errors.Is(err, digest.ErrReplay) || status != 401 {
			t.Fatalf("after the restart: %v, %d; want ErrReplay and 401 until the start", err, status)
		}
		if time.Since(begin) > 5*time.Second {
			t.Fatal("no recovery within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := verify(t, srv, before); !errors.Is(err, digest.ErrReplay) {
		t.Errorf("the request accepted before the outage, replayed after recovery: %v", err)
	}
}
