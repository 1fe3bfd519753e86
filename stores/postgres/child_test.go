package postgres

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// A child is a CAPF server in a child process: this test binary,
// re-executed with childEnv naming a file with its childConfig. It prints
// its address, serves until its standard input closes or it is killed,
// and logs to its standard error.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	log   *testnet.Log
}

// childEnv names the configuration file of a child.
const childEnv = "UCSEC_PGSTORE_CHILD"

// A childConfig is what a child serves with.
type childConfig struct {
	Store        string // "postgres" or "bolt"
	URL          string // of the PostgreSQL database
	Path         string // of the bbolt file
	CAPF         string // PEM file of the CAPF certificate and key
	AutoSchedule bool   // schedule an RSA-2048 install for unknown devices
	Log          bool   // log sessions to standard error
	CPUProfile   string // file to write the server's CPU profile to
}

// startChild starts a child server with cfg, which ends with the test.
func startChild(t testing.TB, cfg childConfig) *child {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "child.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{log: &testnet.Log{}}
	c.cmd = exec.Command(exe)
	c.cmd.Env = append(os.Environ(), childEnv+"="+path)
	c.cmd.Stderr = c.log
	setParentDeathSignal(c.cmd)
	c.stdin, _ = c.cmd.StdinPipe()
	stdout, _ := c.cmd.StdoutPipe()
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stdin.Close()
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(testnet.Patience(t)):
			c.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("child server's log:\n%s", c.log.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child server: %v\n%s", err, c.log.String())
	}
	c.addr = strings.TrimSpace(line)
	return c
}

// childMain runs a child server with the configuration in the file at
// path.
func childMain(path string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	b, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	var cfg childConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fail(err)
	}
	pemData, err := os.ReadFile(cfg.CAPF)
	if err != nil {
		return fail(err)
	}
	pair, err := tls.X509KeyPair(pemData, pemData)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	var st capf.Store
	switch cfg.Store {
	case "postgres":
		octx, ocancel := context.WithTimeout(ctx, time.Minute)
		st, err = OpenCAPFStore(octx, cfg.URL, nil)
		ocancel()
	case "bolt":
		st, err = capf.OpenBoltStore(cfg.Path, nil)
	default:
		err = fmt.Errorf("unknown store %q", cfg.Store)
	}
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	if cfg.AutoSchedule {
		st = autoSchedule{st}
	}
	srv := newServer(st, pair.Leaf, pair.PrivateKey.(crypto.Signer))
	if cfg.Log {
		srv.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println(l.Addr().String())
	if err := srv.Serve(ctx, l); !errors.Is(err, capf.ErrServerClosed) {
		return fail(err)
	}
	return 0
}

// newServer returns a CAPF server on st with a local CA, for phones that
// all come from 127.0.0.1.
func newServer(st capf.Store, ca *x509.Certificate, key crypto.Signer) *capf.Server {
	return &capf.Server{
		Store:           st,
		Issuer:          &capf.LocalCA{Certificate: ca, Signer: key},
		TLSConfig:       &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ca, key)}},
		MaxConnsPerHost: -1,
	}
}

// autoSchedule is a Store that schedules an RSA-2048 install for unknown
// devices, as the benchmark of package capf does.
type autoSchedule struct{ capf.Store }

func (a autoSchedule) Get(ctx context.Context, name string) ([]byte, error) {
	data, err := a.Store.Get(ctx, name)
	if err == nil && len(data) == 0 {
		sch := capf.Schedule{Operation: capf.OpInstall, Key: capf.RSA2048}
		if err := capf.ScheduleOperation(ctx, a.Store, name, sch, time.Now()); err != nil {
			return nil, err
		}
		return a.Store.Get(ctx, name)
	}
	return data, err
}

// serve runs srv on a loopback listener until the test ends.
func serve(t testing.TB, srv *capf.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, capf.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}
