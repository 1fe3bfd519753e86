package capf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The server tests run Server and Client against each other over real TLS
// on 127.0.0.1, with a memory store, a local CA and a fake manufacturing
// PKI generated once per test binary.

type stPKI struct {
	capf     *x509.Certificate // CAPF certificate and LSC issuer
	capfKey  crypto.Signer
	micRoot  *x509.Certificate
	micCA    *x509.Certificate // intermediate
	micCAKey crypto.Signer
	keys     map[KeySpec]crypto.Signer // phone keys, one per spec
	rsaAlt   crypto.Signer             // a second RSA-2048 key
}

var (
	stOnce sync.Once
	stP    *stPKI
)

// stPKIGet returns the test PKI, made on first use: an RSA-2048 CAPF
// certificate, a manufacturing PKI and the phones' keys.
func stPKIGet(t testing.TB) *stPKI {
	t.Helper()
	stOnce.Do(func() {
		p := &stPKI{keys: map[KeySpec]crypto.Signer{}}
		for _, spec := range []KeySpec{RSA1024, RSA2048, EC256, EC384, EC521} {
			p.keys[spec] = testpki.Key(t, testpki.KeyKind(spec.String()))
		}
		p.rsaAlt, p.capfKey = testpki.NewKey(t, testpki.RSA2048), testpki.NewKey(t, testpki.RSA2048)
		p.capf = testpki.SelfSigned(t, testpki.CA("CAPF-test"), p.capfKey)
		p.micRoot, p.micCA, p.micCAKey = testpki.Chain(t)
		stP = p
	})
	return stP
}

// mic issues a manufacturing certificate for cn, valid from nb to na.
func (p *stPKI) mic(t testing.TB, cn string, pub crypto.PublicKey, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := testpki.MIC(cn)
	tmpl.NotBefore, tmpl.NotAfter = nb, na
	return testpki.Issue(t, tmpl, p.micCA, pub, p.micCAKey)
}

type stServer struct {
	addr  string
	store Store
	srv   *Server
	pki   *stPKI
}

// stStart runs a server with a memory store until the test ends.
func stStart(t testing.TB, configure func(*Server)) *stServer {
	t.Helper()
	return stStartOn(t, NewMemoryStore(), configure)
}

// stStartOn runs a server with the store st until the test ends.
func stStartOn(t testing.TB, st Store, configure func(*Server)) *stServer {
	t.Helper()
	p := stPKIGet(t)
	srv := &Server{
		Store:            st,
		Issuer:           &LocalCA{Certificate: p.capf, Signer: p.capfKey},
		TLSConfig:        &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(p.capf, p.capfKey)}},
		MICRoots:         testpki.Pool(p.micRoot),
		MICIntermediates: testpki.Pool(p.micCA),
		AuthTimeout:      5 * time.Second,
		KeyGenTimeout:    5 * time.Second,
		ShutdownTimeout:  2 * time.Second,
	}
	if configure != nil {
		configure(srv)
	}
	addr := stServe(t, srv)
	return &stServer{addr: addr, store: st, srv: srv, pki: p}
}

