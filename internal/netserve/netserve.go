// Package netserve is the accept loop of the module's TCP servers (CAPF,
// TVS): bounds on concurrent connections, in all and from one host,
// retry of temporary accept errors, a graceful shutdown with a deadline,
// and the server side of the TLS handshake with a short wait for its
// first byte.
package netserve

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// IPv6PrefixBits is the prefix length under which IPv6 sources count as
// one host for the per-host bound: a /64 is one IPv6 subnet (RFC 4291
// §2.5.1, RFC 7421), within which a host picks addresses at will (RFC
// 8981 temporary addresses), so counting single IPv6 addresses would
// bound nothing. A site given a shorter prefix can still use many /64s.
const IPv6PrefixBits = 64

// A Limit bounds the connections served at once, in all and from any one
// host, across every listener that shares it.
type Limit struct {
	slots   chan struct{}
	perHost int // 0: no per-host bound

	mu    sync.Mutex
	hosts map[netip.Prefix]int // connections served per source

	lastWarn, lastHostWarn atomic.Int64 // when a refused connection was last logged (Unix ns)
}

// NewLimit returns a Limit of n connections in all, and perHost from any
// one host (see [HostKey]); n must be positive, and perHost 0 or less
// means no per-host bound.
func NewLimit(n, perHost int) *Limit {
	return &Limit{slots: make(chan struct{}, n), perHost: max(perHost, 0), hosts: map[netip.Prefix]int{}}
}

// HostKey returns the unit the per-host bound counts connections from
// addr in: the IPv4 address (also when written as an IPv4-mapped IPv6
// address), or the IPv6 /64 prefix (IPv6PrefixBits) without zone. ok is
// false when addr holds no IP address (a Unix socket): such connections
// are bounded in all only.
func HostKey(addr net.Addr) (key netip.Prefix, ok bool) {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case nil:
		return netip.Prefix{}, false
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return netip.Prefix{}, false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	switch {
	case !ip.IsValid():
		return netip.Prefix{}, false
	case ip.Is6():
		bits = IPv6PrefixBits
	}
	key, err := ip.Prefix(bits)
	return key, err == nil
}

var (
	errTooMany        = errors.New("too many connections")
	errTooManyForHost = errors.New("too many connections from one host")
)

// take reserves a slot for a connection from remote, or says why there is
// none. A connection that got one gives it back with give(key, counted).
func (l *Limit) take(remote net.Addr) (key netip.Prefix, counted bool, err error) {
	if l.perHost > 0 {
		if key, counted = HostKey(remote); counted {
			l.mu.Lock()
			n := l.hosts[key]
			if n >= l.perHost {
				l.mu.Unlock()
				return key, false, errTooManyForHost
			}
			l.hosts[key] = n + 1
			l.mu.Unlock()
		}
	}
	select {
	case l.slots <- struct{}{}:
		return key, counted, nil
	default:
		l.giveHost(key, counted)
		return key, false, errTooMany
	}
}

func (l *Limit) give(key netip.Prefix, counted bool) {
	<-l.slots
	l.giveHost(key, counted)
}

func (l *Limit) giveHost(key netip.Prefix, counted bool) {
	if !counted {
		return
	}
	l.mu.Lock()
	if n := l.hosts[key] - 1; n > 0 {
		l.hosts[key] = n
	} else {
		delete(l.hosts, key)
	}
	l.mu.Unlock()
}

// hostString is key as logged: an IPv4 address alone, an IPv6 prefix.
func hostString(key netip.Prefix) string {
	if key.Addr().Is4() {
		return key.Addr().String()
	}
	return key.String()
}

// warn reports whether a refusal may be logged now: at most once a second
// per kind, so that a flood cannot fill the log.
func warn(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev > int64(time.Second) && last.CompareAndSwap(prev, now)
}

