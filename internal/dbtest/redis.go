package dbtest

import (
	"bufio"
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
	"syscall"
	"time"
)

// RedisOptions configures [StartRedis]. The zero value (or nil) asks for
// the defaults.
type RedisOptions struct {
	// Password is the password of the default user (requirepass); a
	// random one if empty, unless NoPassword is set.
	Password string

	// NoPassword runs the server without a password.
	NoPassword bool

	// Binary is the path of redis-server; redis-server on the PATH, or
	// /usr/bin/redis-server, if empty.
	Binary string
}

// A Redis is a throw-away Redis server without persistence, made by
// [StartRedis] or [NewRedis]. Its methods may be called from several
// goroutines.
type Redis struct {
	mu       sync.Mutex
	bin      string
	dir      string // the instance's directory: configuration, socket, log; removed by Stop
	logPath  string
	log      *os.File
	port     int
	password string
	choose   func() (int, error) // chooses a free port
	proc     *proc
	stopped  bool
}

// StartRedis starts redis-server without persistence (save "",
// appendonly no) in a new directory in dir (in the temporary directory if
// dir is empty), on a free port of 127.0.0.1 and on a Unix socket in
// that directory, and waits until it answers PING, at most until ctx ends
// (or two minutes if ctx has no deadline). Stop stops the server and
// removes the directory.
//
// If Redis is not installed, the error is a [*NotInstalledError]
// (errors.Is(err, ErrNotInstalled)). An error of the server itself ends
// with the end of its log.
func StartRedis(ctx context.Context, dir string, opts *RedisOptions) (*Redis, error) {
	return startRedis(ctx, dir, opts, freePort)
}

// startRedis is StartRedis with the choice of port.
func startRedis(ctx context.Context, dir string, opts *RedisOptions, choosePort func() (int, error)) (*Redis, error) {
	if !supported {
		return nil, errUnsupported
	}
	if opts == nil {
		opts = &RedisOptions{}
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	r := &Redis{choose: choosePort}
	if !opts.NoPassword {
		r.password = orDefault(opts.Password, randomPassword())
	}
	if strings.ContainsAny(r.password, "\x00\r\n") {
		return nil, errors.New("dbtest: a Redis password may not contain NUL, CR or LF")
	}
	var err error
	if r.bin, err = redisBinary(opts.Binary); err != nil {
		return nil, err
	}
	if r.dir, err = makeInstanceDir(dir, "dbtest-redis-", nil); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			r.Stop()
		}
	}()
	if n := len(r.SocketPath()); n > maxSocketPath {
		return nil, fmt.Errorf("dbtest: %s is too long a path for a Unix socket (%d bytes, at most %d): use a shorter directory", r.SocketPath(), n, maxSocketPath)
	}
	r.logPath = filepath.Join(r.dir, "redis.log")
	if r.log, err = os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("dbtest: %w", err)
	}
	if err := r.start(ctx, true); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// redisBinary finds redis-server.
func redisBinary(path string) (string, error) {
	if path == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			if _, err2 := os.Stat("/usr/bin/redis-server"); err2 != nil {
				return "", &NotInstalledError{Engine: "Redis", Missing: "redis-server", Package: "redis-server", Err: err}
			}
			p = "/usr/bin/redis-server"
		}
		return p, nil
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		if err == nil {
			err = errors.New(path + " is a directory")
		}
		return "", &NotInstalledError{Engine: "Redis", Missing: path, Package: "redis-server", Err: err}
	}
	return path, nil
}

// quoteConf quotes a value for redis.conf.
func quoteConf(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// writeConf writes the server's configuration, redis.conf, mode 0600 (it
// holds the password).
func (r *Redis) writeConf() (string, error) {
	conf := []string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(r.port),
		"unixsocket " + quoteConf(r.SocketPath()),
		"unixsocketperm 700",
		"daemonize no",
		`logfile ""`,
		"dir " + quoteConf(r.dir),
		`save ""`,
		"appendonly no",
	}
	if r.password != "" {
		conf = append(conf, "requirepass "+quoteConf(r.password))
	}
	path := filepath.Join(r.dir, "redis.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dbtest: %w", err)
	}
	return path, nil
}

