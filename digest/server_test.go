package digest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

var secretA, secretB = []byte("0123456789abcdef-secret-A"), []byte("0123456789abcdef-secret-B")

func testStore() *MemoryStore {
	s := &MemoryStore{}
	s.AddPassword("alice", "test.local", "s3cret")
	return s
}

func testServer(c *clock) *Server {
	return &Server{Realm: "test.local", Credentials: testStore(), Secrets: [][]byte{secretA}, Time: c.Now}
}

// register is a REGISTER that the test client sends.
func register(auth ...string) *Request {
	return &Request{Method: "REGISTER", URI: "sip:test.local", Authorization: auth, RemoteAddr: netip.MustParseAddr("127.0.0.1")}
}

// challenge returns the server's first challenge for r.
func challenge(t *testing.T, s *Server, r *Request) *Challenge {
	t.Helper()
	chs, err := s.Challenges(r, false)
	require.NoError(t, err)
	return chs[0]
}

// answer computes alice's credentials for ch.
func answer(t *testing.T, ch *Challenge, password string, nc uint32, r *Request) string {
	t.Helper()
	opts := RespondOptions{Username: "alice", Password: password, Method: r.Method, URI: r.URI, Body: r.Body}
	if len(ch.QOP) > 0 {
		opts.QOP, opts.CNonce, opts.NC = ch.QOP[0], "0a4f113b", nc
	}
	cr, err := Respond(ch, opts)
	require.NoError(t, err)
	return cr.String()
}

func TestServerFlow(t *testing.T) {
	c := newClock()
	s := testServer(c)
	ctx := context.Background()

	_, err := s.Verify(ctx, register())
	require.ErrorIs(t, err, ErrNoCredentials)
	a, err := s.Answer(register(), err)
	require.NoError(t, err)
	assert.Equal(t, 401, a.Status)
	assert.Equal(t, "WWW-Authenticate", a.Header)
	require.Len(t, a.Values, 1)
	chs, err := ParseChallenges(a.Values[0])
	require.NoError(t, err)
	ch := chs[0]
	assert.Equal(t, "test.local", ch.Realm)
	assert.Equal(t, []string{"auth"}, ch.QOP)
	assert.Equal(t, MD5, ch.Algorithm)
	assert.False(t, ch.Stale)

	res, err := s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err)
	assert.Equal(t, Result{Username: "alice", Algorithm: MD5, QOP: "auth"}, res)

	// The same nonce with the next count is fine; the same count again
	// is a replay, answered with a stale challenge.
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 2, register())))
	require.NoError(t, err)
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 2, register())))
	require.ErrorIs(t, err, ErrReplay)
	a, err = s.Answer(register(), err)
	require.NoError(t, err)
	assert.Contains(t, a.Values[0], "stale=true")
}

// TestWrongCredentials: a wrong password and an unknown user get the same
// error and a fresh (not stale) challenge, as do mismatched parameters.
func TestWrongCredentials(t *testing.T) {
	c := newClock()
	s := testServer(c)
	s.Opaque = "op4que"
	ctx := context.Background()
	ch := challenge(t, s, register())

	wrong := answer(t, ch, "wrong", 1, register())
	_, errWrong := s.Verify(ctx, register(wrong))
	unknown, err := Respond(ch, RespondOptions{Username: "mallory", Password: "s3cret", Method: "REGISTER", URI: "sip:test.local", QOP: "auth", CNonce: "x", NC: 1})
	require.NoError(t, err)
	_, errUnknown := s.Verify(ctx, register(unknown.String()))
	assert.Equal(t, ErrUnauthorized, errWrong)
	assert.Equal(t, errWrong, errUnknown, "an unknown user is indistinguishable from a wrong password")
	a, err := s.Answer(register(), errWrong)
	require.NoError(t, err)
	assert.NotContains(t, a.Values[0], "stale")

	good, err := ParseCredentials(answer(t, ch, "s3cret", 1, register()))
	require.NoError(t, err)
	for name, edit := range map[string]func(c *Credentials){
		"uri":       func(c *Credentials) { c.URI = "sip:other" },
		"opaque":    func(c *Credentials) { c.Opaque = "other" },
		"algorithm": func(c *Credentials) { c.Algorithm = SHA256 },
		"qop":       func(c *Credentials) { c.QOP = "auth-int" },
		"response":  func(c *Credentials) { c.Response = strings.Repeat("0", 32) },
		"short":     func(c *Credentials) { c.Response = "00" },
		"userhash":  func(c *Credentials) { c.UserHash = true },
	} {
		t.Run(name, func(t *testing.T) {
			bad := *good
			edit(&bad)
			_, err := s.Verify(ctx, register(bad.String()))
			assert.Equal(t, ErrUnauthorized, err)
		})
	}
	// None of this used up the client's count.
	_, err = s.Verify(ctx, register(good.String()))
	require.NoError(t, err)
}

