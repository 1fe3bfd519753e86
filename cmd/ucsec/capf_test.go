package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/internal/pemutil"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// testMainEnv makes the test binary run the command line in its arguments
// instead of the tests: the crash test runs "capf serve" in a child
// process that it can kill, without building ucsec.
const testMainEnv = "UCSEC_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(testMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	// In-process servers stop when their test cancels the context
	// registered for their store directory.
	serveContext = func(dir string) (context.Context, context.CancelFunc) {
		if ctx, ok := testServers.Load(dir); ok {
			return context.WithCancel(ctx.(context.Context))
		}
		panic("capf serve in a test without startServer: " + dir)
	}
	os.Exit(m.Run())
}

// testServers maps a store directory to the context of its in-process
// server.
var testServers sync.Map

// testCA writes a throw-away CAPF certificate and key (EC P-256, CA:TRUE
// pathlen:0, keyCertSign and digitalSignature, serverAuth and clientAuth,
// valid for five years: an LSC of 3000 days would outlive it) to
// dir/capf.pem, both in one file, and the certificate alone to
// dir/capf.crt. It returns the two paths and the certificate.
func testCA(t testing.TB, dir string) (pemPath, crtPath string, cert *x509.Certificate) {
	t.Helper()
	tmpl := testpki.CA("CAPF-test")
	tmpl.NotAfter = time.Now().AddDate(5, 0, 0)
	return writeSelfSigned(t, dir, "capf", tmpl)
}

// listeningPrefix starts the line "capf serve" prints once it listens.
const listeningPrefix = "capf: listening on "

// startServer runs "capf serve" with args in-process for the store
// directory store and returns its address, its standard error, and a
// function that stops it (as SIGINT would) and checks that it exited
// with status 0.
func startServer(t *testing.T, store string, args ...string) (addr string, stderr *testnet.Log, stop func()) {
	t.Helper()
	return startServe(t, store, listeningPrefix, append([]string{"capf", "serve", "--store", store, "--listen", "127.0.0.1:0"}, args...)...)
}

// listDevices runs "capf list --json" and returns the devices by name.
func listDevices(t *testing.T, store string, args ...string) map[string]*deviceReport {
	t.Helper()
	r := mustRun(t, exitOK, append([]string{"capf", "list", "--store", store, "--json"}, args...)...)
	devices := map[string]*deviceReport{}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	for {
		d := new(deviceReport)
		if err := dec.Decode(d); err == io.EOF {
			break
		} else {
			require.NoError(t, err, r.stdout)
		}
		devices[d.Device] = d
	}
	return devices
}

// listIssued runs "capf list --issued --json".
func listIssued(t *testing.T, store string) []*issuedReport {
	t.Helper()
	r := mustRun(t, exitOK, "capf", "list", "--store", store, "--issued", "--json")
	var issued []*issuedReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	for {
		i := new(issuedReport)
		if err := dec.Decode(i); err == io.EOF {
			break
		} else {
			require.NoError(t, err, r.stdout)
		}
		issued = append(issued, i)
	}
	return issued
}