// start starts the server and waits until it answers PING; with
// choosePort, on a new free port (another one if that is taken by the
// time the server binds it), else on r.port. The caller holds r.mu (or
// has not shared r yet).
func (r *Redis) start(ctx context.Context, choosePort bool) error {
	for attempt := 1; ; attempt++ {
		if choosePort {
			port, err := r.choose()
			if err != nil {
				return err
			}
			r.port = port
		}
		conf, err := r.writeConf()
		if err != nil {
			return err
		}
		mark := logSize(r.logPath)
		cmd := exec.Command(r.bin, conf)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.dir, cleanEnv("LC_ALL=C"), r.log, r.log
		p, err := spawn(cmd, nil)
		if err != nil {
			return fmt.Errorf("dbtest: starting redis-server: %w", err)
		}
		// Over the socket, which no other process can be listening on
		// (another may have the port), and which redis-server makes after
		// it has bound the port.
		err = poll(ctx, p.done, func() (bool, error) {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return r.ping(pctx, "unix", r.SocketPath()) == nil, nil
		})
		if err == nil {
			r.proc = p
			return nil
		}
		p.halt(context.Background())
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w (%v)", err, p.err)
		}
		inUse := strings.Contains(logTail(r.logPath, mark), "Address already in use")
		if inUse && choosePort && attempt < 8 {
			continue
		}
		if inUse {
			err = fmt.Errorf("%w: port %d is taken", err, r.port)
		}
		return withLog(fmt.Errorf("dbtest: redis-server did not start on %s: %w", r.Addr(), err), r.logPath, mark)
	}
}

// Ping sends AUTH (if the server has a password) and PING over TCP, and
// reports an error unless the answers are +OK and +PONG.
func (r *Redis) Ping(ctx context.Context) error {
	return r.ping(ctx, "tcp", r.Addr())
}

// PingSocket is Ping over the Unix socket.
func (r *Redis) PingSocket(ctx context.Context) error {
	return r.ping(ctx, "unix", r.SocketPath())
}

func (r *Redis) ping(ctx context.Context, network, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var cmds [][]string
	if r.password != "" {
		cmds = append(cmds, []string{"AUTH", r.password})
	}
	cmds = append(cmds, []string{"PING"})
	want := []string{"+OK", "+PONG"}[2-len(cmds):]
	for _, cmd := range cmds {
		if _, err := c.Write(respCommand(cmd...)); err != nil {
			return err
		}
	}
	br := bufio.NewReader(c)
	for _, w := range want {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimRight(line, "\r\n"); got != w {
			return fmt.Errorf("dbtest: redis answered %q, not %s", got, w)
		}
	}
	return nil
}

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// Addr returns the server's TCP address, 127.0.0.1:PORT; the port stays
// the same across restarts.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// SocketPath returns the path of the server's Unix socket.
func (r *Redis) SocketPath() string { return filepath.Join(r.dir, "redis.sock") }

// Password returns the server's password, or "" if it has none.
func (r *Redis) Password() string { return r.password }

// URL returns the server's URL over TCP, in the form go-redis takes:
// redis://default:PASSWORD@127.0.0.1:PORT/0 (default is the user that
// requirepass sets the password of).
func (r *Redis) URL() string {
	return (&url.URL{Scheme: "redis", User: r.userinfo(), Host: r.Addr(), Path: "/0"}).String()
}

// SocketURL returns the server's URL over the Unix socket, in the form
// go-redis takes: unix://default:PASSWORD@/PATH?db=0.
func (r *Redis) SocketURL() string {
	return (&url.URL{Scheme: "unix", User: r.userinfo(), Path: r.SocketPath(), RawQuery: "db=0"}).String()
}

func (r *Redis) userinfo() *url.Userinfo {
	if r.password == "" {
		return nil
	}
	return url.UserPassword("default", r.password)
}

// LogFile returns the path of the server's log.
func (r *Redis) LogFile() string { return r.logPath }

// Running reports whether the server runs.
func (r *Redis) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc != nil && !r.proc.exited()
}

// Shutdown shuts the server down, as an outage: SIGTERM (it closes its
// connections and exits, saving nothing), then SIGKILL after 30 seconds
// or when ctx ends. Start starts it again, empty. Shutdown of a server
// that is down does nothing.
func (r *Redis) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return nil
	}
	return r.proc.halt(ctx, step{syscall.SIGTERM, 30 * time.Second})
}

// Kill kills the server with SIGKILL, as a crash.
func (r *Redis) Kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return nil
	}
	return r.proc.halt(context.Background())
}

// Start starts the server again after Shutdown or Kill, on the same port,
// socket and password, without the data it had, and waits until it
// answers PING, at most until ctx ends (or two minutes if ctx has no
// deadline). It fails if the port has been taken in the meantime.
func (r *Redis) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("dbtest: Start after Stop")
	}
	if r.proc != nil && !r.proc.exited() {
		return errors.New("dbtest: the Redis server runs already")
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	return r.start(ctx, false)
}

// Restart shuts the server down and starts it again (Shutdown, Start): it
// comes back empty.
func (r *Redis) Restart(ctx context.Context) error {
	if err := r.Shutdown(ctx); err != nil {
		return err
	}
	return r.Start(ctx)
}

// Stop stops the server for good (SIGTERM, then SIGKILL after 10
// seconds) and removes its directory. Stop of a stopped server does
// nothing.
func (r *Redis) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	var err error
	if r.proc != nil {
		err = r.proc.halt(context.Background(), step{syscall.SIGTERM, stopGrace})
	}
	if r.log != nil {
		r.log.Close()
	}
	if r.dir != "" {
		err = errors.Join(err, os.RemoveAll(r.dir))
	}
	return err
}