// TestRecordOnlyAfterVerify: a forged request with a sniffed nonce and a
// high count does not burn the client's counts.
func TestRecordOnlyAfterVerify(t *testing.T) {
	s := testServer(newClock())
	ctx := context.Background()
	ch := challenge(t, s, register())
	forged, err := Respond(ch, RespondOptions{Username: "alice", Password: "guess", Method: "REGISTER", URI: "sip:test.local", QOP: "auth", CNonce: "x", NC: 1000})
	require.NoError(t, err)
	_, err = s.Verify(ctx, register(forged.String()))
	require.ErrorIs(t, err, ErrUnauthorized)
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err)
}

func TestExpiry(t *testing.T) {
	c := newClock()
	s := testServer(c)
	s.NonceValidity = 600 * time.Second
	ctx := context.Background()
	ch := challenge(t, s, register())

	c.Add(599 * time.Second)
	_, err := s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err, "validity - 1 s: accepted")
	c.Add(2 * time.Second)
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 2, register())))
	require.ErrorIs(t, err, ErrStale, "validity + 1 s: stale")
	a, err := s.Answer(register(), err)
	require.NoError(t, err)
	assert.Contains(t, a.Values[0], "stale=true")

	// A wrong password on an expired nonce is not stale.
	_, err = s.Verify(ctx, register(answer(t, ch, "wrong", 3, register())))
	require.Equal(t, ErrUnauthorized, err)

	// A nonce from the future (another server's clock far ahead) is stale.
	c2 := &clock{now: c.Now().Add(time.Minute)}
	ahead := testServer(c2)
	ch = challenge(t, ahead, register())
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.ErrorIs(t, err, ErrStale)
}

func TestDefaultValidity(t *testing.T) {
	c := newClock()
	s := testServer(c)
	ch := challenge(t, s, register())
	c.Add(DefaultNonceValidity - time.Second)
	_, err := s.Verify(context.Background(), register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err)
}

// TestClusterAndRotation: servers sharing secrets accept each other's
// nonces; a different secret does not; after rotation old nonces verify
// until they are dropped, then are stale.
func TestClusterAndRotation(t *testing.T) {
	c := newClock()
	ctx := context.Background()
	a, b := testServer(c), testServer(c)
	other := testServer(c)
	other.Secrets = [][]byte{secretB}

	ch := challenge(t, a, register())
	_, err := b.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err, "a cluster peer accepts the nonce")
	_, err = other.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.ErrorIs(t, err, ErrStale, "a server with another secret does not")

	// Nor does a server of another realm with the same secret, even for a
	// user with the same password there.
	elsewhere := testServer(c)
	elsewhere.Realm = "elsewhere.local"
	elsewhere.Credentials.(*MemoryStore).AddPassword("alice", "elsewhere.local", "s3cret")
	moved := *ch
	moved.Realm = elsewhere.Realm
	_, err = elsewhere.Verify(ctx, register(answer(t, &moved, "s3cret", 1, register())))
	require.ErrorIs(t, err, ErrStale, "another realm's server with the same secret does not")

	rotated := testServer(c)
	rotated.Secrets = [][]byte{secretB, secretA}
	_, err = rotated.Verify(ctx, register(answer(t, ch, "s3cret", 2, register())))
	require.NoError(t, err, "the previous secret still verifies")
	newCh := challenge(t, rotated, register())
	_, err = other.Verify(ctx, register(answer(t, newCh, "s3cret", 1, register())))
	require.NoError(t, err, "new nonces use the first secret")

	done := testServer(c)
	done.Secrets = [][]byte{secretB}
	_, err = done.Verify(ctx, register(answer(t, ch, "s3cret", 3, register())))
	require.ErrorIs(t, err, ErrStale, "a nonce of a rotated-out secret is stale")
}

