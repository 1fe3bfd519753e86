package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors. Errors from this package start with "postgres:" and
// wrap one of these, a sentinel of package capf or tvs, a context error, or
// the error of the driver (pgx).
var (
	// ErrInvalid reports an invalid argument: a connection string that
	// does not parse, a connection string and a Pool both given, a bad
	// schema name.
	ErrInvalid = errors.New("postgres: invalid argument")
	// ErrConnect reports that the store could not reach the database when
	// it was opened: a server that does not answer, a refused login (a
	// wrong password), an unknown database, a TLS failure.
	ErrConnect = errors.New("postgres: cannot connect to the database")
	// ErrSchema reports tables this version of the package cannot use:
	// written by a newer version that an older one may not use, or tables
	// of another layout. The error is a [*SchemaError].
	ErrSchema = errors.New("postgres: database schema not supported")
)

// A SchemaError reports a store's tables that this version of the package
// cannot use. It unwraps to [ErrSchema] and to the store package's
// ErrStoreVersion ([capf.ErrStoreVersion] or [tvs.ErrStoreVersion]).
type SchemaError struct {
	// Schema is the PostgreSQL schema (namespace) of the tables.
	Schema string
	// Store is the kind of store: "capf" or "tvs".
	Store string
	// Version is the schema version the database records for the store,
	// and Compatible the oldest version of this package's schema that may
	// use the tables as they are; both 0 if none is recorded.
	Version, Compatible int
	// Supported is the schema version this package writes and reads.
	Supported int
	// Reason says what is wrong, for a reader.
	Reason string

	sentinel error // capf.ErrStoreVersion or tvs.ErrStoreVersion
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("postgres: the %s store's tables in schema %q: %s", e.Store, e.Schema, e.Reason)
}

// Unwrap returns [ErrSchema] and the store package's ErrStoreVersion.
func (e *SchemaError) Unwrap() []error {
	if e.sentinel == nil {
		return []error{ErrSchema}
	}
	return []error{ErrSchema, e.sentinel}
}

// Options configures [OpenCAPFStore] and [OpenTVSStore]. The zero value,
// or nil, gives the defaults.
type Options struct {
	// Pool is a connection pool to use instead of one opened from the
	// connection string, which must then be empty. The store neither
	// configures it nor closes it: its Close leaves the pool open. One
	// pool may serve a CAPF store and a TVS store of one process.
	Pool *pgxpool.Pool

	// Schema is the PostgreSQL schema (namespace) that holds the store's
	// tables; it is created if it does not exist, which needs the CREATE
	// privilege on the database. Empty means the connection's current
	// schema, the first of its search_path that exists (usually
	// "public"). Several clusters may share one database, each in a
	// schema of its own.
	Schema string

	// Logger receives a record when the store creates or migrates its
	// tables, and debug records of retried transactions. Nil is silent.
	// Records never hold the connection string or the password.
	Logger *slog.Logger
}

// Bounds of the retries of a transaction.
const (
	// maxAttempts bounds the runs of one call: a serialization failure, a
	// deadlock (which PostgreSQL resolves by failing one of the
	// transactions) or a write that found its row changed by another
	// (errChanged) is run again, after a pause that grows from
	// minBackoff to maxBackoff.
	maxAttempts = 10
	minBackoff  = 2 * time.Millisecond
	maxBackoff  = 200 * time.Millisecond
	// defaultMaxConns is the size of the pool the store opens, unless the
	// connection string sets pool_max_conns: larger than pgx's default
	// (4 on a small machine), which suits queries that keep the CPU busy,
	// because a store's calls mostly wait, for commits to reach the disk
	// and for the caller's function, and commits that wait together share
	// a flush. Connections are opened as calls need them.
	defaultMaxConns = 16
	// cleanupTimeout bounds the ROLLBACK after a failed attempt, which
	// runs even if the caller's context has ended.
	cleanupTimeout = 5 * time.Second
)

// A handle is what a store of either kind holds: its pool, its tables'
// schema, and whether it is closed.
type handle struct {
	pool   *pgxpool.Pool
	own    bool // the store opened the pool, and closes it
	schema string
	log    *slog.Logger
	kind   string // "capf" or "tvs", for messages
	closed atomic.Bool
	// closedErr is the kind's ErrStoreClosed.
	closedErr error
}

// open opens the pool (or takes the caller's), checks that the server
// answers and sets up the store's tables.
func open(ctx context.Context, connString string, opts *Options, l *layout) (*handle, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres: opening the %s store: %w", l.store, err)
	}
	h := &handle{log: opts.Logger, kind: l.store, closedErr: l.closedErr}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opts.Schema != "" {
		if err := checkSchemaName(opts.Schema); err != nil {
			return nil, err
		}
	}
	switch {
	case opts.Pool != nil && connString != "":
		return nil, fmt.Errorf("%w: both a connection string and Options.Pool given", ErrInvalid)
	case opts.Pool != nil:
		h.pool = opts.Pool
	default:
		cfg, err := pgxpool.ParseConfig(connString)
		if err != nil {
			// pgx's message masks the password.
			return nil, fmt.Errorf("%w: connection string: %w", ErrInvalid, err)
		}
		if !strings.Contains(connString, "pool_max_conns") {
			cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
		}
		if h.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		h.own = true
	}
	ok := false
	defer func() {
		if !ok && h.own {
			h.pool.Close()
		}
	}()
	if err := h.pool.Ping(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		// pgx's ConnectError names the host, port, user and database,
		// never the password; other errors (the context's) get them
		// here.
		if !errors.As(err, new(*pgconn.ConnectError)) {
			cc := h.pool.Config().ConnConfig
			return nil, fmt.Errorf("%w: `user=%s database=%s` at %s: %w", ErrConnect, cc.User, cc.Database, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), err)
		}
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	if err := h.setup(ctx, opts.Schema, l); err != nil {
		return nil, err
	}
	ok = true
	return h, nil
}

