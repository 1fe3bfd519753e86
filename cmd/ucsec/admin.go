package main

// The admin socket of a server command, and the way the other commands
// reach a store.
//
// A server whose --store is a directory (capf serve, tvs serve) holds
// the store's bbolt file locked while it runs, and listens on a Unix
// socket in that directory, mode 0600, for the commands that change or
// read the store (capf schedule, list and cancel; tvs list, add and
// remove). Each connection carries one exchange, each one line of JSON:
// a request of the server's kind, then an adminAnswer. The server reads
// the request within adminReadTimeout and at most maxAdminRequest bytes,
// runs it on its store, and answers only after the store call returned,
// so an acknowledged change is on disk. With no server running, the
// commands open the file themselves. A store in PostgreSQL has no
// socket: the commands use the database directly, as the servers do.
//
// One adminService holds what differs between the kinds of server: the
// file names, how to open the store, and the operations.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ucsec/ucsec/stores/postgres"
)

const (
	maxAdminRequest  = 16 << 20  // bytes in a request line (certificates to add)
	maxAdminResponse = 256 << 20 // bytes in an answer line (a list of every device)
	adminReadTimeout = 5 * time.Second
	adminTimeout     = 60 * time.Second // the store call and the answer; the client's whole exchange
	// maxSocketPath is the longest socket path every system takes
	// (sun_path is 104 bytes on the BSDs and macOS, 108 on Linux).
	maxSocketPath = 103
	// directOpenTimeout is how long a command waits for the lock on a
	// store file that no server answers for.
	directOpenTimeout = 500 * time.Millisecond
)

// An adminService is the admin socket of one kind of server, with
// requests of type Q answered by results of type R, and the commands'
// access to its store, of type S.
type adminService[S io.Closer, Q, R any] struct {
	group string // the command group, "capf" or "tvs": the prefix of log records
	name  string // the server's name in messages, "CAPF" or "TVS"

	storeFile  string // the bbolt file in a --store directory
	socketFile string // the admin socket in a --store directory
	// openBolt opens the bbolt file at path, waiting at most timeout for
	// its lock (0: the store package's default); locked is the error it
	// wraps when another process holds the lock.
	openBolt func(path string, timeout time.Duration) (S, error)
	locked   error
	// openPostgres opens the store in a PostgreSQL database.
	openPostgres func(ctx context.Context, connString string, opts *postgres.Options) (S, error)
	// firstUse says how a store is made, for the error of a command that
	// finds none in its directory: "schedule an operation".
	firstUse string

	// handle carries out req on st.
	handle func(ctx context.Context, st S, req *Q, now time.Time) (*R, error)
	// describe returns what the server logs of a request it carried out.
	describe func(req *Q) []any
	// kinds are the errors that an answer names, so that the error a
	// client returns wraps them as the server's did. One is "invalid":
	// a request the server cannot read.
	kinds []adminErrorKind
}

// An adminErrorKind names an error in answers.
type adminErrorKind struct {
	name string
	err  error
}

// An adminAnswer is the answer to a request.
type adminAnswer[R any] struct {
	OK bool `json:"ok"`
	// Error and Kind say why the request failed: Kind names the error
	// it wraps (see adminService.kinds), if any.
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Result is what the request gave.
	Result *R `json:"result,omitempty"`
}

// kindOf returns the name of the error of a.kinds that err wraps, or "".
func (a *adminService[S, Q, R]) kindOf(err error) string {
	for _, k := range a.kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return ""
}

// adminError is a failed request, as the answer reported it.
type adminError struct {
	msg string
	err error // the error Kind named, or nil
}

func (e *adminError) Error() string { return e.msg }
func (e *adminError) Unwrap() error { return e.err }

