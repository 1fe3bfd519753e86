package tvs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testpki"
	"github.com/ucsec/ucsec/internal/tlspin"
)

// clFake is a TVS that answers with whatever its answer function returns
// (nothing if it returns nil), to test the client against wrong answers.
// It records the requests it reads.
type clFake struct {
	addr string
	mu   sync.Mutex
	reqs []*capfwire.TVSFrame
}

func clStartFake(t *testing.T, answer func(req *capfwire.TVSFrame) []byte) *clFake {
	t.Helper()
	id := svTVS(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{id.tls()}})
	require.NoError(t, err)
	f := &clFake{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := capfwire.ReadTVSFrame(c)
				if err != nil {
					return
				}
				f.mu.Lock()
				f.reqs = append(f.reqs, req)
				f.mu.Unlock()
				if b := answer(req); b != nil {
					c.Write(b)
				}
			})
		}
	})
	return f
}

func (f *clFake) requests() []*capfwire.TVSFrame {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*capfwire.TVSFrame(nil), f.reqs...)
}

func (f *clFake) client() *Client {
	return &Client{Servers: []string{f.addr}, TVSCertificates: []*x509.Certificate{svTVSID.cert}, Timeout: 5 * time.Second}
}

// clResponse returns a VERIFY_RESPONSE to req with the elements.
func clResponse(req *capfwire.TVSFrame, elems ...capfwire.Element) []byte {
	b, err := (&capfwire.TVSFrame{Version: 1, Command: capfwire.TVSCmdVerifyResponse, ID: req.ID, Elements: elems}).Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// clClock is a clock the test moves.
type clClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestClientVerify(t *testing.T) {
	s := svStart(t, nil)
	known, unknown := svCert(t, "cucm-pub"), svCert(t, "stranger")
	s.put(t, known, time.Hour, ctl.RoleCCMTFTP, ctl.RoleSAST)
	clock := &clClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := s.client()
	c.Time = clock.Now

	v, err := c.Verify(context.Background(), known)
	require.NoError(t, err)
	assert.Equal(t, &Verdict{
		Valid: true, Roles: []ctl.Role{ctl.RoleSAST, ctl.RoleCCMTFTP}, TTL: time.Hour,
		Expires: clock.now.Add(time.Hour), Server: s.addr,
	}, v)
	for role, want := range map[ctl.Role]bool{
		ctl.RoleSAST: true, ctl.RoleCCMTFTP: true, ctl.RoleCCM: true, ctl.RoleTFTP: true,
		ctl.RoleCAPF: false, ctl.RoleTVS: false, ctl.RoleAppServer: false,
	} {
		assert.Equal(t, want, v.Has(role), role.ShortName())
		ok, err := c.VerifyCertificate(context.Background(), known, role)
		require.NoError(t, err)
		assert.Equal(t, want, ok, role.ShortName())
	}

	v, err = c.Verify(context.Background(), unknown)
	require.NoError(t, err)
	assert.Equal(t, &Verdict{Server: s.addr}, v, "an unknown certificate")
	assert.False(t, v.Has(ctl.RoleSAST))
	ok, err := c.VerifyCertificate(context.Background(), unknown, ctl.RoleSAST)
	assert.NoError(t, err)
	assert.False(t, ok)
}

// A valid verdict is kept for its TTL and no longer; an invalid one is
// never kept; CacheSize -1 keeps none.
func TestClientCache(t *testing.T) {
	s := svStart(t, nil)
	known, unknown := svCert(t, "known"), svCert(t, "unknown")
	s.put(t, known, 10*time.Minute, ctl.RoleCAPF)
	clock := &clClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := s.client()
	c.Time = clock.Now
	ctx := context.Background()

	first, err := c.Verify(ctx, known)
	require.NoError(t, err)
	assert.False(t, first.Cached)
	assert.EqualValues(t, 1, s.store.lookups.Load())

	clock.advance(10*time.Minute - time.Second)
	v, err := c.Verify(ctx, known)
	require.NoError(t, err)
	assert.True(t, v.Cached)
	assert.Equal(t, first.Expires, v.Expires)
	assert.Equal(t, first.Roles, v.Roles)
	assert.EqualValues(t, 1, s.store.lookups.Load(), "answered from the cache")
	v.Roles[0] = ctl.RoleTVS // the caller's copy
	v, err = c.Verify(ctx, known)
	require.NoError(t, err)
	assert.Equal(t, []ctl.Role{ctl.RoleCAPF}, v.Roles, "the cache shares no memory with callers")

	// The cache answers even with the server gone, until the TTL ends.
	s.store.fail.Store(true)
	_, err = c.Verify(ctx, known)
	require.NoError(t, err)
	clock.advance(time.Second) // the TTL has ended
	_, err = c.Verify(ctx, known)
	assert.Error(t, err, "asked again once the TTL ended")
	assert.EqualValues(t, 2, s.store.lookups.Load())
	s.store.fail.Store(false)
	v, err = c.Verify(ctx, known)
	require.NoError(t, err)
	assert.False(t, v.Cached)
	assert.Equal(t, clock.Now().Add(10*time.Minute), v.Expires)

	before := s.store.lookups.Load()
	for range 3 {
		v, err := c.Verify(ctx, unknown)
		require.NoError(t, err)
		assert.False(t, v.Valid || v.Cached)
	}
	assert.Equal(t, before+3, s.store.lookups.Load(), "invalid verdicts are not kept")

	off := s.client()
	off.CacheSize = -1
	before = s.store.lookups.Load()
	for range 3 {
		v, err := off.Verify(ctx, known)
		require.NoError(t, err)
		assert.True(t, v.Valid && !v.Cached)
	}
	assert.Equal(t, before+3, s.store.lookups.Load(), "CacheSize -1 keeps nothing")
}

// A full cache drops expired verdicts first, then the one that expires
// first.
func TestClientCacheEviction(t *testing.T) {
	s := svStart(t, nil)
	a, b, c3 := svCert(t, "a"), svCert(t, "b"), svCert(t, "c")
	s.put(t, a, time.Hour, ctl.RoleCCM)
	s.put(t, b, time.Minute, ctl.RoleCCM) // expires first
	s.put(t, c3, 2*time.Hour, ctl.RoleCCM)
	clock := &clClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := s.client()
	c.Time = clock.Now
	c.CacheSize = 2
	ctx := context.Background()
	cached := func(cert *x509.Certificate) bool {
		v, err := c.Verify(ctx, cert)
		require.NoError(t, err)
		return v.Cached
	}
	cached(a)
	cached(b)
	cached(c3) // evicts b
	assert.True(t, cached(a))
	assert.True(t, cached(c3))
	assert.False(t, cached(b)) // evicts a, now the first to expire
	assert.True(t, cached(b))
	assert.False(t, cached(a))
}

// Servers are tried in order; the first that answers decides.
func TestClientServers(t *testing.T) {
	s := svStart(t, nil)
	cert := svCert(t, "known")
	s.put(t, cert, 0, ctl.RoleCCM)
	down := closedPort(t)
	c := s.client()
	c.Servers = []string{down, s.addr}
	v, err := c.Verify(context.Background(), cert)
	require.NoError(t, err)
	assert.Equal(t, s.addr, v.Server)

	c = s.client()
	c.Servers = []string{down, closedPort(t)}
	_, err = c.Verify(context.Background(), cert)
	require.Error(t, err)
	assert.Contains(t, err.Error(), down, "every server's error is reported")
	assert.Contains(t, err.Error(), c.Servers[1])

	// The port defaults to 2445.
	c = s.client()
	c.Servers = []string{"127.0.0.1"}
	c.Timeout = 2 * time.Second
	_, err = c.Verify(context.Background(), cert)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "127.0.0.1:2445")
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// The TVS certificate is pinned to TVSCertificates, the phone's TVS
// records: another certificate, even one they issued, is refused. No host
// name is checked; a ServerName is only sent.
func TestClientTLS(t *testing.T) {
	s := svStart(t, nil)
	cert := svCert(t, "known")
	s.put(t, cert, 0, ctl.RoleCCM)
	c := s.client()
	c.TVSCertificates = []*x509.Certificate{svImpostor(t).cert}
	_, err := c.Verify(context.Background(), cert)
	assert.ErrorIs(t, err, tlspin.ErrNotPinned)

	// An impostor TVS the phone does not trust is never believed.
	imp := svStart(t, func(srv *Server) {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{svImpostor(t).tls()}}
	})
	imp.put(t, cert, 0, ctl.RoleSAST)
	c = s.client()
	c.Servers = []string{imp.addr}
	_, err = c.Verify(context.Background(), cert)
	assert.ErrorIs(t, err, tlspin.ErrNotPinned)

	// Nor is a server whose certificate the trusted TVS certificate
	// issued: a phone pins the record's certificate itself.
	caKey, leafKey := testpki.NewKey(t, testpki.EC256), testpki.NewKey(t, testpki.EC256)
	tvsCA := testpki.SelfSigned(t, testpki.CA("TVS CA"), caKey)
	leaf := testpki.Issue(t, testpki.Leaf("SEP00000000BEEF"), tvsCA, leafKey.Public(), caKey)
	issued := svStart(t, func(srv *Server) {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(leaf, leafKey, tvsCA)}}
	})
	issued.put(t, cert, 0, ctl.RoleSAST)
	c = issued.client()
	c.TVSCertificates = []*x509.Certificate{tvsCA}
	_, err = c.Verify(context.Background(), cert)
	assert.ErrorIs(t, err, tlspin.ErrNotPinned)

	c = s.client()
	c.CacheSize = -1
	c.TLSConfig = &tls.Config{ServerName: "other.example.com"}
	_, err = c.Verify(context.Background(), cert)
	assert.NoError(t, err)
}

