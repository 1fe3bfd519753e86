// Package netserve is the accept loop of the module's TCP servers (CAPF,
// TVS): a bound on concurrent connections, retry of temporary accept
// errors, and a graceful shutdown with a deadline.
package netserve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A Limit bounds the connections served at once, across every listener
// that shares it.
type Limit struct {
	slots    chan struct{}
	lastWarn atomic.Int64 // when a refused connection was last logged (Unix ns)
}

// NewLimit returns a Limit of n connections; n must be positive.
func NewLimit(n int) *Limit { return &Limit{slots: make(chan struct{}, n)} }

// Config is what Serve needs beyond the listener.
type Config struct {
	// Limit bounds concurrent connections; beyond it a new connection is
	// closed at once, without a word. Required.
	Limit *Limit
	// ShutdownTimeout is how long running connections may go on after
	// ctx is done before their context is cancelled and they are closed.
	ShutdownTimeout time.Duration
	// Log receives warnings (temporary accept errors, refused
	// connections, at most one a second). Required; use a discarding
	// logger for silence.
	Log *slog.Logger
	// Prefix starts every log message, as "capf:".
	Prefix string
}

// Serve accepts connections on l and runs handle on each in its own
// goroutine until ctx is done or Accept fails for good. It then closes l,
// lets running connections finish for cfg.ShutdownTimeout, cancels the
// context they were given and closes them, and returns once every handler
// has returned: nil after ctx is done, else the Accept error.
//
// A handler's context is not cancelled by ctx, only when the grace period
// runs out, so that a connection in progress may finish. Serve closes
// each connection after its handler returns.
func Serve(ctx context.Context, l net.Listener, cfg Config, handle func(ctx context.Context, c net.Conn)) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open = map[net.Conn]struct{}{}
		done = make(chan struct{})
	)
	hctx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	var closeOnce sync.Once
	closeListener := func() { closeOnce.Do(func() { l.Close() }) }
	go func() {
		select {
		case <-ctx.Done():
			closeListener()
		case <-done:
		}
	}()

	var acceptErr error
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of file descriptors or buffers: wait and retry, as
			// net/http does, rather than end the service.
			var te interface{ Temporary() bool }
			var ne net.Error
			if errors.As(err, &te) && te.Temporary() || errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				cfg.Log.Warn(cfg.Prefix+" accept failed, retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				continue
			}
			acceptErr = err
			break
		}
		backoff = 0
		select {
		case cfg.Limit.slots <- struct{}{}:
		default:
			// Logged at most once a second, so that a flood cannot fill
			// the log.
			if now := time.Now().UnixNano(); now-cfg.Limit.lastWarn.Load() > int64(time.Second) {
				cfg.Limit.lastWarn.Store(now)
				cfg.Log.Warn(cfg.Prefix+" too many connections, connection closed", "remote", c.RemoteAddr().String(), "max", cap(cfg.Limit.slots))
			}
			c.Close()
			continue
		}
		mu.Lock()
		open[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer func() {
				c.Close()
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				<-cfg.Limit.slots
				wg.Done()
			}()
			handle(hctx, c)
		}()
	}
	close(done)
	closeListener()

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	t := time.NewTimer(cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		abort()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		<-finished
	}
	return acceptErr
}

// LegacyCipherSuites are the TLS 1.0–1.2 suites 7900-series phones can
// use, after Go's default ones.
var LegacyCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// ServerTLS returns a clone of cfg for a server with the protocol floor
// applied: TLS 1.2 or later, or with legacy, TLS 1.0 and later with the
// given cipher suites. The floor also applies to the configurations
// cfg.GetConfigForClient returns.
func ServerTLS(cfg *tls.Config, legacy bool, legacySuites []uint16) *tls.Config {
	floor := func(c *tls.Config) *tls.Config {
		if legacy {
			c.MinVersion = tls.VersionTLS10
			c.CipherSuites = legacySuites
		} else if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		return c
	}
	c := floor(cfg.Clone())
	if get := c.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			cc, err := get(hello)
			if cc != nil {
				cc = floor(cc.Clone())
			}
			return cc, err
		}
	}
	return c
}

// Handshake runs the server side of a TLS handshake on raw, a freshly
// accepted connection, within timeout. The connection is closed when ctx
// is done. The deadline set for the handshake stays on the connection; the
// caller sets its own for what follows. The caller must call done when it
// has finished with the connection, even after an error.
func Handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, timeout time.Duration) (conn *tls.Conn, done func(), err error) {
	conn = tls.Server(raw, cfg)
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	done = func() { stop(); conn.Close() }
	conn.SetDeadline(time.Now().Add(timeout))
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		return conn, done, err
	}
	return conn, done, nil
}