// stServe runs srv on a loopback listener until the test ends and returns
// its address.
func stServe(t testing.TB, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// phone returns a client for device that trusts the CAPF and answers key
// requests with the pre-generated keys.
func (s *stServer) phone(device string) *Client {
	return &Client{
		Device:           device,
		CAPFCertificates: []*x509.Certificate{s.pki.capf},
		GenerateKey: func(spec KeySpec) (crypto.Signer, error) {
			if k, ok := s.pki.keys[spec]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("no test key for %v", spec)
		},
		Timeout: 5 * time.Second,
	}
}

func (s *stServer) schedule(t testing.TB, device string, sch Schedule) {
	t.Helper()
	if err := ScheduleOperation(context.Background(), s.store, device, sch, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func (s *stServer) device(t testing.TB, name string) *Device {
	t.Helper()
	d, err := LookupDevice(context.Background(), s.store, name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func stEnroll(t testing.TB, c *Client, addr string) (*Outcome, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Enroll(ctx, addr)
}

func stReason(err error) int {
	var ee *EndError
	if errors.As(err, &ee) {
		return int(ee.Reason)
	}
	return -1
}

const stDev = "SEP001122334455"

// stLying claims one public key and signs with another key.
type stLying struct {
	pub crypto.PublicKey
	crypto.Signer
}

func (l stLying) Public() crypto.PublicKey { return l.pub }

func TestServerInstallKeys(t *testing.T) {
	s := stStart(t, nil)
	for i, spec := range []KeySpec{RSA1024, RSA2048, EC256, EC384, EC521} {
		t.Run(spec.String(), func(t *testing.T) {
			dev := fmt.Sprintf("SEP0000000000%02X", i)
			s.schedule(t, dev, Schedule{Operation: OpInstall, Key: spec})
			out, err := stEnroll(t, s.phone(dev), s.addr)
			if err != nil {
				t.Fatal(err)
			}
			if out.Reason != capfwire.ReasonOK || out.Operation != OpInstall || out.Certificate == nil {
				t.Fatalf("outcome %+v", out)
			}
			if !spec.Matches(out.Certificate.PublicKey) || out.Certificate.Subject.CommonName != dev {
				t.Fatalf("certificate for %v %q", out.Certificate.PublicKey, out.Certificate.Subject.CommonName)
			}
			if _, err := out.Certificate.Verify(x509.VerifyOptions{Roots: testpki.Pool(s.pki.capf), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatal(err)
			}
			d := s.device(t, dev)
			if d.Pending != nil || d.Last == nil || d.Last.Failure != FailNone || d.Last.Serial != SerialHex(out.Certificate.SerialNumber) {
				t.Fatalf("device after install: %+v last %+v", d, d.Last)
			}
			if string(d.Certificate) != string(out.Certificate.Raw) || d.Status() != "Upgrade Success" {
				t.Fatalf("stored certificate or status %q", d.Status())
			}
			iss, err := ListIssued(context.Background(), s.store, dev)
			if err != nil || len(iss) != 1 || iss[0].Serial != d.Last.Serial {
				t.Fatalf("issued %v %v", iss, err)
			}
		})
	}
}

func TestServerAuthString(t *testing.T) {
	s := stStart(t, func(srv *Server) { srv.MaxAuthFailures = 3 })
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: AuthString, AuthString: "123456", Key: EC256})
	c := s.phone(stDev)
	c.AuthString = "654321"
	for i := 1; i <= 2; i++ {
		_, err := stEnroll(t, c, s.addr)
		if stReason(err) != 7 || !errors.Is(err, ErrRefused) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		d := s.device(t, stDev)
		if d.Pending == nil || d.Pending.Failures != i || d.Last.Failure != FailAuthString {
			t.Fatalf("attempt %d: %+v %+v", i, d.Pending, d.Last)
		}
	}
	c.AuthString = "123456"
	if out, err := stEnroll(t, c, s.addr); err != nil || out.Certificate == nil {
		t.Fatalf("right string: %v", err)
	}
	if d := s.device(t, stDev); d.Pending != nil || d.Last.Failure != FailNone {
		t.Fatalf("after success: %+v", d.Last)
	}

	// Lockout: the third wrong string ends the operation; even the right
	// one is then refused.
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: AuthString, AuthString: "2468", Key: EC256})
	c.AuthString = "1111"
	for i := 0; i < 3; i++ {
		if _, err := stEnroll(t, c, s.addr); stReason(err) != 7 {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	d := s.device(t, stDev)
	if d.Pending != nil || d.Last.Failure != FailLocked || d.Status() != "Upgrade Failed: Authentication Locked" {
		t.Fatalf("after lockout: %+v %q", d.Pending, d.Status())
	}
	c.AuthString = "2468"
	out, err := stEnroll(t, c, s.addr)
	if err != nil || out.Reason != capfwire.ReasonNoAction {
		t.Fatalf("after lockout, right string: %+v %v", out, err)
	}
}

// Concurrent wrong guesses are counted one by one: no more than
// MaxAuthFailures of them are ever compared.
func TestServerAuthStringConcurrentGuesses(t *testing.T) {
	s := stStart(t, func(srv *Server) { srv.MaxAuthFailures = 3 })
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: AuthString, AuthString: "0000", Key: EC256})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			c := s.phone(stDev)
			c.AuthString = fmt.Sprintf("%04d", i+1)
			stEnroll(t, c, s.addr)
		})
	}
	wg.Wait()
	d := s.device(t, stDev)
	if d.Pending != nil || d.Last.Failure != FailLocked {
		t.Fatalf("%+v %+v", d.Pending, d.Last)
	}
}

func TestServerNullAndNothing(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: RSA2048})
	c := s.phone(stDev)
	c.AuthString = "whatever"
	if _, err := stEnroll(t, c, s.addr); err != nil {
		t.Fatal(err)
	}
	// Nothing scheduled now: END_SESSION 0.
	out, err := stEnroll(t, c, s.addr)
	if err != nil || out.Operation != OpNone || out.Reason != capfwire.ReasonNoAction {
		t.Fatalf("%+v %v", out, err)
	}
	// Unknown device: END_SESSION 9.
	_, err = stEnroll(t, s.phone("SEP00000000FFFF"), s.addr)
	if stReason(err) != 9 || !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("unknown device: %v", err)
	}
}

func TestServerDeadline(t *testing.T) {
	now := time.Now()
	clock := now
	var mu sync.Mutex
	s := stStart(t, func(srv *Server) {
		srv.Time = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	})
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256, Deadline: now.Add(time.Hour)})
	mu.Lock()
	clock = now.Add(2 * time.Hour)
	mu.Unlock()
	if _, err := stEnroll(t, s.phone(stDev), s.addr); stReason(err) != 7 {
		t.Fatalf("late: %v", err)
	}
	d := s.device(t, stDev)
	if d.Pending != nil || d.Last.Failure != FailDeadline || d.Status() != "Upgrade Failed: User Initiated Request Late" {
		t.Fatalf("%+v %q", d.Pending, d.Status())
	}
}

func TestServerCertificateAuth(t *testing.T) {
	s := stStart(t, nil)
	lenient := stStart(t, func(srv *Server) { srv.AllowExpiredMIC = true })
	p := s.pki
	now := time.Now()
	micKey := p.rsaAlt
	goodMIC := p.mic(t, "CP-7962G-"+stDev, micKey.Public(), now.Add(-time.Hour), now.Add(time.Hour))
	expired := p.mic(t, "CP-7962G-"+stDev, micKey.Public(), now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	other := p.mic(t, "CP-7962G-SEP665544332211", micKey.Public(), now.Add(-time.Hour), now.Add(time.Hour))

	// First an LSC by null string, then LSC authentication with it.
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	out, err := stEnroll(t, s.phone(stDev), s.addr)
	if err != nil {
		t.Fatal(err)
	}
	lsc, lscKey := out.Certificate, out.Key

	cases := []struct {
		name   string
		mode   AuthMode
		cert   *x509.Certificate
		key    crypto.Signer
		mic    bool
		expire bool // AllowExpiredMIC
		ok     bool
	}{
		{"lsc", AuthLSC, lsc, lscKey, false, false, true},
		{"lsc wrong key", AuthLSC, lsc, stLying{lsc.PublicKey, p.keys[EC384]}, false, false, false},
		{"mic", AuthMIC, goodMIC, micKey, true, false, true},
		{"mic in lsc mode", AuthLSC, goodMIC, micKey, true, false, true},
		{"mic for another device", AuthMIC, other, micKey, true, false, false},
		{"expired mic", AuthMIC, expired, micKey, true, false, false},
		{"expired mic allowed", AuthMIC, expired, micKey, true, true, true},
		{"self-signed", AuthMIC, testpki.SelfSigned(t, testpki.CA(stDev), micKey), micKey, true, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := s
			if tc.expire {
				s = lenient
			}
			s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: tc.mode, Key: RSA2048})
			c := s.phone(stDev)
			c.Certificate, c.Key, c.MIC = tc.cert, tc.key, tc.mic
			out, err := stEnroll(t, c, s.addr)
			d := s.device(t, stDev)
			if tc.ok {
				if err != nil || out.Certificate == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			// Refused, and nothing recorded for an unauthenticated device:
			// the operation stays pending and its status unchanged.
			if stReason(err) != 7 || d.Last.Failure == FailAuthCertificate || d.Pending == nil {
				t.Fatalf("accepted or wrong record: %v %+v", err, d.Last)
			}
		})
	}
}

