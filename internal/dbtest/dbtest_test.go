//go:build unix

package dbtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testnet"
)

// testCtx returns a context that ends after testnet.Patience, or with the
// test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testnet.Patience(t))
	t.Cleanup(cancel)
	return ctx
}

// psqlAt runs sql with psql against the connection URL u, as a client
// would, and returns its output (psql -A -t), trimmed.
func psqlAt(ctx context.Context, pg *Postgres, u, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, u)
	cmd.Env = cleanEnv("LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %w: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func mustPsql(t *testing.T, pg *Postgres, u, sql string) string {
	t.Helper()
	out, err := psqlAt(testCtx(t), pg, u, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pgIsReady runs pg_isready against u, and returns its exit status.
func pgIsReady(t *testing.T, pg *Postgres, u string) int {
	t.Helper()
	cmd := exec.CommandContext(testCtx(t), filepath.Join(pg.bin, "pg_isready"), "-d", u, "-t", "10")
	cmd.Env = cleanEnv("LC_ALL=C")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("pg_isready: %v: %s", err, out)
	}
	return 0
}

// tree returns the server's process and its descendants.
func tree(p *proc) []procID {
	return append([]procID{procOf(p.pid)}, descendants(p.pid)...)
}

// checkGone fails the test if a process of ids still runs.
func checkGone(t *testing.T, ids []procID) {
	t.Helper()
	for _, id := range ids {
		if id.alive() {
			t.Errorf("process %d still runs", id.pid)
		}
	}
}

// checkRemoved fails the test if path exists.
func checkRemoved(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s was not removed: %v", path, err)
	}
}

// checkPortFree fails the test unless the port of 127.0.0.1 can be bound.
func checkPortFree(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Errorf("port %d is still taken: %v", port, err)
		return
	}
	l.Close()
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	pg := NewPostgres(t, nil)

	got := mustPsql(t, pg, pg.URL(), "SELECT current_user, current_database(), current_setting('fsync'), current_setting('full_page_writes'), current_setting('synchronous_commit'), current_setting('listen_addresses')")
	if want := "ucsec|ucsec|off|off|on|127.0.0.1"; got != want {
		t.Errorf("over TCP: got %q, want %q", got, want)
	}
	if got := mustPsql(t, pg, pg.SocketURL(), "SELECT 1"); got != "1" {
		t.Errorf("over the socket: got %q", got)
	}
	if got := pgIsReady(t, pg, pg.URL()); got != 0 {
		t.Errorf("pg_isready exited %d", got)
	}
	// The user owns its database: it may make tables in it. It is no
	// superuser; the admin is.
	mustPsql(t, pg, pg.URL(), "CREATE TABLE t (k text PRIMARY KEY)")
	mustPsql(t, pg, pg.URL(), "INSERT INTO t VALUES ('a')")
	if got := mustPsql(t, pg, pg.URL(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"); got != "f" {
		t.Errorf("user is superuser: %q", got)
	}
	if got := mustPsql(t, pg, pg.AdminURL(), "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"); got != "postgres|t" {
		t.Errorf("admin: %q", got)
	}
	if got, err := pg.Exec(testCtx(t), "SELECT k FROM t"); err != nil || got != "a\n" {
		t.Errorf("Exec = %q, %v", got, err)
	}

	// The password is checked, over TCP and over the socket.
	for _, u := range []string{pg.URL(), pg.SocketURL()} {
		bad, _ := url.Parse(u)
		bad.User = url.UserPassword("ucsec", "wrong")
		if _, err := psqlAt(testCtx(t), pg, bad.String(), "SELECT 1"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("wrong password over %s: %v", u, err)
		}
	}
	if !pg.Running() {
		t.Error("Running() = false")
	}
}

