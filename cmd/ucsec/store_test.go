package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/tvs"
)

// The tests of a --store in PostgreSQL start a throw-away server each
// (internal/dbtest): they skip where PostgreSQL is not installed, and
// fail instead where CI is true.

// withoutPassword returns the URL raw without its password, and the
// password.
func withoutPassword(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	return u.String(), pw
}

// withParam returns the URL raw with the query parameter k=v added.
func withParam(raw, k, v string) string {
	return raw + "&" + url.QueryEscape(k) + "=" + url.QueryEscape(v)
}

// pgExec runs sql on pg as its superuser.
func pgExec(t *testing.T, pg *dbtest.Postgres, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testnet.Patience(t))
	defer cancel()
	_, err := pg.Exec(ctx, sql)
	require.NoError(t, err)
}

// Two CAPF servers on one database, on two "hosts": the commands that
// schedule, list and cancel reach both through the database, each run
// as a command of its own, with the password in PGPASSWORD.
func TestCapfPostgres(t *testing.T) {
	pg := dbtest.NewPostgres(t, nil)
	dir := t.TempDir()
	caPEM, caCrt, ca := testCA(t, dir)
	bare, password := withoutPassword(t, pg.URL())
	t.Setenv("PGPASSWORD", password)

	// The two servers differ by their application_name, which
	// PostgreSQL shows, so that their URLs (the tests' keys) differ.
	storeA := withParam(bare, "application_name", "capf-a")
	storeB := withParam(bare, "application_name", "capf-b")
	addrA, logA, stopA := startServe(t, storeA, listeningPrefix, "capf", "serve", "--store", storeA, "--listen", "127.0.0.1:0", "--cert", caPEM, "--key", caPEM)
	addrB, logB, stopB := startServe(t, storeB, listeningPrefix, "capf", "serve", "--store", storeB, "--listen", "127.0.0.1:0", "--cert", caPEM, "--key", caPEM)
	assert.Contains(t, logA.String(), `store="`+storeA+`"`)
	assert.NotContains(t, logA.String(), "holds a password")

	enroll := func(addr, dev string, args ...string) result {
		t.Helper()
		out := filepath.Join(dir, strings.ToLower(dev)+".pem")
		r := mustRun(t, exitOK, append([]string{"capf", "enroll", "--server", addr, "--ca", caCrt, "--timeout", "10s", "--device", dev, "-o", out}, args...)...)
		loadLSC(t, out, out, ca, dev)
		return r
	}

	// Scheduled from another host, enrolled at either server.
	r := mustRun(t, exitOK, "capf", "schedule", "--store", bare, "--device", "SEP0000000000A1", "--op", "install", "--auth", "string", "--string", "2468", "--key", "ec256")
	assert.Equal(t, "SEP0000000000A1: install scheduled, authentication string, key ec256\n", r.stdout)
	mustRun(t, exitOK, "capf", "schedule", "--store", bare, "--device", "SEP0000000000B1", "--op", "install", "--auth", "null", "--key", "ec256")
	enroll(addrA, "SEP0000000000A1", "--string", "2468")
	enroll(addrB, "SEP0000000000B1")

	devices := listDevices(t, bare)
	require.Len(t, devices, 2)
	for _, dev := range []string{"SEP0000000000A1", "SEP0000000000B1"} {
		assert.Equal(t, "Upgrade Success", devices[dev].Status, dev)
	}
	issued := listIssued(t, bare)
	require.Len(t, issued, 2)
	assert.ElementsMatch(t, []string{"SEP0000000000A1", "SEP0000000000B1"}, []string{issued[0].Device, issued[1].Device})
	assert.Contains(t, mustRun(t, exitOK, "capf", "list", "--store", bare).stdout, "Upgrade Success")

	// Scheduled at one server's URL, enrolled at the other; then a
	// schedule cancelled, from a third URL, the postgresql:// scheme.
	mustRun(t, exitOK, "capf", "schedule", "--store", storeA, "--device", "SEP0000000000C1", "--op", "install", "--auth", "null", "--key", "ec256")
	enroll(addrB, "SEP0000000000C1")
	other := "postgresql" + strings.TrimPrefix(bare, "postgres")
	mustRun(t, exitOK, "capf", "schedule", "--store", other, "--device", "SEP0000000000A1", "--op", "fetch", "--auth", "lsc")
	assert.Equal(t, "SEP0000000000A1: fetch cancelled\n", mustRun(t, exitOK, "capf", "cancel", "--store", storeB, "--device", "SEP0000000000A1").stdout)
	assert.Equal(t, "Troubleshoot Failed: Operation Cancelled", listDevices(t, bare)["SEP0000000000A1"].Status)
	r = mustRun(t, exitError, "capf", "cancel", "--store", bare, "--device", "SEP0000000000FF")
	assert.Equal(t, "ucsec: capf: unknown device: \"SEP0000000000FF\"\n", r.stderr)
	assert.Len(t, listIssued(t, bare), 3)

	// The issued log names every certificate once, whichever server
	// issued it; the servers logged their sessions and no admin request.
	stopA()
	stopB()
	for _, l := range []*testnet.Log{logA, logB} {
		assert.Contains(t, l.String(), "capf: stopped")
		assert.NotContains(t, l.String(), "admin")
		assert.NotContains(t, l.String(), password)
	}

	// What the servers stored is still there for a new one, whose URL
	// holds the password: it works, with a warning, and the log masks it.
	addr, logC, stop := startServe(t, pg.URL(), listeningPrefix, "capf", "serve", "--store", pg.URL(), "--listen", "127.0.0.1:0", "--cert", caPEM, "--key", caPEM)
	mustRun(t, exitOK, "capf", "schedule", "--store", bare, "--device", "SEP0000000000D1", "--op", "install", "--auth", "null", "--key", "ec256")
	enroll(addr, "SEP0000000000D1")
	stop()
	assert.Len(t, listIssued(t, bare), 4)
	assert.Contains(t, logC.String(), "the --store URL holds a password")
	assert.Contains(t, logC.String(), `store="postgres://ucsec:xxxxx@127.0.0.1:`)
	assert.NotContains(t, logC.String(), password)
}

