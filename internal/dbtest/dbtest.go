package dbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// ErrNotInstalled is what the error of a start reports, through
// errors.Is, when the engine is not installed. The error itself is a
// [*NotInstalledError] that names the Debian package to install.
var ErrNotInstalled = errors.New("dbtest: engine not installed")

// A NotInstalledError says that a program (or account) an engine needs is
// missing, and which Debian package provides it.
type NotInstalledError struct {
	Engine  string // "PostgreSQL" or "Redis"
	Missing string // what is missing: "initdb", "redis-server", "the postgres user", ...
	Package string // the Debian package that provides it: "postgresql", "redis-server"
	Err     error  // the lookup's error, if any
}

func (e *NotInstalledError) Error() string {
	s := fmt.Sprintf("dbtest: %s is not installed (%s is missing): install it with apt-get install %s", e.Engine, e.Missing, e.Package)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrNotInstalled.
func (e *NotInstalledError) Is(target error) bool { return target == ErrNotInstalled }

func (e *NotInstalledError) Unwrap() error { return e.Err }

// defaultWait bounds a start, or a wait for an engine, when the context
// has no deadline.
const defaultWait = 2 * time.Minute

// Bounds of the steps of Stop, which takes no context.
const (
	stopGrace = 10 * time.Second // for the engine's own quick shutdown
	goneWait  = 10 * time.Second // for the processes to go after SIGKILL
)

// maxSocketPath is the longest Unix socket path this package uses: Linux
// allows 107 bytes, macOS and the BSDs 103.
const maxSocketPath = 103

// withDefaultWait returns ctx, given a deadline defaultWait from now if it
// has none.
func withDefaultWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultWait)
}

// randomPassword returns 26 base32 characters from crypto/rand (A-Z and
// 2-7, safe in URLs and configuration files).
func randomPassword() string { return rand.Text() }

// orDefault returns s, or def if s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// cleanEnv returns the environment without libpq's PG* variables, which
// would change where psql connects and how, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// An account is the user a server runs as when this process is root.
type account struct {
	name     string
	uid, gid uint32
}

// runAsAccount returns the named account if this process runs as root,
// and nil otherwise.
func runAsAccount(engine, name, pkg string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, &NotInstalledError{Engine: engine, Missing: "the " + name + " user (to run it as, since this process runs as root)", Package: pkg, Err: err}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("dbtest: user %s: %w", name, err)
	}
	return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
}

// makeInstanceDir makes a new directory for an instance in dir (or in the
// temporary directory if dir is empty), owned by a if a is not nil.
func makeInstanceDir(dir, prefix string, a *account) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	if a != nil {
		if err := reachable(dir, a); err != nil {
			return "", err
		}
	}
	inst, err := os.MkdirTemp(dir, prefix)
	if err != nil {
		return "", fmt.Errorf("dbtest: %w", err)
	}
	if a != nil {
		if err := os.Chown(inst, int(a.uid), int(a.gid)); err != nil {
			os.RemoveAll(inst)
			return "", fmt.Errorf("dbtest: %w", err)
		}
	}
	return inst, nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
// It prefers a port below the kernel's ephemeral range, so that the
// outgoing connections of a busy test binary do not take it while an
// instance is down for a fault test; the kernel's choice is the fallback.
func freePort() (int, error) {
	if lo := ephemeralLow(); lo > 20000+1000 {
		for range 50 {
			port := 20000 + mrand.IntN(lo-20000)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dbtest: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the end of the log file at path after offset from:
// its last 30 lines, at most 4 KiB.
func logTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	start := max(from, fi.Size()-4096)
	b, _ := io.ReadAll(io.NewSectionReader(f, start, fi.Size()-start))
	b = bytes.TrimRight(b, "\n")
	if lines := bytes.Split(b, []byte("\n")); len(lines) > 30 {
		b = bytes.Join(lines[len(lines)-30:], []byte("\n"))
	}
	return string(b)
}

// logSize returns the size of the log file at path, a mark for logTail.
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// withLog adds the log tail to err.
func withLog(err error, path string, from int64) error {
	tail := logTail(path, from)
	if tail == "" {
		return fmt.Errorf("%w (log %s is empty)", err, path)
	}
	return fmt.Errorf("%w\n--- end of %s ---\n%s\n---", err, path, tail)
}

// poll calls ready until it reports true, an error, or ctx ends, with
// waits growing from 5ms to 100ms between calls; dead, if it is closed,
// ends the wait too, with errExited.
func poll(ctx context.Context, dead <-chan struct{}, ready func() (bool, error)) error {
	wait := 5 * time.Millisecond
	for {
		ok, err := ready()
		if ok || err != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-dead:
			t.Stop()
			return errExited
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

var errExited = errors.New("the server exited")

// errUnsupported is the error of a start where the servers cannot run.
var errUnsupported = fmt.Errorf("dbtest: throw-away servers need a Unix system: %w", errors.ErrUnsupported)