// With a ClientSessionCache the client resumes its TLS sessions; without,
// it makes a full handshake each time.
func TestClientSessionResumption(t *testing.T) {
	s := svStart(t, nil)
	cert := svCert(t, "known")
	s.put(t, cert, 0, ctl.RoleCCM)
	for _, tc := range []struct {
		name    string
		version uint16
		cache   bool
	}{
		{"TLS 1.3 with cache", tls.VersionTLS13, true},
		{"TLS 1.2 with cache", tls.VersionTLS12, true},
		{"TLS 1.3 without cache", tls.VersionTLS13, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var resumed []bool
			c := s.client()
			c.CacheSize = -1
			c.TLSConfig.MaxVersion = tc.version
			c.TLSConfig.VerifyConnection = func(cs tls.ConnectionState) error {
				mu.Lock()
				resumed = append(resumed, cs.DidResume)
				mu.Unlock()
				return nil
			}
			if tc.cache {
				c.TLSConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			for range 3 {
				v, err := c.Verify(context.Background(), cert)
				require.NoError(t, err)
				require.True(t, v.Valid)
			}
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []bool{false, tc.cache, tc.cache}, resumed)
		})
	}
}

// The request: VERIFY_REQUEST, version 1, reserved 0, a random id, the
// DEVICE_NAME with its 0x01 prefix, the certificate as DER.
func TestClientRequest(t *testing.T) {
	f := clStartFake(t, func(req *capfwire.TVSFrame) []byte {
		return clResponse(req, svEl(capfwire.TVSTagStatus, []byte{1}))
	})
	cert := svCert(t, "asked")
	c := f.client()
	_, err := c.Verify(context.Background(), cert) // DeviceName "": the default
	require.NoError(t, err)
	c.DeviceName = svDevice
	_, err = c.Verify(context.Background(), cert)
	require.NoError(t, err)
	reqs := f.requests()
	require.Len(t, reqs, 2)
	for i, req := range reqs {
		assert.EqualValues(t, 1, req.Version)
		assert.Equal(t, capfwire.TVSCmdVerifyRequest, req.Command)
		assert.Zero(t, req.Reserved)
		v, _ := req.Get(capfwire.TVSTagDeviceName)
		want := []string{DefaultDeviceName, svDevice}[i]
		assert.Equal(t, append([]byte{1}, want...), v)
		der, err := req.Certificate()
		require.NoError(t, err)
		assert.Equal(t, cert.Raw, der)
		assert.Len(t, req.Elements, 2)
	}
	assert.NotEqual(t, reqs[0].ID, reqs[1].ID, "ids are random")
}