// result returns the answer's result, or its error if the request
// failed.
func (a *adminService[S, Q, R]) result(ans *adminAnswer[R]) (*R, error) {
	if !ans.OK {
		e := &adminError{msg: cmp.Or(ans.Error, "request failed")}
		for _, k := range a.kinds {
			if k.name == ans.Kind {
				e.err = k.err
			}
		}
		return nil, e
	}
	if ans.Result == nil {
		return new(R), nil
	}
	return ans.Result, nil
}

// The server side.

// openServerStore opens the store of a server command at l. In a
// directory (created with mode 0700) it opens the bbolt file, which the
// server holds locked, and listens on the admin socket; in PostgreSQL
// it opens the database, with no socket (admin is nil). log receives the
// store's records.
func (a *adminService[S, Q, R]) openServerStore(l storeLocation, log *slog.Logger) (st S, admin *net.UnixListener, err error) {
	if l.url != "" {
		st, err = openPostgres(l, log, a.openPostgres)
		return st, nil, err
	}
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return st, nil, &fileError{l.dir, withoutPath(err)}
	}
	if fi, err := os.Stat(l.dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn(a.group+": the store directory is open to other users", "dir", l.dir, "mode", fi.Mode().Perm().String())
	}
	st, err = a.openBolt(filepath.Join(l.dir, a.storeFile), 0)
	if errors.Is(err, a.locked) {
		return st, nil, fmt.Errorf("%s is in use: is another %s server running on it?", l.dir, a.name)
	} else if err != nil {
		return st, nil, err
	}
	// Holding the lock, this is the only server of the directory: a
	// socket left there is stale.
	admin, err = listenAdmin(filepath.Join(l.dir, a.socketFile))
	if err != nil {
		st.Close()
		return st, nil, err
	}
	return st, admin, nil
}

// listenAdmin listens on the socket at path, replacing a stale one. The
// caller must hold the store's lock: it proves that no other server uses
// the socket.
func listenAdmin(path string) (*net.UnixListener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%s is too long for a unix socket (%d bytes, at most %d): use a shorter --store path", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The directory is 0700 already; the socket is private too.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return l, nil
}

// serveAdmin answers requests on l with st, in a goroutine, until ctx is
// done, then closes l (which removes the socket). The function it
// returns waits until the requests under way are answered; the store may
// be closed after that. A nil l (a store in PostgreSQL) serves nothing.
func (a *adminService[S, Q, R]) serveAdmin(ctx context.Context, l *net.UnixListener, st S, log *slog.Logger) (wait func()) {
	done := make(chan struct{})
	if l == nil {
		close(done)
		return func() { <-done }
	}
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		stop := context.AfterFunc(ctx, func() { l.Close() })
		defer stop()
		for {
			c, err := l.Accept()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
					log.Error(a.group+": admin socket", "err", err)
				}
				break
			}
			wg.Go(func() { a.answer(ctx, c, st, log) })
		}
		l.Close()
		wg.Wait()
	}()
	return func() { <-done }
}

// answer answers the one request on c.
func (a *adminService[S, Q, R]) answer(ctx context.Context, c net.Conn, st S, log *slog.Logger) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(adminReadTimeout))
	var ans *adminAnswer[R]
	req, err := readAdminLine[Q](c, maxAdminRequest)
	if err != nil {
		ans = &adminAnswer[R]{Error: a.group + ": admin request: " + err.Error(), Kind: "invalid"}
	} else {
		// A request under way finishes even if the server is stopping:
		// the store is closed only after it.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
		r, err := a.handle(sctx, st, req, time.Now())
		cancel()
		if err != nil {
			ans = &adminAnswer[R]{Error: err.Error(), Kind: a.kindOf(err)}
		} else {
			ans = &adminAnswer[R]{OK: true, Result: r}
		}
	}
	if ans.OK {
		log.Info(a.group+": admin request", a.describe(req)...)
	} else {
		log.Warn(a.group+": admin request failed", "err", ans.Error)
	}
	c.SetWriteDeadline(time.Now().Add(adminTimeout))
	if err := writeAdminLine(c, ans); err != nil {
		log.Warn(a.group+": admin answer", "err", err)
	}
}