// loadLSC reads the certificate and private key "capf enroll" wrote and
// checks that they belong together and chain to the CAPF certificate.
func loadLSC(t *testing.T, certFile, keyFile string, ca *x509.Certificate, device string) *x509.Certificate {
	t.Helper()
	cert, err := pemutil.ParseCertificate(mustRead(t, certFile))
	require.NoError(t, err)
	key, err := pemutil.ParseSigner(mustRead(t, keyFile))
	require.NoError(t, err)
	assert.True(t, publicKeysEqual(key.Public(), cert.PublicKey), "key does not match certificate")
	assert.Contains(t, string(mustRead(t, keyFile)), "-----BEGIN PRIVATE KEY-----")
	_, err = cert.Verify(x509.VerifyOptions{Roots: testpki.Pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err)
	assert.Equal(t, device, cert.Subject.CommonName)
	return cert
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

func TestCapfEndToEnd(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	caPEM, caCrt, ca := testCA(t, dir)
	const dev = "SEP001122334455"

	addr, serverLog, stop := startServer(t, store, "--cert", caPEM, "--key", caPEM, "--validity", "30", "--max-auth-failures", "3")
	sock := filepath.Join(store, socketFileName)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o700), fileMode(t, store))
		assert.Equal(t, os.FileMode(0o600), fileMode(t, sock))
	}
	enroll := func(want int, args ...string) result {
		t.Helper()
		return mustRun(t, want, append([]string{"capf", "enroll", "--server", addr, "--ca", caCrt, "--timeout", "10s"}, args...)...)
	}

	// Install with an authentication string, through the socket.
	r := mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "install", "--auth", "string", "--string", "123456", "--key", "ec256", "--by", "1h")
	assert.Contains(t, r.stdout, dev+": install scheduled, authentication string, key ec256, by ")
	assert.Contains(t, serverLog.String(), "capf: admin request")

	// A wrong string: refused, exit status 1, counted.
	lsc := filepath.Join(dir, "lsc.pem")
	r = enroll(exitInvalid, "--device", dev, "--string", "654321", "-o", lsc)
	assert.Contains(t, r.stderr, "ucsec: "+dev+": capf: server ended the session: failure (reason 7)")
	assert.Contains(t, r.stdout, "failed")
	assert.NoFileExists(t, lsc)
	d := listDevices(t, store)[dev]
	require.NotNil(t, d)
	assert.Equal(t, "Operation Pending", d.Status)
	require.NotNil(t, d.Pending)
	assert.Equal(t, pendingReport{Operation: "install", Auth: "string", AuthString: "set", Key: "ec256", Deadline: d.Pending.Deadline, Scheduled: d.Pending.Scheduled, Failures: 1}, *d.Pending)
	assert.Equal(t, "Upgrade Failed: Invalid Authentication String", d.Last.Status)
	text := mustRun(t, exitOK, "capf", "list", "--store", store).stdout
	assert.Contains(t, text, "install auth string (set) key ec256 by ")
	assert.NotContains(t, text, "123456", "the list shows the authentication string")
	assert.NotContains(t, listDevicesRaw(t, store), "123456")

	// The right string: an LSC and its key, in one 0600 file.
	r = enroll(exitOK, "--device", dev, "--string", "123456", "-o", lsc)
	assert.Contains(t, r.stdout, "certificate installed")
	cert := loadLSC(t, lsc, lsc, ca, dev)
	serial := capf.SerialHex(cert.SerialNumber)
	assert.Contains(t, r.stdout, serial)
	assert.WithinDuration(t, time.Now().Add(30*24*time.Hour), cert.NotAfter, time.Minute)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o600), fileMode(t, lsc))
	}
	d = listDevices(t, store)[dev]
	assert.Equal(t, "Upgrade Success", d.Status)
	assert.Nil(t, d.Pending)
	assert.Equal(t, serial, d.Serial)
	assert.Equal(t, serial, d.Last.Serial)
	assert.Equal(t, cert.NotAfter.UTC(), d.NotAfter.UTC())
	assert.NotNil(t, d.LastSeen)
	issued := listIssued(t, store)
	require.Len(t, issued, 1)
	assert.Equal(t, serial, issued[0].Serial)
	assert.Equal(t, dev, issued[0].Device)
	assert.Contains(t, mustRun(t, exitOK, "capf", "list", "--store", store, "--issued").stdout, serial+"  "+dev)

	// Nothing scheduled now.
	r = enroll(exitOK, "--device", dev, "--string", "123456", "-o", filepath.Join(dir, "none.pem"))
	assert.Contains(t, r.stdout, "nothing scheduled")
	assert.NoFileExists(t, filepath.Join(dir, "none.pem"))

	// Fetch, authenticated by the LSC, which the device sends.
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "troubleshoot", "--auth", "lsc")
	r = enroll(exitOK, "--device", dev, "--cert", lsc, "--key", lsc, "--current", lsc)
	assert.Contains(t, r.stdout, "certificate sent")
	d = listDevices(t, store, "--device", dev)[dev]
	assert.Equal(t, "Troubleshoot Success", d.Status)
	assert.Equal(t, serial, d.Fetched)

	// An upgrade authenticated by the LSC, the key in a file of its own.
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "install", "--auth", "mic", "--key", "rsa2048")
	lsc2, key2 := filepath.Join(dir, "lsc2.pem"), filepath.Join(dir, "lsc2.key")
	r = enroll(exitOK, "--device", dev, "--cert", lsc, "--key", lsc, "-o", lsc2, "--key-out", key2, "--json")
	var rep enrollReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	cert2 := loadLSC(t, lsc2, key2, ca, dev)
	assert.Equal(t, enrollReport{Device: dev, Session: rep.Session, Operation: "install", Reason: 1, Result: "certificate installed",
		Serial: capf.SerialHex(cert2.SerialNumber), NotAfter: rep.NotAfter, Certificate: lsc2, Key: key2}, rep)
	assert.Equal(t, x509.RSA, cert2.PublicKeyAlgorithm)
	assert.NotContains(t, string(mustRead(t, lsc2)), "PRIVATE KEY")
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o644), fileMode(t, lsc2))
		assert.Equal(t, os.FileMode(0o600), fileMode(t, key2))
	}
	assert.Len(t, listIssued(t, store), 2)

	// Delete, by null string.
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "delete", "--auth", "null")
	r = enroll(exitOK, "--device", dev, "--current", lsc2)
	assert.Contains(t, r.stdout, "certificate deleted")
	assert.FileExists(t, lsc2)
	d = listDevices(t, store)[dev]
	assert.Equal(t, "Delete Success", d.Status)
	assert.Empty(t, d.Serial)
	assert.Nil(t, d.NotAfter)

	// A fetch from a device that holds nothing fails: exit status 1.
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "fetch", "--auth", "null")
	enroll(exitInvalid, "--device", dev)
	assert.Equal(t, "Troubleshoot Failed: No Certificate on Phone", listDevices(t, store)[dev].Status)

	// An unknown device; a CAPF certificate the client does not trust.
	r = enroll(exitInvalid, "--device", "SEP0000000000FF", "--string", "1234")
	assert.Contains(t, r.stderr, "unknown device")
	_, otherCA, _ := testCA(t, t.TempDir())
	r = mustRun(t, exitError, "capf", "enroll", "--server", addr, "--ca", otherCA, "--device", dev)
	assert.Contains(t, r.stderr, "certificate")

	// Cancel through the socket.
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "install", "--auth", "null")
	r = mustRun(t, exitOK, "capf", "cancel", "--store", store, "--device", dev)
	assert.Equal(t, dev+": install cancelled\n", r.stdout)
	assert.Equal(t, "Upgrade Failed: Operation Cancelled", listDevices(t, store)[dev].Status)
	r = mustRun(t, exitError, "capf", "cancel", "--store", store, "--device", "SEP0000000000FF")
	assert.Equal(t, "ucsec: capf: unknown device: \"SEP0000000000FF\"\n", r.stderr)
	r = mustRun(t, exitError, "capf", "schedule", "--store", store, "--device", "bad name", "--op", "fetch", "--auth", "null")
	assert.Contains(t, r.stderr, "ucsec: capf: invalid argument: device name")

	// A second server on the same store refuses to start.
	r = mustRun(t, exitError, "capf", "serve", "--store", store, "--listen", "127.0.0.1:0", "--cert", caPEM, "--key", caPEM)
	assert.Contains(t, r.stderr, "is in use")
	assert.FileExists(t, sock)

	// Stopped, the server removes its socket; the commands then open the
	// store themselves.
	stop()
	assert.Contains(t, serverLog.String(), "capf: stopped")
	assert.NoFileExists(t, sock)
	r = mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", "SEP00000000000A", "--op", "install", "--auth", "string", "--generate-string")
	code := strings.TrimPrefix(strings.Split(r.stdout, "\n")[1], "Authentication string: ")
	assert.Regexp(t, `^[0-9]{6}$`, code, r.stdout)
	devices := listDevices(t, store)
	assert.Len(t, devices, 2)
	assert.Equal(t, "Operation Pending", devices["SEP00000000000A"].Status)
	assert.Equal(t, "set", devices["SEP00000000000A"].Pending.AuthString)
	assert.Equal(t, "SEP00000000000A: install cancelled\n", mustRun(t, exitOK, "capf", "cancel", "--store", store, "--device", "SEP00000000000A").stdout)
	assert.Equal(t, "SEP00000000000A: no operation pending\n", mustRun(t, exitOK, "capf", "cancel", "--store", store, "--device", "SEP00000000000A").stdout)
	assert.Len(t, listIssued(t, store), 2)

	// A store another process holds, with no server answering: a clear
	// error after a short wait.
	st, err := capf.OpenBoltStore(filepath.Join(store, storeFileName), nil)
	require.NoError(t, err)
	start := time.Now()
	r = mustRun(t, exitError, "capf", "list", "--store", store)
	assert.Contains(t, r.stderr, "capf.db is in use by another process, but no CAPF server answers on")
	assert.Less(t, time.Since(start), 5*time.Second)
	require.NoError(t, st.Close())

	// Restarted, the server serves the operations scheduled meanwhile.
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", "SEP00000000000B", "--op", "install", "--auth", "null", "--key", "ec384")
	addr, _, stop = startServer(t, store, "--cert", caPEM, "--key", caPEM)
	r = mustRun(t, exitOK, "capf", "enroll", "--server", addr, "--ca", caCrt, "--device", "SEP00000000000B", "-o", filepath.Join(dir, "b.pem"))
	loadLSC(t, filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.pem"), ca, "SEP00000000000B")
	assert.Equal(t, "Upgrade Success", listDevices(t, store)["SEP00000000000B"].Status)
	assert.Len(t, listIssued(t, store), 3)
	stop()

	// No store at all.
	r = mustRun(t, exitError, "capf", "list", "--store", filepath.Join(dir, "nosuch"))
	assert.Contains(t, r.stderr, "no CAPF store in")
	assert.NoDirExists(t, filepath.Join(dir, "nosuch"))
}

