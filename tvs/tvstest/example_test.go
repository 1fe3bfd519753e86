package tvstest_test

import (
	"testing"

	"github.com/ucsec/ucsec/tvs"
	"github.com/ucsec/ucsec/tvs/tvstest"
)

// A store's tests run the suite on a new, empty store for each subtest:
// here a MemoryStore; a database store would empty its table first, and
// close its connection when the subtest ends.
func ExampleTestStore() {
	// In the store's _test.go file: func TestStore(t *testing.T) { … }
	testStore := func(t *testing.T) {
		tvstest.TestStore(t, func(t *testing.T) tvs.Store {
			s := tvs.NewMemoryStore()
			t.Cleanup(func() { s.Close() })
			return s
		})
	}
	_ = testStore
}