func TestServerFetchDelete(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	out, err := stEnroll(t, s.phone(stDev), s.addr)
	if err != nil {
		t.Fatal(err)
	}
	lsc := out.Certificate

	// Fetch: the phone sends its LSC, the server keeps it; END 0.
	s.schedule(t, stDev, Schedule{Operation: OpFetch})
	c := s.phone(stDev)
	c.Current = lsc
	out, err = stEnroll(t, c, s.addr)
	if err != nil || out.Operation != OpFetch || out.Reason != capfwire.ReasonNoAction {
		t.Fatalf("fetch: %+v %v", out, err)
	}
	d := s.device(t, stDev)
	if string(d.Fetched) != string(lsc.Raw) || d.Pending != nil || d.Status() != "Troubleshoot Success" {
		t.Fatalf("after fetch: %q", d.Status())
	}

	// Fetch from a phone without a certificate: END 7, operation over.
	s.schedule(t, stDev, Schedule{Operation: OpFetch})
	c.Current = nil
	if _, err = stEnroll(t, c, s.addr); stReason(err) != 7 {
		t.Fatalf("fetch without certificate: %v", err)
	}
	if d := s.device(t, stDev); d.Pending != nil || d.Last.Failure != FailNoCertificate {
		t.Fatalf("after failed fetch: %q", d.Status())
	}

	// Delete: END 1, the record forgets the LSC.
	s.schedule(t, stDev, Schedule{Operation: OpDelete})
	c.Current = lsc
	out, err = stEnroll(t, c, s.addr)
	if err != nil || !out.Deleted || out.Reason != capfwire.ReasonOK {
		t.Fatalf("delete: %+v %v", out, err)
	}
	if d := s.device(t, stDev); d.Certificate != nil || d.Pending != nil || d.Status() != "Delete Success" {
		t.Fatalf("after delete: %q", d.Status())
	}

	// Delete on a phone without an LSC: the aim holds (END 1), the result
	// says there was none.
	s.schedule(t, stDev, Schedule{Operation: OpDelete})
	c.Current = nil
	if out, err = stEnroll(t, c, s.addr); err != nil || out.Reason != capfwire.ReasonOK {
		t.Fatalf("delete without certificate: %+v %v", out, err)
	}
	if d := s.device(t, stDev); d.Last.Failure != FailNoCertificate || d.Pending != nil {
		t.Fatalf("after empty delete: %q", d.Status())
	}
}

// Jabber answers with VERSION 2 and no PASSWORD.
func TestServerJabberStyle(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, "CSFUSER01", Schedule{Operation: OpInstall, Key: EC256})
	p := stDial(t, s)
	sid := p.auth(2, "CSFUSER01", nil)
	f := p.recv(capfwire.CmdKeyGenerateRequest)
	if kt, _ := f.Uint8(capfwire.TagKeyType); kt != capfwire.KeyTypeEC {
		t.Fatalf("key type %d", kt)
	}
	p.send(&capfwire.Frame{Command: capfwire.CmdRequestInProgress, Session: sid})
	p.send(&capfwire.Frame{Command: capfwire.CmdRequestInProgress, Session: sid})
	p.sendPublicKey(sid, s.pki.keys[EC256].Public())
	f = p.recv(capfwire.CmdStoreCertificateRequest)
	if _, _, err := f.Certificate(); err != nil {
		t.Fatal(err)
	}
	ok := &capfwire.Frame{Command: capfwire.CmdStoreCertificateResponse, Session: sid}
	ok.AddUint8(capfwire.TagReason, 1)
	p.send(ok)
	if r := p.end(); r != capfwire.ReasonOK {
		t.Fatalf("END reason %d", r)
	}
}

// stPeer is a raw CAPF device for protocol tests.
type stPeer struct {
	t    testing.TB
	conn *tls.Conn
}

// stDial connects a raw device to the server; the connection has ten
// seconds for everything.
func stDial(t testing.TB, s *stServer) *stPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d tls.Dialer
	d.Config = &tls.Config{ServerName: "CAPF-test", InsecureSkipVerify: true} // a raw device: trust is not under test
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*tls.Conn)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { tc.Close() })
	return &stPeer{t, tc}
}

func (p *stPeer) send(f *capfwire.Frame) {
	p.t.Helper()
	if err := capfwire.WriteFrame(p.conn, f); err != nil {
		p.t.Fatal(err)
	}
}

