package capf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/tlspin"
)

// DefaultClientTimeout bounds the TLS handshake and every read and write of
// a [Client] whose Timeout is zero. The client generates its key itself, so
// it never waits long for the server.
const DefaultClientTimeout = 30 * time.Second

// clientDefaultPort is the CAPF port [Client.Enroll] uses when the address
// has none.
const clientDefaultPort = "3804"

// A Client plays the phone's side of CAPF sessions: it authenticates to a
// CAPF server and carries out whatever operation the server has scheduled
// for it (make a key and store the issued LSC, send its certificate, or
// delete it). Set its fields, then call [Client.Enroll] or [Client.Run].
//
// A Client is not changed by a session; it must not be changed while one
// runs, and one Client may run several sessions, also at once.
//
// The client sends only the elements the reference server knows (REASON,
// VERSION, PASSWORD, DEVICE_NAME and, in the certificate modes,
// CERTIFICATE, SIGNED_DATA, SUDI_DATA, SHA2_SIGNED_DATA; PUBLIC_KEY in a
// key response), at most one REQUEST_IN_PROGRESS (the reference server
// aborts on a second), and each frame in a single write (the reference
// server notes that a phone stalls on a split frame). It ignores elements
// of server frames that it does not use.
type Client struct {
	// Device is the device name, such as SEP001122334455: 1 to 64 bytes
	// of printable ASCII without spaces. Required.
	Device string

	// CAPFCertificates are the CAPF certificates the phone trusts: those
	// of the CAPF records of its CTL or ITL (ctl.File.Certificates with
	// ctl.RoleCAPF). The server must present one of them, byte for byte,
	// as its own TLS certificate, within its validity period: it is
	// pinned, as phones pin it. A certificate that merely chains to one is
	// refused, because the CAPF certificate is the CA that signs every
	// phone's LSC and an LSC is a TLS server certificate too, so any
	// enrolled phone could otherwise pose as the CAPF, collect other
	// phones' authentication strings and delete their certificates.
	// Required, unless TLSConfig replaces the check (see there).
	CAPFCertificates []*x509.Certificate

	// LSCIssuers are the certificates allowed to sign the LSC the server
	// installs; the client refuses (REASON 7) a certificate that none of
	// them signed. Nil means the CAPF certificate the server presented,
	// as with CUCM's own CA; set it when the CAPF issues through an
	// external CA.
	LSCIssuers []*x509.Certificate

	// TLSConfig optionally sets other TLS parameters (versions, suites,
	// Time, a session cache); it is cloned. Its RootCAs must be nil: trust
	// comes from CAPFCertificates. ServerName, if set, is only sent (SNI);
	// no host name is checked, as phones reach the CAPF by address. A
	// VerifyConnection of the caller's runs after the pin. With no
	// CAPFCertificates, InsecureSkipVerify with a VerifyConnection or
	// VerifyPeerCertificate of the caller's replaces the check entirely:
	// the caller then owns the decision.
	TLSConfig *tls.Config

	// AuthString is the authentication string the user would type, sent
	// as PASSWORD. "" sends the empty string (a lone NUL byte), as the
	// reference client does in the null-string and certificate modes.
	AuthString string

	// Certificate and Key select the certificate authentication modes:
	// the existing LSC (or MIC) and its private key, an RSA or ECDSA key.
	// The client sends the certificate with signatures over the device
	// name and the certificate, as the reference client does. Both nil
	// for the string and null-string modes. An RSA Key must sign a bare digest
	// (crypto.Hash(0)), as *rsa.PrivateKey does.
	Certificate *x509.Certificate
	Key         crypto.Signer
	// MIC marks Certificate as a manufacturer-installed certificate: its
	// CERTIFICATE wrapper carries type 2 (MIC) instead of 1 (LSC).
	MIC bool

	// SUDI and SUDIKey optionally add SUDI_DATA to a certificate-mode
	// AUTH_RESPONSE: the SUDI certificate and signatures by SUDIKey over
	// the session id and the certificate. Like the reference client
	// (usecallmanagernz capfc), only RSA is supported. They require
	// Certificate.
	SUDI    *x509.Certificate
	SUDIKey crypto.Signer

	// Current is the certificate the device holds (its LSC): sent when
	// the server fetches it and reported deleted when the server deletes
	// it. Nil answers both with REASON 7 ("no certificate").
	Current *x509.Certificate

	// Version is the VERSION sent in AUTH_RESPONSE. 0 means 3, what the
	// reference client and phones send; Jabber sends 2.
	Version uint8

	// GenerateKey makes the key pair the server asks for, at most once
	// a session. Nil means a new key from crypto/rand (RSA-2048 takes a
	// good fraction of a second). The key must be of the requested
	// specification. It is not interrupted when the session's context
	// is cancelled; the session checks the context when it returns.
	GenerateKey func(KeySpec) (crypto.Signer, error)

	// SkipInProgress suppresses the REQUEST_IN_PROGRESS frame sent, as
	// phones and the reference client do, before the new public key.
	SkipInProgress bool

	// Timeout bounds the TLS handshake and each read and write. 0 means
	// DefaultClientTimeout.
	Timeout time.Duration

	// Rand is the source for signatures and key generation; nil means
	// crypto/rand. (Since Go 1.26 the standard library ignores it for
	// key generation and ECDSA.)
	Rand io.Reader
}