func TestReorderWindow(t *testing.T) {
	s := testServer(newClock())
	ctx := context.Background()
	ch := challenge(t, s, register())
	for _, nc := range []uint32{5, 3, 4, 1, 2, 69, 7, 6} {
		_, err := s.Verify(ctx, register(answer(t, ch, "s3cret", nc, register())))
		require.NoError(t, err, "nc %d", nc)
	}
	for _, nc := range []uint32{5, 69, 6, 1} { // 5 and 1 have left the window of 64
		_, err := s.Verify(ctx, register(answer(t, ch, "s3cret", nc, register())))
		require.ErrorIs(t, err, ErrReplay, "nc %d again", nc)
	}
}

// TestNoQOP: RFC 2069 responses are accepted once per nonce.
func TestNoQOP(t *testing.T) {
	s := testServer(newClock())
	s.OmitQOP = true
	ctx := context.Background()
	ch := challenge(t, s, register())
	assert.Empty(t, ch.QOP)
	h := answer(t, ch, "s3cret", 0, register())
	res, err := s.Verify(ctx, register(h))
	require.NoError(t, err)
	assert.Equal(t, "", res.QOP)
	_, err = s.Verify(ctx, register(h))
	require.ErrorIs(t, err, ErrReplay)

	// With qop offered, a no-qop answer is still accepted (RFC 3261
	// §22.4), once; -sess without qop is not.
	s2 := testServer(newClock())
	ch = challenge(t, s2, register())
	noqop := *ch
	noqop.QOP = nil
	_, err = s2.Verify(ctx, register(answer(t, &noqop, "s3cret", 0, register())))
	require.NoError(t, err)
}

func TestAuthInt(t *testing.T) {
	s := testServer(newClock())
	s.QOP = []string{"auth-int"}
	ctx := context.Background()
	r := register()
	r.Body = []byte("v=0\r\n")
	ch := challenge(t, s, r)
	h := answer(t, ch, "s3cret", 1, r)
	_, err := s.Verify(ctx, register(h))
	require.Equal(t, ErrUnauthorized, err, "another body")
	r.Authorization = []string{h}
	res, err := s.Verify(ctx, r)
	require.NoError(t, err)
	assert.Equal(t, "auth-int", res.QOP)
}

func TestAlgorithms(t *testing.T) {
	s := testServer(newClock())
	s.Algorithms = []Algorithm{SHA512_256, SHA256, MD5, MD5Sess, SHA256Sess, SHA512_256Sess}
	ctx := context.Background()
	chs, err := s.Challenges(register(), false)
	require.NoError(t, err)
	require.Len(t, chs, 6)
	for i, ch := range chs {
		assert.Equal(t, s.Algorithms[i], ch.Algorithm)
		_, err := s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
		require.NoError(t, err, ch.Algorithm)
	}
	// A nonce from the MD5 challenge does not serve a SHA-256 response.
	swapped := *chs[2]
	swapped.Algorithm = SHA256
	_, err = s.Verify(ctx, register(answer(t, &swapped, "s3cret", 1, register())))
	require.ErrorIs(t, err, ErrStale)

	// Only offered algorithms are accepted.
	md5only := testServer(newClock())
	_, err = md5only.Verify(ctx, register(answer(t, chs[1], "s3cret", 2, register())))
	require.Equal(t, ErrUnauthorized, err)
}