func (p *stPeer) recv(want capfwire.Command) *capfwire.Frame {
	p.t.Helper()
	f, err := capfwire.ReadFrame(p.conn)
	if err != nil {
		p.t.Fatal(err)
	}
	if f.Command != want {
		r, _ := f.Uint8(capfwire.TagReason)
		p.t.Fatalf("got %v (reason %d), want %v", f.Command, r, want)
	}
	return f
}

// auth reads AUTH_REQUEST and answers with the given version and device
// name and, if extra is not nil, more elements.
func (p *stPeer) auth(version uint8, device string, extra []capfwire.Element) uint32 {
	p.t.Helper()
	f := p.recv(capfwire.CmdAuthRequest)
	if v, _ := f.Uint8(capfwire.TagVersion); v != 3 {
		p.t.Fatalf("AUTH_REQUEST version %d", v)
	}
	r := &capfwire.Frame{Command: capfwire.CmdAuthResponse, Session: f.Session}
	r.AddUint8(capfwire.TagReason, 1)
	r.AddUint8(capfwire.TagVersion, version)
	if device != "" {
		r.AddString(capfwire.TagDeviceName, device)
	}
	r.Elements = append(r.Elements, extra...)
	p.send(r)
	return f.Session
}

// end reads END_SESSION and returns its reason, then expects the server to
// close the connection.
func (p *stPeer) end() uint8 {
	p.t.Helper()
	f := p.recv(capfwire.CmdEndSession)
	r, err := f.Uint8(capfwire.TagReason)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := capfwire.ReadFrame(p.conn); err == nil {
		p.t.Fatal("frame after END_SESSION")
	}
	return r
}

func TestServerProtocolErrors(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	name := func(n string) []byte { return append([]byte(n), 0) }
	cases := []struct {
		name   string
		script func(p *stPeer) uint8
		want   uint8
	}{
		{"version 4", func(p *stPeer) uint8 { p.auth(4, stDev, nil); return p.end() }, 7},
		{"version 0", func(p *stPeer) uint8 { p.auth(0, stDev, nil); return p.end() }, 7},
		{"no device name", func(p *stPeer) uint8 { p.auth(3, "", nil); return p.end() }, 7},
		{"device name twice", func(p *stPeer) uint8 {
			p.auth(3, stDev, []capfwire.Element{{Tag: capfwire.TagDeviceName, Value: name("SEP665544332211")}})
			return p.end()
		}, 7},
		{"device name not text", func(p *stPeer) uint8 {
			f := p.recv(capfwire.CmdAuthRequest)
			r := &capfwire.Frame{Command: capfwire.CmdAuthResponse, Session: f.Session}
			r.AddUint8(capfwire.TagVersion, 3)
			r.Add(capfwire.TagDeviceName, []byte(stDev))
			p.send(r)
			return p.end()
		}, 7},
		{"device name with space", func(p *stPeer) uint8 { p.auth(3, "SEP 00", nil); return p.end() }, 7},
		{"wrong session id", func(p *stPeer) uint8 {
			f := p.recv(capfwire.CmdAuthRequest)
			r := &capfwire.Frame{Command: capfwire.CmdAuthResponse, Session: f.Session + 1}
			r.AddUint8(capfwire.TagVersion, 3)
			r.AddString(capfwire.TagDeviceName, stDev)
			p.send(r)
			return p.end()
		}, 7},
		{"unexpected command", func(p *stPeer) uint8 {
			f := p.recv(capfwire.CmdAuthRequest)
			p.send(&capfwire.Frame{Command: capfwire.CmdStatusRequest, Session: f.Session})
			return p.end()
		}, 7},
		{"not a frame", func(p *stPeer) uint8 {
			p.recv(capfwire.CmdAuthRequest)
			p.conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			return p.end()
		}, 7},
		{"unknown tag ignored", func(p *stPeer) uint8 {
			sid := p.auth(3, "SEP00000000AAAA", []capfwire.Element{{Tag: 99, Value: []byte{1}}})
			_ = sid
			return p.end()
		}, 9},
		{"no public key", func(p *stPeer) uint8 {
			sid := p.auth(3, stDev, nil)
			p.recv(capfwire.CmdKeyGenerateRequest)
			r := &capfwire.Frame{Command: capfwire.CmdKeyGenerateResponse, Session: sid}
			r.AddUint8(capfwire.TagReason, 7)
			p.send(r)
			return p.end()
		}, 7},
		{"wrong key type", func(p *stPeer) uint8 {
			sid := p.auth(3, stDev, nil)
			p.recv(capfwire.CmdKeyGenerateRequest)
			p.sendPublicKey(sid, s.pki.keys[EC384].Public())
			return p.end()
		}, 7},
		{"garbage key", func(p *stPeer) uint8 {
			sid := p.auth(3, stDev, nil)
			p.recv(capfwire.CmdKeyGenerateRequest)
			p.send(&capfwire.Frame{Command: capfwire.CmdKeyGenerateResponse, Session: sid, Elements: []capfwire.Element{{Tag: capfwire.TagPublicKey, Value: []byte{0x30, 0x03, 1, 2, 3}}}})
			return p.end()
		}, 7},
		{"too many in progress", func(p *stPeer) uint8 {
			sid := p.auth(3, stDev, nil)
			p.recv(capfwire.CmdKeyGenerateRequest)
			for range maxInProgress + 1 {
				p.send(&capfwire.Frame{Command: capfwire.CmdRequestInProgress, Session: sid})
			}
			return p.end()
		}, 7},
		{"store refused", func(p *stPeer) uint8 {
			sid := p.auth(3, stDev, nil)
			p.recv(capfwire.CmdKeyGenerateRequest)
			p.sendPublicKey(sid, s.pki.keys[EC256].Public())
			p.recv(capfwire.CmdStoreCertificateRequest)
			r := &capfwire.Frame{Command: capfwire.CmdStoreCertificateResponse, Session: sid}
			r.AddUint8(capfwire.TagReason, 7)
			p.send(r)
			return p.end()
		}, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := stDial(t, s)
			if got := tc.script(p); got != tc.want {
				t.Fatalf("END reason %d, want %d", got, tc.want)
			}
		})
	}
	// The operation survived every failure above but the last: once a
	// certificate went out, the operation is over, stored or not.
	d := s.device(t, stDev)
	if d.Pending != nil || d.Last.Failure != FailStore || d.Certificate != nil {
		t.Fatalf("after protocol errors: %+v %+v", d.Pending, d.Last)
	}
	if out, err := stEnroll(t, s.phone(stDev), s.addr); err != nil || out.Operation != OpNone {
		t.Fatal(err)
	}
	// The certificate the device refused to store is of no use to it.
	iss, _ := ListIssued(context.Background(), s.store, stDev)
	if len(iss) != 1 {
		t.Fatalf("%d issued", len(iss))
	}
}