func TestPostgresOptions(t *testing.T) {
	t.Parallel()
	pg := NewPostgres(t, &PostgresOptions{
		Database: `my "db" = 'x\'`,
		User:     "o'brien",
		Password: "pa ss'wo\"rd@:/",
		Fsync:    true,
		Settings: map[string]string{"max_connections": "20"},
	})
	got := mustPsql(t, pg, pg.URL(), "SELECT current_user, current_database(), current_setting('fsync'), current_setting('full_page_writes'), current_setting('max_connections')")
	if want := `o'brien|my "db" = 'x\'|on|on|20`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, err := pg.Exec(testCtx(t), "SELECT current_database()"); err != nil || got != "my \"db\" = 'x\\'\n" {
		t.Errorf("Exec = %q, %v", got, err)
	}
	u, err := url.Parse(pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); pw != "pa ss'wo\"rd@:/" || u.User.Username() != "o'brien" || u.Host != "127.0.0.1:"+strconv.Itoa(pg.Port()) {
		t.Errorf("URL %s", pg.URL())
	}
	u, err = url.Parse(pg.SocketURL())
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Get("host") != pg.SocketDir() || q.Get("port") != strconv.Itoa(pg.Port()) || u.Host != "" {
		t.Errorf("SocketURL %s", pg.SocketURL())
	}
}

func TestPostgresFaults(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pg := NewPostgres(t, nil)
	port := pg.Port()
	mustPsql(t, pg, pg.URL(), "CREATE TABLE t (k int PRIMARY KEY)")
	mustPsql(t, pg, pg.URL(), "INSERT INTO t VALUES (1)")

	// An outage: a clean shutdown, then a start on the same data and port.
	before := tree(pg.proc)
	if err := pg.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkGone(t, before)
	if pg.Running() {
		t.Error("Running() after Shutdown")
	}
	if _, err := psqlAt(ctx, pg, pg.URL(), "SELECT 1"); err == nil {
		t.Error("the server answers after Shutdown")
	}
	if got := pgIsReady(t, pg, pg.URL()); got != 2 { // 2: no response
		t.Errorf("pg_isready exited %d after Shutdown, want 2", got)
	}
	if err := pg.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(ctx); err == nil {
		t.Error("Start of a running server succeeded")
	}
	if pg.Port() != port {
		t.Errorf("port %d after Start, was %d", pg.Port(), port)
	}
	if got := mustPsql(t, pg, pg.URL(), "SELECT k FROM t"); got != "1" {
		t.Errorf("after Shutdown and Start: %q", got)
	}

	// A crash while a session waits in a query: SIGKILL for the server
	// and its processes; the next start recovers every commit.
	mustPsql(t, pg, pg.URL(), "INSERT INTO t VALUES (2)")
	sleeper := exec.CommandContext(ctx, filepath.Join(pg.bin, "psql"), "-X", "-c", "SELECT pg_sleep(600)", pg.URL())
	sleeper.Env = cleanEnv("LC_ALL=C")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	sleeperDone := make(chan error, 1)
	go func() { sleeperDone <- sleeper.Wait() }()
	// Wait for its backend.
	if err := poll(ctx, nil, func() (bool, error) {
		out, err := pg.Exec(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")
		return strings.TrimSpace(out) == "1", err
	}); err != nil {
		t.Fatal(err)
	}
	before = tree(pg.proc)
	if len(before) < 3 {
		t.Errorf("the server has %d processes, want its children too", len(before))
	}
	mark := logSize(pg.LogFile())
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, before)
	select {
	case err := <-sleeperDone:
		if err == nil {
			t.Error("the session's query succeeded across Kill")
		}
	case <-ctx.Done():
		t.Fatal("psql did not notice Kill")
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustPsql(t, pg, pg.URL(), "SELECT k FROM t ORDER BY k"); got != "1\n2" {
		t.Errorf("after Kill and Start: %q", got)
	}
	if log := logTail(pg.LogFile(), mark); !strings.Contains(log, "not properly shut down") {
		t.Errorf("no crash recovery in the log:\n%s", log)
	}

	// Restart, and a Start that finds its port taken.
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustPsql(t, pg, pg.URL(), "SELECT count(*) FROM t"); got != "2" {
		t.Errorf("after Restart: %q", got)
	}
	if err := pg.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	err = pg.Start(ctx)
	l.Close()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d is taken", port)) || !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("Start on a taken port: %v", err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Stop leaves nothing behind.
	before = tree(pg.proc)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, before)
	checkRemoved(t, pg.SocketDir())
	checkPortFree(t, port)
	if err := pg.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := pg.Start(ctx); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

// takenPortFirst holds a port of 127.0.0.1 until the test ends and returns
// it with a port chooser that offers it first and free ports after, and
// the count of the chooser's calls.
func takenPortFirst(t *testing.T) (taken int, choose func() (int, error), calls *int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	taken = l.Addr().(*net.TCPAddr).Port
	calls = new(int)
	choose = func() (int, error) {
		*calls++
		if *calls == 1 {
			return taken, nil
		}
		return freePort()
	}
	return taken, choose, calls
}

// TestPostgresPortTaken starts an instance whose first choice of port is
// taken: it starts on the next one.
func TestPostgresPortTaken(t *testing.T) {
	t.Parallel()
	taken, choose, calls := takenPortFirst(t)
	pg, err := startPostgres(testCtx(t), "", nil, choose)
	if err != nil {
		skipOrFatal(t, err)
	}
	defer pg.Stop()
	if *calls != 2 || pg.Port() == taken {
		t.Errorf("%d choices, port %d (taken: %d)", *calls, pg.Port(), taken)
	}
	mustPsql(t, pg, pg.URL(), "SELECT 1")
}

// TestPostgresDir starts an instance in a given directory, without a
// *testing.T, and checks that Stop removes what it made there, and only
// that.
func TestPostgresDir(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "dbtest-dir-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // for the postgres user, as root
		t.Fatal(err)
	}
	pg, err := StartPostgres(testCtx(t), dir, nil)
	if err != nil {
		skipOrFatal(t, err)
	}
	if filepath.Dir(pg.SocketDir()) != dir {
		t.Errorf("instance in %s, not in %s", pg.SocketDir(), dir)
	}
	mustPsql(t, pg, pg.SocketURL(), "SELECT 1")
	procs := tree(pg.proc)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, procs)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Errorf("%s after Stop: %v, %v", dir, ents, err)
	}

	if os.Geteuid() == 0 {
		// The postgres user cannot reach a directory of root's, mode 0700.
		_, err := StartPostgres(testCtx(t), t.TempDir(), nil)
		if err == nil || !strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("as root, in a directory of mode 0700: %v", err)
		}
	}
}