// listDevicesRaw returns the output of "capf list --json".
func listDevicesRaw(t *testing.T, store string) string {
	t.Helper()
	return mustRun(t, exitOK, "capf", "list", "--store", store, "--json").stdout
}

func TestCapfUsageErrors(t *testing.T) {
	dir := t.TempDir()
	caPEM, caCrt, _ := testCA(t, dir)
	store := filepath.Join(dir, "store")
	sched := []string{"capf", "schedule", "--store", store, "--device", "SEP001122334455"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"capf", "serve", "--cert", caPEM, "--key", caPEM}, "missing --store"},
		{[]string{"capf", "serve", "--store", store, "--cert", caPEM}, "missing --key"},
		{[]string{"capf", "serve", "--store", store, "--cert", caPEM, "--key", caPEM, "--validity", "0"}, "--validity must be between 1 and 3560"},
		{[]string{"capf", "serve", "--store", store, "--cert", caPEM, "--key", caPEM, "--keygen-timeout", "1s"}, "--keygen-timeout must not be shorter"},
		{[]string{"capf", "serve", "--store", store, "--cert", caPEM, "--key", caPEM, "--mic-intermediates", caCrt}, "--mic-intermediates needs --roots"},
		{append(sched, "--auth", "null"), "missing --op"},
		{append(sched, "--op", "install"), "missing --auth"},
		{append(sched, "--op", "none", "--auth", "null"), `unknown --op "none"`},
		{append(sched, "--op", "install", "--auth", "pin"), `unknown --auth "pin"`},
		{append(sched, "--op", "install", "--auth", "null", "--key", "rsa512"), `unknown --key "rsa512"`},
		{append(sched, "--op", "install", "--auth", "string"), "--auth string needs --string"},
		{append(sched, "--op", "install", "--auth", "null", "--string", "1234"), "--string and --generate-string go with --auth string"},
		{append(sched, "--op", "install", "--auth", "string", "--string", "12a4"), "authentication string must be digits only"},
		{append(sched, "--op", "install", "--auth", "string", "--string", "123"), "4 to 10 digits"},
		{append(sched, "--op", "install", "--auth", "null", "--by", "2001-01-01T00:00:00Z"), "has passed"},
		{append(sched, "--op", "install", "--auth", "null", "--by", "soon"), "neither an RFC 3339 time"},
		{[]string{"capf", "cancel", "--store", store}, "missing --device"},
		{[]string{"capf", "list"}, "missing --store"},
		{[]string{"capf", "enroll", "--server", "127.0.0.1:1", "--device", "SEP001122334455"}, "missing --ca"},
		{[]string{"capf", "enroll", "--server", "127.0.0.1:1", "--device", "SEP001122334455", "--ca", caCrt, "--string", "1234", "--cert", caPEM, "--key", caPEM}, "exclude each other"},
		{[]string{"capf", "enroll", "--server", "127.0.0.1:1", "--device", "SEP001122334455", "--ca", caCrt, "-o", "-"}, "-o - needs --key-out"},
	} {
		r := ucsec(t, "", tt.args...)
		r.check(t, exitError, "", tt.want)
	}
	// None of them created the store.
	assert.NoDirExists(t, store)
	// A CAPF certificate that is no CA, or that an LSC would outlive.
	leaf := filepath.Join(dir, "leaf.pem")
	mustRun(t, exitOK, "cert", "new", "--cn", "leaf", "--key-type", "p256", "-o", leaf)
	r := ucsec(t, "", "capf", "serve", "--store", store, "--cert", leaf, "--key", leaf)
	r.check(t, exitError, "", "must be a CA certificate")
	r = ucsec(t, "", "capf", "serve", "--store", store, "--cert", caPEM, "--key", caPEM, "--validity", "3000")
	r.check(t, exitError, "", "before an LSC of 3000 days would")
	assert.NoDirExists(t, store)

	// A directory whose socket path is too long for a server; the
	// commands still reach the store.
	long := filepath.Join(dir, strings.Repeat("x", maxSocketPath))
	r = ucsec(t, "", "capf", "serve", "--store", long, "--cert", caPEM, "--key", caPEM)
	r.check(t, exitError, "", "too long for a unix socket")
	mustRun(t, exitOK, "capf", "schedule", "--store", long, "--device", "SEP001122334455", "--op", "fetch", "--auth", "null")
	assert.Equal(t, "Operation Pending", listDevices(t, long)["SEP001122334455"].Status)
}