// An Outcome is what happened in one client session.
type Outcome struct {
	// Session is the session id the server assigned.
	Session uint32
	// Operation is what the server asked for: OpNone when it ended the
	// session straight after authentication.
	Operation Operation
	// Reason is the REASON of the server's END_SESSION, or 0 if there
	// was none.
	Reason uint8
	// Certificate is the LSC the client accepted in an install, and Key
	// the private key it generated for it; both nil otherwise. They are
	// set as soon as the client answered that it stored the certificate,
	// so they may come with an error (the server may still refuse, or
	// the connection fail); the caller decides whether to keep them.
	Certificate *x509.Certificate
	Key         crypto.Signer
	// Deleted reports that the server asked to delete the certificate
	// and the client answered that it did (Current was set). The caller
	// should then forget Current, even if the session ended in an error.
	Deleted bool
}

// Enroll connects to the CAPF server at addr ("host:port"; the port
// defaults to 3804) and runs one session with [Client.Run]. The dial is
// bounded by ctx and the client's Timeout.
func (c *Client) Enroll(ctx context.Context, addr string) (*Outcome, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), clientDefaultPort)
	}
	d := net.Dialer{Timeout: c.timeout()}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("capf: %w", err)
	}
	return c.Run(ctx, conn)
}

// Run runs one session as a TLS client over conn, an established
// connection to a CAPF server, and closes conn.
//
// It returns the Outcome and nil when the server ended the session with
// REASON 0 or 1. An END_SESSION with another reason gives the Outcome and
// an error that matches [ErrRefused] and unwraps to an [*EndError]
// (reason 9 also matches [ErrUnknownDevice]). A server that breaks the
// protocol (an unexpected command, a wrong session id, a malformed frame,
// closing before END_SESSION) gives an error matching [ErrProtocol]; so
// does a request the client refused to carry out (a key it cannot make,
// a certificate that is not for its key or name, or not signed by the
// CAPF certificate), after the client has answered it with REASON 7. The
// Outcome is nil only if the session never started (invalid Client, TLS
// failure, no valid AUTH_REQUEST); otherwise it says how far the session
// got, even with an error.
//
// Cancelling ctx aborts the session; the error then matches ctx.Err().
func (c *Client) Run(ctx context.Context, conn net.Conn) (*Outcome, error) {
	defer conn.Close()
	if err := c.check(); err != nil {
		return nil, err
	}
	cfg := tlspin.ClientConfig(c.TLSConfig, c.CAPFCertificates, "capf: CAPF")
	stop := context.AfterFunc(ctx, func() {
		// Wake any blocked read or write; the session maps the error to
		// ctx.Err().
		conn.SetDeadline(time.Unix(1, 0))
	})
	defer stop()

	tc := tls.Client(conn, cfg)
	defer tc.Close()
	if err := conn.SetDeadline(time.Now().Add(c.timeout())); err != nil {
		return nil, fmt.Errorf("capf: %w", err)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("capf: TLS handshake: %w", ctx.Err())
		}
		return nil, fmt.Errorf("capf: TLS handshake: %w", err)
	}
	issuers := c.LSCIssuers
	if len(issuers) == 0 {
		issuers = tc.ConnectionState().PeerCertificates[:1] // the pinned CAPF certificate
	}
	return c.session(ctx, tc, issuers)
}