func TestServerSUDI(t *testing.T) {
	s := stStart(t, nil)
	p := s.pki
	now := time.Now()
	micKey := p.rsaAlt
	mic := p.mic(t, "CP-8865-"+stDev, micKey.Public(), now.Add(-time.Hour), now.Add(time.Hour))
	sudi := p.mic(t, "SUDI "+stDev, p.keys[RSA1024].Public(), now.Add(-time.Hour), now.Add(time.Hour))
	strict := stStart(t, func(srv *Server) {
		srv.RequireSUDI = true
		srv.SUDIRoots, srv.SUDIIntermediates = testpki.Pool(p.micRoot), testpki.Pool(p.micCA)
	})
	for _, tc := range []struct {
		name string
		s    *stServer
		sudi bool
		ok   bool
	}{
		{"optional, sent", s, true, true},
		{"required, missing", strict, false, false},
		{"required, sent", strict, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: AuthMIC, Key: EC256})
			c := tc.s.phone(stDev)
			c.Certificate, c.Key, c.MIC = mic, micKey, true
			if tc.sudi {
				c.SUDI, c.SUDIKey = sudi, p.keys[RSA1024]
			}
			_, err := stEnroll(t, c, tc.s.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
	// A SUDI signature over another session id is refused.
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: AuthMIC, Key: EC256})
	peer := stDial(t, s)
	f := peer.recv(capfwire.CmdAuthRequest)
	auth := func(session uint32) []capfwire.Element {
		msg := authMessage(stDev, mic.Raw)
		s1, _ := signAuth(rand.Reader, micKey, crypto.SHA1, msg)
		s5, _ := signAuth(rand.Reader, micKey, crypto.SHA512, msg)
		w5, _ := capfwire.WrapSHA2SignedData(capfwire.HashSHA512, s5)
		cw, _ := capfwire.WrapCertificate(capfwire.CertificateTypeMIC, mic.Raw)
		sm := sudiMessage(session, sudi.Raw)
		u5, _ := signAuth(rand.Reader, p.keys[RSA1024], crypto.SHA512, sm)
		sd, _ := capfwire.WrapSUDI(&capfwire.SUDI{Certificate: sudi.Raw, SHA512: u5})
		return []capfwire.Element{{Tag: capfwire.TagCertificate, Value: cw}, {Tag: capfwire.TagSignedData, Value: s1},
			{Tag: capfwire.TagSHA2SignedData, Value: w5}, {Tag: capfwire.TagSUDIData, Value: sd}}
	}
	r := &capfwire.Frame{Command: capfwire.CmdAuthResponse, Session: f.Session}
	r.AddUint8(capfwire.TagVersion, 3)
	r.AddString(capfwire.TagDeviceName, stDev)
	r.Elements = append(r.Elements, auth(f.Session+1)...)
	peer.send(r)
	if got := peer.end(); got != 7 {
		t.Fatalf("replayed SUDI: END %d", got)
	}
}

func TestServerTimeouts(t *testing.T) {
	s := stStart(t, func(srv *Server) {
		srv.AuthTimeout = 200 * time.Millisecond
		srv.KeyGenTimeout = 400 * time.Millisecond
	})
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})

	// Silent after the handshake: the server gives up after AuthTimeout
	// with END_SESSION 7.
	p := stDial(t, s)
	start := time.Now()
	p.recv(capfwire.CmdAuthRequest)
	if r := p.end(); r != 7 {
		t.Fatalf("END %d after timeout", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("server waited %v", d)
	}

	// Slow key generation: waits longer than AuthTimeout are fine up to
	// KeyGenTimeout.
	p = stDial(t, s)
	sid := p.auth(3, stDev, nil)
	p.recv(capfwire.CmdKeyGenerateRequest)
	p.send(&capfwire.Frame{Command: capfwire.CmdRequestInProgress, Session: sid})
	time.Sleep(300 * time.Millisecond)
	p.sendPublicKey(sid, s.pki.keys[EC256].Public())
	p.recv(capfwire.CmdStoreCertificateRequest)
}

func TestServerMaxConnsAndShutdown(t *testing.T) {
	p := stPKIGet(t)
	srv := &Server{
		Store:     NewMemoryStore(),
		Issuer:    &LocalCA{Certificate: p.capf, Signer: p.capfKey},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(p.capf, p.capfKey)}},
		MaxConns:  2, ShutdownTimeout: 300 * time.Millisecond,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	s := &stServer{addr: l.Addr().String(), pki: p}
	a, b := stDial(t, s), stDial(t, s)
	a.recv(capfwire.CmdAuthRequest)
	b.recv(capfwire.CmdAuthRequest)
	// A third connection is closed without a word.
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := raw.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("third connection read %d, %v", n, err)
	}
	raw.Close()
	// Shutdown: the idle sessions are closed after the grace period and
	// Serve returns ErrServerClosed.
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("Serve returned after %v, before the grace period", d)
	}
	if _, err := capfwire.ReadFrame(a.conn); err == nil {
		t.Fatal("session survived shutdown")
	}
}