// TestPostgresBadSetting checks that a server that does not start reports
// why, from its log, and leaves nothing behind.
func TestPostgresBadSetting(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "dbtest-bad-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = StartPostgres(testCtx(t), dir, &PostgresOptions{Settings: map[string]string{"shared_buffers": "lots"}})
	if errors.Is(err, ErrNotInstalled) {
		skipOrFatal(t, err)
	}
	if err == nil || !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) || !strings.Contains(err.Error(), "exited") {
		t.Errorf("got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// redisDo sends one command (after AUTH with password, if not empty) in
// RESP and returns the first line of the answer to it.
func redisDo(t *testing.T, network, addr, password string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, testnet.Patience(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testnet.Patience(t)))
	br := bufio.NewReader(c)
	if password != "" {
		c.Write(respCommand("AUTH", password))
		if line, err := br.ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("AUTH: %q, %v", line, err)
		}
	}
	if _, err := c.Write(respCommand(args...)); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		line, err = br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimRight(line, "\r\n")
}

func TestRedis(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	r := NewRedis(t, nil)
	if err := r.Ping(ctx); err != nil {
		t.Error(err)
	}
	if err := r.PingSocket(ctx); err != nil {
		t.Error(err)
	}
	if r.Password() == "" {
		t.Error("no password by default")
	}
	if got := redisDo(t, "tcp", r.Addr(), "", "PING"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("PING without AUTH: %q", got)
	}
	if got := redisDo(t, "tcp", r.Addr(), r.Password(), "SET", "k", "v"); got != "+OK" {
		t.Errorf("SET: %q", got)
	}
	if got := redisDo(t, "unix", r.SocketPath(), r.Password(), "GET", "k"); got != "v" {
		t.Errorf("GET over the socket: %q", got)
	}
	if got := redisDo(t, "tcp", r.Addr(), r.Password(), "CONFIG", "GET", "save"); got != "*2" {
		t.Errorf("CONFIG GET save: %q", got)
	}
	u, err := url.Parse(r.URL())
	if pw, _ := u.User.Password(); err != nil || pw != r.Password() || u.Host != r.Addr() || u.Scheme != "redis" {
		t.Errorf("URL %s", r.URL())
	}
	u, err = url.Parse(r.SocketURL())
	if pw, _ := u.User.Password(); err != nil || pw != r.Password() || u.Path != r.SocketPath() || u.Scheme != "unix" {
		t.Errorf("SocketURL %s", r.SocketURL())
	}
	// redis-cli, an independent client, takes the URL.
	if cli, err := exec.LookPath("redis-cli"); err == nil {
		out, err := exec.CommandContext(ctx, cli, "-u", r.URL(), "--no-auth-warning", "GET", "k").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "v" {
			t.Errorf("redis-cli -u URL GET k: %q, %v", out, err)
		}
	}
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	r := NewRedis(t, &RedisOptions{NoPassword: true})
	if r.Password() != "" || strings.Contains(r.URL(), "@") {
		t.Errorf("password %q, URL %s", r.Password(), r.URL())
	}
	if got := redisDo(t, "tcp", r.Addr(), "", "PING"); got != "+PONG" {
		t.Errorf("PING: %q", got)
	}
	if err := r.Ping(ctx); err != nil {
		t.Error(err)
	}
	r2 := NewRedis(t, &RedisOptions{Password: `a "quoted" \ pass word`})
	if got := redisDo(t, "tcp", r2.Addr(), `a "quoted" \ pass word`, "PING"); got != "+PONG" {
		t.Errorf("PING: %q", got)
	}
}