// checkSchemaName checks a schema name given in Options.
func checkSchemaName(s string) error {
	if len(s) > 63 || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: schema name %q (at most 63 bytes, no NUL)", ErrInvalid, s)
	}
	return nil
}

// close marks the handle closed and closes the pool if it is the
// handle's. Calls under way on the pool finish first.
func (h *handle) close() {
	if h.closed.Swap(true) {
		return
	}
	if h.own {
		h.pool.Close()
	}
}

// begin checks a call's context and the handle, before any work.
func (h *handle) begin(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if h.closed.Load() {
		return fmt.Errorf("%w (postgres: %s)", h.closedErr, what)
	}
	return nil
}

// fail wraps err, the failure of a call, for its caller: with
// ErrStoreClosed if the handle was closed meanwhile, and with ctx's error
// if the context ended.
func (h *handle) fail(ctx context.Context, what string, err error) error {
	if h.closed.Load() {
		return fmt.Errorf("%w (postgres: %s: %v)", h.closedErr, what, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("postgres: %s: %w (%w)", what, cerr, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// An attempt is one run of a call on a connection. committing tells
// whether the failure came once the commit may have been sent: such a
// call is run again only if the server certainly did not commit.
type attempt func(ctx context.Context, conn *pgx.Conn) (committing bool, err error)

// run runs a call: it acquires a connection and runs try on it, and runs
// it again on a conflict (a serialization failure, a deadlock, or a write
// that found its row changed), up to maxAttempts runs in all, and on a
// connection found dead before the commit was sent. Errors of try that
// come from the caller's function (not from the database) must be wrapped
// in a callerError, and are returned unwrapped, without a retry.
func (h *handle) run(ctx context.Context, what string, try attempt) error {
	if err := h.begin(ctx, what); err != nil {
		return err
	}
	reconnects, conflicts := 0, 0
	for n := 1; ; n++ {
		committing, dead, err := h.once(ctx, try)
		var ce callerError
		var ae acquireError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ae):
			// No connection: the server is down, or refuses this one.
			return h.fail(ctx, what, ae.err)
		case errors.As(err, &ce):
			return ce.err
		case ctx.Err() != nil || h.closed.Load():
			return h.fail(ctx, what, err)
		case conflict(err) && n < maxAttempts:
			conflicts++
			h.log.Debug("postgres: transaction conflict, running it again", "store", h.kind, "call", what, "attempt", n, "err", err)
			if err := sleep(ctx, backoff(n)); err != nil {
				return h.fail(ctx, what, err)
			}
		case conflict(err):
			return h.fail(ctx, what, fmt.Errorf("%w (a conflict in %d of %d attempts; giving up)", err, conflicts+1, n))
		case reconnects <= int(h.pool.Stat().MaxConns()) && (pgconn.SafeToRetry(err) || !committing && dead):
			// After a restart of the server, every idle connection of the
			// pool may be dead; each is closed once found so.
			reconnects++
			h.log.Debug("postgres: connection lost, running the call again on another", "store", h.kind, "call", what, "err", err)
		default:
			return h.fail(ctx, what, err)
		}
	}
}

// once runs try once, on a connection of the pool, and reports whether
// the connection was found dead.
func (h *handle) once(ctx context.Context, try attempt) (committing, dead bool, err error) {
	conn, err := h.pool.Acquire(ctx)
	if err != nil {
		return false, false, acquireError{err}
	}
	// Release destroys a connection that is broken or still in a
	// transaction: one that failed to roll back, or whose fn panicked.
	defer conn.Release()
	committing, err = try(ctx, conn.Conn())
	if err != nil {
		dead = lost(conn.Conn(), err)
		rollback(conn.Conn())
	}
	return committing, dead, err
}

// A callerError is the error of the caller's function, passed through run
// unchanged.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// An acquireError is the pool's failure to give a connection.
type acquireError struct{ err error }

func (e acquireError) Error() string { return e.err.Error() }

// rollback ends the transaction a failed attempt left open, if the
// connection still works; a connection that is still in a transaction
// afterwards is destroyed by its release.
func rollback(conn *pgx.Conn) {
	if conn.IsClosed() || conn.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	conn.Exec(ctx, "ROLLBACK")
}

// conflict reports a serialization failure or a deadlock, or a write that
// found its row changed since it was read (errChanged): the transaction
// wrote nothing, and may succeed if run again.
func conflict(err error) bool {
	var pe *pgconn.PgError
	return errors.Is(err, errChanged) || errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// lost reports whether err means that the connection was lost, or that
// the server is shutting down or restarting.
func lost(conn *pgx.Conn, err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return conn.IsClosed()
}

// backoff returns the pause before run n+1: exponential, with jitter.
func backoff(n int) time.Duration {
	d := min(minBackoff<<min(n-1, 16), maxBackoff)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// read runs a query that writes nothing, again on another connection if
// the first was found dead (after a restart of the server).
func (h *handle) read(ctx context.Context, what string, query func(ctx context.Context, conn *pgx.Conn) error) error {
	return h.run(ctx, what, func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		return false, query(ctx, conn)
	})
}