// check validates the configuration.
func (c *Client) check() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: client: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if err := checkDeviceName(c.Device); err != nil {
		return err
	}
	if err := tlspin.Check(c.TLSConfig, c.CAPFCertificates, "CAPFCertificates"); err != nil {
		return invalid("%v", err)
	}
	for _, ic := range c.LSCIssuers {
		if ic == nil || len(ic.Raw) == 0 {
			return invalid("LSCIssuers holds a nil or unparsed certificate")
		}
	}
	if strings.IndexByte(c.AuthString, 0) >= 0 || len(c.AuthString) >= capfwire.MaxPayload/2 {
		return invalid("authentication string holds a NUL byte or is too long")
	}
	if (c.Certificate == nil) != (c.Key == nil) {
		return invalid("Certificate and Key go together")
	}
	if c.Certificate != nil {
		if err := clientCheckPair(c.Certificate, c.Key, "Certificate"); err != nil {
			return err
		}
	}
	if (c.SUDI == nil) != (c.SUDIKey == nil) {
		return invalid("SUDI and SUDIKey go together")
	}
	if c.SUDI != nil {
		if c.Certificate == nil {
			return invalid("SUDI is only sent with a Certificate")
		}
		if _, ok := c.SUDI.PublicKey.(*rsa.PublicKey); !ok {
			return invalid("SUDI key is %T, want RSA", c.SUDI.PublicKey)
		}
		if err := clientCheckPair(c.SUDI, c.SUDIKey, "SUDI"); err != nil {
			return err
		}
	}
	if c.Current != nil && (len(c.Current.Raw) == 0 || len(c.Current.Raw) > capfwire.MaxCertificateSize) {
		return invalid("Current certificate is empty or too long (%d bytes)", len(c.Current.Raw))
	}
	return nil
}

// clientCheckPair checks that key belongs to cert, a parsed certificate
// small enough for a CERTIFICATE element, and can sign authentication data.
func clientCheckPair(cert *x509.Certificate, key crypto.Signer, what string) error {
	if len(cert.Raw) == 0 || len(cert.Raw) > capfwire.MaxCertificateSize {
		return fmt.Errorf("%w: client: %s is empty or too long (%d bytes)", ErrInvalid, what, len(cert.Raw))
	}
	switch key.Public().(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return fmt.Errorf("%w: client: %s key is %T, want RSA or ECDSA", ErrInvalid, what, key.Public())
	}
	if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: client: %s key does not match the certificate", ErrInvalid, what)
	}
	return nil
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultClientTimeout
}

func (c *Client) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Client) version() uint8 {
	if c.Version != 0 {
		return c.Version
	}
	return 3
}

// clientConn is what a session needs of its connection (a *tls.Conn, or a
// stand-in in tests).
type clientConn interface {
	io.ReadWriter
	SetDeadline(time.Time) error
}

// A clientSession is the state of one session after the TLS handshake.
type clientSession struct {
	c       *Client
	ctx     context.Context
	conn    clientConn
	issuers []*x509.Certificate // may sign the LSC
	out     *Outcome
	key     crypto.Signer // generated, waiting for its certificate
}

// Session states, in the order they may follow each other. Every frame
// but END_SESSION moves the state forward, so a session reads at most
// four server frames.
const (
	clientOpen   = iota // authenticated: an operation request or END_SESSION
	clientKeyed         // public key sent: STORE_CERTIFICATE_REQUEST or END_SESSION
	clientFinish        // operation answered: END_SESSION only
)