func TestUserHash(t *testing.T) {
	s := testServer(newClock())
	s.UserHash = true
	s.Algorithms = []Algorithm{SHA256}
	ctx := context.Background()
	ch := challenge(t, s, register())
	assert.True(t, ch.UserHash)
	h := answer(t, ch, "s3cret", 1, register())
	assert.NotContains(t, h, "alice")
	res, err := s.Verify(ctx, register(h))
	require.NoError(t, err)
	assert.Equal(t, "alice", res.Username)

	_, err = (&Server{Realm: "r", Credentials: storeOnly{}, UserHash: true}).Challenges(nil, false)
	assert.ErrorContains(t, err, "UserHashStore")
}

type storeOnly struct{}

func (storeOnly) HA1(context.Context, string, string, Algorithm) (string, error) {
	return "", ErrUnknownUser
}

// failingStore fails as a broken database would.
type failingStore struct{}

var errDB = errors.New("database down")

func (failingStore) HA1(context.Context, string, string, Algorithm) (string, error) { return "", errDB }

func TestProxyAndErrors(t *testing.T) {
	s := testServer(newClock())
	s.Proxy = true
	ctx := context.Background()
	a, err := s.Answer(register(), ErrNoCredentials)
	require.NoError(t, err)
	assert.Equal(t, 407, a.Status)
	assert.Equal(t, "Proxy-Authenticate", a.Header)

	_, err = s.Verify(ctx, register(`Digest username="alice"`))
	require.ErrorIs(t, err, ErrMalformed)
	a, _ = s.Answer(register(), err)
	assert.Equal(t, 400, a.Status)

	ch := challenge(t, s, register())
	h := answer(t, ch, "s3cret", 1, register())
	_, err = s.Verify(ctx, register(h, h))
	require.ErrorIs(t, err, ErrMalformed, "two credentials for one realm")
	other := strings.Replace(h, `realm="test.local"`, `realm="other"`, 1)
	_, err = s.Verify(ctx, register(other, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", h))
	require.NoError(t, err, "another realm's credentials and other schemes are left alone")

	broken := testServer(newClock())
	broken.Credentials = failingStore{}
	_, err = broken.Verify(ctx, register(answer(t, challenge(t, broken, register()), "s3cret", 1, register())))
	require.ErrorIs(t, err, errDB)
	a, _ = broken.Answer(register(), err)
	assert.Equal(t, 500, a.Status)

	for _, bad := range []*Server{
		{Credentials: testStore()},
		{Realm: "r"},
		{Realm: "r", Credentials: testStore(), Secrets: [][]byte{[]byte("short")}},
		{Realm: "r", Credentials: testStore(), Algorithms: []Algorithm{"AKAv1-MD5"}},
		{Realm: "r", Credentials: testStore(), QOP: []string{"auth-conf"}},
	} {
		_, err := bad.Verify(ctx, register())
		assert.Error(t, err)
		assert.False(t, errors.Is(err, ErrNoCredentials))
	}
}

func TestBindAddress(t *testing.T) {
	s := testServer(newClock())
	s.BindAddress = true
	ctx := context.Background()
	ch := challenge(t, s, register())
	r := register(answer(t, ch, "s3cret", 1, register()))
	r.RemoteAddr = netip.MustParseAddr("192.0.2.7")
	_, err := s.Verify(ctx, r)
	require.ErrorIs(t, err, ErrStale)
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err)
}

// TestRandomSecret: without Secrets a server makes its own, which another
// server does not share.
func TestRandomSecret(t *testing.T) {
	c := newClock()
	a := &Server{Realm: "test.local", Credentials: testStore(), Time: c.Now}
	b := &Server{Realm: "test.local", Credentials: testStore(), Time: c.Now}
	ch := challenge(t, a, register())
	_, err := a.Verify(context.Background(), register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err)
	_, err = b.Verify(context.Background(), register(answer(t, ch, "s3cret", 2, register())))
	require.ErrorIs(t, err, ErrStale)
}

// TestReplayStoreBounded floods a small store with fresh nonces: memory
// stays bounded, a nonce whose entry was dropped is refused rather than
// replayable, and recent nonces keep working.
func TestReplayStoreBounded(t *testing.T) {
	c := newClock()
	store := &MemoryReplayStore{MaxNonces: 100, Time: c.Now}
	s := testServer(c)
	s.Replay = store
	ctx := context.Background()
	first := challenge(t, s, register())
	_, err := s.Verify(ctx, register(answer(t, first, "s3cret", 1, register())))
	require.NoError(t, err)
	for i := range 1000 {
		if i%10 == 0 {
			c.Add(time.Second)
		}
		ch := challenge(t, s, register())
		_, err := s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
		require.NoError(t, err)
	}
	assert.Equal(t, 100, store.Len())
	_, err = s.Verify(ctx, register(answer(t, first, "s3cret", 2, register())))
	require.ErrorIs(t, err, ErrReplay, "a dropped nonce is refused, not forgotten")

	// Entries leave a minute (the grace for clock skew) after their nonce
	// expires.
	c.Add(DefaultNonceValidity + 2*time.Minute)
	ch := challenge(t, s, register())
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err)
	assert.Equal(t, 1, store.Len())
}

