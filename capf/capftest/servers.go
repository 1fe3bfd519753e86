package capftest

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The server checks run two capf.Servers, one on each handle, with one
// CA, over TLS on 127.0.0.1. Their clock can be moved forward to make a
// claim lapse, and each one's Issuer can be held, so that a session waits
// with its claim while another server's session tries to carry out the
// same operation.

const device = "SEP001122334455"

type cluster struct {
	a, b   capf.Store
	ca     *x509.Certificate
	phone  crypto.Signer // every phone's key
	offset atomic.Int64  // added to the servers' clock
	addrs  [2]string
	gates  [2]*gate
}

func newCluster(t *testing.T, a, b capf.Store) *cluster {
	t.Helper()
	key := testpki.NewKey(t, testpki.EC256)
	c := &cluster{
		a: a, b: b,
		ca:    testpki.SelfSigned(t, testpki.CA("capftest CAPF"), key),
		phone: testpki.NewKey(t, testpki.EC256),
	}
	for i, st := range []capf.Store{a, b} {
		c.gates[i] = &gate{Issuer: &capf.LocalCA{Certificate: c.ca, Signer: key}}
		srv := &capf.Server{
			Store:     st,
			Issuer:    c.gates[i],
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(c.ca, key)}},
			Time:      func() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) },
		}
		c.addrs[i] = serve(t, srv)
	}
	return c
}

// serve runs srv on a loopback listener until the test ends.
func serve(t *testing.T, srv *capf.Server) string {
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
		if err := <-done; !errors.Is(err, capf.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// schedule schedules an install by null string for device, through a.
func (c *cluster) schedule(t *testing.T) {
	t.Helper()
	sch := capf.Schedule{Operation: capf.OpInstall, Auth: capf.AuthNull, Key: capf.EC256}
	if err := capf.ScheduleOperation(t.Context(), c.a, device, sch, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// enroll runs a phone's session with server i.
func (c *cluster) enroll(t *testing.T, i int) (*capf.Outcome, error) {
	phone := &capf.Client{
		Device:           device,
		CAPFCertificates: []*x509.Certificate{c.ca},
		GenerateKey:      func(capf.KeySpec) (crypto.Signer, error) { return c.phone, nil },
		Timeout:          testnet.Patience(t),
	}
	return phone.Enroll(t.Context(), c.addrs[i])
}

// refused reports whether err is the END_SESSION reason 7 a session gets
// when another carries its operation out.
func refused(err error) bool {
	var ee *capf.EndError
	return errors.As(err, &ee) && ee.Reason == 7
}

// check checks, through b, that the operation is done with cert, the one
// certificate in the log.
func (c *cluster) check(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	log, err := capf.ListIssued(t.Context(), c.b, device)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 {
		t.Fatalf("%d certificates issued for one operation", len(log))
	}
	if log[0].Serial != capf.SerialHex(cert.SerialNumber) || string(log[0].DER) != string(cert.Raw) {
		t.Fatalf("the log holds certificate %s, the phone got %s", log[0].Serial, capf.SerialHex(cert.SerialNumber))
	}
	d, err := capf.LookupDevice(t.Context(), c.b, device)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pending != nil || d.Last == nil || d.Last.Failure != capf.FailNone || string(d.Certificate) != string(cert.Raw) {
		t.Fatalf("record after the install: %q, pending %v, LSC recorded %v", d.Status(), d.Pending, string(d.Certificate) == string(cert.Raw))
	}
}

// wait waits for ch within the test's patience.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testnet.Patience(t)):
		t.Fatalf("gave up waiting for %s", what)
	}
}

// A gate is an Issuer that can hold a call until released.
type gate struct {
	capf.Issuer
	mu      sync.Mutex
	waiting chan struct{}
	release chan struct{}
}

// hold makes the next Issue call wait for release; waiting is closed
// when it does.
func (g *gate) hold() (waiting <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting, g.release = make(chan struct{}), make(chan struct{})
	rel := g.release
	return g.waiting, sync.OnceFunc(func() { close(rel) })
}

func (g *gate) Issue(ctx context.Context, req *capf.CertificateRequest) (*x509.Certificate, error) {
	g.mu.Lock()
	waiting, release := g.waiting, g.release
	g.waiting = nil
	g.mu.Unlock()
	if waiting != nil {
		close(waiting)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Issuer.Issue(ctx, req)
}

// testServersOneCertificate runs phones for one operation against both
// servers at once: exactly one gets a certificate.
func testServersOneCertificate(t *testing.T, a, b capf.Store) {
	c := newCluster(t, a, b)
	c.schedule(t)
	const phones = 6
	outs := make([]*capf.Outcome, phones)
	errs := make([]error, phones)
	var wg sync.WaitGroup
	for i := range phones {
		wg.Go(func() { outs[i], errs[i] = c.enroll(t, i%2) })
	}
	wg.Wait()
	var cert *x509.Certificate
	for i, out := range outs {
		switch err := errs[i]; {
		case out != nil && out.Certificate != nil:
			if cert != nil {
				t.Fatal("two phones got a certificate for one operation")
			}
			if err != nil {
				t.Fatalf("phone %d got a certificate, and an error: %v", i, err)
			}
			cert = out.Certificate
		case err != nil && !refused(err):
			t.Fatalf("phone %d: %v", i, err)
		}
	}
	if cert == nil {
		t.Fatal("no phone got a certificate")
	}
	c.check(t, cert)
}

// testServersLiveClaim holds server a's session in its Issuer, with the
// operation claimed: server b's session for it is refused, and a's
// finishes.
func testServersLiveClaim(t *testing.T, a, b capf.Store) {
	c := newCluster(t, a, b)
	c.schedule(t)
	waiting, release := c.gates[0].hold()
	defer release()
	type result struct {
		out *capf.Outcome
		err error
	}
	first := make(chan result, 1)
	go func() {
		out, err := c.enroll(t, 0)
		first <- result{out, err}
	}()
	wait(t, waiting, "server a's session to claim the operation")

	out, err := c.enroll(t, 1)
	if !refused(err) || out != nil && out.Certificate != nil {
		t.Fatalf("server b carried out an operation that server a had claimed: %v", err)
	}
	d, err := capf.LookupDevice(t.Context(), c.a, device)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pending == nil || d.Last != nil {
		t.Fatalf("the refused session changed the operation: %q", d.Status())
	}
	release()
	r := <-first
	if r.err != nil || r.out.Certificate == nil {
		t.Fatalf("server a's session: %v", r.err)
	}
	c.check(t, r.out.Certificate)
}

// testServersLapsedClaim holds server a's session in its Issuer until its
// claim has lapsed: server b's session then carries the operation out,
// and a's, released, may no longer record or send a certificate.
func testServersLapsedClaim(t *testing.T, a, b capf.Store) {
	c := newCluster(t, a, b)
	c.schedule(t)
	waiting, release := c.gates[0].hold()
	defer release()
	type result struct {
		out *capf.Outcome
		err error
	}
	first := make(chan result, 1)
	go func() {
		out, err := c.enroll(t, 0)
		first <- result{out, err}
	}()
	wait(t, waiting, "server a's session to claim the operation")

	c.offset.Store(int64(24 * time.Hour)) // every lease has lapsed
	out, err := c.enroll(t, 1)
	if err != nil || out.Certificate == nil {
		t.Fatalf("server b, after server a's claim lapsed: %v", err)
	}
	release()
	r := <-first
	if !refused(r.err) || r.out != nil && r.out.Certificate != nil {
		t.Fatalf("server a's session, whose claim lapsed and was taken over, ended with %v", r.err)
	}
	c.check(t, out.Certificate)
}
