package tvs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/netserve"
)

var (
	// ErrProtocol reports a peer that broke the TVS protocol: not a TVS
	// frame, another version or command, or a response that does not
	// answer the request.
	ErrProtocol = errors.New("tvs: protocol error")
	// ErrServerClosed is returned by [Server.Serve] after its context is
	// done and every connection has ended.
	ErrServerClosed = errors.New("tvs: server closed")
)

// Default limits of a [Server].
const (
	// DefaultTTL is the TTL of entries that set none: a day, as the
	// reference server has it.
	DefaultTTL              = 24 * time.Hour
	DefaultFirstByteTimeout = 5 * time.Second
	DefaultTimeout          = 10 * time.Second
	DefaultMaxConns         = 1024
	DefaultMaxConnsPerHost  = 16
	DefaultShutdownTimeout  = 5 * time.Second
)

// A Server is a Trust Verification Service: phones connect on TCP port
// 2445 over TLS, send the certificate they met, and learn whether the
// cluster trusts it and in which roles. Set its fields, then call
// [Server.Serve]. A Server must not be changed or copied after Serve is
// called; one Server may serve several listeners.
type Server struct {
	// Store holds the certificates the service vouches for. Required.
	Store Store
	// TLSConfig carries the TVS certificate (Certificates or
	// GetCertificate), which phones check against the TVS records of their
	// ITL; it is cloned. Required. TLS 1.2 is the minimum, unless
	// LegacyTLS is set. Serve refuses a certificate in Certificates whose
	// KeyUsage extension lacks digitalSignature, without which no TLS
	// client that checks it accepts the handshake; one without a KeyUsage
	// extension is not restricted.
	TLSConfig *tls.Config
	// LegacyTLS allows TLS 1.0 and 1.1 with the CBC and RSA key exchange
	// cipher suites, which 7900-series phones need, as capf.Server's
	// option of the same name. Off by default: TLS 1.2 or later only.
	// As there, Serve logs a warning when an RSA certificate's KeyUsage
	// lacks keyEncipherment, which RSA key exchange calls for.
	LegacyTLS bool
	// DefaultTTL is the TTL of entries that set none. 0 means DefaultTTL.
	DefaultTTL time.Duration
	// Timeout bounds the whole exchange on a connection: TLS handshake,
	// request and response. 0 means DefaultTimeout.
	Timeout time.Duration
	// FirstByteTimeout bounds the wait for the first byte of the TLS
	// handshake, so that a connection that sends nothing gives its place
	// back early; phones send their ClientHello at once. 0 means
	// DefaultFirstByteTimeout; a value beyond Timeout is cut to it.
	FirstByteTimeout time.Duration
	// MaxConns bounds concurrent connections; beyond it, new ones are
	// closed without a word. 0 means DefaultMaxConns.
	MaxConns int
	// MaxConnsPerHost bounds concurrent connections from one host, so
	// that one host cannot take every place of MaxConns: beyond it, its
	// new connections are closed without a word. A host is an IPv4
	// address, or an IPv6 /64 prefix (one subnet, in which a host picks
	// addresses at will); connections that come from no IP address (a
	// Unix socket) are bounded by MaxConns alone. 0 means
	// DefaultMaxConnsPerHost; a negative value means no per-host bound.
	// Raise it for many phones behind one NAT address.
	MaxConnsPerHost int
	// ShutdownTimeout is how long Serve lets running exchanges finish
	// after its context is done. 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives one record per request and errors; nil is silent.
	Logger *slog.Logger

	initOnce sync.Once
	initErr  error
	tls      *tls.Config
	log      *slog.Logger
	conns    *netserve.Limit
}

func (s *Server) init() error {
	s.initOnce.Do(func() { s.initErr = s.setup() })
	return s.initErr
}