// Answers that do not answer the request are errors, never verdicts.
func TestClientBadAnswers(t *testing.T) {
	status := func(s byte) capfwire.Element { return svEl(capfwire.TVSTagStatus, []byte{s}) }
	roles := svEl(capfwire.TVSTagRoles, []byte{0})
	ttl := svEl(capfwire.TVSTagTTL, []byte{0, 0, 0x0e, 0x10})
	marshal := func(f *capfwire.TVSFrame) []byte {
		b, err := f.Marshal()
		if err != nil {
			panic(err)
		}
		return b
	}
	tests := []struct {
		name   string
		answer func(req *capfwire.TVSFrame) []byte
		proto  bool // the error is ErrProtocol
	}{
		{"another id", func(req *capfwire.TVSFrame) []byte {
			return marshal(&capfwire.TVSFrame{Version: 1, Command: capfwire.TVSCmdVerifyResponse, ID: req.ID + 1, Elements: capfwire.Elements{status(0), roles, ttl}})
		}, true},
		{"another command", func(req *capfwire.TVSFrame) []byte {
			return marshal(&capfwire.TVSFrame{Version: 1, Command: capfwire.TVSCmdQueryResponse, ID: req.ID, Elements: capfwire.Elements{status(0), roles, ttl}})
		}, true},
		{"another version", func(req *capfwire.TVSFrame) []byte {
			return marshal(&capfwire.TVSFrame{Version: 2, Command: capfwire.TVSCmdVerifyResponse, ID: req.ID, Elements: capfwire.Elements{status(1)}})
		}, true},
		{"no status", func(req *capfwire.TVSFrame) []byte { return clResponse(req, roles, ttl) }, true},
		{"status of two bytes", func(req *capfwire.TVSFrame) []byte {
			return clResponse(req, svEl(capfwire.TVSTagStatus, []byte{0, 0}), roles, ttl)
		}, true},
		{"valid without roles", func(req *capfwire.TVSFrame) []byte { return clResponse(req, status(0), ttl) }, true},
		{"valid with empty roles", func(req *capfwire.TVSFrame) []byte {
			return clResponse(req, status(0), svEl(capfwire.TVSTagRoles, nil), ttl)
		}, true},
		{"TTL of two bytes", func(req *capfwire.TVSFrame) []byte {
			return clResponse(req, status(0), roles, svEl(capfwire.TVSTagTTL, []byte{1, 0}))
		}, true},
		{"a CAPF frame", func(req *capfwire.TVSFrame) []byte { return svHex(t, "55 0f 00000001 0004 | 01 0001 00") }, true},
		{"truncated", func(req *capfwire.TVSFrame) []byte { return clResponse(req, status(0), roles, ttl)[:12] }, false},
		{"nothing", func(req *capfwire.TVSFrame) []byte { return nil }, false},
	}
	cert := svCert(t, "asked")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clStartFake(t, tt.answer).client()
			v, err := c.Verify(context.Background(), cert)
			assert.Nil(t, v)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "tvs: "), err.Error())
			if tt.proto {
				assert.ErrorIs(t, err, ErrProtocol)
			}
			ok, err := c.VerifyCertificate(context.Background(), cert, ctl.RoleSAST)
			assert.False(t, ok)
			assert.Error(t, err)
		})
	}
}