func TestReplayStoreConcurrent(t *testing.T) {
	s := testServer(newClock())
	ctx := context.Background()
	ch := challenge(t, s, register())
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cr, err := Respond(ch, RespondOptions{Username: "alice", Password: "s3cret", Method: "REGISTER", URI: "sip:test.local", QOP: "auth", CNonce: fmt.Sprint(i), NC: uint32(i%50 + 1)})
			if err != nil {
				panic(err)
			}
			if _, err := s.Verify(ctx, register(cr.String())); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 50, ok, "each count accepted exactly once")
}

func TestUnchallenged(t *testing.T) {
	assert.True(t, Unchallenged("ACK"))
	assert.True(t, Unchallenged("CANCEL"))
	assert.False(t, Unchallenged("INVITE"))
	assert.False(t, Unchallenged("OPTIONS"))
}

// TestRestartRefusesOldNonces: a new server (a restart, or a new process
// with the same secrets) cannot know which counts the old one accepted, so
// it refuses nonces issued before it started: a replay of a request the
// old server accepted is stale, not accepted.
func TestRestartRefusesOldNonces(t *testing.T) {
	c := newClock()
	ctx := context.Background()
	old := testServer(c)
	ch := challenge(t, old, register())
	h := answer(t, ch, "s3cret", 1, register())
	_, err := old.Verify(ctx, register(h))
	require.NoError(t, err)

	c.Add(time.Second)
	restarted := testServer(c)
	_, err = restarted.Verify(ctx, register(h))
	require.ErrorIs(t, err, ErrReplay)
	a, err := restarted.Answer(register(), err)
	require.NoError(t, err)
	assert.Contains(t, a.Values[0], "stale=true")
	fresh := challenge(t, restarted, register())
	_, err = restarted.Verify(ctx, register(answer(t, fresh, "s3cret", 1, register())))
	require.NoError(t, err)
}