func (s *Server) setup() error {
	switch {
	case s.Store == nil:
		return fmt.Errorf("%w: Server.Store is nil", ErrInvalid)
	case s.TLSConfig == nil || len(s.TLSConfig.Certificates) == 0 && s.TLSConfig.GetCertificate == nil && s.TLSConfig.GetConfigForClient == nil:
		return fmt.Errorf("%w: Server.TLSConfig holds no TVS certificate", ErrInvalid)
	case s.DefaultTTL < 0 || s.Timeout < 0 || s.FirstByteTimeout < 0 || s.MaxConns < 0 || s.ShutdownTimeout < 0:
		return fmt.Errorf("%w: negative Server limit", ErrInvalid)
	case s.DefaultTTL != 0 && (s.DefaultTTL < time.Second || s.DefaultTTL > MaxTTL || s.DefaultTTL%time.Second != 0):
		return fmt.Errorf("%w: Server.DefaultTTL %v is not a whole number of seconds from 1s to %v", ErrInvalid, s.DefaultTTL, MaxTTL)
	}
	noKeyEncipherment, err := netserve.CheckKeyUsage(s.TLSConfig, s.LegacyTLS)
	if err != nil {
		return fmt.Errorf("%w: Server.TLSConfig: %w", ErrInvalid, err)
	}
	s.tls = netserve.ServerTLS(s.TLSConfig, s.LegacyTLS, netserve.LegacyCipherSuites)
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range noKeyEncipherment {
		s.log.Warn("tvs: with LegacyTLS, RSA key exchange uses a certificate whose key usage lacks keyEncipherment; clients that check it refuse those suites",
			"subject", c.Subject.String())
	}
	s.conns = netserve.NewLimit(cmp.Or(s.MaxConns, DefaultMaxConns), cmp.Or(s.MaxConnsPerHost, DefaultMaxConnsPerHost))
	return nil
}

// Serve accepts connections on l and answers one request on each, until
// ctx is done. It then closes l, gives running exchanges ShutdownTimeout
// to finish, closes the rest, and returns [ErrServerClosed]. It returns
// earlier with the error of a failed Accept (temporary ones are retried)
// or of an invalid configuration. Serve does not close the Store.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := s.init(); err != nil {
		return err
	}
	err := netserve.Serve(ctx, l, netserve.Config{Limit: s.conns, ShutdownTimeout: cmp.Or(s.ShutdownTimeout, DefaultShutdownTimeout), Log: s.log, Prefix: "tvs:"},
		func(ctx context.Context, c net.Conn) { s.serveConn(ctx, c) })
	if err != nil {
		return fmt.Errorf("tvs: accept: %w", err)
	}
	return ErrServerClosed
}

// ServeConn answers one request on c, a freshly accepted TCP connection,
// and closes it. It is for callers with their own accept loop; the
// MaxConns and MaxConnsPerHost limits and graceful shutdown are then
// theirs.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	if err := s.init(); err != nil {
		c.Close()
		return err
	}
	return s.serveConn(ctx, c)
}

func (s *Server) serveConn(ctx context.Context, raw net.Conn) error {
	start := time.Now()
	conn, done, err := netserve.Handshake(ctx, raw, s.tls, cmp.Or(s.FirstByteTimeout, DefaultFirstByteTimeout), cmp.Or(s.Timeout, DefaultTimeout))
	defer done()
	log := s.log.With("remote", raw.RemoteAddr().String())
	if err != nil {
		err = fmt.Errorf("tvs: TLS handshake: %w", err)
		log.Warn("tvs: request failed", "err", err)
		return err
	}
	return s.exchange(ctx, conn, log, start)
}

