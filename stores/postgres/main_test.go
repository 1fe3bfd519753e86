package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/internal/testnet"
)

// The tests run against throw-away PostgreSQL servers (package
// internal/dbtest): one that the conformance and schema tests share, each
// test in schemas of its own, and one for each fault test, which stops
// or kills it. Without PostgreSQL they skip, unless CI is true.
//
// This test binary is also the CAPF server of a child process, for the
// fault test that kills a node and for the benchmarks: childEnv then
// names its configuration.

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(childMain(path))
	}
	code := m.Run()
	stopShared()
	os.Exit(code)
}

var shared struct {
	mu    sync.Mutex
	pgs   map[bool]*dbtest.Postgres // by Fsync
	errs  map[bool]error
	count atomic.Int64 // schemas made
}

// sharedPostgres returns the PostgreSQL server this test binary shares
// between tests (one with fsync on for fsync), starting it on first use,
// and stops it when the binary ends. It skips the test if PostgreSQL is
// not installed, unless CI is true.
func sharedPostgres(t testing.TB, fsync bool) *dbtest.Postgres {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.pgs == nil {
		shared.pgs, shared.errs = map[bool]*dbtest.Postgres{}, map[bool]error{}
	}
	if shared.pgs[fsync] == nil && shared.errs[fsync] == nil {
		ctx, cancel := context.WithTimeout(context.Background(), testnet.Patience(t))
		defer cancel()
		shared.pgs[fsync], shared.errs[fsync] = dbtest.StartPostgres(ctx, "", &dbtest.PostgresOptions{Fsync: fsync})
	}
	if err := shared.errs[fsync]; err != nil {
		skipOrFatal(t, err)
	}
	return shared.pgs[fsync]
}

func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, pg := range shared.pgs {
		if pg != nil {
			pg.Stop()
		}
	}
}

// skipOrFatal skips the test when the engine is not installed, unless CI
// is true (CI installs it), and fails it otherwise.
func skipOrFatal(t testing.TB, err error) {
	t.Helper()
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	if !ci && (errors.Is(err, dbtest.ErrNotInstalled) || errors.Is(err, errors.ErrUnsupported)) {
		t.Skip(err)
	}
	t.Fatal(err)
}

// newSchema returns the name of a schema no test has used.
func newSchema() string {
	return fmt.Sprintf("test_%d_%d", os.Getpid(), shared.count.Add(1))
}

// testContext returns a context that ends within the test's patience.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testnet.Patience(t))
	t.Cleanup(cancel)
	return ctx
}

// openCAPF opens a CAPF store in schema, closed when the test ends.
func openCAPF(t testing.TB, url, schema string) *CAPFStore {
	t.Helper()
	s, err := OpenCAPFStore(testContext(t), url, &Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTVS opens a TVS store in schema, closed when the test ends.
func openTVS(t testing.TB, url, schema string) *TVSStore {
	t.Helper()
	s, err := OpenTVSStore(testContext(t), url, &Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// since formats the time since start for a log.
func since(start time.Time) string { return time.Since(start).Round(time.Millisecond).String() }

// newPostgres starts a PostgreSQL server of the test's own, for a test
// that stops or kills it.
func newPostgres(t testing.TB, fsync bool) *dbtest.Postgres {
	t.Helper()
	return dbtest.NewPostgres(t, &dbtest.PostgresOptions{Fsync: fsync})
}