// TestExpiryBoundary: at the very second a nonce expires it is stale, and
// so is a replay at that moment.
func TestExpiryBoundary(t *testing.T) {
	c := newClock()
	s := testServer(c)
	ctx := context.Background()
	ch := challenge(t, s, register())
	h := answer(t, ch, "s3cret", 1, register())
	c.Add(DefaultNonceValidity - time.Second)
	_, err := s.Verify(ctx, register(h))
	require.NoError(t, err)
	c.Add(time.Second)
	_, err = s.Verify(ctx, register(h))
	require.ErrorIs(t, err, ErrStale)
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 2, register())))
	require.ErrorIs(t, err, ErrStale)
}

func TestSetSecrets(t *testing.T) {
	c := newClock()
	s := testServer(c)
	ctx := context.Background()
	ch := challenge(t, s, register())
	require.NoError(t, s.SetSecrets([][]byte{secretB, secretA}))
	_, err := s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
	require.NoError(t, err, "the old secret still verifies")
	require.NoError(t, s.SetSecrets([][]byte{secretB}))
	_, err = s.Verify(ctx, register(answer(t, ch, "s3cret", 2, register())))
	require.ErrorIs(t, err, ErrStale, "until it is removed")
	assert.Error(t, s.SetSecrets(nil))
	assert.Error(t, s.SetSecrets([][]byte{[]byte("short")}))
}

func TestServerOptions(t *testing.T) {
	ctx := context.Background()
	s := testServer(newClock())
	s.RequireQOP = true
	ch := challenge(t, s, register())
	noqop := *ch
	noqop.QOP = nil
	_, err := s.Verify(ctx, register(answer(t, &noqop, "s3cret", 0, register())))
	require.Equal(t, ErrUnauthorized, err, "RequireQOP refuses RFC 2069 responses")

	s = testServer(newClock())
	s.IgnoreURI = true
	ch = challenge(t, s, register())
	r := register(answer(t, ch, "s3cret", 1, register()))
	r.URI = "sip:rewritten.example.com"
	_, err = s.Verify(ctx, r)
	require.NoError(t, err)

	s = testServer(newClock())
	s.BindAddress = true
	ch = challenge(t, s, register())
	r = register(answer(t, ch, "s3cret", 1, register()))
	r.RemoteAddr = netip.MustParseAddr("::ffff:127.0.0.1")
	_, err = s.Verify(ctx, r)
	require.NoError(t, err, "a v4-mapped address is the same client")
	r.RemoteAddr = netip.Addr{}
	_, err = s.Verify(ctx, r)
	require.ErrorContains(t, err, "RemoteAddr")
	_, err = s.Challenges(&Request{}, false)
	require.ErrorContains(t, err, "RemoteAddr")

	_, err = testServer(newClock()).Verify(ctx, nil)
	require.Error(t, err)
	for _, bad := range []*Server{
		{Realm: "r", Credentials: testStore(), Algorithms: []Algorithm{}},
		{Realm: "r", Credentials: testStore(), QOP: []string{}},
	} {
		_, err := bad.Challenges(nil, false)
		assert.ErrorContains(t, err, "empty")
	}
}

// TestRestartWithinASecond: a server restarted with the same secrets a
// fraction of a second after the old one accepted a request refuses that
// request (it cannot know the old server accepted it), however close the
// two moments, and accepts its own nonces from its first moment on.
func TestRestartWithinASecond(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ used, restart time.Duration }{
		{100 * time.Millisecond, 900 * time.Millisecond},
		{0, time.Nanosecond},
		{500 * time.Millisecond, 500*time.Millisecond + time.Microsecond},
		{999 * time.Millisecond, time.Second},
		{999 * time.Millisecond, 1001 * time.Millisecond},
	} {
		t.Run(fmt.Sprint(tc.used, "-", tc.restart), func(t *testing.T) {
			c := newClock()
			c.Add(tc.used)
			old := testServer(c)
			h := answer(t, challenge(t, old, register()), "s3cret", 1, register())
			_, err := old.Verify(ctx, register(h))
			require.NoError(t, err)

			c.Add(tc.restart - tc.used)
			restarted := testServer(c)
			_, err = restarted.Verify(ctx, register(h))
			require.ErrorIs(t, err, ErrReplay, "the request the old server accepted")
			fresh := challenge(t, restarted, register())
			_, err = restarted.Verify(ctx, register(answer(t, fresh, "s3cret", 1, register())))
			require.NoError(t, err, "a nonce of the restarted server, at once")
			c.Add(time.Millisecond)
			fresh = challenge(t, restarted, register())
			_, err = restarted.Verify(ctx, register(answer(t, fresh, "s3cret", 1, register())))
			require.NoError(t, err, "a nonce of the restarted server, a moment later")
		})
	}
}

