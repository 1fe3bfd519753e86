package main

// The --store flag of the capf and tvs commands names where a server's
// state lives: a directory, which holds a bbolt file that one server
// keeps locked and the admin socket through which the other commands
// reach that server (admin.go), or a PostgreSQL database, which several
// servers, each on its own host, share, and which the other commands
// change directly.

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ucsec/ucsec/stores/postgres"
)

// postgresStoreHelp is the paragraph of the help of the server commands
// about a --store in PostgreSQL. The password stays out of the command
// line, which ps shows to every user of the host.
const postgresStoreHelp = `A PostgreSQL URL (postgres://ucsec@db.example:5432/uc?sslmode=verify-full)
takes every parameter that libpq and pgx take (sslmode, sslrootcert,
connect_timeout, pool_max_conns …), and the PG* environment variables
(PGHOST, PGUSER, PGSSLMODE …) fill in what it leaves out. Give the
password in PGPASSWORD or in a password file (~/.pgpass, or the file
PGPASSFILE names), not in the URL: a command line is visible to every
user of the host. Logs and errors never show the password. Use
sslmode=verify-full across any network. The tables are made on first use
(which needs the CREATE privilege) in the first schema of the
connection's search_path (search_path=NAME in the URL picks another one
that exists). A database that cannot be reached, refuses the login, or
holds tables of a version this one cannot use is an error at start.`

// storeOpenTimeout bounds the opening of a PostgreSQL store: connecting,
// and making or checking the tables.
const storeOpenTimeout = 30 * time.Second

// A storeLocation is a --store value: a directory, or the URL of a
// PostgreSQL database.
type storeLocation struct {
	dir string // the directory, or ""
	url string // the postgres:// or postgresql:// URL, or ""
}

// parseStoreFlag returns the location that the --store value s names.
// A postgres:// or postgresql:// URL (the schemes pgx takes) names a
// database, anything else without "://" a directory.
func parseStoreFlag(s string) (storeLocation, error) {
	switch {
	case s == "":
		return storeLocation{}, usageError("missing --store")
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return storeLocation{url: s}, nil
	case strings.Contains(s, "://"):
		// Only the scheme: the rest may hold a password.
		scheme, _, _ := strings.Cut(s, "://")
		return storeLocation{}, usageError(fmt.Sprintf("--store %s://…: use a directory, or a postgres:// or postgresql:// URL", printable(scheme)))
	}
	return storeLocation{dir: s}, nil
}

// String returns the location as logs and messages show it: the
// directory, or the URL with its passwords masked.
func (l storeLocation) String() string {
	if l.url == "" {
		return l.dir
	}
	return redactURL(l.url)
}

// passwordParams are the URL parameters that hold a password, as pgx
// masks them.
var passwordParams = []string{"password", "sslpassword"}

// redactURL returns the connection URL s with the password of its user
// and of its parameters masked. A URL that does not parse shows only its
// scheme.
func redactURL(s string) string {
	const mask = "xxxxx"
	u, err := url.Parse(s)
	if err != nil {
		scheme, _, _ := strings.Cut(s, "://")
		return scheme + "://(a URL that does not parse)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), mask)
	}
	if q := u.Query(); hasPasswordParam(q) {
		for k := range q {
			if isPasswordParam(k) {
				q[k] = []string{mask}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func hasPasswordParam(q url.Values) bool {
	for k := range q {
		if isPasswordParam(k) {
			return true
		}
	}
	return false
}

func isPasswordParam(k string) bool {
	for _, p := range passwordParams {
		if strings.EqualFold(k, p) {
			return true
		}
	}
	return false
}

// secrets returns the passwords the location's URL holds, as they may
// appear in a message: decoded, and as written.
func (l storeLocation) secrets() []string {
	if l.url == "" {
		return nil
	}
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	u, err := url.Parse(l.url)
	if err != nil {
		// As pgx masks such a URL: the password is what follows the
		// first ':' of what comes before the last '@'.
		_, rest, _ := strings.Cut(l.url, "://")
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				add(pw)
				if s, err := url.PathUnescape(pw); err == nil {
					add(s)
				}
			}
		}
		return out
	}
	{
		if pw, ok := u.User.Password(); ok {
			add(pw)
			add(url.PathEscape(pw))
			add(url.QueryEscape(pw))
		}
		for k, vs := range u.Query() {
			if isPasswordParam(k) {
				for _, v := range vs {
					add(v)
					add(url.QueryEscape(v))
				}
			}
		}
	}
	return out
}

// A storeError is the failure to open the store that --store names. Its
// text starts with the flag's name and never holds a password of the
// URL: the store's errors hold none, and this makes sure of it.
type storeError struct {
	err     error
	secrets []string
}

func (e *storeError) Error() string {
	msg := "--store: " + e.err.Error()
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

func (e *storeError) Unwrap() error { return e.err }

// openPostgres opens a store in the PostgreSQL database of l with open
// (postgres.OpenCAPFStore or OpenTVSStore), within storeOpenTimeout. Its
// errors are *storeError values: a connection string that does not
// parse, a database that cannot be reached or refuses the login, tables
// of a version this one cannot use, each as the store reports it. log
// receives the store's records (nil is silent).
func openPostgres[S any](l storeLocation, log *slog.Logger, open func(context.Context, string, *postgres.Options) (S, error)) (S, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	st, err := open(ctx, l.url, &postgres.Options{Logger: log})
	if err != nil {
		var zero S
		return zero, &storeError{err, l.secrets()}
	}
	return st, nil
}

// warnPassword logs a warning if the location's URL holds a password,
// which any user of the host can read in the process list.
func (l storeLocation) warnPassword(log *slog.Logger, group string) {
	if len(l.secrets()) > 0 {
		log.Warn(group + ": the --store URL holds a password, which other users of the host can see: give it in PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass) instead")
	}
}
