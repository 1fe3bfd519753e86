package tvs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The tests of the connection limits, the first-byte deadline and the
// key usage check talk raw TLS (no certificate check) and the capfwire
// codec; their helpers start with lim.

// limServer is a running Server whose store vouches for its own
// certificate in the TVS role.
type limServer struct {
	addr string
	cert *x509.Certificate
	log  *testnet.Log
}

// limStart runs srv, after filling in its store, TLS configuration and
// logger, on 127.0.0.1 until the test ends.
func limStart(t *testing.T, srv *Server) *limServer {
	t.Helper()
	key := testpki.NewKey(t, testpki.EC256)
	cert := testpki.SelfSigned(t, testpki.Server("TVS-limits"), key)
	st := NewMemoryStore()
	require.NoError(t, Put(context.Background(), st, &Entry{Certificate: cert, Roles: []ctl.Role{ctl.RoleTVS}, TTL: time.Hour}))
	s := &limServer{cert: cert, log: new(testnet.Log)}
	srv.Store = st
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(cert, key)}}
	srv.Logger = slog.New(slog.NewTextHandler(s.log, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		assert.ErrorIs(t, <-done, ErrServerClosed)
	})
	return s
}

// query asks, from src, about the server's own certificate over TLS
// without checking the server's, and returns the answer.
func (s *limServer) query(t *testing.T, src string) (*capfwire.TVSFrame, error) {
	t.Helper()
	raw := testnet.Dial(t, src, s.addr)
	raw.SetDeadline(time.Now().Add(testnet.Patience(t)))
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	req := &capfwire.TVSFrame{Version: capfwire.TVSVersion, Command: capfwire.TVSCmdVerifyRequest, ID: 0x1234}
	require.NoError(t, req.AddDeviceName("CP-8845-SEP001122334455"))
	require.NoError(t, req.AddCertificate(s.cert.Raw))
	if err := capfwire.WriteTVSFrame(conn, req); err != nil {
		return nil, err
	}
	return capfwire.ReadTVSFrame(conn)
}

// One host (127.0.0.2) holding its whole share of connections idle, and
// trying for more, does not stop another (127.0.0.1) from being answered:
// the connections beyond its share are closed at once, and said so in the
// log.
func TestServerMaxConnsPerHost(t *testing.T) {
	wait := testnet.Patience(t)
	const perHost = 4
	s := limStart(t, &Server{
		MaxConns:        2 * perHost,
		MaxConnsPerHost: perHost,
		// The idle connections keep their places for the whole test.
		FirstByteTimeout: 10 * wait,
		Timeout:          10 * wait,
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

	resp, err := s.query(t, "127.0.0.1")
	require.NoError(t, err, "127.0.0.1 not answered while 127.0.0.2 holds its share")
	assert.Equal(t, uint32(0x1234), resp.ID)
	status, err := resp.Status()
	require.NoError(t, err)
	assert.Equal(t, capfwire.TVSStatusValid, status)

	for i, c := range extra {
		assert.True(t, testnet.Closed(c, wait), "connection %d beyond the share of 127.0.0.2 not closed", i)
	}
	for i, c := range held {
		// Still open: the server has not dropped the share itself.
		assert.False(t, testnet.Closed(c, 10*time.Millisecond), "held connection %d closed", i)
	}
	logs := s.log.String()
	assert.Contains(t, logs, "tvs: too many connections from one host, connection closed")
	assert.Contains(t, logs, "host=127.0.0.2 ")
	assert.Contains(t, logs, "max_per_host=4")
}

// A connection that sends nothing is closed after FirstByteTimeout, long
// before Timeout.
func TestServerFirstByteTimeout(t *testing.T) {
	wait := testnet.Patience(t)
	s := limStart(t, &Server{FirstByteTimeout: 100 * time.Millisecond, Timeout: 10 * wait})
	c := testnet.Dial(t, "127.0.0.1", s.addr)
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.ReadAll(c)
	require.NoError(t, err, "not closed by the server")
	assert.Contains(t, s.log.String(), "TLS handshake: nothing received within 100ms")
	// Who speaks at once is answered.
	_, err = s.query(t, "127.0.0.1")
	require.NoError(t, err)
}

// Serve refuses a TVS certificate whose key usage lacks digitalSignature,
// and with LegacyTLS warns of an RSA one without keyEncipherment
// (netserve.CheckKeyUsage's tests cover the rest).
func TestServerKeyUsage(t *testing.T) {
	ec, rsaKey := testpki.NewKey(t, testpki.EC256), testpki.Key(t, testpki.RSA2048)
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		usage  x509.KeyUsage
		legacy bool
		err    string // "" for none
		warn   bool
	}{
		{"keyEncipherment alone", rsaKey, x509.KeyUsageKeyEncipherment, false, "lacks digitalSignature", false},
		{"digitalSignature", ec, x509.KeyUsageDigitalSignature, true, "", false},
		{"RSA, legacy, no keyEncipherment", rsaKey, x509.KeyUsageDigitalSignature, true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := testpki.Server("TVS-usage")
			tmpl.KeyUsage = tc.usage
			cert := testpki.SelfSigned(t, tmpl, tc.key)
			var log testnet.Log
			srv := &Server{
				Store:     NewMemoryStore(),
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(cert, tc.key)}},
				LegacyTLS: tc.legacy,
				Logger:    slog.New(slog.NewTextHandler(&log, nil)),
			}
			err := srv.init()
			if tc.err != "" {
				assert.ErrorIs(t, err, ErrInvalid)
				assert.ErrorContains(t, err, tc.err)
				assert.ErrorContains(t, err, "CN=TVS-usage")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.warn, strings.Contains(log.String(), "lacks keyEncipherment"), log.String())
		})
	}
}

// A negative FirstByteTimeout is invalid; a negative MaxConnsPerHost
// turns the per-host bound off.
func TestServerLimitsConfig(t *testing.T) {
	key := testpki.NewKey(t, testpki.EC256)
	cert := testpki.SelfSigned(t, testpki.Server("TVS-config"), key)
	for _, tc := range []struct {
		srv *Server
		ok  bool
	}{
		{&Server{FirstByteTimeout: -time.Second}, false},
		{&Server{MaxConnsPerHost: -1}, true},
		{&Server{FirstByteTimeout: time.Minute, Timeout: time.Second}, true}, // cut to Timeout
	} {
		tc.srv.Store = NewMemoryStore()
		tc.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(cert, key)}}
		err := tc.srv.init()
		if tc.ok {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, ErrInvalid)
		}
	}
}
