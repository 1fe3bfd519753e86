package digesttest_test

import (
	"testing"
	"time"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/digest/digesttest"
)

// A store's tests run the suite on a new store for each subtest, started
// by the time it is returned: here a MemoryReplayStore with Start set; a
// Redis store would empty its database first.
func ExampleTestReplayStore() {
	// In the store's _test.go file: func TestReplayStore(t *testing.T) { … }
	testReplayStore := func(t *testing.T) {
		digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
			return &digest.MemoryReplayStore{Start: time.Now()}
		})
	}
	_ = testReplayStore
}
