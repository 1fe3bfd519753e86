package redis

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ucsec/ucsec/digest"
)

// Sentinel errors. Errors from this package start with "redis:" and wrap
// one of these, a context error, or the error of Redis or of the client
// (go-redis).
var (
	// ErrInvalid reports an invalid argument: a URL that does not parse,
	// a URL and Options.Client both given or neither, a bad key prefix or
	// number of shards.
	ErrInvalid = errors.New("redis: invalid argument")
	// ErrConnect reports that the store could not reach Redis when it was
	// opened: a server that does not answer, a refused login (a wrong
	// password), a TLS failure.
	ErrConnect = errors.New("redis: cannot connect to Redis")
	// ErrEviction reports, when the store is opened, a Redis that may
	// evict keys (a maxmemory limit with a maxmemory-policy other than
	// noeviction): an evicted entry would let its nonce be used again.
	ErrEviction = errors.New("redis: Redis may evict keys (set maxmemory-policy noeviction)")
	// ErrReply reports a reply of Redis that the store did not expect.
	ErrReply = errors.New("redis: unexpected reply from Redis")
	// ErrClosed reports a use of a closed store.
	ErrClosed = errors.New("redis: replay store closed")
)

// DefaultKeyPrefix is the prefix of the store's keys when
// Options.KeyPrefix is empty.
const DefaultKeyPrefix = "ucsec:digest:"

// DefaultClockSkew is the allowance for clock skew when Options.ClockSkew
// is zero: as far as package digest lets a nonce's issue time be ahead of
// a server's clock.
const DefaultClockSkew = 5 * time.Second

// MaxShards is the highest Options.Shards.
const MaxShards = 1024

// The Lua scripts keep a window of 64 counts.
const _ = uint(digest.ReplayWindow-64) + uint(64-digest.ReplayWindow)

// Options configures [OpenReplayStore]. The zero value, or nil, gives the
// defaults.
type Options struct {
	// Client is a go-redis client to use instead of one made from the
	// URL, which must then be empty: a Sentinel (failover) client, a
	// Cluster client, or a client with TLS, ACL or timeouts of the
	// caller's choice. The store never closes it. It should have
	// ContextTimeoutEnabled set, so that a Use ends when its context
	// does; without it a Use waits for the client's read timeout. Its
	// commands must go to a primary: a replica refuses the writes, and
	// the store fails closed.
	Client goredis.UniversalClient

	// Password, if set, is the password of the client made from the URL,
	// in place of the URL's, so that it need not appear in a URL (taken
	// from the environment or a file by the caller, say). The store never
	// logs it or puts it in an error. It must be empty with Client.
	Password string

	// KeyPrefix is the start of every key of the store; empty means
	// DefaultKeyPrefix ("ucsec:digest:"). Stores with different prefixes
	// on one Redis are independent, as are the Redis databases (the /N of
	// the URL). It may not contain '{' or '}', which would change the
	// Redis Cluster hash tag of the keys.
	KeyPrefix string

	// Shards is the number of hash tags, each with a start of its own,
	// over which nonces are spread; zero means 1. On a single Redis (with
	// or without replicas) one is right. On a Redis Cluster the keys of
	// one hash tag share a slot, and so a node: more shards spread the
	// store over more nodes. At most MaxShards. Every server of a cluster
	// must use the same number, or they do not share nonces: changing it
	// means a new store (nonces issued before are refused once, with a
	// stale challenge).
	Shards int

	// ClockSkew is how far apart the clocks of the servers that share the
	// store may be; zero means DefaultClockSkew (5 s). When the store
	// finds that Redis lost its state, its new start is this far ahead
	// of the clock of the server that noticed, so that a nonce issued
	// (and used) before the loss by a server whose clock is ahead is
	// still refused after it. Entries are also kept this much longer. It
	// may not be negative.
	ClockSkew time.Duration

	// Time returns the current time; nil means time.Now. The store takes
	// its start and the expiry of its entries from it: it should be the
	// clock the digest.Server uses.
	Time func() time.Time

	// Logger receives a warning when the store finds that Redis lost its
	// state, and a debug record when it cannot check Redis's eviction
	// policy. Nil is silent. Records never hold the password.
	Logger *slog.Logger
}

// ReplayStore is a [digest.ReplayStore] in Redis, which the servers of a
// cluster share. It is safe for concurrent use. See the package
// documentation.
type ReplayStore struct {
	client goredis.UniversalClient
	own    bool     // made by OpenReplayStore: closed by Close
	shards []string // per shard, the prefix of its keys: KeyPrefix + "{N}:"
	skew   time.Duration
	time   func() time.Time
	log    *slog.Logger
	closed atomic.Bool
}