// tvsListJSON runs "tvs list --json" and decodes what it prints.
func tvsListJSON(t *testing.T, store string) []*tvsEntryReport {
	t.Helper()
	r := mustRun(t, exitOK, "tvs", "list", "--store", store, "--json")
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	var out []*tvsEntryReport
	for {
		e := new(tvsEntryReport)
		if err := dec.Decode(e); err == io.EOF {
			break
		} else {
			require.NoError(t, err, r.stdout)
		}
		out = append(out, e)
	}
	return out
}

// tvsRoles returns the roles of each entry, by subject.
func tvsRoles(entries []*tvsEntryReport) map[string]string {
	m := map[string]string{}
	for _, e := range entries {
		m[e.Certificate] = strings.Join(e.Roles, ",")
	}
	return m
}

// A TVS on PostgreSQL, its entries changed by the commands while it
// runs; a second TVS on the same database serves the same entries. The
// password comes from a password file.
func TestTVSPostgres(t *testing.T) {
	pg := dbtest.NewPostgres(t, nil)
	dir := t.TempDir()
	bare, password := withoutPassword(t, pg.URL())
	passfile := filepath.Join(dir, "pgpass")
	require.NoError(t, os.WriteFile(passfile, fmt.Appendf(nil, "127.0.0.1:%d:*:*:%s\n", pg.Port(), password), 0o600))
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", passfile)

	tvsPEM, tvsCrt := tvsIdentity(t, dir, "tvs", "TVS-test")
	addr, serverLog, stop := startTVS(t, tvsPEM, "--store", bare, "--trust", "sast="+sastPEM)
	second := copyFile(t, tvsPEM, t.TempDir())
	addr2, _, stop2 := startTVS(t, second, "--store", bare)
	assert.Equal(t, []string{"SAST"}, tvsQueryJSON(t, exitOK, "--server", addr2, "--ca", tvsCrt, sastPEM).Roles)

	// Added while the servers run: both vouch for it at once.
	tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", tvsCrt, tftpPEM)
	r := mustRun(t, exitOK, "tvs", "add", "--store", bare, "--trust", "ccm+tftp="+tftpPEM, "--ttl", "2h")
	assert.Regexp(t, `^added CN=Asterisk.* \(SHA-256 [0-9a-f]{64}\): roles CCM\+TFTP, TTL 2h0m0s\n$`, r.stdout)
	for _, a := range []string{addr, addr2} {
		rep := tvsQueryJSON(t, exitOK, "--server", a, "--ca", tvsCrt, tftpPEM)
		assert.Equal(t, []string{"CCM+TFTP"}, rep.Roles)
		assert.EqualValues(t, 7200, rep.TTL)
	}
	entries := tvsListJSON(t, bare)
	require.Len(t, entries, 2)
	sast := entries[0]
	if sast.Roles[0] != "SAST" {
		sast = entries[1]
	}
	assert.ElementsMatch(t, []string{"SAST", "CCM+TFTP"}, slices.Collect(maps.Values(tvsRoles(entries))))
	text := mustRun(t, exitOK, "tvs", "list", "--store", bare).stdout
	assert.Contains(t, text, "SHA-256")
	assert.Contains(t, text, "CCM+TFTP  2h0m0s")
	assert.Contains(t, text, "SAST      default")

	// Removed: "not trusted" at once, from both.
	r = mustRun(t, exitOK, "tvs", "remove", "--store", bare, tftpPEM)
	assert.Regexp(t, `^removed CN=Asterisk.* \(SHA-256 [0-9a-f]{64}\)\n$`, r.stdout)
	for _, a := range []string{addr, addr2} {
		rep := tvsQueryJSON(t, exitInvalid, "--server", a, "--ca", tvsCrt, tftpPEM)
		assert.False(t, rep.Valid)
	}
	r = ucsec(t, "", "tvs", "remove", "--store", bare, tftpPEM)
	r.check(t, exitError, "", tftpPEM+": tvs: certificate not found: SHA-256 ")
	require.Len(t, tvsListJSON(t, bare), 1)
	// By hash, as the list shows it.
	r = mustRun(t, exitOK, "tvs", "remove", "--store", bare, "--sha256", hex.EncodeToString(sast.SHA256))
	assert.Contains(t, r.stdout, "removed "+sast.Certificate)
	tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", tvsCrt, sastPEM)
	assert.Empty(t, tvsListJSON(t, bare))

	stop()
	stop2()
	assert.Contains(t, serverLog.String(), `store="`+bare+`"`)
	assert.NotContains(t, serverLog.String(), "tvs: admin")
	assert.NotContains(t, serverLog.String(), password)
}