func TestServerConfig(t *testing.T) {
	p := stPKIGet(t)
	good := func() *Server {
		return &Server{Store: NewMemoryStore(), Issuer: &LocalCA{Certificate: p.capf, Signer: p.capfKey},
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(p.capf, p.capfKey)}}}
	}
	for name, mut := range map[string]func(*Server){
		"no store":           func(s *Server) { s.Store = nil },
		"no issuer":          func(s *Server) { s.Issuer = nil },
		"no tls":             func(s *Server) { s.TLSConfig = nil },
		"no certificate":     func(s *Server) { s.TLSConfig = &tls.Config{} },
		"short keygen wait":  func(s *Server) { s.AuthTimeout = time.Minute; s.KeyGenTimeout = time.Second },
		"negative":           func(s *Server) { s.MaxConns = -1 },
		"sudi without roots": func(s *Server) { s.RequireSUDI = true },
	} {
		s := good()
		mut(s)
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		err := s.Serve(context.Background(), l)
		l.Close()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Many phones enrol at once, a bounded number in flight: every enrolment
// succeeds, with a serial of its own, and every certificate is in the
// issued log. This checks correctness under concurrency (claims, serials,
// the store), not speed, which is BenchmarkEnroll's: the work in flight is
// bounded, below the server's per-host cap since every phone here is
// 127.0.0.1, so that no handshake waits behind hundreds of others on a
// busy machine, and each enrolment has until the test's deadline.
func TestServerConcurrentEnrollments(t *testing.T) {
	const inFlight = 8
	n := 200
	if testing.Short() {
		n = 50
	}
	s := stStart(t, nil)
	for i := range n {
		s.schedule(t, fmt.Sprintf("SEP%012X", i), Schedule{Operation: OpInstall, Key: RSA2048})
	}
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/10))
		defer cancel()
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, inFlight)
	serials := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := s.phone(fmt.Sprintf("SEP%012X", i)).Enroll(ctx, s.addr)
			if err == nil {
				serials[i] = SerialHex(out.Certificate.SerialNumber)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
		if seen[serials[i]] {
			t.Fatalf("serial %s twice", serials[i])
		}
		seen[serials[i]] = true
	}
	iss, err := ListIssued(context.Background(), s.store, "")
	if err != nil || len(iss) != n {
		t.Fatalf("issued log: %d, %v", len(iss), err)
	}
}

// 7900-series phones speak only TLS 1.0 with AES128-SHA; openssl plays
// one. Without LegacyTLS the same handshake fails.
func TestServerLegacyTLS(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
	for _, legacy := range []bool{true, false} {
		t.Run(fmt.Sprint("legacy=", legacy), func(t *testing.T) {
			s := stStart(t, func(srv *Server) {
				srv.LegacyTLS = legacy
				srv.AuthTimeout = 500 * time.Millisecond
				srv.KeyGenTimeout = time.Second
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", s.addr, "-tls1",
				"-cipher", "AES128-SHA@SECLEVEL=0", "-ign_eof")
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			ok := strings.Contains(string(out), "Protocol  : TLSv1\n") || strings.Contains(string(out), "Protocol: TLSv1\n")
			if legacy && (!ok || err != nil) {
				t.Fatalf("TLS 1.0 refused: %v\n%s", err, out)
			}
			if !legacy && ok && err == nil {
				t.Fatalf("TLS 1.0 accepted without LegacyTLS:\n%s", out)
			}
		})
	}
}

// An LSC that was replaced or deleted no longer authenticates, however
// often it is tried and even when its replacement came in the same second.
func TestServerSupersededLSC(t *testing.T) {
	s := stStart(t, nil)
	install := func(c *Client, mode AuthMode) (*Outcome, error) {
		s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: mode, Key: EC256})
		return stEnroll(t, c, s.addr)
	}
	first, err := install(s.phone(stDev), AuthNull)
	if err != nil {
		t.Fatal(err)
	}
	c := s.phone(stDev)
	c.Certificate, c.Key = first.Certificate, first.Key
	second, err := install(c, AuthLSC)
	if err != nil {
		t.Fatalf("renewal with the current LSC: %v", err)
	}
	for i := range 2 {
		if _, err := install(c, AuthLSC); stReason(err) != 7 {
			t.Fatalf("renewal %d with the replaced LSC: %v", i, err)
		}
	}
	s.schedule(t, stDev, Schedule{Operation: OpDelete})
	c.Certificate, c.Key, c.Current = second.Certificate, second.Key, second.Certificate
	if _, err := stEnroll(t, c, s.addr); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := install(c, AuthLSC); stReason(err) != 7 {
			t.Fatalf("renewal %d with the deleted LSC: %v", i, err)
		}
	}
	// A fetch or a cancel in between changes nothing.
	s.schedule(t, stDev, Schedule{Operation: OpFetch})
	if err := CancelOperation(context.Background(), s.store, stDev, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := install(c, AuthLSC); stReason(err) != 7 {
		t.Fatalf("renewal with the deleted LSC after a cancel: %v", err)
	}
}