var _ digest.ReplayStore = (*ReplayStore)(nil)

// OpenReplayStore opens a replay store in the Redis of url (redis://,
// rediss:// for TLS, or unix://, as go-redis's ParseURL reads them:
// redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]), or, if url is empty, on
// opts.Client. It checks that Redis answers and does not evict keys, and
// makes sure that each shard has a start (see [ReplayStore.Start]). Close
// closes the client it made.
//
// The client made from the URL respects the contexts of calls
// (ContextTimeoutEnabled), with go-redis's defaults otherwise (timeouts
// of 5 s to dial and 3 s to read and write, three retries): a Use lasts
// at most as long as its context allows.
func OpenReplayStore(ctx context.Context, url string, opts *Options) (*ReplayStore, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: opening the replay store: %w", err)
	}
	s := &ReplayStore{skew: opts.ClockSkew, time: opts.Time, log: opts.Logger}
	if s.skew == 0 {
		s.skew = DefaultClockSkew
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	shards := opts.Shards
	if shards == 0 {
		shards = 1
	}
	switch {
	case strings.ContainsAny(prefix, "{}"):
		return nil, fmt.Errorf("%w: key prefix %q contains a brace", ErrInvalid, prefix)
	case shards < 0 || shards > MaxShards:
		return nil, fmt.Errorf("%w: %d shards (1 to %d)", ErrInvalid, shards, MaxShards)
	case s.skew < 0:
		return nil, fmt.Errorf("%w: negative clock skew %v", ErrInvalid, s.skew)
	}
	for i := range shards {
		s.shards = append(s.shards, prefix+"{"+strconv.Itoa(i)+"}:")
	}

	switch {
	case opts.Client != nil && url != "":
		return nil, fmt.Errorf("%w: both a URL and Options.Client given", ErrInvalid)
	case opts.Client != nil && opts.Password != "":
		return nil, fmt.Errorf("%w: Options.Password given with Options.Client", ErrInvalid)
	case opts.Client != nil:
		s.client = opts.Client
	case url == "":
		return nil, fmt.Errorf("%w: no URL and no Options.Client", ErrInvalid)
	default:
		o, err := parseURL(url)
		if err != nil {
			return nil, err
		}
		if opts.Password != "" {
			o.Password = opts.Password
		}
		o.ContextTimeoutEnabled = true
		s.client, s.own = goredis.NewClient(o), true
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnect, withContext(ctx, err))
	}
	if err := s.checkEviction(ctx); err != nil {
		return nil, err
	}
	if _, err := s.Start(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// parseURL reads a Redis URL without ever putting it, and so its
// password, in an error.
func parseURL(s string) (*goredis.Options, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error quotes the URL.
		return nil, fmt.Errorf("%w: a Redis URL that does not parse", ErrInvalid)
	}
	o, err := goredis.ParseURL(s)
	if err != nil {
		// go-redis's errors name a part of the URL, never the password.
		return nil, fmt.Errorf("%w: Redis URL %s: %w", ErrInvalid, u.Redacted(), err)
	}
	return o, nil
}

// checkEviction fails if a primary of Redis may evict keys. A Redis that
// does not let the store read its configuration (a managed service, an
// ACL without CONFIG) passes: the documentation says what to set.
func (s *ReplayStore) checkEviction(ctx context.Context) error {
	check := func(ctx context.Context, c goredis.Cmdable) error {
		m, err := c.ConfigGet(ctx, "maxmemory*").Result()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrConnect, withContext(ctx, err))
			}
			s.log.Debug("redis: cannot read the eviction policy; make sure it is noeviction", "err", err)
			return nil
		}
		limit, policy := m["maxmemory"], m["maxmemory-policy"]
		if limit != "" && limit != "0" && policy != "" && policy != "noeviction" {
			return fmt.Errorf("%w: maxmemory %s, maxmemory-policy %s", ErrEviction, limit, policy)
		}
		return nil
	}
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return check(ctx, c) })
	}
	return check(ctx, s.client)
}

// Close closes the client that OpenReplayStore made (not one given in
// Options.Client). Uses under way finish first; later ones fail with
// ErrClosed.
func (s *ReplayStore) Close() error {
	if s.closed.Swap(true) || !s.own {
		return nil
	}
	return s.client.Close()
}