// TestMemoryReplayStoreStart: nonces issued before Start are refused to
// the nanosecond, not to the second.
func TestMemoryReplayStoreStart(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 900_000_000, time.UTC)
	for _, tc := range []struct {
		issued time.Duration // from start
		want   bool
	}{
		{-1500 * time.Millisecond, false},
		{-800 * time.Millisecond, false}, // same second as Start
		{-time.Nanosecond, false},
		{0, true},
		{100 * time.Millisecond, true},
	} {
		s := &MemoryReplayStore{Start: start, Time: func() time.Time { return start }}
		issued := start.Add(tc.issued)
		ok, err := s.Use(context.Background(), NonceID{1}, 1, issued, issued.Add(DefaultNonceValidity))
		require.NoError(t, err)
		assert.Equal(t, tc.want, ok, "issued %v from Start", tc.issued)
	}
}

// failingReplay is a replay store that cannot answer: it returns err, and
// ok, which a Server must ignore.
type failingReplay struct {
	ok  bool
	err error
}

func (f failingReplay) Use(context.Context, NonceID, uint32, time.Time, time.Time) (bool, error) {
	return f.ok, f.err
}

// TestReplayStoreError: a replay store that fails gets the request
// refused with a server error, even if it also reported the use new: the
// server fails closed.
func TestReplayStoreError(t *testing.T) {
	ctx := context.Background()
	unreachable := errors.New("replay store unreachable")
	for _, tc := range []failingReplay{
		{false, unreachable},
		{true, unreachable},
		{true, context.DeadlineExceeded},
	} {
		s := testServer(newClock())
		s.Replay = tc
		ch := challenge(t, s, register())
		res, err := s.Verify(ctx, register(answer(t, ch, "s3cret", 1, register())))
		require.Zero(t, res, "%+v", tc)
		require.ErrorIs(t, err, tc.err)
		for _, sentinel := range []error{ErrReplay, ErrStale, ErrUnauthorized, ErrNoCredentials, ErrMalformed} {
			require.NotErrorIs(t, err, sentinel)
		}
		require.True(t, strings.HasPrefix(err.Error(), "digest: replay store: "), err.Error())
		a, err := s.Answer(register(), err)
		require.NoError(t, err)
		assert.Equal(t, Answer{Status: 500}, a)
	}
}

// TestMemoryReplayStoreRefuses: a done context is an error, and nothing
// is recorded; a nonce that expired more than ReplayGrace ago is refused,
// as its entry may be gone.
func TestMemoryReplayStoreRefuses(t *testing.T) {
	c := newClock()
	s := &MemoryReplayStore{Start: c.Now(), Time: c.Now}
	issued := c.Now()
	expires := issued.Add(DefaultNonceValidity)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ok, err := s.Use(ctx, NonceID{1}, 1, issued, expires)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, ok)
	require.Zero(t, s.Len())

	ok, err = s.Use(context.Background(), NonceID{1}, 1, issued, expires)
	require.NoError(t, err)
	require.True(t, ok)
	// Just within the grace after expiry, the entry is there: a replay
	// is refused, a new count accepted.
	c.Add(DefaultNonceValidity + ReplayGrace)
	for nc, want := range map[uint32]bool{1: false, 2: true} {
		ok, err = s.Use(context.Background(), NonceID{1}, nc, issued, expires)
		require.NoError(t, err)
		require.Equal(t, want, ok, "nc %d", nc)
	}
	// Beyond it, the entry may be gone: refused, with any count, and so
	// is a nonce never seen.
	c.Add(time.Second)
	for _, id := range []NonceID{{1}, {2}} {
		for _, nc := range []uint32{1, 3, 0} {
			ok, err = s.Use(context.Background(), id, nc, issued, expires)
			require.NoError(t, err)
			require.False(t, ok, "nonce %v nc %d", id, nc)
		}
	}
}