// With an ExternalCA the server sends a PKCS#10 request out, hands the
// device what comes back (here a PKCS#7 bundle) and accepts the result as
// an LSC later.
func TestServerExternalCA(t *testing.T) {
	xc := xcPKIOnce(t)
	p := stPKIGet(t)
	fake := &xcFake{t: t, raPub: p.capfKey.Public(), format: "p7b-der"}
	s := stStart(t, func(srv *Server) {
		srv.Issuer = &ExternalCA{Submit: fake.Submit, Signer: p.capfKey, Roots: xc.roots}
		srv.LSCRoots = xc.roots
		srv.LSCIntermediates = testpki.Pool(xc.issuing)
	})
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: RSA2048})
	phone := s.phone(stDev)
	phone.LSCIssuers = []*x509.Certificate{xc.issuing} // the CAPF does not sign the LSC
	out, err := stEnroll(t, phone, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	if fake.called != 1 || out.Certificate.Issuer.String() != xc.issuing.Subject.String() {
		t.Fatalf("called %d, issuer %v", fake.called, out.Certificate.Issuer)
	}
	c := phone
	c.Certificate, c.Key = out.Certificate, out.Key
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: AuthLSC, Key: EC256})
	if _, err := stEnroll(t, c, s.addr); err != nil {
		t.Fatalf("LSC from the external CA: %v", err)
	}
	// The CA fails: the device gets END 7 and the operation stays pending.
	fake.err = errors.New("CA down")
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	if _, err := stEnroll(t, s.phone(stDev), s.addr); stReason(err) != 7 {
		t.Fatalf("CA down: %v", err)
	}
	if d := s.device(t, stDev); d.Pending == nil || d.Last.Failure != FailIssue {
		t.Fatalf("after CA failure: %q", d.Status())
	}
}

// sendPublicKey sends KEY_GENERATE_RESPONSE with pub.
func (p *stPeer) sendPublicKey(sid uint32, pub crypto.PublicKey) {
	p.t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(&capfwire.Frame{Command: capfwire.CmdKeyGenerateResponse, Session: sid, Elements: []capfwire.Element{{Tag: capfwire.TagPublicKey, Value: spki}}})
}

// sendKey answers KEY_GENERATE_REQUEST with key's public key and returns
// the certificate of the STORE_CERTIFICATE_REQUEST.
func (p *stPeer) sendKey(sid uint32, key crypto.Signer) *x509.Certificate {
	p.t.Helper()
	p.recv(capfwire.CmdKeyGenerateRequest)
	p.sendPublicKey(sid, key.Public())
	f := p.recv(capfwire.CmdStoreCertificateRequest)
	_, der, err := f.Certificate()
	if err != nil {
		p.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return cert
}

func (p *stPeer) storeReply(sid uint32, reason uint8) {
	r := &capfwire.Frame{Command: capfwire.CmdStoreCertificateResponse, Session: sid}
	r.AddUint8(capfwire.TagReason, reason)
	p.send(r)
}

// A certificate the device took but did not store ends the operation and
// never authenticates.
func TestServerUnstoredLSC(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	p := stDial(t, s)
	sid := p.auth(3, stDev, nil)
	taken := p.sendKey(sid, s.pki.keys[EC256])
	p.storeReply(sid, 7)
	if r := p.end(); r != 7 {
		t.Fatalf("END %d", r)
	}
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Auth: AuthLSC, Key: EC256})
	c := s.phone(stDev)
	c.Certificate, c.Key = taken, s.pki.keys[EC256]
	if _, err := stEnroll(t, c, s.addr); stReason(err) != 7 {
		t.Fatalf("unstored LSC authenticated: %v", err)
	}
}

// Two sessions for one operation: the second cannot get a certificate
// while the first holds its claim.
func TestServerClaim(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	a := stDial(t, s)
	sidA := a.auth(3, stDev, nil)
	certA := a.sendKey(sidA, s.pki.keys[EC256])

	b := stDial(t, s)
	sidB := b.auth(3, stDev, nil)
	b.recv(capfwire.CmdKeyGenerateRequest)
	b.sendPublicKey(sidB, s.pki.keys[EC256].Public())
	if r := b.end(); r != 7 {
		t.Fatalf("second session: END %d", r)
	}
	a.storeReply(sidA, 1)
	if r := a.end(); r != 1 {
		t.Fatalf("first session: END %d", r)
	}
	d := s.device(t, stDev)
	if string(d.Certificate) != string(certA.Raw) || d.Pending != nil {
		t.Fatalf("record: %q", d.Status())
	}
	if iss, _ := ListIssued(context.Background(), s.store, stDev); len(iss) != 1 {
		t.Fatalf("%d certificates issued for one operation", len(iss))
	}
}

// Cancelled while the device stores its certificate: the device did store
// it, so the record has it, and the result stays "cancelled".
func TestServerCancelledDuringSession(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := stDial(t, s)
	sid := p.auth(3, stDev, nil)
	cert := p.sendKey(sid, s.pki.keys[EC256])
	if err := CancelOperation(ctx, s.store, stDev, time.Now()); err != nil {
		t.Fatal(err)
	}
	p.storeReply(sid, 1)
	if r := p.end(); r != 1 {
		t.Fatalf("END %d", r)
	}
	d := s.device(t, stDev)
	if string(d.Certificate) != string(cert.Raw) || d.Last.Failure != FailCancelled {
		t.Fatalf("record: %q", d.Status())
	}
}

// RSA keys with an exponent of 1 or an even one are refused.
func TestServerBadRSAKey(t *testing.T) {
	s := stStart(t, nil)
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: RSA2048})
	good := s.pki.keys[RSA2048].Public().(*rsa.PublicKey)
	for _, e := range []int{1, 4} {
		p := stDial(t, s)
		sid := p.auth(3, stDev, nil)
		p.recv(capfwire.CmdKeyGenerateRequest)
		p.sendPublicKey(sid, &rsa.PublicKey{N: good.N, E: e})
		if r := p.end(); r != 7 {
			t.Fatalf("e=%d: END %d", e, r)
		}
	}
	if iss, _ := ListIssued(context.Background(), s.store, stDev); len(iss) != 0 {
		t.Fatalf("%d issued", len(iss))
	}
}

