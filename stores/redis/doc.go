// Package redis is a [digest.ReplayStore] in Redis: the memory of used
// nonce counts that the digest.Server instances of a cluster share, so
// that a request captured on one node cannot be replayed on another. It
// is a module of its own (github.com/ucsec/ucsec/stores/redis), so that
// the core module does not depend on go-redis.
//
// # Where to start
//
// [OpenReplayStore] opens a store from a redis:// or rediss:// URL, or on a
// go-redis client of the caller's (Sentinel, Cluster, TLS, ACL users:
// Options.Client). Every server of the cluster opens one on the same Redis
// with the same options, and sets it as its Server's Replay:
//
//	store, err := redis.OpenReplayStore(ctx, "rediss://redis.example:6380/0",
//		&redis.Options{Password: os.Getenv("REDIS_PASSWORD")})
//	...
//	defer store.Close()
//	srv := &digest.Server{Realm: "cluster.example", Credentials: users, Secrets: secrets, Replay: store}
//
// The package's name is that of go-redis's package: a program that imports
// both names one of them, for example goredis "github.com/redis/go-redis/v9".
//
// # How it works
//
// Each Use is one round trip: a Lua script (EVALSHA, falling back to EVAL
// when Redis does not have it cached, as after a restart) that reads the
// store's start, moves it if Redis lost its state, and records the count
// in the nonce's entry, atomically. The Server calls Use only for a
// response that verified on a nonce of its own that has not expired: a
// challenge (401) and a wrong password never reach Redis.
//
// Keys, for the default prefix "ucsec:digest:" and shard N (0 unless
// Options.Shards is more than 1):
//
//	ucsec:digest:{N}:start            "SECONDS NANOSECONDS RUN_ID": the shard's start, no expiry
//	ucsec:digest:{N}:n:<24 hex>       a nonce's entry: 12 bytes, expires with the nonce
//
// The hex is the nonce's 96 random bits ([digest.NonceID.String]). An
// entry holds the highest count used and a 64-bit map of the counts up to
// 63 below it (the [digest.ReplayWindow]); a use without qop (count 0)
// consumes the nonce. Its expiry is ReplayGrace (a minute) plus
// ClockSkew after the nonce's, relative to the clock of the server that
// used it last, and no earlier than a previous use set: with the default
// nonce validity of 600 s, an entry lives at most 665 s. Memory is so
// bounded by the nonces used in the last eleven minutes or so. With Redis
// 7.0 on 64-bit Linux, MEMORY USAGE reports 104 bytes for an entry, and
// used_memory grows by about 180 bytes per nonce (the key, the value, the
// expiry and Redis's hash tables): 100 000 phones that each take a fresh
// nonce every ten minutes hold at most two entries each, about 36 MB.
//
// # The start, and clock skew
//
// A store must refuse what it cannot vouch for: after Redis lost uses it
// had recorded, a nonce issued before the loss may have been used. Each
// shard's start key says from when the store knows every use, and which
// Redis process (run_id, from INFO server) set it. The script moves the
// start when the key is missing (a restart without persistence, FLUSHALL,
// a first use) or was set by another process (a restart that reloaded an
// RDB snapshot or an append-only file, which may lack the last uses; a
// failover to a replica, which may have lagged; a slot migrated to
// another node), and refuses every nonce issued before the start, to the
// nanosecond, without recording it. Because the start lives next to the
// entries it vouches for, whatever takes the entries takes the start, and
// the same atomic step that records a use checks it.
//
// Nonces carry their issue time on the clock of the server that issued
// them; the new start is taken on the clock of the server that noticed
// the loss (Options.Time), plus ClockSkew (5 s by default). A nonce
// issued and used before the loss by a server whose clock runs ahead of
// the noticing server's by less than ClockSkew is so still refused. The
// start never moves back: a new start is no earlier than the one it
// replaces. Redis's own clock (TIME) plays no part, so it need not be in
// step with the servers'. The price: after a loss, and when a store is
// first set up, nonces issued in the next ClockSkew are refused as well,
// and their clients get stale challenges (each a fresh nonce, which they
// answer at once) until the start has passed. [ReplayStore.Start] returns
// the start.
//
// # Failures
//
// The store fails closed. A Use that cannot complete its script (Redis
// down or unreachable, a timeout, a refused login, a replica that refuses
// the write, OOM under maxmemory, a reply that is not the expected
// integer) returns false and an error, and the Server answers 500 rather
// than accepting the request. Nothing is ever accepted without Redis
// having recorded the use; a retry by go-redis of a script whose reply
// was lost may record a use twice, which only refuses the request. When
// Redis comes back, the store works again without a restart of the
// server: go-redis reconnects (after failing to dial as many times as its
// pool has connections it tries again once a second), and the first use
// notices the loss.
//
// A Use takes as long as its context allows: a client made from a URL has
// ContextTimeoutEnabled; a client given in Options.Client should too, or a
// Use waits for the client's read timeout (3 s by default, times its
// retries). go-redis logs dial failures through its own global logger
// (redis.SetLogger in go-redis), not the store's Logger.
//
// # Redis
//
// Redis 7 (tested with 7.0.15), without persistence or with it; Redis 5
// and 6 should do, as the scripts use only GET, SET PX, PTTL and INFO,
// Lua's bit and struct libraries, and the replication of scripts by their
// effects that Redis 5 made the default.
// It must not evict keys: an evicted entry would make its nonce look
// unused. Set maxmemory-policy noeviction (or no maxmemory);
// OpenReplayStore checks the policy when Redis lets it read its
// configuration and fails with [ErrEviction] otherwise, but a managed
// Redis that hides its configuration is not checked. Scripts must be
// allowed; an ACL user needs EVALSHA, EVAL, INFO, GET, SET, PTTL and PING
// (and CONFIG GET for the check) on the keys of the prefix.
//
// # Sizing and scaling
//
// One round trip per REGISTER (or other request) that carries credentials
// and verifies, and about 180 bytes for each nonce used in the last
// NonceValidity plus 65 s. A single Redis runs tens of thousands of these
// scripts a second (BenchmarkVerify, with Redis on the same two-CPU
// machine over the loopback: 20 000 to 40 000 Verify calls a second with
// 64 at a time; one at a time, 55 µs each, of which the round trip is
// most), far more than the registrations of a large cluster. go-redis's
// pool has 10 connections per CPU; pool_size in the URL changes it. Replicas and Sentinel give availability, not capacity: every
// use is a write and must go to the primary (a replica refuses it, and the
// store fails closed); after a failover the new primary's run_id moves the
// start, and clients get one round of stale challenges. During a split
// brain both primaries may accept a use once each; Redis's
// min-replicas-to-write narrows that window. On a Redis Cluster, each
// call's keys share a hash tag ({N}), so that the script's two keys are in
// one slot; Options.Shards spreads nonces over that many hash tags, and
// so over the cluster's primaries, each shard with a start of its own
// that a failure of its node moves without affecting the others.
//
// # Security
//
// Whoever can write to the store's keys can make it accept a replay, by
// rewriting or deleting a nonce's entry, or refuse every nonce, by moving
// a start ahead. Keep Redis on a trusted network, with a password or an
// ACL user, and TLS (rediss://) where the network is not trusted. The keys hold nonce identifiers, which clients see anyway, and
// no credentials. The password is never logged nor put in an error; an
// invalid URL is reported without it.
//
// # Compatibility
//
// The key layout is the store's: servers that share a store run versions
// of this package with the same layout, the same prefix and the same
// number of shards. A version that changes the layout will say so, and use
// keys that an older version does not read. An entry of another layout is
// an error, never taken as unused.
package redis