// TestSeveralAuthorizations gives Verify credentials of another realm
// (with an opaque value ours lack) and of another scheme before ours: only
// ours count, and nothing of the others sticks to them.
func TestSeveralAuthorizations(t *testing.T) {
	s := testServer(newClock())
	fresh := func() string { return answer(t, challenge(t, s, register()), "s3cret", 1, register()) }
	other := `Digest username="bob", realm="other.local", nonce="n", uri="sip:test.local", response="00112233445566778899aabbccddeeff", opaque="zzz", cnonce="c", qop=auth, nc=00000001`
	odd := `Digest  username="bob", realm="other.local", nonce="n", uri="u", response="r", opaque="zzz"` // not canonical
	for _, hs := range [][]string{
		{other, fresh()},
		{"Basic Ym9iOnB3", other, fresh()},
		{fresh(), other},
		{odd, fresh()},
	} {
		res, err := s.Verify(context.Background(), register(hs...))
		require.NoError(t, err, "%q", hs)
		assert.Equal(t, "alice", res.Username)
	}
	ours := fresh()
	_, err := s.Verify(context.Background(), register(ours, ours))
	assert.ErrorIs(t, err, ErrMalformed, "two credentials for the realm")
}

// TestDecodeNonce checks decodeNonce against nonceEncoding on random
// texts: valid ones, one character changed to any byte, and the last
// character's unused bits set.
func TestDecodeNonce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	check := func(s string) {
		t.Helper()
		var got [nonceLen]byte
		var want [64]byte
		ok := decodeNonce(&got, s)
		n, err := nonceEncoding.Decode(want[:], []byte(s))
		wantOK := err == nil && n == nonceLen && len(s) == nonceText
		if ok != wantOK || ok && got != [nonceLen]byte(want[:nonceLen]) {
			t.Fatalf("%q: decodeNonce %v %x, base64 %v %v %x", s, ok, got, err, n, want)
		}
	}
	for range 20000 {
		var raw [nonceLen]byte
		for i := range raw {
			raw[i] = byte(r.Uint32())
		}
		s := nonceEncoding.EncodeToString(raw[:])
		check(s)
		b := []byte(s)
		b[r.IntN(len(b))] = byte(r.Uint32())
		check(string(b))
		b = []byte(s)
		b[len(b)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[r.IntN(64)]
		check(string(b))
	}
	check("")
	check(strings.Repeat("A", nonceText-1))
	check(strings.Repeat("A", nonceText+1))
}

// TestEqualHexSum checks equalHexSum against equalHex on the hex of the
// same digest: equal, one digit changed, upper case, other lengths.
func TestEqualHexSum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		sum := make([]byte, []int{16, 32}[r.IntN(2)])
		for i := range sum {
			sum[i] = byte(r.Uint32())
		}
		want := hex.EncodeToString(sum)
		for _, got := range []string{
			want, strings.ToUpper(want), want[:len(want)-1], want + "0", "",
			want[:3] + string("0123456789abcdefABCDEFgx"[r.IntN(24)]) + want[4:],
		} {
			if a, b := equalHexSum(got, sum), equalHex(got, []byte(want)); a != b {
				t.Fatalf("equalHexSum(%q, %x) = %v, equalHex %v", got, sum, a, b)
			}
		}
	}
}