// TestCapfCrash kills a server process with SIGKILL under load and checks,
// after a restart, every acknowledged operation and every certificate a
// client received.
func TestCapfCrash(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL and unix sockets")
	}
	if testing.Short() {
		t.Skip("runs a server process under load for seconds")
	}
	start := time.Now()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	caPEM, _, ca := testCA(t, dir)
	exe, err := os.Executable()
	require.NoError(t, err)

	type child struct {
		cmd    *exec.Cmd
		addr   string
		stderr *testnet.Log
		done   chan struct{} // closed when stderr is drained
	}
	startChild := func() *child {
		t.Helper()
		cmd := exec.Command(exe, "capf", "serve", "--store", store, "--listen", "127.0.0.1:0", "--cert", caPEM, "--key", caPEM)
		cmd.Env = append(os.Environ(), testMainEnv+"=1")
		pipe, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		c := &child{cmd: cmd, stderr: new(testnet.Log), done: make(chan struct{})}
		addrc := make(chan string, 1)
		go func() {
			defer close(c.done)
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				fmt.Fprintln(c.stderr, sc.Text())
				if a, ok := strings.CutPrefix(sc.Text(), listeningPrefix); ok {
					addrc <- a
				}
			}
			io.Copy(io.Discard, pipe)
		}()
		select {
		case c.addr = <-addrc:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the server did not start:\n%s", c.stderr)
		}
		return c
	}
	wait := func(c *child) error {
		t.Helper()
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			c.cmd.Process.Kill()
			t.Errorf("the server did not exit")
		}
		return c.cmd.Wait()
	}

	srv := startChild()
	pins := []*x509.Certificate{ca}

	var (
		mu       sync.Mutex
		acked    = map[string]bool{}   // device: schedule acknowledged
		received = map[string]string{} // serial: device, certificates clients received
		finished = map[string]string{} // device: serial, sessions that ended with reason 1
		killed   atomic.Bool
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				dev := fmt.Sprintf("SEP%04X%08X", w, i)
				sch := &capf.Schedule{Operation: capf.OpInstall, Auth: capf.AuthNull, Key: capf.EC256}
				if i%2 == 1 {
					sch.Auth, sch.AuthString = capf.AuthString, "2468"
				}
				_, err := capfAdmin.ask(ctx, store, &adminRequest{Op: "schedule", Device: dev, Schedule: newScheduleRequest(sch)})
				if err != nil {
					if !killed.Load() {
						t.Errorf("schedule %s: %v", dev, err)
					}
					return
				}
				mu.Lock()
				acked[dev] = true
				mu.Unlock()
				cl := &capf.Client{Device: dev, CAPFCertificates: pins, AuthString: sch.AuthString, Timeout: 10 * time.Second}
				out, err := cl.Enroll(ctx, srv.addr)
				if out != nil && out.Certificate != nil {
					mu.Lock()
					received[capf.SerialHex(out.Certificate.SerialNumber)] = dev
					mu.Unlock()
				}
				if err != nil {
					if !killed.Load() {
						t.Errorf("enroll %s: %v", dev, err)
					}
					return
				}
				if out.Reason == 1 && out.Certificate != nil {
					mu.Lock()
					finished[dev] = capf.SerialHex(out.Certificate.SerialNumber)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	killed.Store(true)
	require.NoError(t, srv.cmd.Process.Kill()) // SIGKILL on Unix
	err = wait(srv)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	ws, ok := ee.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "server ended with %v", err)
	wg.Wait()
	assert.FileExists(t, filepath.Join(store, socketFileName), "the killed server left no socket to clean up")

	// Restarted, the server has everything it acknowledged.
	srv = startChild()
	resp, err := capfAdmin.ask(ctx, store, &adminRequest{Op: "list"})
	require.NoError(t, err)
	devices := map[string]*deviceReport{}
	for _, d := range resp.Devices {
		devices[d.Device] = d
	}
	resp, err = capfAdmin.ask(ctx, store, &adminRequest{Op: "issued"})
	require.NoError(t, err)
	issued := map[string]string{}
	for _, c := range resp.Issued {
		issued[c.Serial] = c.Device
	}
	for dev := range acked {
		assert.Contains(t, devices, dev, "acknowledged schedule lost")
	}
	for serial, dev := range received {
		assert.Equal(t, dev, issued[serial], "certificate %s received by %s is not in the issued log", serial, dev)
	}
	for dev, serial := range finished {
		d := devices[dev]
		if assert.NotNil(t, d, dev) && assert.NotNil(t, d.Last, dev) {
			assert.Equal(t, "Upgrade Success", d.Last.Status, dev)
			assert.Equal(t, serial, d.Last.Serial, dev)
			assert.Equal(t, serial, d.Serial, dev)
		}
	}
	// And it still works.
	mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", "SEPFFFF00000000", "--op", "install", "--auth", "null", "--key", "ec256")
	out, err := (&capf.Client{Device: "SEPFFFF00000000", CAPFCertificates: pins}).Enroll(ctx, srv.addr)
	require.NoError(t, err)
	assert.EqualValues(t, 1, out.Reason)

	// A graceful stop: SIGTERM, exit status 0, no socket left.
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, wait(srv), srv.stderr.String())
	assert.Contains(t, srv.stderr.String(), "capf: stopped")
	assert.NoFileExists(t, filepath.Join(store, socketFileName))

	if len(finished) == 0 {
		t.Errorf("no session finished before the kill: the test checked nothing")
	}
	t.Logf("%d schedules acknowledged, %d certificates received, %d sessions finished before SIGKILL; %d devices, %d certificates issued after restart; %v",
		len(acked), len(received), len(finished), len(devices), len(issued), time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.Logf("server log:\n%s", srv.stderr)
	}
}
