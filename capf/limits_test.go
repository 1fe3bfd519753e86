package capf

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The tests of the connection limits, the first-byte deadline and the
// key usage check talk raw TLS (no certificate check) and the capfwire
// codec; their helpers start with lim.

type limServer struct {
	addr  string
	store Store
	log   *testnet.Log
}

// limStart runs srv, after filling in its store, issuer, TLS
// configuration and logger, on 127.0.0.1 until the test ends.
func limStart(t *testing.T, srv *Server) *limServer {
	t.Helper()
	key := testpki.NewKey(t, testpki.EC256)
	ca := testpki.SelfSigned(t, testpki.CA("CAPF-limits"), key)
	s := &limServer{store: NewMemoryStore(), log: new(testnet.Log)}
	srv.Store = s.store
	srv.Issuer = &LocalCA{Certificate: ca, Signer: key}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ca, key)}}
	srv.Logger = slog.New(slog.NewTextHandler(s.log, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// install runs a whole install session for device from src, over TLS
// without checking the CAPF certificate, and returns the END_SESSION
// reason.
func (s *limServer) install(t *testing.T, src, device string) (uint8, error) {
	t.Helper()
	if err := ScheduleOperation(context.Background(), s.store, device, Schedule{Operation: OpInstall, Key: EC256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	raw := testnet.Dial(t, src, s.addr)
	raw.SetDeadline(time.Now().Add(testnet.Patience(t)))
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	recv := func(want capfwire.Command) (*capfwire.Frame, error) {
		f, err := capfwire.ReadFrame(conn)
		if err == nil && f.Command != want {
			err = fmt.Errorf("got %v, want %v", f.Command, want)
		}
		return f, err
	}
	f, err := recv(capfwire.CmdAuthRequest)
	if err != nil {
		return 0, err
	}
	sid := f.Session
	r := &capfwire.Frame{Command: capfwire.CmdAuthResponse, Session: sid}
	r.AddUint8(capfwire.TagReason, capfwire.ReasonOK)
	r.AddUint8(capfwire.TagVersion, 3)
	r.AddString(capfwire.TagDeviceName, device)
	if err := capfwire.WriteFrame(conn, r); err != nil {
		return 0, err
	}
	if _, err := recv(capfwire.CmdKeyGenerateRequest); err != nil {
		return 0, err
	}
	spki, err := x509.MarshalPKIXPublicKey(testpki.Key(t, testpki.EC256).Public())
	if err != nil {
		t.Fatal(err)
	}
	r = &capfwire.Frame{Command: capfwire.CmdKeyGenerateResponse, Session: sid}
	r.Add(capfwire.TagPublicKey, spki)
	if err := capfwire.WriteFrame(conn, r); err != nil {
		return 0, err
	}
	if _, err := recv(capfwire.CmdStoreCertificateRequest); err != nil {
		return 0, err
	}
	r = &capfwire.Frame{Command: capfwire.CmdStoreCertificateResponse, Session: sid}
	r.AddUint8(capfwire.TagReason, capfwire.ReasonOK)
	if err := capfwire.WriteFrame(conn, r); err != nil {
		return 0, err
	}
	if f, err = recv(capfwire.CmdEndSession); err != nil {
		return 0, err
	}
	return f.Uint8(capfwire.TagReason)
}

// One host (127.0.0.2) holding its whole share of connections idle, and
// trying for more, does not stop a phone at another (127.0.0.1) from
// completing its session: the connections beyond the share are closed at
// once, and said so in the log.
func TestServerMaxConnsPerHost(t *testing.T) {
	wait := testnet.Patience(t)
	const perHost = 4
	s := limStart(t, &Server{
		MaxConns:        2 * perHost,
		MaxConnsPerHost: perHost,
		// The idle connections keep their places for the whole test.
		FirstByteTimeout: 10 * wait,
		HandshakeTimeout: 10 * wait,
		AuthTimeout:      wait,
		KeyGenTimeout:    wait,
		ShutdownTimeout:  time.Second,
	})
	held := make([]net.Conn, perHost)
	for i := range held {
		held[i] = testnet.Dial(t, "127.0.0.2", s.addr)
	}
	extra := make([]net.Conn, 2*perHost)
	for i := range extra {
		extra[i] = testnet.Dial(t, "127.0.0.2", s.addr)
	}

	reason, err := s.install(t, "127.0.0.1", "SEP001122334455")
	if err != nil || reason != capfwire.ReasonOK {
		t.Fatalf("127.0.0.1 while 127.0.0.2 holds its share: END reason %d, %v\n%s", reason, err, s.log)
	}
	if d, err := LookupDevice(context.Background(), s.store, "SEP001122334455"); err != nil || d.Certificate == nil {
		t.Fatalf("no LSC recorded: %v", err)
	}
	for i, c := range extra {
		if !testnet.Closed(c, wait) {
			t.Errorf("connection %d beyond the share of 127.0.0.2 not closed", i)
		}
	}
	for i, c := range held {
		// Still open: the server has not dropped the share itself.
		if testnet.Closed(c, 10*time.Millisecond) {
			t.Errorf("held connection %d closed", i)
		}
	}
	logs := s.log.String()
	for _, want := range []string{"capf: too many connections from one host, connection closed", "host=127.0.0.2 ", "max_per_host=4"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// A connection that sends nothing is closed after FirstByteTimeout, long
// before HandshakeTimeout.
func TestServerFirstByteTimeout(t *testing.T) {
	wait := testnet.Patience(t)
	s := limStart(t, &Server{FirstByteTimeout: 100 * time.Millisecond, HandshakeTimeout: 10 * wait})
	c := testnet.Dial(t, "127.0.0.1", s.addr)
	c.SetReadDeadline(time.Now().Add(wait))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("not closed by the server: %v", err)
	}
	if logs := s.log.String(); !strings.Contains(logs, "TLS handshake: nothing received within 100ms") {
		t.Fatalf("log:\n%s", logs)
	}
	// Who speaks at once is served.
	if reason, err := s.install(t, "127.0.0.1", "SEP001122334455"); err != nil || reason != capfwire.ReasonOK {
		t.Fatalf("END reason %d, %v\n%s", reason, err, s.log)
	}
}

// Serve refuses a CAPF certificate whose key usage lacks
// digitalSignature, and with LegacyTLS warns of an RSA one without
// keyEncipherment (netserve.CheckKeyUsage's tests cover the rest).
func TestServerKeyUsage(t *testing.T) {
	ec, rsaKey := testpki.NewKey(t, testpki.EC256), testpki.Key(t, testpki.RSA2048)
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		usage  x509.KeyUsage
		legacy bool
		err    bool
		warn   bool
	}{
		{"certSign alone", ec, x509.KeyUsageCertSign, false, true, false},
		{"certSign and digitalSignature", ec, x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, true, false, false},
		{"RSA, legacy, no keyEncipherment", rsaKey, x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := testpki.CA("CAPF-limits")
			tmpl.Subject = pkix.Name{CommonName: "CAPF-limits"} // as the error names it
			tmpl.KeyUsage = tc.usage
			ca := testpki.SelfSigned(t, tmpl, tc.key)
			var log testnet.Log
			srv := &Server{
				Store:     NewMemoryStore(),
				Issuer:    &LocalCA{Certificate: ca, Signer: tc.key},
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ca, tc.key)}},
				LegacyTLS: tc.legacy,
				Logger:    slog.New(slog.NewTextHandler(&log, nil)),
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if tc.err {
				// Cancelled: were the certificate taken, Serve would
				// return ErrServerClosed at once.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				err := srv.Serve(ctx, l)
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"CN=CAPF-limits": its key usage lacks digitalSignature`) {
					t.Fatalf("Serve: %v", err)
				}
				return
			}
			if err := srv.init(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(log.String(), "lacks keyEncipherment"); got != tc.warn {
				t.Fatalf("warning %v, want %v:\n%s", got, tc.warn, log.String())
			}
		})
	}
}

// A negative FirstByteTimeout is invalid; a negative MaxConnsPerHost
// turns the per-host bound off.
func TestServerLimitsConfig(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	ca := testpki.SelfSigned(t, testpki.CA("CAPF-limits"), key)
	for _, tc := range []struct {
		srv *Server
		ok  bool
	}{
		{&Server{FirstByteTimeout: -time.Second}, false},
		{&Server{MaxConnsPerHost: -1}, true},
		{&Server{FirstByteTimeout: time.Minute, HandshakeTimeout: time.Second}, true}, // cut to HandshakeTimeout
	} {
		srv := tc.srv
		srv.Store, srv.Issuer = NewMemoryStore(), &LocalCA{Certificate: ca, Signer: key}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ca, key)}}
		if err := srv.init(); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("FirstByteTimeout %v, MaxConnsPerHost %d: %v", srv.FirstByteTimeout, srv.MaxConnsPerHost, err)
		}
	}
}