// Answers the client accepts as they come: a status other than 0 is
// "not trusted", a valid answer without TTL is not cached, a TTL over 30
// days is cut to 30 days, unknown roles are kept.
func TestClientOddAnswers(t *testing.T) {
	cert := svCert(t, "asked")
	clock := &clClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	tests := []struct {
		name   string
		elems  []capfwire.Element
		want   *Verdict
		cached bool
	}{
		{"status 2", []capfwire.Element{svEl(capfwire.TVSTagStatus, []byte{2}), svEl(capfwire.TVSTagRoles, []byte{0}), svEl(capfwire.TVSTagTTL, []byte{0, 0, 0, 60})},
			&Verdict{}, false},
		{"valid, no TTL", []capfwire.Element{svEl(capfwire.TVSTagStatus, []byte{0}), svEl(capfwire.TVSTagRoles, []byte{4})},
			&Verdict{Valid: true, Roles: []ctl.Role{ctl.RoleCAPF}, Expires: clock.now}, false},
		{"valid, TTL 0", []capfwire.Element{svEl(capfwire.TVSTagStatus, []byte{0}), svEl(capfwire.TVSTagRoles, []byte{4}), svEl(capfwire.TVSTagTTL, []byte{0, 0, 0, 0})},
			&Verdict{Valid: true, Roles: []ctl.Role{ctl.RoleCAPF}, Expires: clock.now}, false},
		{"valid, TTL a year", []capfwire.Element{svEl(capfwire.TVSTagStatus, []byte{0}), svEl(capfwire.TVSTagRoles, []byte{21, 99}), svEl(capfwire.TVSTagTTL, []byte{0x01, 0xe1, 0x33, 0x80})},
			&Verdict{Valid: true, Roles: []ctl.Role{ctl.RoleTVS, 99}, TTL: MaxTTL, Expires: clock.now.Add(MaxTTL)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := clStartFake(t, func(req *capfwire.TVSFrame) []byte { return clResponse(req, tt.elems...) })
			c := f.client()
			c.Time = clock.Now
			v, err := c.Verify(context.Background(), cert)
			require.NoError(t, err)
			tt.want.Server = f.addr
			assert.Equal(t, tt.want, v)
			v, err = c.Verify(context.Background(), cert)
			require.NoError(t, err)
			assert.Equal(t, tt.cached, v.Cached)
		})
	}
}

