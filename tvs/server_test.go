package tvs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The server and client tests run Server and Client against each other
// over real TLS on 127.0.0.1, with a memory store. Their helpers start
// with sv.

// svCert returns a new self-signed certificate for cn, for a phone to ask
// about: each call another certificate, even for the same name. The tests
// look certificates up; they never use their key, which all share.
func svCert(tb testing.TB, cn string) *x509.Certificate {
	tb.Helper()
	return testpki.SelfSigned(tb, testpki.Server(cn), testpki.Key(tb, testpki.EC256))
}

// svIdentity is a TLS certificate and its key.
type svIdentity struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// svNewIdentity returns a self-signed TVS certificate for cn and key,
// named tvs.example.com (never the address dialled: no host name is
// checked). An ITL holds it as it is.
func svNewIdentity(tb testing.TB, cn string, key crypto.Signer) svIdentity {
	tb.Helper()
	tmpl := testpki.Server(cn)
	tmpl.DNSNames = []string{"tvs.example.com"}
	return svIdentity{testpki.SelfSigned(tb, tmpl, key), key}
}

func (id svIdentity) tls() tls.Certificate { return testpki.TLSCertificate(id.cert, id.key) }

var (
	svTVSOnce, svImpostorOnce sync.Once
	svTVSID, svImpostorID     svIdentity
)

// svTVS is the TVS certificate of the tests; svImpostor another one that
// no phone trusts.
func svTVS(tb testing.TB) svIdentity {
	svTVSOnce.Do(func() { svTVSID = svNewIdentity(tb, "TVS-test", testpki.NewKey(tb, testpki.EC256)) })
	return svTVSID
}

func svImpostor(tb testing.TB) svIdentity {
	svImpostorOnce.Do(func() { svImpostorID = svNewIdentity(tb, "TVS-impostor", testpki.NewKey(tb, testpki.EC256)) })
	return svImpostorID
}

// svCounting is a Store that counts lookups, and fails them while fail
// is set.
type svCounting struct {
	Store
	lookups atomic.Int64
	fail    atomic.Bool
}

func (s *svCounting) Get(ctx context.Context, sum [32]byte) ([]byte, error) {
	s.lookups.Add(1)
	if s.fail.Load() {
		return nil, errors.New("disk on fire")
	}
	return s.Store.Get(ctx, sum)
}

// svLog collects log records.
type svLog struct {
	mu      sync.Mutex
	records []map[string]any // "level", "msg", then the attributes
}

func (l *svLog) handler() slog.Handler { return &svHandler{log: l} }

type svHandler struct {
	log   *svLog
	attrs []slog.Attr
}

