package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/tvs"
)

var tvsServe = &command{
	name:     "serve",
	synopsis: "--cert FILE --key FILE [--listen ADDR] [--store DIR|URL] [--itl FILE]... [--ctl FILE]... [--trust ROLES=CERT]... [flags]",
	summary:  "run a TVS that vouches for the certificates of trust lists and files",
	help: `
Run a Trust Verification Service: phones (and 'ucsec tvs query') connect
over TLS to --listen, send a certificate their ITL does not hold, and
learn whether the service trusts it, in which roles, and for how long
they may keep the answer (--ttl). The TVS certificate (--cert, --key: one
PEM file may hold both) is the server's TLS certificate; phones accept it
only if their ITL holds it with the TVS role. The server does not start
with a certificate whose key usage lacks digitalSignature: no phone would
accept its TLS handshake.

The service vouches for:
  --itl FILE, --ctl FILE   every certificate of the trust list, in the
                           roles its records give (repeatable)
  --trust ROLES=CERT       the certificates in CERT (PEM, several allowed,
                           or one DER) in ROLES, a comma-separated list of
                           sast, ccm, ccm+tftp, tftp, capf, app-server and
                           tvs (repeatable)
They are loaded at start, in that order; a certificate given again gets
the roles of its last source. The lists are loaded as they are: their
signatures are not checked, since a list's own signature proves only that
it is intact, not that its signer is to be trusted. Load lists you built
or checked ('ucsec tlv verify').

Without --store the entries live in memory. With --store DIR, the
server's directory (created with mode 0700), they are kept in DIR/tvs.db,
a bbolt file the server holds locked, and the server listens on
DIR/tvs.sock, the socket through which 'ucsec tvs list', 'add' and
'remove' reach it. In a store of either kind (a directory, or PostgreSQL
below) what was stored before is still served, the certificates the
flags give are added (--reset empties the store first), and a change
that list, add or remove makes while the server runs is served at once:
the server reads the store for each request.

--store may also be a PostgreSQL database, as a postgres:// or
postgresql:// URL, which several TVS servers, each on its own host, may
share, serving the same entries. There is no admin socket then: list,
add and remove use the database directly, from any host.

` + postgresStoreHelp + `

At most --max-conns connections are served at once, and at most
--max-conns-per-host from one host: an IPv4 address, or an IPv6 /64
prefix. Beyond either, a new connection is closed at once. Raise
--max-conns-per-host, or set it to 0 for no such bound, when many phones
reach the server through one NAT address. A connection that sends
nothing for 5 seconds (or --timeout, if shorter) is closed.

The server logs to standard error, one line per request; once it listens
it prints "tvs: listening on ADDR". SIGINT or SIGTERM stops it: it stops
accepting, lets exchanges under way finish (up to 5 seconds) and exits
with status 0. A second signal kills it.`,
	examples: []string{
		"ucsec tvs serve --cert tvs.pem --key tvs.pem --itl other-cluster/ITLFile.tlv --trust capf=capf.crt",
		"ucsec tvs serve --cert tvs.pem --key tvs.pem --listen 127.0.0.1:2445 --store /var/lib/tvs --trust sast,ccm+tftp=cucm-pub.pem --ttl 1h",
		"ucsec tvs serve --cert tvs.pem --key tvs.pem --store 'postgres://tvs@db.example/uc?sslmode=verify-full'",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newTVSServeCmd(fs).run },
}

type tvsServeCmd struct {
	keys     *keyPairFlags
	listen   string
	store    string
	itls     listFlag
	ctls     listFlag
	trusts   listFlag
	ttl      time.Duration
	timeout  time.Duration
	maxConns int
	perHost  int
	legacy   bool
	reset    bool
}

