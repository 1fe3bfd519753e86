package redis_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/stores/redis"
)

// The servers of a cluster each open the store on one Redis and give it
// to their digest.Server. The password comes from the environment rather
// than the URL.
func ExampleOpenReplayStore() {
	ctx := context.Background()
	store, err := redis.OpenReplayStore(ctx, "rediss://registrar@redis.example:6380/0",
		&redis.Options{Password: os.Getenv("REDIS_PASSWORD")})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	users := &digest.MemoryStore{}
	users.AddPassword("alice", "cluster.example", "s3cret")
	srv := &digest.Server{
		Realm:       "cluster.example",
		Credentials: users,
		Secrets:     [][]byte{[]byte(os.Getenv("NONCE_SECRET"))}, // the same on every server
		Replay:      store,
	}

	// For each request: a Redis failure is a 500, never an acceptance.
	var req *digest.Request // from the SIP stack
	verifyCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := srv.Verify(verifyCtx, req); err != nil {
		answer, _ := srv.Answer(req, err)
		if answer.Status == http.StatusInternalServerError {
			log.Print(err)
		}
		return
	}
}

// A Sentinel (or Cluster) client of the caller's, with context timeouts
// enabled; the store does not close it.
func ExampleOpenReplayStore_sentinel() {
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		MasterName:            "registrar",
		Addrs:                 []string{"sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"},
		Password:              os.Getenv("REDIS_PASSWORD"),
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	store, err := redis.OpenReplayStore(context.Background(), "", &redis.Options{Client: client, KeyPrefix: "registrar:digest:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_ = &digest.Server{Replay: store /* ... */}
}