func TestRedisFaults(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	r := NewRedis(t, nil)
	addr := r.Addr()
	redisDo(t, "tcp", addr, r.Password(), "SET", "k", "v")

	before := tree(r.proc)
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkGone(t, before)
	if err := r.Ping(ctx); err == nil {
		t.Error("PING answered after Shutdown")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Addr() != addr {
		t.Errorf("address %s after Start, was %s", r.Addr(), addr)
	}
	// Without persistence, the data is gone.
	if got := redisDo(t, "tcp", addr, r.Password(), "GET", "k"); got != "$-1" {
		t.Errorf("GET after a restart: %q", got)
	}

	redisDo(t, "tcp", addr, r.Password(), "SET", "k", "v")
	before = tree(r.proc)
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, before)
	if r.Running() {
		t.Error("Running() after Kill")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := redisDo(t, "unix", r.SocketPath(), r.Password(), "GET", "k"); got != "$-1" {
		t.Errorf("GET after Kill and Restart: %q", got)
	}

	before = tree(r.proc)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, before)
	checkRemoved(t, r.SocketPath())
	checkPortFree(t, r.port)
	if err := r.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestRedisPortTaken(t *testing.T) {
	t.Parallel()
	taken, choose, calls := takenPortFirst(t)
	r, err := startRedis(testCtx(t), "", nil, choose)
	if err != nil {
		skipOrFatal(t, err)
	}
	defer r.Stop()
	if *calls != 2 || r.port == taken {
		t.Errorf("%d choices, port %d (taken: %d)", *calls, r.port, taken)
	}
	if err := r.Ping(testCtx(t)); err != nil {
		t.Error(err)
	}
}

func TestRedisExits(t *testing.T) {
	t.Parallel()
	false_, err := exec.LookPath("false")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	_, err = StartRedis(testCtx(t), dir, &RedisOptions{Binary: false_})
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestConcurrent starts two instances of each engine at once: they get
// ports and directories of their own and work side by side.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	var (
		wg  sync.WaitGroup
		pgs [2]*Postgres
		rs  [2]*Redis
		err [4]error
	)
	for i := range 2 {
		wg.Go(func() { pgs[i], err[i] = StartPostgres(ctx, "", nil) })
		wg.Go(func() { rs[i], err[2+i] = StartRedis(ctx, "", nil) })
	}
	wg.Wait()
	for i := range 2 {
		if pgs[i] != nil {
			defer pgs[i].Stop()
		}
		if rs[i] != nil {
			defer rs[i].Stop()
		}
	}
	for _, err := range err {
		if err != nil {
			skipOrFatal(t, err)
		}
	}
	if pgs[0].Port() == pgs[1].Port() || rs[0].Addr() == rs[1].Addr() || pgs[0].SocketDir() == pgs[1].SocketDir() {
		t.Fatalf("shared ports or directories: %d %d %s %s", pgs[0].Port(), pgs[1].Port(), rs[0].Addr(), rs[1].Addr())
	}
	for i := range 2 {
		mustPsql(t, pgs[i], pgs[i].URL(), fmt.Sprintf("CREATE TABLE t%d ()", i))
		if got := mustPsql(t, pgs[i], pgs[i].URL(), "SELECT string_agg(relname, ',') FROM pg_class WHERE relname LIKE 't_'"); got != fmt.Sprintf("t%d", i) {
			t.Errorf("instance %d has tables %q", i, got)
		}
		redisDo(t, "tcp", rs[i].Addr(), rs[i].Password(), "SET", "k", strconv.Itoa(i))
	}
	for i := range 2 {
		if got := redisDo(t, "tcp", rs[i].Addr(), rs[i].Password(), "GET", "k"); got != strconv.Itoa(i) {
			t.Errorf("instance %d has k = %q", i, got)
		}
	}
}