// session runs the protocol on an established connection; an LSC must be
// signed by one of issuers.
func (c *Client) session(ctx context.Context, conn clientConn, issuers []*x509.Certificate) (*Outcome, error) {
	s := &clientSession{c: c, ctx: ctx, conn: conn, issuers: issuers}
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	if f.Command != capfwire.CmdAuthRequest {
		return nil, fmt.Errorf("%w: first frame is %v, want AUTH_REQUEST", ErrProtocol, f.Command)
	}
	if _, err := f.Uint8(capfwire.TagVersion); err != nil {
		return nil, fmt.Errorf("%w: AUTH_REQUEST: %w", ErrProtocol, err)
	}
	s.out = &Outcome{Session: f.Session}
	resp, err := s.authResponse()
	if err != nil {
		return s.out, err
	}
	if err := s.write(resp); err != nil {
		return s.out, err
	}

	// refusal is a request the client answered with REASON 7; it is
	// reported once the server has ended the session.
	var refusal error
	state := clientOpen
	for {
		f, err := s.read()
		if err != nil {
			return s.out, err
		}
		if f.Session != s.out.Session {
			return s.out, fmt.Errorf("%w: %v with session id %d, want %d", ErrProtocol, f.Command, f.Session, s.out.Session)
		}
		switch {
		case f.Command == capfwire.CmdEndSession:
			return s.out, s.end(f, state, refusal)
		case state == clientOpen && f.Command == capfwire.CmdKeyGenerateRequest:
			s.out.Operation = OpInstall
			if refusal, err = s.generate(f); err != nil {
				return s.out, err
			}
			state = clientKeyed
			if refusal != nil {
				state = clientFinish
			}
		case state == clientKeyed && f.Command == capfwire.CmdStoreCertificateRequest:
			if refusal, err = s.store(f); err != nil {
				return s.out, err
			}
			state = clientFinish
		case state == clientOpen && f.Command == capfwire.CmdFetchCertificateRequest:
			s.out.Operation = OpFetch
			if err := s.fetch(); err != nil {
				return s.out, err
			}
			state = clientFinish
		case state == clientOpen && f.Command == capfwire.CmdDeleteCertificateRequest:
			s.out.Operation = OpDelete
			if err := s.delete(); err != nil {
				return s.out, err
			}
			state = clientFinish
		default:
			return s.out, fmt.Errorf("%w: unexpected %v", ErrProtocol, f.Command)
		}
	}
}

// authResponse builds AUTH_RESPONSE, its elements in tag order as the
// reference client sends them.
func (s *clientSession) authResponse() (*capfwire.Frame, error) {
	c := s.c
	f := &capfwire.Frame{Command: capfwire.CmdAuthResponse, Session: s.out.Session}
	f.AddUint8(capfwire.TagReason, capfwire.ReasonOK)
	var sig512 []byte
	if c.Certificate != nil {
		certType := capfwire.CertificateTypeLSC
		if c.MIC {
			certType = capfwire.CertificateTypeMIC
		}
		if err := f.AddCertificate(certType, c.Certificate.Raw); err != nil {
			return nil, fmt.Errorf("capf: %w", err)
		}
		msg := authMessage(c.Device, c.Certificate.Raw)
		sig1, err := signAuth(c.rand(), c.Key, crypto.SHA1, msg)
		if err != nil {
			return nil, fmt.Errorf("capf: signing authentication data: %w", err)
		}
		f.Add(capfwire.TagSignedData, sig1)
		if sig512, err = signAuth(c.rand(), c.Key, crypto.SHA512, msg); err != nil {
			return nil, fmt.Errorf("capf: signing authentication data: %w", err)
		}
	}
	f.AddUint8(capfwire.TagVersion, c.version())
	if err := f.AddString(capfwire.TagPassword, c.AuthString); err != nil {
		return nil, fmt.Errorf("capf: %w", err)
	}
	if err := f.AddString(capfwire.TagDeviceName, c.Device); err != nil {
		return nil, fmt.Errorf("capf: %w", err)
	}
	if c.SUDI != nil {
		msg := sudiMessage(s.out.Session, c.SUDI.Raw)
		sudi := &capfwire.SUDI{Certificate: c.SUDI.Raw}
		var err error
		if sudi.SHA1, err = signAuth(c.rand(), c.SUDIKey, crypto.SHA1, msg); err != nil {
			return nil, fmt.Errorf("capf: signing SUDI data: %w", err)
		}
		if sudi.SHA512, err = signAuth(c.rand(), c.SUDIKey, crypto.SHA512, msg); err != nil {
			return nil, fmt.Errorf("capf: signing SUDI data: %w", err)
		}
		v, err := capfwire.WrapSUDI(sudi)
		if err != nil {
			return nil, fmt.Errorf("capf: %w", err)
		}
		f.Add(capfwire.TagSUDIData, v)
	}
	if sig512 != nil {
		v, err := capfwire.WrapSHA2SignedData(capfwire.HashSHA512, sig512)
		if err != nil {
			return nil, fmt.Errorf("capf: %w", err)
		}
		f.Add(capfwire.TagSHA2SignedData, v)
	}
	return f, nil
}

