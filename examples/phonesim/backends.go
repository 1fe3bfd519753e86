package main

// The servers of a cluster's shared state, when it has several nodes:
// PostgreSQL for the CAPF and TVS stores and Redis for the digest replay
// store, named with -postgres and -redis, or else started here,
// throw-away, with internal/dbtest.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ucsec/ucsec/internal/dbtest"
)

// backends are the servers of the shared state: their URLs, and the
// throw-away instances started for the run, if any.
type backends struct {
	Postgres string // connection string of the CAPF and TVS stores' database
	Redis    string // URL of the replay store's Redis

	pg *dbtest.Postgres // started here; nil if -postgres named one
	rd *dbtest.Redis    // started here; nil if -redis named one
}

// engines configure the throw-away servers; nil fields ask for dbtest's
// defaults (the engines where Debian installs them).
type engines struct {
	Postgres *dbtest.PostgresOptions
	Redis    *dbtest.RedisOptions
}

// startBackends returns the servers of the shared state: postgresURL and
// redisURL if not empty, and throw-away instances started, at the same
// time, in the temporary directory for those that are. It fails with a
// *missingEnginesError if an engine to start is not installed. Call stop
// in any case.
func startBackends(ctx context.Context, postgresURL, redisURL string, eng engines) (*backends, error) {
	b := &backends{Postgres: postgresURL, Redis: redisURL}
	var pgErr, rdErr error
	var wg sync.WaitGroup
	if postgresURL == "" {
		// In the temporary directory, which the postgres user can reach
		// when this runs as root (the server then runs as that user).
		wg.Go(func() { b.pg, pgErr = dbtest.StartPostgres(ctx, "", eng.Postgres) })
	}
	if redisURL == "" {
		wg.Go(func() { b.rd, rdErr = dbtest.StartRedis(ctx, "", eng.Redis) })
	}
	wg.Wait()
	var missing []*dbtest.NotInstalledError
	for _, err := range []error{pgErr, rdErr} {
		if ni, ok := errors.AsType[*dbtest.NotInstalledError](err); ok {
			missing = append(missing, ni)
		}
	}
	if len(missing) > 0 {
		return b, &missingEnginesError{missing}
	}
	if err := errors.Join(pgErr, rdErr); err != nil {
		return b, err
	}
	if b.pg != nil {
		b.Postgres = b.pg.URL()
	}
	if b.rd != nil {
		b.Redis = b.rd.URL()
	}
	return b, nil
}

// describe says where the shared state is, for the progress report,
// without the URLs (which may hold passwords).
func (b *backends) describe() string {
	pg, rd := "PostgreSQL of -postgres", "Redis of -redis"
	if b.pg != nil {
		pg = fmt.Sprintf("throw-away PostgreSQL on 127.0.0.1:%d", b.pg.Port())
	}
	if b.rd != nil {
		rd = "throw-away Redis on " + b.rd.Addr()
	}
	return pg + ", " + rd
}

// stop stops the throw-away servers and removes their directories.
func (b *backends) stop() {
	if b.pg != nil {
		_ = b.pg.Stop()
	}
	if b.rd != nil {
		_ = b.rd.Stop()
	}
}

// A missingEnginesError says that the throw-away servers of a cluster of
// several nodes could not start because their engines are not installed,
// and how to install them.
type missingEnginesError struct {
	missing []*dbtest.NotInstalledError
}

func (e *missingEnginesError) Error() string {
	var what, pkgs []string
	for _, m := range e.missing {
		what = append(what, fmt.Sprintf("%s is not installed (%s is missing)", m.Engine, m.Missing))
		pkgs = append(pkgs, m.Package)
	}
	return "the nodes of a cluster keep their shared state in PostgreSQL and Redis, which phonesim starts " +
		"throw-away for the run unless -postgres and -redis name servers, but " + strings.Join(what, ", and ") +
		": install " + plural(len(pkgs), "it", "them") + " (Debian: apt-get install " + strings.Join(pkgs, " ") +
		"), or name running servers with -postgres URL and -redis URL"
}

// Unwrap returns dbtest.ErrNotInstalled.
func (e *missingEnginesError) Unwrap() error { return dbtest.ErrNotInstalled }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
