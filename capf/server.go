package capf

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ucsec/ucsec/internal/netserve"
)

// Default limits of a [Server].
const (
	DefaultFirstByteTimeout = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultAuthTimeout      = 30 * time.Second
	DefaultKeyGenTimeout    = 180 * time.Second
	DefaultIssueTimeout     = 60 * time.Second
	DefaultMaxAuthFailures  = 5
	DefaultMaxConns         = 1024
	DefaultMaxConnsPerHost  = 16
	DefaultShutdownTimeout  = 30 * time.Second
)

// A Server is a CAPF server: it authenticates devices that connect on TCP
// port 3804 over TLS and carries out their scheduled operations. Set its
// fields, then call [Server.Serve]. A Server must not be changed or copied
// after Serve is called; one Server may serve several listeners.
type Server struct {
	// Store keeps operations, device records and issued certificates.
	// Several Servers, in one process or many, may share one store; see
	// [Store] for what makes that safe. Required.
	Store Store
	// Issuer signs LSCs for install operations. Required.
	Issuer Issuer
	// TLSConfig carries the CAPF certificate (Certificates or
	// GetCertificate); it is cloned. The CAPF certificate must be a CA
	// (BasicConstraints CA:TRUE, pathlen:0, KeyUsage keyCertSign and
	// digitalSignature): phones from CUCM 14SU2 on refuse it otherwise.
	// Serve refuses a certificate in Certificates whose KeyUsage extension
	// lacks digitalSignature, without which no TLS client that checks it
	// accepts the handshake; one without a KeyUsage extension is not
	// restricted. Required.
	TLSConfig *tls.Config
	// LegacyTLS allows TLS 1.0 and 1.1 with the CBC and RSA key exchange
	// cipher suites, which 7900-series phones need. Off by default: TLS
	// 1.2 or later only. RSA key exchange uses an RSA key for encryption,
	// which calls for keyEncipherment in its certificate's KeyUsage (RFC
	// 5246 §7.4.2): Serve logs a warning when it is missing, since whether
	// phones check it is unknown.
	LegacyTLS bool

	// LSCRoots verifies certificates presented in the certificate
	// authentication modes as LSCs, with LSCIntermediates for chains
	// through issuing CAs (of an ExternalCA). Nil means the certificate of
	// Issuer when it is a *LocalCA, else no LSC is accepted.
	LSCRoots, LSCIntermediates *x509.CertPool
	// MICRoots and MICIntermediates verify manufacturing certificates
	// (Cisco Manufacturing CA and its roots, supplied by the operator).
	// With MICRoots nil no MIC is accepted.
	MICRoots, MICIntermediates *x509.CertPool
	// AllowExpiredMIC accepts a MIC that has expired (many 7900-series
	// MICs have): its chain is then checked as of the MIC's last valid
	// second, so the intermediates and roots must have been valid then.
	AllowExpiredMIC bool
	// SUDIRoots and SUDIIntermediates, when set, verify the SUDI
	// certificate a phone may add; its signatures, over the session id, are
	// always checked when present. Nothing ties a SUDI to the device name:
	// its subject holds the phone's serial number, not its MAC address.
	SUDIRoots, SUDIIntermediates *x509.CertPool
	// RequireSUDI refuses certificate authentication without SUDI data. It
	// needs SUDIRoots.
	RequireSUDI bool
	// MatchName binds an authenticating certificate to the device name.
	// Nil means the default: an LSC's subject CN must equal the device
	// name; a MIC's CN must equal it or end in "-" followed by it (MICs
	// are named like CP-7962G-SEP001122334455).
	MatchName func(cert *x509.Certificate, device string, mic bool) bool

	// MaxAuthFailures is how many wrong authentication strings lock an
	// operation (it then fails with FailLocked and must be scheduled
	// again). 0 means DefaultMaxAuthFailures.
	MaxAuthFailures int
	// FirstByteTimeout bounds the wait for the first byte of the TLS
	// handshake, so that a connection that sends nothing gives its place
	// back early; phones send their ClientHello at once. 0 means
	// DefaultFirstByteTimeout; a value beyond HandshakeTimeout is cut to
	// it.
	FirstByteTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake, counted from the
	// connection's arrival, first byte included. 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// AuthTimeout bounds each wait for a device frame other than the key,
	// and each write. 0 means DefaultAuthTimeout.
	AuthTimeout time.Duration
	// KeyGenTimeout bounds the wait for the device's new public key: a
	// 7962 takes a minute for RSA-2048. 0 means DefaultKeyGenTimeout; it
	// must not be shorter than AuthTimeout.
	KeyGenTimeout time.Duration
	// IssueTimeout bounds the Issuer's work on one certificate (an
	// ExternalCA's round trip). 0 means DefaultIssueTimeout.
	IssueTimeout time.Duration
	// MaxConns bounds concurrent sessions; beyond it, new connections are
	// closed without a word, like the reference server. 0 means
	// DefaultMaxConns.
	MaxConns int
	// MaxConnsPerHost bounds concurrent sessions from one host, so that
	// one host cannot take every place of MaxConns: beyond it, its new
	// connections are closed without a word. A host is an IPv4 address,
	// or an IPv6 /64 prefix (one subnet, in which a host picks addresses
	// at will); connections that come from no IP address (a Unix socket)
	// are bounded by MaxConns alone. 0 means DefaultMaxConnsPerHost; a
	// negative value means no per-host bound. Raise it for many phones
	// behind one NAT address: each enrollment holds a place for up to a
	// few minutes.
	MaxConnsPerHost int
	// ShutdownTimeout is how long Serve lets running sessions finish
	// after its context is done before closing them. 0 means
	// DefaultShutdownTimeout. Serve still waits for a Store or Issuer call
	// in progress; IssueTimeout bounds the latter.
	ShutdownTimeout time.Duration

	// Logger receives one record per session and errors; nil is silent.
	Logger *slog.Logger
	// Time returns the current time; nil means time.Now.
	Time func() time.Time
	// Rand is the source for session ids and for the Server's identity
	// in the claims it makes on operations, which must differ from that of
	// every other Server on the same Store; nil means crypto/rand.
	Rand io.Reader

	initOnce sync.Once
	initErr  error
	tls      *tls.Config
	lscRoots *x509.CertPool
	log      *slog.Logger
	instance [8]byte // this Server's identity in claims
	nextID   atomic.Uint32
	conns    *netserve.Limit // MaxConns
}