func newTVSServeCmd(fs *flag.FlagSet) *tvsServeCmd {
	c := &tvsServeCmd{keys: addKeyPairFlags(fs, "", "TVS")}
	fs.StringVar(&c.listen, "listen", ":2445", "listen on `ADDR`, host:port")
	fs.StringVar(&c.store, "store", "", "keep the entries in `DIR|URL`: a directory (tvs.db, tvs.sock) or a postgres:// URL, without the password (default: in memory)")
	fs.Var(&c.itls, "itl", "vouch for the certificates of the ITL `FILE` (repeatable)")
	fs.Var(&c.ctls, "ctl", "vouch for the certificates of the CTL `FILE` (repeatable)")
	fs.Var(&c.trusts, "trust", "vouch for the certificates in a file: `ROLES=CERT` (repeatable)")
	fs.DurationVar(&c.ttl, "ttl", tvs.DefaultTTL, "how long phones may keep a verdict, `DUR`, 1s to 720h")
	fs.DurationVar(&c.timeout, "timeout", tvs.DefaultTimeout, "bound on each exchange, TLS handshake included, `DUR`")
	fs.IntVar(&c.maxConns, "max-conns", tvs.DefaultMaxConns, "most concurrent connections, `N`")
	fs.IntVar(&c.perHost, "max-conns-per-host", tvs.DefaultMaxConnsPerHost, "most concurrent connections from one host (IPv4 address or IPv6 /64), `N`, 0 for no such bound")
	fs.BoolVar(&c.legacy, "legacy-tls", false, "allow TLS 1.0 and 1.1 with CBC suites, for 7900-series phones")
	fs.BoolVar(&c.reset, "reset", false, "empty the --store before loading, so that entries no flag gives any more stop being vouched for")
	return c
}

// tvsTrust is a --trust value.
type tvsTrust struct {
	roles []ctl.Role
	path  string
}

// parseTrustFlags splits the --trust values into roles and files.
func parseTrustFlags(specs []string) ([]tvsTrust, error) {
	var out []tvsTrust
	for _, spec := range specs {
		names, path, ok := strings.Cut(spec, "=")
		if !ok || names == "" || path == "" {
			return nil, usageError(fmt.Sprintf("invalid --trust %q (want ROLES=CERT, such as capf=capf.crt or sast,ccm+tftp=cucm.pem)", spec))
		}
		var t tvsTrust
		for name := range strings.SplitSeq(names, ",") {
			role, err := ctl.ParseRole(name)
			if err != nil {
				return nil, usageError(fmt.Sprintf("unknown role %q in --trust (use sast, ccm, ccm+tftp, tftp, capf, app-server or tvs)", name))
			}
			if slices.Contains(t.roles, role) {
				return nil, usageError(fmt.Sprintf("role %s given twice in --trust %q", role.ShortName(), spec))
			}
			t.roles = append(t.roles, role)
		}
		t.path = path
		out = append(out, t)
	}
	return out, nil
}