// A wrong password, a database that does not answer, and tables of
// another schema version: one clear error at once, without the
// password, from the servers and from the commands.
func TestStorePostgresErrors(t *testing.T) {
	pg := dbtest.NewPostgres(t, nil)
	dir := t.TempDir()
	caPEM, _, _ := testCA(t, dir)
	tvsPEM, _ := tvsIdentity(t, dir, "tvs", "TVS-test")
	bare, password := withoutPassword(t, pg.URL())
	const secret = "Sw0rdf1sh-wrong"
	u, _ := url.Parse(bare)
	u.User = url.UserPassword(u.User.Username(), secret)
	wrong := u.String()

	commands := func(store string) [][]string {
		return [][]string{
			{"capf", "serve", "--store", store, "--listen", "127.0.0.1:0", "--cert", caPEM, "--key", caPEM},
			{"capf", "schedule", "--store", store, "--device", "SEP001122334455", "--op", "fetch", "--auth", "null"},
			{"capf", "list", "--store", store},
			{"capf", "cancel", "--store", store, "--device", "SEP001122334455"},
			{"tvs", "serve", "--store", store, "--listen", "127.0.0.1:0", "--cert", tvsPEM, "--key", tvsPEM},
			{"tvs", "list", "--store", store},
			{"tvs", "add", "--store", store, "--trust", "sast=" + sastPEM},
			{"tvs", "remove", "--store", store, sastPEM},
		}
	}
	// The error is one line, after what a server logged before (a
	// warning about a password in the URL).
	check := func(t *testing.T, args []string, want ...string) {
		t.Helper()
		r := ucsec(t, "", args...)
		assert.Equal(t, exitError, r.code, "%s: %s", args[:2], r.stderr)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		assert.True(t, strings.HasPrefix(last, "ucsec: --store: postgres: "), "%s: %s", args[:2], r.stderr)
		for _, w := range want {
			assert.Contains(t, last, w, args[:2])
		}
		for _, pw := range []string{secret, password} {
			assert.NotContains(t, r.stderr+r.stdout, pw, args[:2])
		}
		if args[1] == "serve" && len(lines) > 1 {
			assert.Contains(t, lines[0], "the --store URL holds a password")
		}
	}

	t.Run("WrongPassword", func(t *testing.T) {
		for _, args := range commands(wrong) {
			check(t, args, "cannot connect to the database", "password authentication failed", "user=ucsec")
		}
		// In PGPASSWORD too.
		t.Setenv("PGPASSWORD", secret)
		check(t, commands(bare)[2], "password authentication failed")
	})
	t.Run("NoServer", func(t *testing.T) {
		u, _ := url.Parse(wrong)
		u.Host = tvsClosedPort(t)
		for _, args := range commands(u.String())[1:3] {
			check(t, args, "cannot connect to the database", "connection refused")
		}
	})
	t.Run("MalformedURL", func(t *testing.T) {
		for _, args := range commands("postgres://ucsec:" + secret + "@127.0.0.1:notaport/ucsec")[1:3] {
			check(t, args, "invalid argument", "cannot parse", "xxxxx")
		}
		r := ucsec(t, "", "capf", "list", "--store", "mysql://ucsec:"+secret+"@127.0.0.1/ucsec")
		r.check(t, exitError, "", "ucsec: --store mysql://…: use a directory, or a postgres:// or postgresql:// URL; see 'ucsec capf list -h'")
		assert.NotContains(t, r.stderr, secret)
	})
	t.Run("SchemaVersion", func(t *testing.T) {
		t.Setenv("PGPASSWORD", password)
		mustRun(t, exitOK, "capf", "schedule", "--store", bare, "--device", "SEP001122334455", "--op", "fetch", "--auth", "null")
		mustRun(t, exitOK, "tvs", "add", "--store", bare, "--trust", "sast="+sastPEM)
		pgExec(t, pg, "UPDATE ucsec_schema SET version = 99, compatible = 99")
		for _, args := range commands(bare) {
			check(t, args, "store's tables in schema \"public\"", "99")
		}
	})
}