// A server clock an hour slow (Server.Time is for records and deadlines
// of operations) does not touch socket deadlines.
func TestServerShiftedClock(t *testing.T) {
	s := stStart(t, func(srv *Server) { srv.Time = func() time.Time { return time.Now().Add(-time.Hour) } })
	s.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})
	if _, err := stEnroll(t, s.phone(stDev), s.addr); err != nil {
		t.Fatal(err)
	}
}

// Two servers on one store whose session ids collide: a session id names
// a session of one server only, so the claim of one server's session
// still keeps the other's off.
func TestServerClaimAcrossServers(t *testing.T) {
	st := NewMemoryStore()
	seed := []byte{0, 0, 0, 41}
	a := stStartOn(t, st, func(srv *Server) { srv.Rand = bytes.NewReader(append(seed, "server a"...)) })
	b := stStartOn(t, st, func(srv *Server) { srv.Rand = bytes.NewReader(append(seed, "server b"...)) })
	a.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})

	pa := stDial(t, a)
	sidA := pa.auth(3, stDev, nil)
	certA := pa.sendKey(sidA, a.pki.keys[EC256])
	pb := stDial(t, b)
	sidB := pb.auth(3, stDev, nil)
	if sidA != sidB || sidA != 42 {
		t.Fatalf("session ids %d and %d, want both 42", sidA, sidB)
	}
	pb.recv(capfwire.CmdKeyGenerateRequest)
	pb.sendPublicKey(sidB, a.pki.keys[EC256].Public())
	if r := pb.end(); r != 7 {
		t.Fatalf("server b's session: END %d", r)
	}
	pa.storeReply(sidA, 1)
	if r := pa.end(); r != 1 {
		t.Fatalf("server a's session: END %d", r)
	}
	if iss, _ := ListIssued(context.Background(), st, stDev); len(iss) != 1 || iss[0].Serial != SerialHex(certA.SerialNumber) {
		t.Fatalf("%d certificates issued for one operation", len(iss))
	}
	if d := a.device(t, stDev); d.Pending != nil || d.Last.Failure != FailNone || !bytes.Equal(d.Certificate, certA.Raw) {
		t.Fatalf("record: %q", d.Status())
	}
}

// failAfterIssue is a Store whose Updates fail once a certificate is
// recorded: a server that stops between issuing and recording the
// device's acknowledgement.
type failAfterIssue struct {
	Store
	issued atomic.Bool
}

func (s *failAfterIssue) RecordIssued(ctx context.Context, rec IssuedRecord, fn func([]byte) ([]byte, error)) error {
	err := s.Store.RecordIssued(ctx, rec, fn)
	if err == nil {
		s.issued.Store(true)
	}
	return err
}

func (s *failAfterIssue) Update(ctx context.Context, device string, fn func([]byte) ([]byte, error)) error {
	if s.issued.Load() {
		return errors.New("store gone")
	}
	return s.Store.Update(ctx, device, fn)
}

// An operation whose certificate went out in a session that could not
// record the result keeps its claim until the lease ends, then ends with
// FailStore at the next session: never a second certificate.
func TestServerOrphanedIssue(t *testing.T) {
	st := NewMemoryStore()
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a := stStartOn(t, &failAfterIssue{Store: st}, func(srv *Server) { srv.Time = clock })
	b := stStartOn(t, st, func(srv *Server) { srv.Time = clock })
	a.schedule(t, stDev, Schedule{Operation: OpInstall, Key: EC256})

	p := stDial(t, a)
	sid := p.auth(3, stDev, nil)
	cert := p.sendKey(sid, a.pki.keys[EC256])
	p.storeReply(sid, 1)
	if r := p.end(); r != 7 {
		t.Fatalf("session that could not record its result: END %d", r)
	}
	r, err := lookup(context.Background(), st, stDev)
	if err != nil {
		t.Fatal(err)
	}
	if r.pending == nil || r.pending.issued != SerialHex(cert.SerialNumber) || r.cert != nil {
		t.Fatalf("record after the lost acknowledgement: %+v", r.pending)
	}

	// While the claim lasts, other sessions are refused and change
	// nothing.
	p = stDial(t, b)
	sid = p.auth(3, stDev, nil)
	p.recv(capfwire.CmdKeyGenerateRequest)
	p.sendPublicKey(sid, a.pki.keys[EC256].Public())
	if r := p.end(); r != 7 {
		t.Fatalf("session during the claim: END %d", r)
	}
	if d := b.device(t, stDev); d.Pending == nil || d.Last != nil {
		t.Fatalf("record after a refused session: %q", d.Status())
	}

	// Then the operation ends, without a second certificate.
	offset.Store(int64(time.Hour))
	p = stDial(t, b)
	sid = p.auth(3, stDev, nil)
	p.recv(capfwire.CmdKeyGenerateRequest)
	p.sendPublicKey(sid, a.pki.keys[EC256].Public())
	if r := p.end(); r != 7 {
		t.Fatalf("session after the claim lapsed: END %d", r)
	}
	d := b.device(t, stDev)
	if d.Pending != nil || d.Last == nil || d.Last.Failure != FailStore || d.Certificate != nil {
		t.Fatalf("record after the orphaned operation ended: %q", d.Status())
	}
	if iss, _ := ListIssued(context.Background(), st, stDev); len(iss) != 1 {
		t.Fatalf("%d certificates issued for one operation", len(iss))
	}
}