func TestNotInstalled(t *testing.T) {
	ctx := testCtx(t)
	_, err := StartPostgres(ctx, "", &PostgresOptions{BinDir: "/nonexistent"})
	var nie *NotInstalledError
	if !errors.Is(err, ErrNotInstalled) || !errors.As(err, &nie) || nie.Package != "postgresql" || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("PostgreSQL: %v", err)
	}
	_, err = StartRedis(ctx, "", &RedisOptions{Binary: "/nonexistent/redis-server"})
	if !errors.Is(err, ErrNotInstalled) || !errors.As(err, &nie) || nie.Package != "redis-server" || !strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Errorf("Redis: %v", err)
	}

	other := errors.New("dbtest: something else")
	for _, tc := range []struct {
		err  error
		ci   string
		skip bool
	}{
		{err, "", true},
		{err, "false", true},
		{err, "true", false},
		{err, "1", false},
		{errUnsupported, "", true},
		{other, "", false},
		{other, "true", false},
	} {
		if got := skippable(tc.err, tc.ci); got != tc.skip {
			t.Errorf("skippable(%v, CI=%q) = %v", tc.err, tc.ci, got)
		}
	}
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b bytes.Buffer
	for i := range 100 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	tail := logTail(path, 0)
	if lines := strings.Split(tail, "\n"); len(lines) != 30 || lines[0] != "line 70" || lines[29] != "line 99" {
		t.Errorf("tail: %q", tail)
	}
	if got := logTail(path, int64(b.Len()-len("line 99\n"))); got != "line 99" {
		t.Errorf("tail from a mark: %q", got)
	}
}

// TestParentDeath checks that the servers end with the process that
// started them, even when it ends without Stop (as a test binary that
// times out does): it runs itself as that process, and kills it.
func TestParentDeath(t *testing.T) {
	if os.Getenv("DBTEST_ORPHAN_HELPER") == "1" {
		orphanHelper(t)
		return
	}
	if !hasDeathSignal {
		t.Skip("no parent-death signal on this system")
	}
	t.Parallel()
	ctx := testCtx(t)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestParentDeath$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "DBTEST_ORPHAN_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testnet.Log
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var servers [][]procID
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "server" {
			pid, _ := strconv.Atoi(f[1])
			defer os.RemoveAll(f[2])
			servers = append(servers, append([]procID{procOf(pid)}, descendants(pid)...))
		}
		if sc.Text() == "ready" {
			break
		}
		if strings.HasPrefix(sc.Text(), "skip") {
			t.Skip(sc.Text())
		}
	}
	if len(servers) != 2 {
		t.Fatalf("the helper started %d servers: %s", len(servers), stderr.String())
	}
	cmd.Process.Kill()
	cmd.Wait()
	for _, ids := range servers {
		for _, id := range ids {
			if err := poll(ctx, nil, func() (bool, error) { return !id.alive(), nil }); err != nil {
				t.Errorf("process %d runs on after its parent's death: %v", id.pid, err)
			}
		}
	}
}

// orphanHelper starts PostgreSQL and Redis, says their process IDs and
// directories, and waits to be killed.
func orphanHelper(t *testing.T) {
	ctx := testCtx(t)
	pg, err := StartPostgres(ctx, "", nil)
	if err != nil {
		fmt.Println("skip:", err)
		return
	}
	r, err := StartRedis(ctx, "", nil)
	if err != nil {
		pg.Stop()
		fmt.Println("skip:", err)
		return
	}
	fmt.Println("server", pg.proc.pid, pg.SocketDir())
	fmt.Println("server", r.proc.pid, filepath.Dir(r.SocketPath()))
	fmt.Println("ready")
	<-ctx.Done()
	pg.Stop()
	r.Stop()
}