// The TVS admin commands on a bbolt directory: without a server they
// open the file; with one, they reach it through its socket, and it
// serves their changes at once.
func TestTVSAdminBolt(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	tvsPEM, tvsCrt := tvsIdentity(t, dir, "tvs", "TVS-test")

	// No store yet: list and remove say so, and make nothing.
	ucsec(t, "", "tvs", "list", "--store", store).check(t, exitError, "", "ucsec: no TVS store in "+store+" (add an entry with 'ucsec tvs add' or run 'ucsec tvs serve --store "+store+"' first)")
	ucsec(t, "", "tvs", "remove", "--store", store, sastPEM).check(t, exitError, "", "no TVS store in")
	assert.NoDirExists(t, store)

	// Without a server: add makes the store.
	r := mustRun(t, exitOK, "tvs", "add", "--store", store, "--trust", "sast,ccm="+sastPEM, "--trust", "tftp="+tftpPEM, "--ttl", "1h")
	assert.Equal(t, 2, strings.Count(r.stdout, "added "), r.stdout)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o700), fileMode(t, store))
	}
	entries := tvsListJSON(t, store)
	require.Len(t, entries, 2)
	for _, e := range entries {
		assert.EqualValues(t, 3600, e.TTL)
		assert.Len(t, e.SHA256, 32)
	}
	assert.ElementsMatch(t, []string{"SAST,CCM", "TFTP"}, slices.Collect(maps.Values(tvsRoles(entries))))

	// A mistake in any --trust changes nothing.
	bad := writeTemp(t, dir, "bad.pem", []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"))
	ucsec(t, "", "tvs", "add", "--store", store, "--trust", "tvs="+devicePEM, "--trust", "tftp="+bad).check(t, exitError, "", "bad.pem: tvs: invalid argument")
	assert.Len(t, tvsListJSON(t, store), 2)

	// With a server: the commands go through its socket, and it serves
	// what they change at once.
	addr, serverLog, stop := startTVS(t, tvsPEM, "--store", store)
	sock := filepath.Join(store, tvsSocketFileName)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o600)|os.ModeSocket, fileModeType(t, sock))
	}
	tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", tvsCrt, devicePEM)
	r = mustRun(t, exitOK, "tvs", "add", "--store", store, "--trust", "app-server="+devicePEM)
	assert.Contains(t, r.stdout, "roles APP-SERVER, TTL default")
	rep := tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, devicePEM)
	assert.Equal(t, []string{"APP-SERVER"}, rep.Roles)
	assert.EqualValues(t, 24*3600, rep.TTL, "the server's default TTL")
	assert.Len(t, tvsListJSON(t, store), 3)
	// Added again: the roles are replaced.
	mustRun(t, exitOK, "tvs", "add", "--store", store, "--trust", "sast="+sastPEM)
	assert.Equal(t, []string{"SAST"}, tvsQueryJSON(t, exitOK, "--server", addr, "--ca", tvsCrt, sastPEM).Roles)

	r = mustRun(t, exitOK, "tvs", "remove", "--store", store, devicePEM)
	assert.Contains(t, r.stdout, "removed ")
	tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", tvsCrt, devicePEM)
	ucsec(t, "", "tvs", "remove", "--store", store, devicePEM).check(t, exitError, "", devicePEM+": tvs: certificate not found")
	// From standard input.
	r = ucsec(t, string(mustRead(t, tftpPEM)), "tvs", "remove", "--store", store, "-")
	r.check(t, exitOK, "removed CN=Asterisk", "")
	tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", tvsCrt, tftpPEM)
	assert.Len(t, tvsListJSON(t, store), 1)
	logs := serverLog.String()
	for _, want := range []string{`msg="tvs: admin request" op=add certificates=1`, `msg="tvs: admin request" op=remove certificates=1`, `msg="tvs: admin request" op=list`, `msg="tvs: admin request failed"`} {
		assert.Contains(t, logs, want)
	}

	// Stopped, the server removes its socket; the commands open the file.
	stop()
	assert.NoFileExists(t, sock)
	mustRun(t, exitOK, "tvs", "add", "--store", store, "--trust", "capf="+devicePEM)
	assert.Len(t, tvsListJSON(t, store), 2)

	// A store another process holds, with no server answering: a clear
	// error after a short wait.
	st, err := tvs.OpenBoltStore(filepath.Join(store, tvsStoreFileName), nil)
	require.NoError(t, err)
	ucsec(t, "", "tvs", "list", "--store", store).check(t, exitError, "", "tvs.db is in use by another process, but no TVS server answers on")
	require.NoError(t, st.Close())

	// The store of a CAPF and of a TVS may share a directory, each
	// server with its socket.
	caPEM, _, _ := testCA(t, dir)
	_, _, stopCAPF := startServer(t, store, "--cert", caPEM, "--key", caPEM)
	_, _, stop = startTVS(t, tvsPEM, "--store", store)
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", "SEP001122334455", "--op", "fetch", "--auth", "null")
	assert.Len(t, tvsListJSON(t, store), 2)
	assert.FileExists(t, filepath.Join(store, socketFileName))
	assert.FileExists(t, sock)
	stop()
	stopCAPF()
}

