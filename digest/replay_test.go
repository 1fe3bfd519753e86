package digest_test

import (
	"testing"
	"time"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/digest/digesttest"
)

func TestMemoryReplayStore(t *testing.T) {
	digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
		return &digest.MemoryReplayStore{Start: time.Now()}
	})
}

// TestMemoryReplayStoreSmall: a store bounded to the few hundred nonces
// the suite holds at a time keeps the contract too.
func TestMemoryReplayStoreSmall(t *testing.T) {
	digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
		return &digest.MemoryReplayStore{Start: time.Now(), MaxNonces: 200}
	})
}
