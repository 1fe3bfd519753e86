package tvs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/tlspin"
)

// Client defaults.
const (
	// DefaultPort is the TVS port.
	DefaultPort = "2445"
	// DefaultDeviceName is the DEVICE_NAME a client sends when it is
	// given none, the reference client's.
	DefaultDeviceName = "CP-0000-SEP000000000000"
	// DefaultCacheSize is how many verdicts a client keeps.
	DefaultCacheSize = 256
)

// A Client asks a TVS about certificates, as a phone does, and caches the
// verdicts for their TTL. It implements [ctl.Verifier], so that a
// [ctl.Phone] asks it about a trust-list signer it does not know (rows P4
// and P5 of the phone's decision table). A Client is safe for concurrent
// use; set its fields before the first request.
type Client struct {
	// Servers are the TVS addresses ("host:port"; the port defaults to
	// 2445), tried in order until one answers, as a phone tries the
	// servers of its CallManager group. Required.
	Servers []string
	// TVSCertificates are the TVS certificates the phone trusts: those of
	// the TVS records of its ITL (ctl.File.Certificates with ctl.RoleTVS).
	// A server must present one of them, byte for byte, as its own TLS
	// certificate, within its validity period: it is pinned, as phones
	// pin it, and a certificate that merely chains to one is refused.
	// Required, unless TLSConfig replaces the check (see there).
	TVSCertificates []*x509.Certificate
	// TLSConfig optionally sets other TLS parameters (versions, suites,
	// Time, a session cache); it is cloned. Its RootCAs must be nil: trust
	// comes from TVSCertificates. ServerName, if set, is only sent (SNI);
	// no host name is checked, as phones reach TVS by address. A
	// VerifyConnection of the caller's runs after the pin. With no
	// TVSCertificates, InsecureSkipVerify with a VerifyConnection or
	// VerifyPeerCertificate of the caller's replaces the check entirely:
	// the caller then owns the decision.
	TLSConfig *tls.Config
	// DeviceName is sent with each request, such as
	// "CP-7962-SEP001122334455"; "" means DefaultDeviceName. The reference
	// server answers only names of the form CP-nnnn-SEP followed by 12
	// uppercase hex digits.
	DeviceName string
	// Timeout bounds one exchange with one server. 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// CacheSize bounds the cached verdicts; 0 means DefaultCacheSize, a
	// negative value turns the cache off. Only "valid" verdicts are
	// cached, for their TTL.
	CacheSize int
	// Time returns the current time, for the cache; nil means time.Now.
	Time func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]*Verdict
}

// A Verdict is a TVS answer about one certificate.
type Verdict struct {
	// Valid reports that the service trusts the certificate, in Roles.
	Valid bool
	Roles []ctl.Role
	// TTL is how long the verdict may be kept, and Expires when it ends.
	TTL     time.Duration
	Expires time.Time
	// Server is the address that answered.
	Server string
	// Cached reports that the verdict came from the client's cache.
	Cached bool
}

// Has reports whether the verdict is valid for role. A certificate trusted
// as CCM+TFTP is trusted as CCM and as TFTP.
func (v *Verdict) Has(role ctl.Role) bool {
	if !v.Valid {
		return false
	}
	return slices.Contains(v.Roles, role) ||
		(role == ctl.RoleCCM || role == ctl.RoleTFTP) && slices.Contains(v.Roles, ctl.RoleCCMTFTP)
}

func (c *Client) now() time.Time {
	if c.Time != nil {
		return c.Time()
	}
	return time.Now()
}