// generate answers KEY_GENERATE_REQUEST. A request the client cannot meet
// is answered with REASON 7 and returned as the refusal.
func (s *clientSession) generate(f *capfwire.Frame) (refusal, err error) {
	spec, refusal := clientKeySpec(f)
	var key crypto.Signer
	if refusal == nil {
		if !s.c.SkipInProgress {
			if err := s.write(&capfwire.Frame{Command: capfwire.CmdRequestInProgress, Session: s.out.Session}); err != nil {
				return nil, err
			}
		}
		key, refusal = s.newKey(spec)
		if err := s.ctx.Err(); err != nil {
			return nil, fmt.Errorf("capf: session %d: %w", s.out.Session, err)
		}
	}
	resp := &capfwire.Frame{Command: capfwire.CmdKeyGenerateResponse, Session: s.out.Session}
	if refusal == nil {
		spki, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			refusal = fmt.Errorf("capf: key generation failed: %w", err)
		} else {
			resp.Add(capfwire.TagPublicKey, spki)
		}
	}
	if refusal != nil {
		resp.AddUint8(capfwire.TagReason, capfwire.ReasonFailure)
	}
	if err := s.write(resp); err != nil {
		return nil, err
	}
	s.key = key
	return refusal, nil
}

// clientKeySpec reads the key a KEY_GENERATE_REQUEST asks for. Without
// KEY_TYPE it is RSA, as CUCM means it.
func clientKeySpec(f *capfwire.Frame) (KeySpec, error) {
	unsupported := func(format string, args ...any) (KeySpec, error) {
		return 0, fmt.Errorf("%w: KEY_GENERATE_REQUEST: "+format, append([]any{ErrProtocol}, args...)...)
	}
	keyType := capfwire.KeyTypeRSA
	if _, ok := f.Get(capfwire.TagKeyType); ok {
		var err error
		if keyType, err = f.Uint8(capfwire.TagKeyType); err != nil {
			return unsupported("%w", err)
		}
	}
	switch keyType {
	case capfwire.KeyTypeRSA:
		bits, err := f.Uint16(capfwire.TagKeySize)
		if err != nil {
			return unsupported("%w", err)
		}
		for k := RSA1024; k <= RSA4096; k++ {
			if k.RSABits() == int(bits) {
				return k, nil
			}
		}
		return unsupported("unsupported RSA key size %d", bits)
	case capfwire.KeyTypeEC:
		curve, err := f.Uint8(capfwire.TagCurve)
		if err != nil {
			return unsupported("%w", err)
		}
		switch curve {
		case capfwire.CurveP256:
			return EC256, nil
		case capfwire.CurveP384:
			return EC384, nil
		case capfwire.CurveP521:
			return EC521, nil
		}
		return unsupported("unknown curve %d", curve)
	}
	return unsupported("unknown key type %d", keyType)
}

// newKey makes a key of the specification, with GenerateKey if set.
func (s *clientSession) newKey(spec KeySpec) (crypto.Signer, error) {
	var key crypto.Signer
	var err error
	switch {
	case s.c.GenerateKey != nil:
		key, err = s.c.GenerateKey(spec)
	case spec.RSABits() != 0:
		key, err = rsa.GenerateKey(s.c.rand(), spec.RSABits())
	default:
		key, err = ecdsa.GenerateKey(spec.Curve(), s.c.rand())
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("capf: generating %v key: %w", spec, err)
	case key == nil || !spec.Matches(key.Public()):
		return nil, fmt.Errorf("capf: generating %v key: GenerateKey returned another kind of key", spec)
	}
	return key, nil
}

// store answers STORE_CERTIFICATE_REQUEST: REASON 1 if the certificate is
// for the generated key, names the device and is signed by one of the
// session's issuers, else REASON 7.
func (s *clientSession) store(f *capfwire.Frame) (refusal, err error) {
	var cert *x509.Certificate
	_, der, refusal := f.Certificate()
	if refusal == nil {
		cert, refusal = x509.ParseCertificate(der)
	}
	if refusal == nil {
		k, _ := s.key.Public().(interface{ Equal(crypto.PublicKey) bool }) // RSA and ECDSA keys have Equal
		switch {
		case k == nil || !k.Equal(cert.PublicKey):
			refusal = errors.New("certificate is not for the generated key")
		case cert.Subject.CommonName != s.c.Device:
			refusal = fmt.Errorf("certificate names %q, not the device", cert.Subject.CommonName)
		case !slices.ContainsFunc(s.issuers, func(ic *x509.Certificate) bool {
			return bytes.Equal(cert.RawIssuer, ic.RawSubject) && cert.CheckSignatureFrom(ic) == nil
		}):
			refusal = fmt.Errorf("certificate issued by %q is not signed by the CAPF certificate (or LSCIssuers)", cert.Issuer.String())
		}
	}
	reason := capfwire.ReasonOK
	if refusal != nil {
		reason = capfwire.ReasonFailure
		refusal = fmt.Errorf("%w: STORE_CERTIFICATE_REQUEST refused: %w", ErrProtocol, refusal)
	}
	resp := &capfwire.Frame{Command: capfwire.CmdStoreCertificateResponse, Session: s.out.Session}
	resp.AddUint8(capfwire.TagReason, reason)
	if err := s.write(resp); err != nil {
		return nil, err
	}
	if refusal == nil {
		s.out.Certificate, s.out.Key = cert, s.key
	}
	return refusal, nil
}

