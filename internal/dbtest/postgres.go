package dbtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PostgresOptions configures [StartPostgres]. The zero value (or nil)
// asks for the defaults.
type PostgresOptions struct {
	// Database and User name the database and the user made for the
	// caller: a role that may log in and owns the database, not a
	// superuser. Both are "ucsec" if empty.
	Database, User string

	// Password is the user's password; a random one if empty.
	Password string

	// Fsync makes the instance durable against a crash of the operating
	// system: fsync and full_page_writes on, and a data directory that
	// initdb has synced. Off by default, which is faster, and loses
	// nothing that the tests can make happen: a server that is shut down
	// or killed (SIGKILL) keeps every commit it reported, because
	// synchronous_commit stays on and the kernel keeps what was written.
	// Only a crash of the kernel or a power cut loses commits without
	// fsync. Turn it on where the time commits take should be realistic.
	Fsync bool

	// Settings are further server settings (postgresql.conf names and
	// values, such as "max_connections": "20"), applied after this
	// package's own.
	Settings map[string]string

	// BinDir is the directory of initdb, postgres and psql. If empty, it
	// is what `pg_config --bindir` prints, or else the highest version
	// in /usr/lib/postgresql/*/bin, or else the directory of initdb on
	// the PATH.
	BinDir string
}

// A Postgres is a throw-away PostgreSQL server, made by [StartPostgres]
// or [NewPostgres]. Its methods may be called from several goroutines.
type Postgres struct {
	mu       sync.Mutex
	bin      string   // directory of initdb, postgres and psql
	acct     *account // the user the server runs as, if this process is root
	dir      string   // the instance's directory: socket, log, data; removed by Stop
	data     string   // data directory
	logPath  string
	log      *os.File
	port     int
	database string
	user     string
	password string
	admin    string // the superuser's (postgres) password
	settings map[string]string
	choose   func() (int, error) // chooses a free port
	proc     *proc               // the server, nil before it first started
	stopped  bool                // Stop was called
}

// adminUser is the superuser that initdb makes.
const adminUser = "postgres"

// StartPostgres makes a PostgreSQL instance in a new directory in dir (in
// the temporary directory if dir is empty), starts it on a free port of
// 127.0.0.1 and on a Unix socket in that directory, and makes the
// caller's user and database. It waits until the server accepts
// connections, at most until ctx ends (or two minutes if ctx has no
// deadline). Stop stops the server and removes the directory.
//
// As root, the server runs as the postgres user, which must be able to
// reach dir. If PostgreSQL is not installed, the error is a
// [*NotInstalledError] (errors.Is(err, ErrNotInstalled)). An error of the
// server itself ends with the end of its log.
func StartPostgres(ctx context.Context, dir string, opts *PostgresOptions) (*Postgres, error) {
	return startPostgres(ctx, dir, opts, freePort)
}