func (h *svHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *svHandler) WithGroup(string) slog.Handler            { return h }
func (h *svHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &svHandler{log: h.log, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *svHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"level": r.Level.String(), "msg": r.Message}
	for _, a := range h.attrs {
		m[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.log.mu.Lock()
	h.log.records = append(h.log.records, m)
	h.log.mu.Unlock()
	return nil
}

// wait returns the first record whose message is msg, waiting for it: the
// server logs after it has written the answer.
func (l *svLog) wait(tb testing.TB, msg string) map[string]any {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		l.mu.Lock()
		for _, r := range l.records {
			if r["msg"] == msg {
				l.mu.Unlock()
				return r
			}
		}
		l.mu.Unlock()
	}
	tb.Fatalf("no log record %q", msg)
	return nil
}

func (l *svLog) reset() {
	l.mu.Lock()
	l.records = nil
	l.mu.Unlock()
}

// svServer is a running Server.
type svServer struct {
	addr  string
	store *svCounting
	srv   *Server
	log   *svLog
	id    svIdentity
	stop  func() error // cancels Serve and returns what it returned
}

// svStart runs a server with a memory store until the test ends, after
// configure has changed it.
func svStart(tb testing.TB, configure func(*Server)) *svServer {
	tb.Helper()
	id := svTVS(tb)
	s := &svServer{store: &svCounting{Store: NewMemoryStore()}, log: new(svLog), id: id}
	s.srv = &Server{
		Store:           s.store,
		TLSConfig:       &tls.Config{Certificates: []tls.Certificate{id.tls()}},
		Timeout:         5 * time.Second,
		ShutdownTimeout: 2 * time.Second,
		Logger:          slog.New(s.log.handler()),
	}
	if configure != nil {
		configure(s.srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	s.addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(ctx, l) }()
	var once sync.Once
	var serveErr error
	s.stop = func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
	tb.Cleanup(func() {
		if err := s.stop(); !errors.Is(err, ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return s
}

// put adds cert with roles and ttl to the server's store.
func (s *svServer) put(tb testing.TB, cert *x509.Certificate, ttl time.Duration, roles ...ctl.Role) {
	tb.Helper()
	require.NoError(tb, Put(context.Background(), s.store, &Entry{Certificate: cert, Roles: roles, TTL: ttl}))
}

// client returns a client of the server that trusts its certificate.
func (s *svServer) client() *Client {
	return &Client{
		Servers:         []string{s.addr},
		TVSCertificates: []*x509.Certificate{s.id.cert},
		TLSConfig:       &tls.Config{}, // for tests to add to
		Timeout:         5 * time.Second,
	}
}

// raw sends request over TLS, then reads until the server closes, and
// returns what it sent back.
func (s *svServer) raw(tb testing.TB, request []byte) []byte {
	tb.Helper()
	conn := svDial(tb, s.addr, nil)
	defer conn.Close()
	_, err := conn.Write(request)
	require.NoError(tb, err)
	return svReadAll(tb, conn)
}

// svDial opens TLS to addr trusting the test TVS certificate, after
// configure has changed the configuration.
func svDial(tb testing.TB, addr string, configure func(*tls.Config)) *tls.Conn {
	tb.Helper()
	cfg := &tls.Config{RootCAs: testpki.Pool(svTVS(tb).cert), ServerName: "tvs.example.com"}
	if configure != nil {
		configure(cfg)
	}
	d := tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	require.NoError(tb, err)
	return c.(*tls.Conn)
}

// svReadAll reads from c until the peer closes it.
func svReadAll(tb testing.TB, c net.Conn) []byte {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "connection reset") {
		require.NoError(tb, err, "the server did not close the connection")
	}
	return b
}

// svHex decodes hex with spaces and | separators between fields.
func svHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	require.NoError(tb, err)
	return b
}

// svRequest returns a VERIFY_REQUEST for der from the device name.
func svRequest(tb testing.TB, id uint32, name string, der []byte) []byte {
	tb.Helper()
	f := &capfwire.TVSFrame{Version: capfwire.TVSVersion, Command: capfwire.TVSCmdVerifyRequest, ID: id}
	require.NoError(tb, f.AddDeviceName(name))
	require.NoError(tb, f.AddCertificate(der))
	b, err := f.Marshal()
	require.NoError(tb, err)
	return b
}

// svFrame returns a TVS frame with the given header fields and elements.
func svFrame(tb testing.TB, version uint8, cmd capfwire.TVSCommand, id uint32, elems ...capfwire.Element) []byte {
	tb.Helper()
	b, err := (&capfwire.TVSFrame{Version: version, Command: cmd, ID: id, Elements: elems}).Marshal()
	require.NoError(tb, err)
	return b
}

func svEl(tag capfwire.Tag, v []byte) capfwire.Element { return capfwire.Element{Tag: tag, Value: v} }

const svDevice = "CP-7962-SEP001122334455"

// A known certificate gets STATUS 0, its roles in ascending order and its
// TTL (or the default); an unknown one STATUS 1 alone, the frames the
// reference server (usecallmanagernz tvsd) sends. The request id is echoed,
// whatever it is.
func TestServerVerify(t *testing.T) {
	s := svStart(t, nil)
	capfCert, multi, unknown := svCert(t, "CAPF-test"), svCert(t, "cucm-pub"), svCert(t, "stranger")
	s.put(t, capfCert, time.Hour, ctl.RoleCAPF)
	s.put(t, multi, 0, ctl.RoleTVS, ctl.RoleSAST, ctl.RoleCCMTFTP)

	tests := []struct {
		name    string
		request []byte
		want    string // the response
	}{
		{"known, CAPF, TTL 3600 (the reference sample)", svRequest(t, 0x01020304, svDevice, capfCert.Raw),
			"57 01 02 00 01020304 000f | 07 0001 00 | 08 0001 04 | 09 0004 00000e10"},
		{"known, three roles, default TTL 86400", svRequest(t, 7, svDevice, multi.Raw),
			"57 01 02 00 00000007 0011 | 07 0001 00 | 08 0003 00 02 15 | 09 0004 00015180"},
		{"unknown (the reference sample)", svRequest(t, 0xdeadbeef, svDevice, unknown.Raw),
			"57 01 02 00 deadbeef 0004 | 07 0001 01"},
		{"id 0 echoed", svRequest(t, 0, svDevice, unknown.Raw), "57 01 02 00 00000000 0004 | 07 0001 01"},
		{"id ffffffff echoed", svRequest(t, 0xffffffff, svDevice, capfCert.Raw),
			"57 01 02 00 ffffffff 000f | 07 0001 00 | 08 0001 04 | 09 0004 00000e10"},
		// tvsd drops requests whose name is not CP-dddd-SEP<12 hex>;
		// this server answers them as any other.
		{"name of another form: answered", svRequest(t, 9, "SEP001122334455", capfCert.Raw),
			"57 01 02 00 00000009 000f | 07 0001 00 | 08 0001 04 | 09 0004 00000e10"},
		{"name without the 0x01 prefix: answered",
			svFrame(t, 1, capfwire.TVSCmdVerifyRequest, 10, svEl(capfwire.TVSTagDeviceName, []byte(svDevice)), svEl(capfwire.TVSTagCertificate, capfCert.Raw)),
			"57 01 02 00 0000000a 000f | 07 0001 00 | 08 0001 04 | 09 0004 00000e10"},
		{"no name: answered",
			svFrame(t, 1, capfwire.TVSCmdVerifyRequest, 11, svEl(capfwire.TVSTagCertificate, capfCert.Raw)),
			"57 01 02 00 0000000b 000f | 07 0001 00 | 08 0001 04 | 09 0004 00000e10"},
		{"unknown elements and a reserved byte: ignored",
			func() []byte {
				b := svFrame(t, 1, capfwire.TVSCmdVerifyRequest, 12, svEl(0x63, []byte{1, 2}), svEl(capfwire.TVSTagCertificate, capfCert.Raw))
				b[3] = 0x7f
				return b
			}(),
			"57 01 02 00 0000000c 000f | 07 0001 00 | 08 0001 04 | 09 0004 00000e10"},
		{"two certificates: the first counts",
			svFrame(t, 1, capfwire.TVSCmdVerifyRequest, 13, svEl(capfwire.TVSTagCertificate, unknown.Raw), svEl(capfwire.TVSTagCertificate, capfCert.Raw)),
			"57 01 02 00 0000000d 0004 | 07 0001 01"},
		{"no certificate: invalid",
			svFrame(t, 1, capfwire.TVSCmdVerifyRequest, 14, svEl(capfwire.TVSTagDeviceName, append([]byte{1}, svDevice...))),
			"57 01 02 00 0000000e 0004 | 07 0001 01"},
		{"empty certificate: invalid",
			svFrame(t, 1, capfwire.TVSCmdVerifyRequest, 15, svEl(capfwire.TVSTagCertificate, nil)),
			"57 01 02 00 0000000f 0004 | 07 0001 01"},
		{"not DER: invalid", svRequest(t, 16, svDevice, []byte("not a certificate")),
			"57 01 02 00 00000010 0004 | 07 0001 01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.raw(t, tt.request)
			assert.Equal(t, hex.EncodeToString(svHex(t, tt.want)), hex.EncodeToString(got))
		})
	}
}

// The server's DefaultTTL applies to entries without a TTL of their own.
func TestServerDefaultTTL(t *testing.T) {
	s := svStart(t, func(srv *Server) { srv.DefaultTTL = 90 * time.Second })
	own, dflt := svCert(t, "own"), svCert(t, "default")
	s.put(t, own, 2*time.Minute, ctl.RoleTFTP)
	s.put(t, dflt, 0, ctl.RoleAppServer)
	assert.Equal(t, svHex(t, "57 01 02 00 00000001 000f | 07 0001 00 | 08 0001 03 | 09 0004 00000078"), s.raw(t, svRequest(t, 1, svDevice, own.Raw)))
	assert.Equal(t, svHex(t, "57 01 02 00 00000002 000f | 07 0001 00 | 08 0001 07 | 09 0004 0000005a"), s.raw(t, svRequest(t, 2, svDevice, dflt.Raw)))
}

// What is not a VERIFY_REQUEST of version 1 gets no answer: the
// connection is closed (QUERY, whose meaning is unknown, included).
func TestServerNoAnswer(t *testing.T) {
	s := svStart(t, func(srv *Server) { srv.Timeout = 500 * time.Millisecond })
	cert := svCert(t, "known")
	s.put(t, cert, 0, ctl.RoleCCM)
	el := svEl(capfwire.TVSTagCertificate, cert.Raw)
	tests := []struct {
		name    string
		request []byte
		closeW  bool  // close the writing side after the request
		err     error // what the server logs, nil for a read error
	}{
		{"a CAPF frame", svHex(t, "55 01 00000001 0008 | 07 0001 03 | 08 0001 00"), false, ErrProtocol},
		{"version 2", svFrame(t, 2, capfwire.TVSCmdVerifyRequest, 1, el), false, ErrProtocol},
		{"version 0", svFrame(t, 0, capfwire.TVSCmdVerifyRequest, 1, el), false, ErrProtocol},
		{"QUERY_REQUEST", svFrame(t, 1, capfwire.TVSCmdQueryRequest, 1, el), false, ErrProtocol},
		{"a VERIFY_RESPONSE", svFrame(t, 1, capfwire.TVSCmdVerifyResponse, 1, svEl(capfwire.TVSTagStatus, []byte{0})), false, ErrProtocol},
		{"command 0", svFrame(t, 1, capfwire.TVSCmdNone, 1), false, ErrProtocol},
		{"an element overruns the payload", svHex(t, "57 01 01 00 00000001 0005 | 02 0009 3082"), false, ErrProtocol},
		{"truncated header", svHex(t, "57 01 01 00 00"), true, ErrProtocol},
		{"truncated payload", svHex(t, "57 01 01 00 00000001 0010 | 02 000d 30"), true, ErrProtocol},
		{"payload never sent: timeout", svHex(t, "57 01 01 00 00000001 0010"), false, nil},
		{"nothing", nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.log.reset()
			conn := svDial(t, s.addr, nil)
			defer conn.Close()
			if len(tt.request) > 0 {
				_, err := conn.Write(tt.request)
				require.NoError(t, err)
			}
			if tt.closeW {
				require.NoError(t, conn.CloseWrite())
			}
			assert.Empty(t, svReadAll(t, conn))
			r := s.log.wait(t, "tvs: request failed")
			assert.Equal(t, "WARN", r["level"])
			err, _ := r["err"].(error)
			require.Error(t, err)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
			} else {
				assert.NotErrorIs(t, err, ErrProtocol)
			}
		})
	}
	assert.Zero(t, s.store.lookups.Load(), "no request reached the store")
}