// fileModeType returns the permissions and type of the file at path.
func fileModeType(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.Mode() & (os.ModePerm | os.ModeType)
}

func TestTVSAdminUsageErrors(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"tvs", "list"}, "missing --store; see 'ucsec tvs list -h'"},
		{[]string{"tvs", "list", "--store", store, "extra"}, "unexpected argument"},
		{[]string{"tvs", "add", "--store", store}, "missing --trust"},
		{[]string{"tvs", "add", "--trust", "sast=" + sastPEM}, "missing --store"},
		{[]string{"tvs", "add", "--store", store, "--trust", sastPEM}, "invalid --trust"},
		{[]string{"tvs", "add", "--store", store, "--trust", "boss=" + sastPEM}, `unknown role "boss"`},
		{[]string{"tvs", "add", "--store", store, "--trust", "sast=" + sastPEM, "--ttl", "0s"}, "--ttl must be"},
		{[]string{"tvs", "add", "--store", store, "--trust", "sast=" + sastPEM, "--ttl", "1.5s"}, "--ttl must be"},
		{[]string{"tvs", "add", "--store", store, "--trust", "sast=" + sastPEM, "--ttl", "721h"}, "--ttl must be"},
		{[]string{"tvs", "add", "--store", store, "--trust", "sast=" + filepath.Join(dir, "missing.pem")}, "missing.pem"},
		{[]string{"tvs", "remove", "--store", store}, "missing certificate file or --sha256"},
		{[]string{"tvs", "remove", "--store", store, "--sha256", "00", sastPEM}, "exclude each other"},
		{[]string{"tvs", "remove", "--store", store, "--sha256", "abcd"}, "is not a SHA-256 hash"},
		{[]string{"tvs", "remove", "--store", store, sastPEM, tftpPEM}, "unexpected argument"},
		{[]string{"tvs", "serve", "--cert", sastPEM, "--key", sastPEM, "--store", "redis://x"}, "--store redis://…"},
	} {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			ucsec(t, "", tt.args...).check(t, exitError, "", tt.msg)
		})
	}
	assert.NoDirExists(t, store)
}