// startPostgres is StartPostgres with the choice of port.
func startPostgres(ctx context.Context, dir string, opts *PostgresOptions, choosePort func() (int, error)) (*Postgres, error) {
	if !supported {
		return nil, errUnsupported
	}
	if opts == nil {
		opts = &PostgresOptions{}
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	pg := &Postgres{
		database: orDefault(opts.Database, "ucsec"),
		user:     orDefault(opts.User, "ucsec"),
		password: orDefault(opts.Password, randomPassword()),
		admin:    randomPassword(),
		choose:   choosePort,
	}
	if pg.user == adminUser {
		return nil, fmt.Errorf("dbtest: the user may not be %s, the superuser (see AdminURL)", adminUser)
	}
	var err error
	if pg.bin, err = postgresBinDir(opts.BinDir); err != nil {
		return nil, err
	}
	if pg.acct, err = runAsAccount("PostgreSQL", "postgres", "postgresql"); err != nil {
		return nil, err
	}
	if pg.dir, err = makeInstanceDir(dir, "dbtest-pg-", pg.acct); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			pg.Stop()
		}
	}()
	if n := len(filepath.Join(pg.dir, ".s.PGSQL.65535")); n > maxSocketPath {
		return nil, fmt.Errorf("dbtest: %s is too long a directory for a Unix socket in it (%d bytes, at most %d): use a shorter one", pg.dir, n, maxSocketPath)
	}
	if strings.ContainsAny(pg.dir, `",'\`) {
		return nil, fmt.Errorf("dbtest: %q: the directory of a PostgreSQL socket may not contain a comma, a quote or a backslash", pg.dir)
	}
	pg.data = filepath.Join(pg.dir, "data")
	pg.logPath = filepath.Join(pg.dir, "postgres.log")
	if pg.log, err = os.OpenFile(pg.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("dbtest: %w", err)
	}
	pg.settings = map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": `"` + pg.dir + `"`,
		"unix_socket_permissions": "0700",
		"fsync":                   onOff(opts.Fsync),
		"full_page_writes":        onOff(opts.Fsync),
		// Several instances run at once on a small machine.
		"shared_buffers": "32MB",
	}
	maps.Copy(pg.settings, opts.Settings)
	if err := pg.initdb(ctx, opts.Fsync); err != nil {
		return nil, err
	}
	if err := pg.start(ctx, true); err != nil {
		return nil, err
	}
	if _, err := pg.psql(ctx, "postgres",
		"CREATE ROLE "+quoteIdent(pg.user)+" LOGIN PASSWORD "+quoteLiteral(pg.password),
		"CREATE DATABASE "+quoteIdent(pg.database)+" OWNER "+quoteIdent(pg.user),
	); err != nil {
		return nil, withLog(err, pg.logPath, 0)
	}
	ok = true
	return pg, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes an SQL string (standard_conforming_strings is on).
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// postgresBinDir finds the directory of initdb, postgres and psql.
func postgresBinDir(dir string) (string, error) {
	has := func(d string) bool {
		for _, name := range []string{"initdb", "postgres", "psql"} {
			if fi, err := os.Stat(filepath.Join(d, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir != "" {
		if !has(dir) {
			return "", &NotInstalledError{Engine: "PostgreSQL", Missing: "initdb, postgres or psql in " + dir, Package: "postgresql"}
		}
		return dir, nil
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		cancel()
		if d := strings.TrimSpace(string(out)); err == nil && has(d) {
			return d, nil
		}
	}
	// Debian: /usr/lib/postgresql/VERSION/bin, the highest version first.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	initdb, err := exec.LookPath("initdb")
	if err == nil && has(filepath.Dir(initdb)) {
		return filepath.Dir(initdb), nil
	}
	if err == nil {
		err = errors.New("postgres or psql is not beside " + initdb)
	}
	return "", &NotInstalledError{Engine: "PostgreSQL", Missing: "initdb", Package: "postgresql", Err: err}
}

// env returns the environment of the PostgreSQL programs: the English
// messages that start tells apart, and no PG* variables.
func (pg *Postgres) env(extra ...string) []string {
	return cleanEnv(append([]string{"LC_ALL=C"}, extra...)...)
}

// initdb makes the data directory, with the superuser postgres and its
// password, and SCRAM authentication for every connection.
func (pg *Postgres) initdb(ctx context.Context, sync bool) error {
	pwfile := filepath.Join(pg.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(pg.admin+"\n"), 0o600); err != nil {
		return fmt.Errorf("dbtest: %w", err)
	}
	defer os.Remove(pwfile)
	if pg.acct != nil {
		if err := os.Chown(pwfile, int(pg.acct.uid), int(pg.acct.gid)); err != nil {
			return fmt.Errorf("dbtest: %w", err)
		}
	}
	args := []string{"-D", pg.data, "-U", adminUser, "--pwfile=" + pwfile, "-A", "scram-sha-256",
		"-E", "UTF8", "--no-locale"}
	if !sync {
		args = append(args, "--no-sync")
	}
	cmd := command(ctx, pg.acct, filepath.Join(pg.bin, "initdb"), args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = pg.dir, pg.env(), pg.log, pg.log
	if err := cmd.Run(); err != nil {
		return withLog(fmt.Errorf("dbtest: initdb: %w", err), pg.logPath, 0)
	}
	return nil
}

// serverArgs returns the arguments of postgres.
func (pg *Postgres) serverArgs() []string {
	args := []string{"-D", pg.data, "-c", "port=" + strconv.Itoa(pg.port)}
	for _, k := range slices.Sorted(maps.Keys(pg.settings)) {
		args = append(args, "-c", k+"="+pg.settings[k])
	}
	return args
}

// start starts the server and waits until it is ready; with choosePort,
// on a new free port (another one if that is taken by the time the
// server binds it), else on pg.port. The caller holds pg.mu (or has not
// shared pg yet).
func (pg *Postgres) start(ctx context.Context, choosePort bool) error {
	for attempt := 1; ; attempt++ {
		if choosePort {
			port, err := pg.choose()
			if err != nil {
				return err
			}
			pg.port = port
		}
		mark := logSize(pg.logPath)
		cmd := exec.Command(filepath.Join(pg.bin, "postgres"), pg.serverArgs()...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = pg.dir, pg.env(), pg.log, pg.log
		p, err := spawn(cmd, pg.acct)
		if err != nil {
			return fmt.Errorf("dbtest: starting postgres: %w", err)
		}
		err = poll(ctx, p.done, func() (bool, error) { return pg.ready(p.pid), nil })
		if err == nil {
			pg.proc = p
			return nil
		}
		p.halt(context.Background())
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w (%v)", err, p.err)
		}
		inUse := strings.Contains(logTail(pg.logPath, mark), "Address already in use")
		if inUse && choosePort && attempt < 8 {
			continue
		}
		if inUse {
			err = fmt.Errorf("%w: port %d is taken", err, pg.port)
		}
		return withLog(fmt.Errorf("dbtest: postgres did not start on 127.0.0.1:%d: %w", pg.port, err), pg.logPath, mark)
	}
}

// ready reports whether the server whose process ID is pid is ready for
// connections, as its postmaster.pid file says (the test of pg_ctl -w):
// the file names pid on its first line and "ready" on its eighth.
func (pg *Postgres) ready(pid int) bool {
	b, err := os.ReadFile(filepath.Join(pg.data, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) && strings.TrimSpace(lines[7]) == "ready"
}

// psql runs each of sqls (separately, so outside a transaction) with
// psql as the superuser in database db, and returns what it printed:
// rows one a line, columns separated by "|".
func (pg *Postgres) psql(ctx context.Context, db string, sqls ...string) (string, error) {
	args := []string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", pg.dir, "-p", strconv.Itoa(pg.port), "-U", adminUser,
		"-d", "dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"}
	for _, sql := range sqls {
		args = append(args, "-c", sql)
	}
	cmd := command(ctx, nil, filepath.Join(pg.bin, "psql"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Env, cmd.Stdout, cmd.Stderr = pg.env("PGPASSWORD="+pg.admin), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dbtest: psql: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Exec runs sql with psql as the superuser in the caller's database and
// returns what it printed: rows one a line, columns separated by "|"
// (psql -A -t).
func (pg *Postgres) Exec(ctx context.Context, sql string) (string, error) {
	return pg.psql(ctx, pg.database, sql)
}

// URL returns the caller's connection URL over TCP:
// postgres://USER:PASSWORD@127.0.0.1:PORT/DATABASE?sslmode=disable.
func (pg *Postgres) URL() string {
	return pg.url(pg.user, pg.password, false)
}

// SocketURL returns the caller's connection URL over the Unix socket, in
// the form pgx and libpq take:
// postgres://USER:PASSWORD@/DATABASE?host=DIR&port=PORT&sslmode=disable.
func (pg *Postgres) SocketURL() string {
	return pg.url(pg.user, pg.password, true)
}

// AdminURL returns the connection URL of the superuser, postgres, to the
// caller's database over TCP.
func (pg *Postgres) AdminURL() string {
	return pg.url(adminUser, pg.admin, false)
}

func (pg *Postgres) url(user, password string, socket bool) string {
	u := &url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Path: "/" + pg.database}
	q := url.Values{"sslmode": {"disable"}}
	if socket {
		q.Set("host", pg.dir)
		q.Set("port", strconv.Itoa(pg.port))
	} else {
		u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.port))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Port returns the server's TCP port, which stays the same across
// restarts.
func (pg *Postgres) Port() int { return pg.port }

// SocketDir returns the directory of the server's Unix socket.
func (pg *Postgres) SocketDir() string { return pg.dir }

// DataDir returns the server's data directory.
func (pg *Postgres) DataDir() string { return pg.data }

// LogFile returns the path of the server's log (its standard error, and
// initdb's output).
func (pg *Postgres) LogFile() string { return pg.logPath }

// Running reports whether the server runs.
func (pg *Postgres) Running() bool {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return pg.proc != nil && !pg.proc.exited()
}

// Shutdown shuts the server down, as an outage: a fast shutdown
// (SIGINT, what pg_ctl stop does: sessions are ended, the server writes
// a checkpoint and exits), then an immediate one (SIGQUIT) after 30
// seconds, then SIGKILL after 5 more or when ctx ends. The data stays;
// Start starts the server again. Shutdown of a server that is down does
// nothing.
func (pg *Postgres) Shutdown(ctx context.Context) error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.proc == nil {
		return nil
	}
	return pg.proc.halt(ctx, step{syscall.SIGINT, 30 * time.Second}, step{syscall.SIGQUIT, 5 * time.Second})
}

// Kill kills the server and its processes with SIGKILL, as a crash: the
// next Start recovers from the write-ahead log. Every commit the server
// reported survives (synchronous_commit is on).
func (pg *Postgres) Kill() error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.proc == nil {
		return nil
	}
	return pg.proc.halt(context.Background())
}

// Start starts the server again after Shutdown or Kill, on the same data
// directory, port and socket, and waits until it accepts connections, at
// most until ctx ends (or two minutes if ctx has no deadline). It fails
// if the port has been taken in the meantime.
func (pg *Postgres) Start(ctx context.Context) error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.stopped {
		return errors.New("dbtest: Start after Stop")
	}
	if pg.proc != nil && !pg.proc.exited() {
		return errors.New("dbtest: the PostgreSQL server runs already")
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	return pg.start(ctx, false)
}

// Restart shuts the server down and starts it again (Shutdown, Start).
func (pg *Postgres) Restart(ctx context.Context) error {
	if err := pg.Shutdown(ctx); err != nil {
		return err
	}
	return pg.Start(ctx)
}

// Stop stops the server for good, quickly (an immediate shutdown, then
// SIGKILL after 10 seconds), and removes its directory. Stop of a
// stopped server does nothing.
func (pg *Postgres) Stop() error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.stopped {
		return nil
	}
	pg.stopped = true
	var err error
	if pg.proc != nil {
		err = pg.proc.halt(context.Background(), step{syscall.SIGQUIT, stopGrace})
	}
	if pg.log != nil {
		pg.log.Close()
	}
	if pg.dir != "" {
		err = errors.Join(err, os.RemoveAll(pg.dir))
	}
	return err
}