// fetch answers FETCH_CERTIFICATE_REQUEST with Current, or REASON 7.
func (s *clientSession) fetch() error {
	resp := &capfwire.Frame{Command: capfwire.CmdFetchCertificateResponse, Session: s.out.Session}
	if s.c.Current == nil {
		resp.AddUint8(capfwire.TagReason, capfwire.ReasonFailure)
	} else {
		resp.AddUint8(capfwire.TagReason, capfwire.ReasonOK)
		if err := resp.AddCertificate(capfwire.CertificateTypeLSC, s.c.Current.Raw); err != nil {
			return fmt.Errorf("capf: %w", err) // unreachable: checked by Client.check
		}
	}
	return s.write(resp)
}

// delete answers DELETE_CERTIFICATE_REQUEST: REASON 1 if there is a
// Current certificate to delete, else 7.
func (s *clientSession) delete() error {
	resp := &capfwire.Frame{Command: capfwire.CmdDeleteCertificateResponse, Session: s.out.Session}
	reason := capfwire.ReasonFailure
	if s.c.Current != nil {
		reason = capfwire.ReasonOK
	}
	resp.AddUint8(capfwire.TagReason, reason)
	if err := s.write(resp); err != nil {
		return err
	}
	s.out.Deleted = s.c.Current != nil
	return nil
}

// end handles END_SESSION received in the given state.
func (s *clientSession) end(f *capfwire.Frame, state int, refusal error) error {
	r, err := f.Uint8(capfwire.TagReason)
	if err != nil {
		return fmt.Errorf("%w: END_SESSION: %w", ErrProtocol, err)
	}
	s.out.Reason = r
	var endErr error
	if r != capfwire.ReasonNoAction && r != capfwire.ReasonOK {
		endErr = &EndError{Reason: r}
	}
	switch {
	case refusal != nil && endErr != nil:
		return fmt.Errorf("%w; %w", refusal, endErr)
	case refusal != nil:
		return refusal
	case endErr != nil:
		return endErr
	case state == clientKeyed:
		return fmt.Errorf("%w: END_SESSION reason %d before the certificate was sent", ErrProtocol, r)
	}
	return nil
}

// read reads one frame within the timeout.
func (s *clientSession) read() (*capfwire.Frame, error) {
	if err := s.deadline(); err != nil {
		return nil, err
	}
	f, err := capfwire.ReadFrame(s.conn)
	if err != nil {
		return nil, s.ioError("reading", err)
	}
	return f, nil
}

// write writes one frame, in one Write call, within the timeout.
func (s *clientSession) write(f *capfwire.Frame) error {
	if err := s.deadline(); err != nil {
		return err
	}
	if err := capfwire.WriteFrame(s.conn, f); err != nil {
		if errors.Is(err, capfwire.ErrTooLong) {
			return fmt.Errorf("capf: %w", err)
		}
		return s.ioError("writing", err)
	}
	return nil
}

// deadline sets the deadline for the next read or write. It checks ctx
// after setting it, so that a cancellation's past deadline (set after the
// context is done) cannot be overwritten unnoticed.
func (s *clientSession) deadline() error {
	if err := s.conn.SetDeadline(time.Now().Add(s.c.timeout())); err != nil {
		return fmt.Errorf("capf: %w", err)
	}
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("capf: session: %w", err)
	}
	return nil
}

// ioError describes a failed read or write.
func (s *clientSession) ioError(op string, err error) error {
	if cerr := s.ctx.Err(); cerr != nil {
		return fmt.Errorf("capf: session: %w", cerr)
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: server closed the connection before END_SESSION: %w", ErrProtocol, io.ErrUnexpectedEOF)
	case errors.Is(err, capfwire.ErrMalformed), errors.Is(err, capfwire.ErrProtocol):
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return fmt.Errorf("capf: %s: %w", op, err)
}