func TestTVSAdminHelp(t *testing.T) {
	for _, cmd := range []string{"list", "add", "remove"} {
		r := mustRun(t, exitOK, "tvs", cmd, "-h")
		for _, want := range []string{"--store DIR|URL", "DIR/tvs.sock", "PGPASSWORD", "postgres://"} {
			assert.Contains(t, r.stdout, want, cmd)
		}
	}
	for _, cmd := range [][]string{{"capf", "serve"}, {"tvs", "serve"}} {
		r := mustRun(t, exitOK, append(cmd, "-h")...)
		for _, want := range []string{"--store DIR|URL", "postgres://", "PGPASSWORD", "PGPASSFILE", "not in the URL", "no admin socket"} {
			assert.Contains(t, r.stdout, want, cmd)
		}
	}
}

// The URL of a --store never shows its passwords.
func TestStoreLocation(t *testing.T) {
	for _, tt := range []struct{ in, shown string }{
		{"/var/lib/capf", "/var/lib/capf"},
		{"postgres://capf@db.example/uc?sslmode=verify-full", "postgres://capf@db.example/uc?sslmode=verify-full"},
		{"postgres://capf:s3cr%2Ft@db.example/uc", "postgres://capf:xxxxx@db.example/uc"},
		{"postgresql://capf@db.example/uc?password=s3cr%2Ft&sslmode=require", "postgresql://capf@db.example/uc?password=xxxxx&sslmode=require"},
		{"postgres://capf@db.example/uc?sslpassword=s3cr%2Ft", "postgres://capf@db.example/uc?sslpassword=xxxxx"},
		{"postgres://capf:s3cr%2Ft@db.example:port/uc", "postgres://(a URL that does not parse)"},
	} {
		l, err := parseStoreFlag(tt.in)
		require.NoError(t, err)
		assert.Equal(t, tt.shown, l.String())
		if l.url != "" {
			err := &storeError{errors.New("postgres: failed: s3cr/t s3cr%2Ft"), l.secrets()}
			if strings.Contains(tt.in, "s3cr") {
				assert.Equal(t, "--store: postgres: failed: xxxxx xxxxx", err.Error())
			}
			assert.ErrorIs(t, err, err.err)
		}
	}
	_, err := parseStoreFlag("")
	assert.Equal(t, usageError("missing --store"), err)
	_, err = parseStoreFlag("Postgres://capf:pw@db/uc")
	assert.Equal(t, usageError("--store Postgres://…: use a directory, or a postgres:// or postgresql:// URL"), err)
}