func (s *ReplayStore) now() time.Time {
	if s.time != nil {
		return s.time()
	}
	return time.Now()
}

// begin checks a call's context and the store, before any work.
func (s *ReplayStore) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if s.client == nil {
		return errors.New("redis: a ReplayStore that OpenReplayStore did not make")
	}
	return nil
}

// withContext adds the context's error to err, if the context has ended
// and err does not already say so (a client without
// ContextTimeoutEnabled reports its own timeout).
func withContext(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// Use implements [digest.ReplayStore]. It is one script on Redis (one
// round trip), which reads the start of the nonce's shard, moves it if
// Redis lost its state, and records the count atomically. It reports
// false, with the error, whenever Redis cannot answer or answers
// something unexpected: it never reports true without Redis having
// recorded the use.
func (s *ReplayStore) Use(ctx context.Context, id digest.NonceID, nc uint32, issued, expires time.Time) (bool, error) {
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	now := s.now()
	if expires.Add(digest.ReplayGrace).Before(now) {
		return false, nil // its entry may be gone
	}
	ttl := expires.Add(digest.ReplayGrace + s.skew).Sub(now)
	ms := max(int64((ttl+time.Millisecond-1)/time.Millisecond), 1)
	start := now.Add(s.skew)
	shard := s.shard(id)
	prefix := s.shards[shard]
	keys := []string{prefix + "start", prefix + "n:" + hex.EncodeToString(id[:])}
	r := useScript.Run(ctx, s.client, keys,
		start.Unix(), start.Nanosecond(), issued.Unix(), issued.Nanosecond(), nc, ms)
	if err := r.Err(); err != nil {
		return false, fmt.Errorf("redis: %w", withContext(ctx, err))
	}
	code, ok := r.Val().(int64)
	if !ok || code < 0 || code > 3 {
		return false, fmt.Errorf("%w: %T %.40v to a use", ErrReply, r.Val(), r.Val())
	}
	if code&2 != 0 {
		s.lost(shard, start)
	}
	return code&1 == 1, nil
}

// shard returns the shard of a nonce, from its random bits.
func (s *ReplayStore) shard(id digest.NonceID) int {
	if len(s.shards) == 1 {
		return 0
	}
	return int(binary.BigEndian.Uint32(id[:4]) % uint32(len(s.shards)))
}

func (s *ReplayStore) lost(shard int, start time.Time) {
	s.log.Warn("redis: Redis lost the replay store's state (a restart, a flush, a failover or an eviction), or this is its first use: nonces issued before its new start are refused once, with a stale challenge",
		"shard", s.shards[shard], "start", start)
}

// Start returns the store's start: nonces issued before it are refused.
// Each shard has a start of its own, kept in Redis next to its nonces;
// Start makes sure that each has one, moving it as Use would if Redis
// lost its state, and returns the latest. A new start is ClockSkew ahead
// of the store's clock, so nonces issued until then are refused: a
// server that sets up the store, or that notices a loss, answers with
// stale challenges for that long.
//
// OpenReplayStore calls it; a test that flushes Redis behind the back of
// a store calls it too, to have the store start at once rather than at
// its next Use.
func (s *ReplayStore) Start(ctx context.Context) (time.Time, error) {
	if err := s.begin(ctx); err != nil {
		return time.Time{}, err
	}
	start := s.now().Add(s.skew)
	var latest time.Time
	for shard, prefix := range s.shards {
		r := startScript.Run(ctx, s.client, []string{prefix + "start"}, start.Unix(), start.Nanosecond())
		if err := r.Err(); err != nil {
			return time.Time{}, fmt.Errorf("redis: the replay store's start: %w", withContext(ctx, err))
		}
		v, ok := r.Val().([]any)
		if !ok || len(v) != 3 {
			return time.Time{}, fmt.Errorf("%w: %T %.40v to a start", ErrReply, r.Val(), r.Val())
		}
		sec, ok1 := v[0].(int64)
		nsec, ok2 := v[1].(int64)
		moved, ok3 := v[2].(int64)
		if !ok1 || !ok2 || !ok3 || nsec < 0 || nsec >= 1e9 {
			return time.Time{}, fmt.Errorf("%w: %.40v to a start", ErrReply, v)
		}
		t := time.Unix(sec, nsec)
		if moved != 0 {
			s.lost(shard, t)
		}
		if t.After(latest) {
			latest = t
		}
	}
	return latest, nil
}
