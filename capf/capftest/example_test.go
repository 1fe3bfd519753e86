package capftest_test

import (
	"testing"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/capf/capftest"
)

// A store's tests run the suite on a new, empty store for each subtest:
// here a MemoryStore; a database store would create a schema of its own
// first, and drop it and close its connections when the subtest ends.
func ExampleTestStore() {
	// In the store's _test.go file: func TestStore(t *testing.T) { … }
	testStore := func(t *testing.T) {
		capftest.TestStore(t, func(t *testing.T) capf.Store {
			s := capf.NewMemoryStore()
			t.Cleanup(func() { s.Close() })
			return s
		})
	}
	_ = testStore
}