func (s *Server) init() error {
	s.initOnce.Do(func() { s.initErr = s.setup() })
	return s.initErr
}

func (s *Server) setup() error {
	switch {
	case s.Store == nil:
		return fmt.Errorf("%w: Server.Store is nil", ErrInvalid)
	case s.Issuer == nil:
		return fmt.Errorf("%w: Server.Issuer is nil", ErrInvalid)
	case s.TLSConfig == nil || len(s.TLSConfig.Certificates) == 0 && s.TLSConfig.GetCertificate == nil && s.TLSConfig.GetConfigForClient == nil:
		return fmt.Errorf("%w: Server.TLSConfig holds no CAPF certificate", ErrInvalid)
	case s.FirstByteTimeout < 0 || s.HandshakeTimeout < 0 || s.AuthTimeout < 0 || s.KeyGenTimeout < 0 || s.IssueTimeout < 0 ||
		s.MaxAuthFailures < 0 || s.MaxConns < 0 || s.ShutdownTimeout < 0:
		return fmt.Errorf("%w: negative Server limit", ErrInvalid)
	case s.RequireSUDI && s.SUDIRoots == nil:
		return fmt.Errorf("%w: Server.RequireSUDI needs SUDIRoots (a self-made SUDI proves nothing)", ErrInvalid)
	case s.KeyGenTimeout != 0 && s.KeyGenTimeout < s.authTimeout():
		return fmt.Errorf("%w: Server.KeyGenTimeout %v is shorter than AuthTimeout %v", ErrInvalid, s.KeyGenTimeout, s.authTimeout())
	}
	noKeyEncipherment, err := netserve.CheckKeyUsage(s.TLSConfig, s.LegacyTLS)
	if err != nil {
		return fmt.Errorf("%w: Server.TLSConfig: %w", ErrInvalid, err)
	}
	s.tls = netserve.ServerTLS(s.TLSConfig, s.LegacyTLS, netserve.LegacyCipherSuites)
	s.lscRoots = s.LSCRoots
	if s.lscRoots == nil {
		if ca, ok := s.Issuer.(*LocalCA); ok && ca.Certificate != nil {
			s.lscRoots = x509.NewCertPool()
			s.lscRoots.AddCert(ca.Certificate)
		}
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range noKeyEncipherment {
		s.log.Warn("capf: with LegacyTLS, RSA key exchange uses a certificate whose key usage lacks keyEncipherment; clients that check it refuse those suites",
			"subject", c.Subject.String())
	}
	var seed [4]byte
	if _, err := io.ReadFull(s.rand(), seed[:]); err != nil {
		return fmt.Errorf("capf: session id seed: %w", err)
	}
	if _, err := io.ReadFull(s.rand(), s.instance[:]); err != nil {
		return fmt.Errorf("capf: server identity: %w", err)
	}
	s.nextID.Store(binary.BigEndian.Uint32(seed[:]))
	n := s.MaxConns
	if n == 0 {
		n = DefaultMaxConns
	}
	perHost := s.MaxConnsPerHost
	if perHost == 0 {
		perHost = DefaultMaxConnsPerHost
	}
	s.conns = netserve.NewLimit(n, perHost)
	return nil
}

func (s *Server) now() time.Time {
	if s.Time != nil {
		return s.Time()
	}
	return time.Now()
}

func (s *Server) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

func (s *Server) firstByteTimeout() time.Duration {
	if s.FirstByteTimeout > 0 {
		return s.FirstByteTimeout
	}
	return DefaultFirstByteTimeout
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

func (s *Server) issueTimeout() time.Duration {
	if s.IssueTimeout > 0 {
		return s.IssueTimeout
	}
	return DefaultIssueTimeout
}

func (s *Server) authTimeout() time.Duration {
	if s.AuthTimeout > 0 {
		return s.AuthTimeout
	}
	return DefaultAuthTimeout
}

func (s *Server) keyGenTimeout() time.Duration {
	if s.KeyGenTimeout > 0 {
		return s.KeyGenTimeout
	}
	return DefaultKeyGenTimeout
}

func (s *Server) maxAuthFailures() int {
	if s.MaxAuthFailures > 0 {
		return s.MaxAuthFailures
	}
	return DefaultMaxAuthFailures
}

// sessionID returns the next session id: a counter from a random start,
// unique for 2^32 sessions, never 0.
func (s *Server) sessionID() uint32 {
	for {
		if id := s.nextID.Add(1); id != 0 {
			return id
		}
	}
}

// Serve accepts connections on l and runs one CAPF session on each, until
// ctx is done. It then closes l, gives running sessions ShutdownTimeout to
// finish, closes the rest, and returns [ErrServerClosed] once every
// session has ended. It returns earlier with the error of a failed Accept
// (temporary ones, such as running out of file descriptors, are retried)
// or of an invalid configuration. Serve does not close the Store.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := s.init(); err != nil {
		return err
	}
	grace := s.ShutdownTimeout
	if grace == 0 {
		grace = DefaultShutdownTimeout
	}
	err := netserve.Serve(ctx, l, netserve.Config{Limit: s.conns, ShutdownTimeout: grace, Log: s.log, Prefix: "capf:"},
		func(ctx context.Context, c net.Conn) { s.serveConn(ctx, c) })
	if err != nil {
		return fmt.Errorf("capf: accept: %w", err)
	}
	return ErrServerClosed
}

// ServeConn runs one CAPF session on c, a freshly accepted TCP connection,
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