// A store that fails gives no answer, so that the phone treats TVS as
// unreachable rather than the certificate as unknown; the client reports
// an error.
func TestServerStoreError(t *testing.T) {
	s := svStart(t, nil)
	cert := svCert(t, "known")
	s.put(t, cert, 0, ctl.RoleCCM)
	s.store.fail.Store(true)
	assert.Empty(t, s.raw(t, svRequest(t, 1, svDevice, cert.Raw)))
	r := s.log.wait(t, "tvs: request failed")
	assert.ErrorContains(t, r["err"].(error), "disk on fire")
	v, err := s.client().Verify(context.Background(), cert)
	assert.Nil(t, v)
	assert.Error(t, err)

	s.store.fail.Store(false)
	v, err = s.client().Verify(context.Background(), cert)
	require.NoError(t, err)
	assert.True(t, v.Valid)
}

// A record that does not decode, or that holds another certificate than
// the one asked about, gives no answer either, as a failing store.
func TestServerCorruptRecord(t *testing.T) {
	ctx := context.Background()
	s := svStart(t, nil)
	cert, other := svCert(t, "known"), svCert(t, "other")
	sum := sha256.Sum256(cert.Raw)
	r, err := newRecord(&Entry{Certificate: cert, Roles: []ctl.Role{ctl.RoleCCM}})
	require.NoError(t, err)
	for name, record := range map[string][]byte{
		"truncated":           r.marshal()[:40],
		"another certificate": slices.Concat(r.marshal()[:recordHead+1], other.Raw),
		"newer format":        slices.Concat([]byte{recordVersion + 1}, r.marshal()[1:]),
	} {
		s.log.reset()
		require.NoError(t, s.store.Put(ctx, sum, record))
		assert.Empty(t, s.raw(t, svRequest(t, 1, svDevice, cert.Raw)), name)
		l := s.log.wait(t, "tvs: request failed")
		t.Logf("%s: %v", name, l["err"])
		if name == "newer format" {
			assert.ErrorIs(t, l["err"].(error), ErrStoreVersion)
		} else {
			assert.ErrorIs(t, l["err"].(error), ErrCorrupt)
		}
	}
}