// Config is what Serve needs beyond the listener.
type Config struct {
	// Limit bounds concurrent connections, in all and per host; beyond
	// it a new connection is closed at once, without a word. Required.
	Limit *Limit
	// ShutdownTimeout is how long running connections may go on after
	// ctx is done before their context is cancelled and they are closed.
	ShutdownTimeout time.Duration
	// Log receives warnings (temporary accept errors, refused
	// connections, at most one a second for each limit). Required; use a
	// discarding logger for silence.
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
		key, counted, err := cfg.Limit.take(c.RemoteAddr())
		switch {
		case errors.Is(err, errTooMany):
			if warn(&cfg.Limit.lastWarn) {
				cfg.Log.Warn(cfg.Prefix+" too many connections, connection closed", "remote", c.RemoteAddr().String(), "max", cap(cfg.Limit.slots))
			}
		case err != nil:
			if warn(&cfg.Limit.lastHostWarn) {
				cfg.Log.Warn(cfg.Prefix+" too many connections from one host, connection closed", "remote", c.RemoteAddr().String(),
					"host", hostString(key), "max_per_host", cfg.Limit.perHost)
			}
		}
		if err != nil {
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
				cfg.Limit.give(key, counted)
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
// accepted connection. The client's first byte must arrive within
// firstByte (cut to timeout; 0 means timeout), the whole handshake within timeout, both
// counted from the call; a peer that sends nothing is thus dropped early,
// while a slow one still has timeout to finish. The connection is closed
// when ctx is done. The deadline set for the handshake stays on the
// connection; the caller sets its own for what follows. The caller must
// call done when it has finished with the connection, even after an
// error.
func Handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, firstByte, timeout time.Duration) (conn *tls.Conn, done func(), err error) {
	start := time.Now()
	fc := &firstByteConn{Conn: raw}
	conn = tls.Server(fc, cfg)
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	done = func() { stop(); conn.Close() }
	wait := timeout
	if firstByte > 0 && firstByte < timeout {
		wait = firstByte
	}
	raw.SetDeadline(start.Add(wait))
	if n, err := raw.Read(fc.b[:]); n == 0 {
		if err == nil {
			err = errors.New("empty read") // not done by net.Conn
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return conn, done, fmt.Errorf("nothing received within %v: %w", wait, err)
		}
		return conn, done, err
	}
	fc.pending = true
	conn.SetDeadline(start.Add(timeout))
	hctx, cancel := context.WithDeadline(ctx, start.Add(timeout))
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		return conn, done, err
	}
	return conn, done, nil
}

// firstByteConn is a connection whose first byte Handshake has read
// already: it returns that byte before reading on.
type firstByteConn struct {
	net.Conn
	b       [1]byte
	pending bool
}

func (c *firstByteConn) Read(p []byte) (int, error) {
	if c.pending && len(p) > 0 {
		p[0], c.pending = c.b[0], false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// oidKeyUsage is the key usage extension (RFC 5280 §4.2.1.3).
var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

// CheckKeyUsage checks the certificates in cfg.Certificates against what
// a TLS server does with their keys. Every handshake but one with RSA key
// exchange signs with the key (ECDHE in TLS 1.0–1.2, RFC 5246 §7.4.2 and
// RFC 8422 §5.3; TLS 1.3, RFC 8446 §4.4.2.2), so a certificate whose key
// usage extension lacks digitalSignature is an error: clients that check
// the extension, phones among them, refuse it. A certificate without the
// extension is not restricted. With legacy, the RSA key exchange suites
// decrypt with an RSA key, which calls for keyEncipherment (RFC 5246
// §7.4.2); the RSA certificates whose extension lacks it are returned
// for the caller to warn about, since which clients check it is unknown.
// Certificates chosen by GetCertificate or GetConfigForClient are not
// known in advance and are not checked.
func CheckKeyUsage(cfg *tls.Config, legacy bool) (noKeyEncipherment []*x509.Certificate, err error) {
	for i, c := range cfg.Certificates {
		leaf := c.Leaf
		if leaf == nil {
			if len(c.Certificate) == 0 {
				continue // nothing to check: the handshake fails
			}
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certificate %d: %w", i+1, err)
			}
		}
		if !slices.ContainsFunc(leaf.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidKeyUsage) }) {
			continue
		}
		if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			return nil, fmt.Errorf("certificate %q: its key usage lacks digitalSignature, which a TLS server certificate needs (RFC 5280 §4.2.1.3, RFC 8446 §4.4.2.2)", leaf.Subject.String())
		}
		if _, isRSA := leaf.PublicKey.(*rsa.PublicKey); legacy && isRSA && leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
			noKeyEncipherment = append(noKeyEncipherment, leaf)
		}
	}
	return noKeyEncipherment, nil
}