// exchange reads one request from rw, the connection once its TLS
// handshake is done, and writes the answer, if the request gets one. It
// logs the outcome with log, start being when the connection was taken.
func (s *Server) exchange(ctx context.Context, rw io.ReadWriter, log *slog.Logger, start time.Time) error {
	req, err := capfwire.ReadTVSFrame(rw)
	if err != nil {
		if errors.Is(err, capfwire.ErrProtocol) || errors.Is(err, capfwire.ErrMalformed) {
			err = fmt.Errorf("%w: %w", ErrProtocol, err)
		} else {
			// The peer closed, or the deadline passed: no protocol broken.
			err = fmt.Errorf("tvs: reading the request: %w", err)
		}
		log.Warn("tvs: request failed", "err", err)
		return err
	}
	// The store lookup is part of the exchange: it too ends by Timeout.
	actx, cancel := context.WithDeadline(ctx, start.Add(cmp.Or(s.Timeout, DefaultTimeout)))
	defer cancel()
	resp, attrs, err := s.answer(actx, req)
	log = log.With(attrs...)
	if err != nil {
		log.Warn("tvs: request failed", "err", err)
		return err
	}
	if err := capfwire.WriteTVSFrame(rw, resp); err != nil {
		err = fmt.Errorf("tvs: writing the response: %w", err)
		log.Warn("tvs: request failed", "err", err)
		return err
	}
	status, _ := resp.Status()
	log.Info("tvs: request answered", "status", status, "duration", time.Since(start))
	return nil
}

// answer returns the response to a request, or an error if the request
// gets none: another protocol or command (the connection is then closed
// without an answer), or a store failure (so that the phone treats the
// service as unreachable rather than the certificate as unknown).
func (s *Server) answer(ctx context.Context, req *capfwire.TVSFrame) (*capfwire.TVSFrame, []any, error) {
	attrs := []any{"id", req.ID}
	if req.Version != capfwire.TVSVersion || req.Command != capfwire.TVSCmdVerifyRequest {
		return nil, attrs, fmt.Errorf("%w: version %d %v", ErrProtocol, req.Version, req.Command)
	}
	if name, err := req.DeviceName(); err == nil {
		attrs = append(attrs, "device", name)
	}
	resp := &capfwire.TVSFrame{Version: capfwire.TVSVersion, Command: capfwire.TVSCmdVerifyResponse, ID: req.ID}
	der, err := req.Certificate()
	if err == nil && repeated(req.Elements, capfwire.TVSTagCertificate) {
		err = errors.New("more than one CERTIFICATE element")
	}
	if err != nil {
		// No certificate, or no single one, to vouch for: unknown, as the
		// reference's protocol has no other answer.
		resp.AddUint8(capfwire.TVSTagStatus, capfwire.TVSStatusInvalid)
		return resp, append(attrs, "err", err.Error()), nil
	}
	sum := sha256.Sum256(der)
	attrs = append(attrs, "sha256", hex.EncodeToString(sum[:]))
	e, err := Lookup(ctx, s.Store, sum)
	switch {
	case errors.Is(err, ErrNotFound):
		resp.AddUint8(capfwire.TVSTagStatus, capfwire.TVSStatusInvalid)
		return resp, attrs, nil
	case err == nil && !bytes.Equal(e.Certificate.Raw, der):
		// Lookup checks the hash the record names, not its certificate's
		// (see recordVersion): this compares it with the certificate
		// asked about, which costs less than hashing it.
		err = fmt.Errorf("%w: record %x holds another certificate", ErrCorrupt, sum)
		fallthrough
	case err != nil:
		return nil, attrs, fmt.Errorf("tvs: store: %w", err)
	}
	roles := make([]byte, len(e.Roles))
	for i, r := range e.Roles {
		roles[i] = byte(r)
	}
	ttl := cmp.Or(e.TTL, cmp.Or(s.DefaultTTL, DefaultTTL))
	resp.AddUint8(capfwire.TVSTagStatus, capfwire.TVSStatusValid)
	resp.Add(capfwire.TVSTagRoles, roles)
	resp.AddUint32(capfwire.TVSTagTTL, uint32(ttl/time.Second))
	return resp, append(attrs, "subject", e.Certificate.Subject.String()), nil
}

// repeated reports whether es holds more than one element with the tag.
func repeated(es capfwire.Elements, tag capfwire.Tag) bool {
	n := 0
	for _, e := range es {
		if e.Tag == tag {
			n++
		}
	}
	return n > 1
}