// Each answered request is logged once, with what identifies it.
func TestServerLog(t *testing.T) {
	s := svStart(t, nil)
	cert := svCert(t, "logged")
	s.put(t, cert, 0, ctl.RoleCCM)
	s.raw(t, svRequest(t, 42, svDevice, cert.Raw))
	r := s.log.wait(t, "tvs: request answered")
	sum := sha256.Sum256(cert.Raw)
	assert.Equal(t, "INFO", r["level"])
	assert.EqualValues(t, 42, r["id"])
	assert.Equal(t, svDevice, r["device"])
	assert.Equal(t, hex.EncodeToString(sum[:]), r["sha256"])
	assert.Contains(t, r["subject"], "CN=logged")
	assert.EqualValues(t, capfwire.TVSStatusValid, r["status"])
	assert.Contains(t, r["remote"], "127.0.0.1:")
	assert.Contains(t, r, "duration")

	s.log.reset()
	s.raw(t, svRequest(t, 43, svDevice, svCert(t, "unknown").Raw))
	r = s.log.wait(t, "tvs: request answered")
	assert.EqualValues(t, capfwire.TVSStatusInvalid, r["status"])
	assert.NotContains(t, r, "subject")
}

// TLS: 1.2 at least, whatever the configuration says, and no client
// certificate asked for.
func TestServerTLS(t *testing.T) {
	s := svStart(t, func(srv *Server) { srv.TLSConfig.MinVersion = tls.VersionTLS10 })
	cert := svCert(t, "known")
	s.put(t, cert, 0, ctl.RoleCCM)

	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		d := tls.Dialer{Config: &tls.Config{RootCAs: testpki.Pool(s.id.cert), ServerName: "tvs.example.com", MinVersion: v, MaxVersion: v}}
		_, err := d.DialContext(context.Background(), "tcp", s.addr)
		assert.Error(t, err, tls.VersionName(v))
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		asked := false
		conn := svDial(t, s.addr, func(c *tls.Config) {
			c.MinVersion, c.MaxVersion = v, v
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = true
				return &tls.Certificate{}, nil
			}
		})
		_, err := conn.Write(svRequest(t, 1, svDevice, cert.Raw))
		require.NoError(t, err)
		assert.Len(t, svReadAll(t, conn), 25, tls.VersionName(v))
		assert.False(t, asked, "%s: client certificate requested", tls.VersionName(v))
		conn.Close()
	}
}