// readAdminLine reads one line of JSON of at most limit bytes from r and
// decodes it strictly.
func readAdminLine[T any](r io.Reader, limit int64) (*T, error) {
	line, err := bufio.NewReader(io.LimitReader(r, limit+1)).ReadBytes('\n')
	switch {
	case int64(len(line)) > limit:
		return nil, fmt.Errorf("larger than %s", sizeText(limit))
	case err == io.EOF && len(line) == 0:
		return nil, errors.New("connection closed without a line")
	case err == io.EOF:
		return nil, errors.New("line cut short")
	case err != nil:
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	v := new(T)
	if err := dec.Decode(v); err != nil {
		return nil, err
	}
	return v, nil
}

func writeAdminLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// The client side.

// errNoServer reports that no server listens on the admin socket.
var errNoServer = errors.New("no server is running")

// ask sends req to the server listening in the store directory dir. It
// returns an error wrapping errNoServer if there is no socket or nobody
// listens on it.
func (a *adminService[S, Q, R]) ask(ctx context.Context, dir string, req *Q) (*R, error) {
	path := filepath.Join(dir, a.socketFile)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%w: %s is too long for a unix socket", errNoServer, path)
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %w", errNoServer, err)
		}
		return nil, fmt.Errorf("%s: %w", path, withoutPath(err))
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := writeAdminLine(c, req); err != nil {
		return nil, fmt.Errorf("%s server on %s: %w", a.name, path, err)
	}
	ans, err := readAdminLine[adminAnswer[R]](c, maxAdminResponse)
	if err != nil {
		// The request may or may not have been carried out.
		return nil, fmt.Errorf("%s server on %s gave no answer: %w", a.name, path, err)
	}
	return a.result(ans)
}

// call carries out req for the store at l. In a directory, it goes
// through the server's socket if a server is running, else to the store
// file itself; create allows creating the directory and the file. In
// PostgreSQL, it goes to the database, whose tables are created if
// needed.
func (a *adminService[S, Q, R]) call(ctx context.Context, l storeLocation, req *Q, create bool) (*R, error) {
	if l.url != "" {
		st, err := openPostgres(l, nil, a.openPostgres)
		if err != nil {
			return nil, err
		}
		return a.run(ctx, st, req)
	}
	dir := l.dir
	r, err := a.ask(ctx, dir, req)
	if !errors.Is(err, errNoServer) {
		return r, err
	}
	r, err = a.direct(ctx, dir, req, create)
	if !errors.Is(err, a.locked) {
		return r, err
	}
	// A server may have been starting: it takes the lock first, then
	// opens the socket.
	r, err = a.ask(ctx, dir, req)
	if errors.Is(err, errNoServer) {
		return nil, fmt.Errorf("%s is in use by another process, but no %s server answers on %s",
			filepath.Join(dir, a.storeFile), a.name, filepath.Join(dir, a.socketFile))
	}
	return r, err
}

// direct carries out req on the store file in dir, with no server
// running.
func (a *adminService[S, Q, R]) direct(ctx context.Context, dir string, req *Q, create bool) (*R, error) {
	path := filepath.Join(dir, a.storeFile)
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, &fileError{dir, withoutPath(err)}
		}
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no %s store in %s (%s or run 'ucsec %s serve --store %s' first)", a.name, dir, a.firstUse, a.group, dir)
	}
	st, err := a.openBolt(path, directOpenTimeout)
	if err != nil {
		return nil, err
	}
	return a.run(ctx, st, req)
}

// run carries out req on st, which it closes.
func (a *adminService[S, Q, R]) run(ctx context.Context, st S, req *Q) (*R, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	r, err := a.handle(ctx, st, req, time.Now())
	if cerr := st.Close(); cerr != nil && err == nil {
		return nil, cerr
	}
	return r, err
}