// Verify asks about cert: from the cache if a valid verdict is there,
// else from the first server that answers. An error means that no server
// answered; a phone then treats the certificate as untrusted.
func (c *Client) Verify(ctx context.Context, cert *x509.Certificate) (*Verdict, error) {
	if len(c.Servers) == 0 {
		return nil, fmt.Errorf("%w: Client.Servers is empty", ErrInvalid)
	}
	if err := tlspin.Check(c.TLSConfig, c.TVSCertificates, "TVSCertificates"); err != nil {
		return nil, fmt.Errorf("%w: client: %v", ErrInvalid, err)
	}
	if cert == nil || len(cert.Raw) == 0 || len(cert.Raw) > capfwire.MaxPayload-64 {
		return nil, fmt.Errorf("%w: no certificate, or one too long to send", ErrInvalid)
	}
	sum := sha256.Sum256(cert.Raw)
	if v := c.cached(sum); v != nil {
		return v, nil
	}
	var errs []error
	for _, addr := range c.Servers {
		v, err := c.ask(ctx, addr, cert.Raw)
		if err == nil {
			c.keep(sum, v)
			return v, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// VerifyCertificate reports whether the service trusts cert in role,
// implementing [ctl.Verifier].
func (c *Client) VerifyCertificate(ctx context.Context, cert *x509.Certificate, role ctl.Role) (bool, error) {
	v, err := c.Verify(ctx, cert)
	if err != nil {
		return false, err
	}
	return v.Has(role), nil
}

var _ ctl.Verifier = (*Client)(nil)

func (c *Client) cached(sum [32]byte) *Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.cache[sum]
	if !ok {
		return nil
	}
	if !c.now().Before(v.Expires) {
		delete(c.cache, sum)
		return nil
	}
	out := *v
	out.Roles = slices.Clone(v.Roles)
	out.Cached = true
	return &out
}

func (c *Client) keep(sum [32]byte, v *Verdict) {
	size := c.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size < 0 || !v.Valid || v.TTL <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = make(map[[32]byte]*Verdict)
	}
	if len(c.cache) >= size {
		// Drop the expired verdicts, else the one that expires first.
		now := c.now()
		var first [32]byte
		var firstAt time.Time
		for k, e := range c.cache {
			if !now.Before(e.Expires) {
				delete(c.cache, k)
			} else if firstAt.IsZero() || e.Expires.Before(firstAt) {
				first, firstAt = k, e.Expires
			}
		}
		if len(c.cache) >= size {
			delete(c.cache, first)
		}
	}
	kept := *v
	kept.Roles = slices.Clone(v.Roles)
	c.cache[sum] = &kept
}

// ask runs one exchange with one server.
func (c *Client) ask(ctx context.Context, addr string, der []byte) (*Verdict, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, DefaultPort)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	req := &capfwire.TVSFrame{Version: capfwire.TVSVersion, Command: capfwire.TVSCmdVerifyRequest, ID: binary.BigEndian.Uint32(id[:])}
	name := c.DeviceName
	if name == "" {
		name = DefaultDeviceName
	}
	if err := req.AddDeviceName(name); err != nil {
		return nil, fmt.Errorf("%w: device name: %w", ErrInvalid, err)
	}
	if err := req.AddCertificate(der); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	d := tls.Dialer{Config: tlspin.ClientConfig(c.TLSConfig, c.TVSCertificates, "tvs: TVS")}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &serverError{addr, err}
	}
	defer nc.Close()
	conn := nc.(*tls.Conn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := capfwire.WriteTVSFrame(conn, req); err != nil {
		return nil, &serverError{addr, err}
	}
	resp, err := capfwire.ReadTVSFrame(conn)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The connection's deadline is the context's: it passed a
			// moment before the context noticed.
			err = context.DeadlineExceeded
		case errors.Is(err, capfwire.ErrProtocol) || errors.Is(err, capfwire.ErrMalformed):
			err = fmt.Errorf("%w: %w", ErrProtocol, err)
		case errors.Is(err, io.EOF):
			// The reference server closes without a word on a device name
			// it does not like.
			err = fmt.Errorf("closed without answering (the reference TVS does so for a device name not of the form CP-nnnn-SEP and 12 uppercase hex digits): %w", err)
		}
		return nil, &serverError{addr, err}
	}
	v, err := c.verdict(req, resp)
	if err != nil {
		return nil, &serverError{addr, err}
	}
	v.Server = addr
	return v, nil
}

// A serverError is the error of an exchange with one server: "tvs: ",
// the address, then the error.
type serverError struct {
	addr string
	err  error
}

func (e *serverError) Error() string { return "tvs: " + e.addr + ": " + e.err.Error() }

func (e *serverError) Unwrap() error { return e.err }

// verdict reads a response to req.
func (c *Client) verdict(req, resp *capfwire.TVSFrame) (*Verdict, error) {
	switch {
	case resp.Version != capfwire.TVSVersion || resp.Command != capfwire.TVSCmdVerifyResponse:
		return nil, fmt.Errorf("%w: response version %d %v", ErrProtocol, resp.Version, resp.Command)
	case resp.ID != req.ID:
		return nil, fmt.Errorf("%w: response id %d, request id %d", ErrProtocol, resp.ID, req.ID)
	}
	status, err := resp.Status()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if status != capfwire.TVSStatusValid {
		return &Verdict{}, nil // unknown or not trusted
	}
	roles, err := resp.Roles()
	if err != nil || len(roles) == 0 {
		return nil, fmt.Errorf("%w: valid, but no roles", ErrProtocol)
	}
	secs, err := resp.TTL()
	switch {
	case errors.Is(err, capfwire.ErrMissing):
		secs = 0 // valid, but not to be cached
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	v := &Verdict{Valid: true, TTL: min(time.Duration(secs)*time.Second, MaxTTL)}
	for _, r := range roles {
		v.Roles = append(v.Roles, ctl.Role(r))
	}
	v.Expires = c.now().Add(v.TTL)
	return v, nil
}
