package dbtest

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/ucsec/ucsec/internal/testnet"
)

// NewPostgres starts a PostgreSQL instance for the test ([StartPostgres]
// with a directory of its own), waiting at most testnet.Patience, and
// stops it when the test ends, logging the end of the server's log if the
// test failed. It skips the test if PostgreSQL is not installed, and
// fails it instead where CI is true.
func NewPostgres(t testing.TB, opts *PostgresOptions) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testnet.Patience(t))
	defer cancel()
	pg, err := StartPostgres(ctx, "", opts)
	if err != nil {
		skipOrFatal(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the PostgreSQL log %s:\n%s", pg.LogFile(), logTail(pg.LogFile(), 0))
		}
		if err := pg.Stop(); err != nil {
			t.Errorf("stopping PostgreSQL: %v", err)
		}
	})
	return pg
}

// NewRedis starts a Redis instance for the test ([StartRedis] with a
// directory of its own), waiting at most testnet.Patience, and stops it
// when the test ends, logging the end of the server's log if the test
// failed. It skips the test if Redis is not installed, and fails it
// instead where CI is true.
func NewRedis(t testing.TB, opts *RedisOptions) *Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testnet.Patience(t))
	defer cancel()
	r, err := StartRedis(ctx, "", opts)
	if err != nil {
		skipOrFatal(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the Redis log %s:\n%s", r.LogFile(), logTail(r.LogFile(), 0))
		}
		if err := r.Stop(); err != nil {
			t.Errorf("stopping Redis: %v", err)
		}
	})
	return r
}

func skipOrFatal(t testing.TB, err error) {
	t.Helper()
	if skippable(err, os.Getenv("CI")) {
		t.Skip(err)
	}
	t.Fatal(err)
}

// skippable reports whether a test skips, rather than fails, when a start
// returns err, given the value of CI: when the engine is not installed
// (or cannot run on this system) and CI is not true, because CI installs
// the engines.
func skippable(err error, ci string) bool {
	if isCI, _ := strconv.ParseBool(ci); isCI {
		return false
	}
	return errors.Is(err, ErrNotInstalled) || errors.Is(err, errors.ErrUnsupported)
}
