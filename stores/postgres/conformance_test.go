package postgres

import (
	"testing"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/capf/capftest"
	"github.com/ucsec/ucsec/tvs"
	"github.com/ucsec/ucsec/tvs/tvstest"
)

// Each subtest of the suites gets a schema of its own, a new, empty
// store. The shared suites open their two handles separately, one over
// TCP and one over the Unix socket, as two nodes would.

func TestCAPFStore(t *testing.T) {
	pg := sharedPostgres(t, false)
	capftest.TestStore(t, func(t *testing.T) capf.Store {
		return openCAPF(t, pg.URL(), newSchema())
	})
}

func TestCAPFSharedStore(t *testing.T) {
	pg := sharedPostgres(t, false)
	capftest.TestSharedStore(t, func(t *testing.T) (a, b capf.Store) {
		schema := newSchema()
		return openCAPF(t, pg.URL(), schema), openCAPF(t, pg.SocketURL(), schema)
	})
}

func TestTVSStore(t *testing.T) {
	pg := sharedPostgres(t, false)
	tvstest.TestStore(t, func(t *testing.T) tvs.Store {
		return openTVS(t, pg.URL(), newSchema())
	})
}

func TestTVSSharedStore(t *testing.T) {
	pg := sharedPostgres(t, false)
	tvstest.TestSharedStore(t, func(t *testing.T) (a, b tvs.Store) {
		schema := newSchema()
		return openTVS(t, pg.URL(), schema), openTVS(t, pg.SocketURL(), schema)
	})
}
