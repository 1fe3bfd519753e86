package main

// Connection tracking: the registrar's listeners wrap each connection
// they accept, to run its TLS handshake, record the phone certificate it
// verified, and forget that and the registrations made over the
// connection when it closes.

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// A trackListener records, for each connection the registrar accepts, the
// phone certificate its TLS handshake verified, and forgets it (and the
// registrations made over the connection) when sipgo closes it. sipgo
// hands a request to its handler with only the connection's remote
// address: this is how the registrar learns who sent it.
type trackListener struct {
	net.Listener
	r   *registrar
	tls bool
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, r: l.r, transport: "TCP"}
	if l.tls {
		tc.transport = "TLS"
	}
	l.r.mu.Lock()
	l.r.conns[tc] = struct{}{}
	l.r.mu.Unlock()
	return tc, nil
}

// handshakeTimeout bounds a phone's TLS handshake with the registrar.
const handshakeTimeout = 10 * time.Second

type trackedConn struct {
	net.Conn
	r         *registrar
	transport string

	once  sync.Once
	hsErr error
}

// Read runs the TLS handshake first (sipgo's reading goroutine calls it
// before anything else), and records the verified phone certificate.
func (c *trackedConn) Read(b []byte) (int, error) {
	c.once.Do(c.handshake)
	if c.hsErr != nil {
		return 0, c.hsErr
	}
	return c.Conn.Read(b)
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.once.Do(c.handshake)
	if c.hsErr != nil {
		return 0, c.hsErr
	}
	return c.Conn.Write(b)
}

func (c *trackedConn) handshake() {
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.r.ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.r.tlsRefused.Add(1)
		c.r.log.Info("TLS handshake refused", "source", c.RemoteAddr().String(), "error", err)
		c.hsErr = err
		return
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 { // RequireAndVerifyClientCert makes this impossible
		c.hsErr = errors.New("registrar: no client certificate")
		return
	}
	c.r.mu.Lock()
	c.r.peers[c.RemoteAddr().String()] = certs[0]
	c.r.mu.Unlock()
}

func (c *trackedConn) Close() error {
	c.r.connClosed(c, c.transport, c.RemoteAddr().String())
	return c.Conn.Close()
}

// abort closes the connection as a crashed server's: the TCP connection
// under the TLS one is reset (SO_LINGER 0), with no close_notify.
func (c *trackedConn) abort() {
	raw := c.Conn
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

// connClosed forgets what was bound to a closed connection: its
// certificate and the registrations made over it (the phone must register
// again, as a CUCM TLS phone does after losing its connection).
func (r *registrar) connClosed(c *trackedConn, transport, source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
	if transport == "TLS" {
		delete(r.peers, source)
	}
	if reg := r.bySource[transport+" "+source]; reg != nil {
		r.unbindLocked(reg)
	}
}
