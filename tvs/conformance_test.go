package tvs_test

import (
	"path/filepath"
	"testing"

	"github.com/ucsec/ucsec/tvs"
	"github.com/ucsec/ucsec/tvs/tvstest"
)

func TestMemoryStore(t *testing.T) {
	tvstest.TestStore(t, func(t *testing.T) tvs.Store {
		s := tvs.NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltStore(t *testing.T) {
	tvstest.TestStore(t, func(t *testing.T) tvs.Store {
		s, err := tvs.OpenBoltStore(filepath.Join(t.TempDir(), "tvs.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