// A client that does not finish its TLS handshake, or sends nothing, is
// dropped after Timeout.
func TestServerTimeout(t *testing.T) {
	s := svStart(t, func(srv *Server) { srv.Timeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	assert.NoError(t, err) // closed by the server, not our deadline
	assert.Less(t, time.Since(start), 4*time.Second)
	r := s.log.wait(t, "tvs: request failed")
	assert.ErrorContains(t, r["err"].(error), "TLS handshake")
}

// Serve stops accepting when its context is done, lets an exchange under
// way finish within ShutdownTimeout, closes those that take longer, and
// returns ErrServerClosed.
func TestServerShutdown(t *testing.T) {
	s := svStart(t, func(srv *Server) { srv.ShutdownTimeout = 3 * time.Second })
	cert := svCert(t, "known")
	s.put(t, cert, time.Hour, ctl.RoleCAPF)

	slow := svDial(t, s.addr, nil) // handshake done, request not yet sent
	defer slow.Close()
	hung := svDial(t, s.addr, nil) // never sends its request
	defer hung.Close()
	time.Sleep(50 * time.Millisecond) // let the server take both
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- s.stop() }()

	// New connections are refused once the listener is closed.
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 2*time.Second, 10*time.Millisecond)

	_, err := slow.Write(svRequest(t, 5, svDevice, cert.Raw))
	require.NoError(t, err)
	assert.Equal(t, svHex(t, "57 01 02 00 00000005 000f | 07 0001 00 | 08 0001 04 | 09 0004 00000e10"), svReadAll(t, slow))

	select {
	case err := <-stopped:
		assert.ErrorIs(t, err, ErrServerClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "the hung connection was given ShutdownTimeout")
	assert.Empty(t, svReadAll(t, hung))
}

// ServeConn answers one request for a caller with its own accept loop.
func TestServerServeConn(t *testing.T) {
	id := svTVS(t)
	st := NewMemoryStore()
	cert := svCert(t, "known")
	require.NoError(t, Put(context.Background(), st, &Entry{Certificate: cert, Roles: []ctl.Role{ctl.RoleTFTP}, TTL: time.Minute}))
	srv := &Server{Store: st, TLSConfig: &tls.Config{Certificates: []tls.Certificate{id.tls()}}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- srv.ServeConn(context.Background(), c)
	}()
	c := &Client{Servers: []string{l.Addr().String()}, TVSCertificates: []*x509.Certificate{id.cert}}
	v, err := c.Verify(context.Background(), cert)
	require.NoError(t, err)
	assert.Equal(t, []ctl.Role{ctl.RoleTFTP}, v.Roles)
	assert.Equal(t, time.Minute, v.TTL)
	assert.NoError(t, <-done)
}

func TestServerInvalid(t *testing.T) {
	id := svTVS(t)
	good := func() *Server {
		return &Server{Store: NewMemoryStore(), TLSConfig: &tls.Config{Certificates: []tls.Certificate{id.tls()}}}
	}
	tests := []struct {
		name   string
		change func(*Server)
	}{
		{"no store", func(s *Server) { s.Store = nil }},
		{"no TLS config", func(s *Server) { s.TLSConfig = nil }},
		{"no certificate", func(s *Server) { s.TLSConfig = &tls.Config{} }},
		{"negative timeout", func(s *Server) { s.Timeout = -time.Second }},
		{"negative MaxConns", func(s *Server) { s.MaxConns = -1 }},
		{"negative ShutdownTimeout", func(s *Server) { s.ShutdownTimeout = -1 }},
		{"DefaultTTL not whole seconds", func(s *Server) { s.DefaultTTL = 1500 * time.Millisecond }},
		{"DefaultTTL beyond 30 days", func(s *Server) { s.DefaultTTL = MaxTTL + time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := good()
			tt.change(srv)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer l.Close()
			assert.ErrorIs(t, srv.Serve(context.Background(), l), ErrInvalid)

			a, b := net.Pipe()
			defer a.Close()
			assert.ErrorIs(t, srv.ServeConn(context.Background(), b), ErrInvalid)
			_, err = a.Read(make([]byte, 1))
			assert.Error(t, err, "ServeConn closes the connection")
		})
	}
	// GetCertificate or GetConfigForClient instead of Certificates will do.
	srv := good()
	srv.TLSConfig = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { c := id.tls(); return &c, nil }}
	assert.NoError(t, srv.init())
}