// A server that never answers costs Timeout, or less if the context ends
// first.
func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := clStartFake(t, func(*capfwire.TVSFrame) []byte { <-release; return nil })
	cert := svCert(t, "asked")
	c := f.client()
	c.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := c.Verify(context.Background(), cert)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 3*time.Second)

	c.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = c.Verify(ctx, cert)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 3*time.Second)

	// A cancelled context stops before the next server.
	c.Servers = []string{f.addr, f.addr}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	before := len(f.requests())
	_, err = c.Verify(ctx, cert)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, before+1, len(f.requests()))
}

func TestClientInvalid(t *testing.T) {
	cert := svCert(t, "asked")
	pins := []*x509.Certificate{svTVS(t).cert}
	tests := []struct {
		name string
		c    *Client
		cert *x509.Certificate
	}{
		{"no servers", &Client{TVSCertificates: pins}, cert},
		{"no TVSCertificates", &Client{Servers: []string{"127.0.0.1"}}, cert},
		{"no TVSCertificates, a TLS config", &Client{Servers: []string{"127.0.0.1"}, TLSConfig: &tls.Config{}}, cert},
		{"RootCAs: would trust what the TVS certificate issued", &Client{Servers: []string{"127.0.0.1"}, TVSCertificates: pins, TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}}, cert},
		{"no certificate", &Client{Servers: []string{"127.0.0.1"}, TVSCertificates: pins}, nil},
		{"certificate without DER", &Client{Servers: []string{"127.0.0.1"}, TVSCertificates: pins}, &x509.Certificate{}},
		{"certificate too long", &Client{Servers: []string{"127.0.0.1"}, TVSCertificates: pins}, &x509.Certificate{Raw: make([]byte, 65500)}},
		{"device name with a NUL", &Client{Servers: []string{"127.0.0.1"}, TVSCertificates: pins, DeviceName: "CP\x00"}, cert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Verify(context.Background(), tt.cert)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

// One client, many goroutines, several certificates: every answer is the
// right one (run with -race).
func TestClientConcurrent(t *testing.T) {
	// The clients all come from 127.0.0.1: no per-host bound.
	s := svStart(t, func(srv *Server) { srv.MaxConnsPerHost = -1 })
	certs := make([]*x509.Certificate, 6)
	for i := range certs {
		certs[i] = svCert(t, "c")
		if i%2 == 0 {
			s.put(t, certs[i], time.Minute, ctl.RoleCCM)
		}
	}
	c := s.client()
	c.CacheSize = 2
	c.TLSConfig.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			v, err := c.Verify(context.Background(), certs[i%len(certs)])
			switch {
			case err != nil:
				errs <- err
			case v.Valid != (i%len(certs)%2 == 0):
				errs <- errors.New("wrong verdict")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