func (c *tvsServeCmd) run(e *env, _ []string) error {
	var store storeLocation
	if c.store != "" {
		var err error
		if store, err = parseStoreFlag(c.store); err != nil {
			return err
		}
	}
	switch {
	case c.ttl < time.Second || c.ttl > tvs.MaxTTL || c.ttl%time.Second != 0:
		return usageError("--ttl must be a whole number of seconds from 1s to 720h (30 days)")
	case c.timeout <= 0:
		return usageError("--timeout must be positive")
	case c.maxConns < 1:
		return usageError("--max-conns must be at least 1")
	case c.perHost < 0:
		return usageError("--max-conns-per-host must be 0 (no bound) or more")
	case c.store == "" && len(c.itls)+len(c.ctls)+len(c.trusts) == 0:
		return usageError("nothing to vouch for: give --itl, --ctl, --trust or --store")
	case c.reset && c.store == "":
		return usageError("--reset empties a --store; without one the entries live in memory")
	}
	trusts, err := parseTrustFlags(c.trusts)
	if err != nil {
		return err
	}
	cert, key, err := c.keys.load()
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLS(cert, key, c.legacy, "TVS", c.keys.certPath)
	if err != nil {
		return err
	}
	// Read every input before opening the store: a mistake leaves it
	// untouched.
	type list struct {
		path string
		f    *ctl.File
	}
	var lists []list
	for _, l := range []struct {
		paths listFlag
		parse func([]byte) (*ctl.File, error)
	}{{c.itls, itl.Parse}, {c.ctls, ctl.Parse}} {
		for _, path := range l.paths {
			data, err := readFile(path)
			if err != nil {
				return err
			}
			f, err := l.parse(data)
			if err != nil {
				return &fileError{path, err}
			}
			lists = append(lists, list{path, f})
		}
	}
	certData := make([][]byte, len(trusts))
	for i, t := range trusts {
		if certData[i], err = readFile(t.path); err != nil {
			return err
		}
	}

	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	if len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		log.Warn("tvs: the TVS certificate's extended key usage lacks serverAuth; clients that check it (ucsec tvs query) refuse it")
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		log.Warn("tvs: the TVS certificate is not valid now", "not_before", cert.NotBefore.UTC(), "not_after", cert.NotAfter.UTC())
	}
	// Every entry is checked in memory first; only then does the
	// persistent store change, so that a mistake leaves it untouched.
	ctx := context.Background()
	staged := tvs.NewMemoryStore()
	for _, l := range lists {
		n, err := tvs.LoadTrustList(ctx, staged, l.f, 0)
		if err != nil {
			return &fileError{l.path, err}
		}
		log.Info("tvs: loaded", "file", l.path, "certificates", n)
	}
	for i, t := range trusts {
		n, err := tvs.LoadCertificates(ctx, staged, certData[i], t.roles, 0)
		if err != nil {
			return &fileError{t.path, err}
		}
		log.Info("tvs: loaded", "file", t.path, "certificates", n, "roles", roleNames(t.roles))
	}
	var st tvs.Store = staged
	var adminListener *net.UnixListener
	if c.store != "" {
		store.warnPassword(log, "tvs")
		if st, adminListener, err = tvsAdmin.openServerStore(store, log); err != nil {
			return err
		}
		if adminListener != nil {
			defer adminListener.Close()
		}
		if err := copyEntries(ctx, staged, st, c.reset); err != nil {
			st.Close()
			return err
		}
	}
	defer st.Close()
	entries, err := tvs.Entries(ctx, st)
	if err != nil {
		return err
	}

	tcp, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	perHost := c.perHost
	if perHost == 0 {
		perHost = -1 // tvs.Server: no per-host bound
	}
	srv := &tvs.Server{
		Store:           st,
		TLSConfig:       tlsConfig,
		DefaultTTL:      c.ttl,
		Timeout:         c.timeout,
		MaxConns:        c.maxConns,
		MaxConnsPerHost: perHost,
		LegacyTLS:       c.legacy,
		Logger:          log,
	}
	serveCtx, stop := serverContext(c.keys.certPath, log, "tvs: stopping: exchanges under way may finish")
	defer stop()
	fmt.Fprintf(e.stderr, "tvs: listening on %s\n", tcp.Addr())
	adminDone := tvsAdmin.serveAdmin(serveCtx, adminListener, st, log)
	log.Info("tvs: serving", "addr", tcp.Addr().String(), "certificate", cert.Subject.String(),
		"entries", len(entries), "store", cmp.Or(store.String(), "memory"), "ttl", c.ttl, "max_conns", c.maxConns, "max_conns_per_host", c.perHost)
	err = srv.Serve(serveCtx, tcp)
	stop()
	adminDone()
	if !errors.Is(err, tvs.ErrServerClosed) {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	log.Info("tvs: stopped")
	return nil
}

// roleNames returns the short names of roles, comma-separated.
func roleNames(roles []ctl.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.ShortName()
	}
	return strings.Join(names, ",")
}

// copyEntries puts the records of from into to, after deleting every
// record of to first if reset is set. The records are copied as they are:
// from holds only entries that package tvs checked and encoded.
func copyEntries(ctx context.Context, from, to tvs.Store, reset bool) error {
	if reset {
		old, err := to.List(ctx)
		if err != nil {
			return err
		}
		for sum := range old {
			if err := to.Delete(ctx, sum); err != nil {
				return err
			}
		}
	}
	records, err := from.List(ctx)
	if err != nil {
		return err
	}
	for sum, record := range records {
		if err := to.Put(ctx, sum, record); err != nil {
			return err
		}
	}
	return nil
}