// A configuration chosen per client still gets the TLS 1.2 floor.
func TestServerGetConfigForClient(t *testing.T) {
	id := svTVS(t)
	s := svStart(t, func(srv *Server) {
		srv.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{id.tls()}, MinVersion: tls.VersionTLS10}, nil
		}}
	})
	cert := svCert(t, "known")
	s.put(t, cert, 0, ctl.RoleCCM)
	d := tls.Dialer{Config: &tls.Config{RootCAs: testpki.Pool(id.cert), ServerName: "tvs.example.com", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}}
	_, err := d.DialContext(context.Background(), "tcp", s.addr)
	assert.Error(t, err)
	v, err := s.client().Verify(context.Background(), cert)
	require.NoError(t, err)
	assert.True(t, v.Valid)
}

// Many phones at once: every one gets its own answer.
func TestServerConcurrent(t *testing.T) {
	// The phones all come from 127.0.0.1: no per-host bound.
	s := svStart(t, func(srv *Server) { srv.MaxConnsPerHost = -1 })
	certs := make([]*x509.Certificate, 8)
	for i := range certs {
		certs[i] = svCert(t, "c"+string(rune('a'+i)))
		if i%2 == 0 {
			s.put(t, certs[i], time.Duration(i+1)*time.Minute, ctl.RoleCCM)
		}
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			id := uint32(i) * 0x01010101
			cert := certs[i%len(certs)]
			got := s.raw(t, svRequest(t, id, svDevice, cert.Raw))
			resp, err := capfwire.ReadTVSFrame(bytes.NewReader(got))
			if !assert.NoError(t, err) {
				return
			}
			assert.Equal(t, id, resp.ID)
			status, _ := resp.Status()
			assert.Equal(t, i%len(certs)%2 != 0, status == capfwire.TVSStatusInvalid)
			if ttl, err := resp.TTL(); err == nil {
				assert.EqualValues(t, (i%len(certs)+1)*60, ttl)
			}
		})
	}
	wg.Wait()
}

// A TLS 1.0 client (a 7900-series phone) gets an answer only with
// LegacyTLS.
func TestServerLegacyTLS(t *testing.T) {
	known := svCert(t, "legacy")
	for _, legacy := range []bool{true, false} {
		s := svStart(t, func(srv *Server) { srv.LegacyTLS = legacy })
		s.put(t, known, time.Hour, ctl.RoleCCM)
		c := s.client()
		c.TLSConfig.MinVersion, c.TLSConfig.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		v, err := c.Verify(context.Background(), known)
		if legacy && (err != nil || !v.Valid) {
			t.Fatalf("legacy: %+v %v", v, err)
		}
		if !legacy && err == nil {
			t.Fatal("TLS 1.0 accepted without LegacyTLS")
		}
	}
}
