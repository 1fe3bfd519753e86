package postgres

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The fault tests run phones (capf.Client) against CAPF servers on the
// PostgreSQL store while the database, or a server, fails, and then check
// what a cluster must keep whatever fails: every certificate a phone
// received is in the issued log, no serial number is in it twice, every
// log entry is accounted for by its device's record, and the servers
// serve again once the database is back.

// A fleet is the phones of a fault test: one key for all (generated
// once), each device scheduled for an EC P-256 install by null string.
type fleet struct {
	ca    *x509.Certificate
	caKey crypto.Signer
	key   crypto.Signer
	mu    sync.Mutex
	runs  []*session
}

// A session is one phone's enrolment.
type session struct {
	device     string
	server     string // "local" or "child"
	phase      int    // the test's phase when it started
	cert       *x509.Certificate
	err        error
	start, end time.Time
}

func newFleet(t testing.TB) *fleet {
	caKey := testpki.NewKey(t, testpki.EC256)
	return &fleet{
		ca:    testpki.SelfSigned(t, testpki.CA("pgstore fault CAPF"), caKey),
		caKey: caKey,
		key:   testpki.Key(t, testpki.EC256),
	}
}

// schedule schedules an install for n new devices, named with prefix, and
// returns their names.
func (f *fleet) schedule(t testing.TB, st capf.Store, prefix string, n int) []string {
	t.Helper()
	ctx := testContext(t)
	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range names {
		names[i] = fmt.Sprintf("%s%06X", prefix, i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sch := capf.Schedule{Operation: capf.OpInstall, Auth: capf.AuthNull, Key: capf.EC256}
			errs <- capf.ScheduleOperation(ctx, st, names[i], sch, time.Now())
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// enroll runs one phone's session against addr and records it.
func (f *fleet) enroll(ctx context.Context, t testing.TB, device, server, addr string, phase int) *session {
	s := &session{device: device, server: server, phase: phase, start: time.Now()}
	c := &capf.Client{
		Device:           device,
		CAPFCertificates: []*x509.Certificate{f.ca},
		GenerateKey:      func(capf.KeySpec) (crypto.Signer, error) { return f.key, nil },
		Timeout:          min(testnet.Patience(t)/4, 30*time.Second),
	}
	out, err := c.Enroll(ctx, addr)
	s.end, s.err = time.Now(), err
	if out != nil {
		s.cert = out.Certificate // a certificate the phone accepted, even with an error after
	}
	f.mu.Lock()
	f.runs = append(f.runs, s)
	f.mu.Unlock()
	return s
}

// count returns the number of sessions that match.
func (f *fleet) count(match func(s *session) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.runs {
		if match(s) {
			n++
		}
	}
	return n
}

// waitFor waits until cond holds, within the test's patience.
// enrolWorkers hands devices, in order, to n goroutines that run work
// (with their number) until the devices run out or the returned function
// is called; that function also waits for them, and may be called again.
func enrolWorkers(devices []string, n int, work func(w int, d string)) (stop func()) {
	feed := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(feed)
		for _, d := range devices {
			select {
			case feed <- d:
			case <-done:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for d := range feed {
				work(w, d)
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// summary describes the sessions of each phase and server, and the
// errors they ended with.
func (f *fleet) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	type key struct {
		phase  int
		server string
	}
	ok, failed := map[key]int{}, map[key]int{}
	errs := map[string]int{}
	for _, s := range f.runs {
		k := key{s.phase, s.server}
		if s.err == nil {
			ok[k]++
			continue
		}
		failed[k]++
		msg := s.err.Error()
		if i := strings.Index(msg, "127.0.0.1:"); i >= 0 {
			msg = msg[:i] + "127.0.0.1:…"
		}
		errs[msg]++
	}
	var b strings.Builder
	var keys []key
	for k := range ok {
		keys = append(keys, k)
	}
	for k := range failed {
		if ok[k] == 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].phase < keys[j].phase || keys[i].phase == keys[j].phase && keys[i].server < keys[j].server
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "phase %d, %s server: %d enrolled, %d failed\n", k.phase, k.server, ok[k], failed[k])
	}
	for msg, n := range errs {
		fmt.Fprintf(&b, "  %d× %s\n", n, msg)
	}
	return b.String()
}

// check checks the store against what the phones received.
func (f *fleet) check(t testing.TB, st capf.Store, pg *dbtest.Postgres) {
	t.Helper()
	ctx := testContext(t)
	log, err := capf.ListIssued(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	bySerial := map[string]*capf.IssuedCertificate{}
	byDevice := map[string]*capf.IssuedCertificate{}
	for _, e := range log {
		if bySerial[e.Serial] != nil {
			t.Errorf("serial %s is in the log twice", e.Serial)
		}
		bySerial[e.Serial] = e
		if byDevice[e.Device] != nil {
			t.Errorf("device %s has two certificates in the log for one operation: %s and %s", e.Device, byDevice[e.Device].Serial, e.Serial)
		}
		byDevice[e.Device] = e
		cert, err := x509.ParseCertificate(e.DER)
		if err != nil || capf.SerialHex(cert.SerialNumber) != e.Serial || cert.Subject.CommonName != e.Device {
			t.Errorf("log entry %s of %s holds another certificate (%v)", e.Serial, e.Device, err)
		}
	}
	received := 0
	for _, s := range f.runs {
		if s.cert == nil {
			continue
		}
		received++
		e := bySerial[capf.SerialHex(s.cert.SerialNumber)]
		if e == nil || e.Device != s.device || !bytes.Equal(e.DER, s.cert.Raw) {
			t.Errorf("%s received certificate %s, which is not in the issued log", s.device, capf.SerialHex(s.cert.SerialNumber))
		}
	}
	devices, err := capf.ListDevices(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	pending, done, failed := 0, 0, 0
	for _, d := range devices {
		e := byDevice[d.Name]
		switch {
		case d.Pending != nil:
			// Not carried out, or issued by a session that ended before the
			// device's acknowledgement was recorded: the next session
			// ends it (an orphan).
			pending++
		case d.Last == nil:
			t.Errorf("device %s has neither an operation nor a result", d.Name)
		case d.Last.Failure == capf.FailNone:
			done++
			if e == nil || d.Last.Serial != e.Serial || !bytes.Equal(d.Certificate, e.DER) {
				t.Errorf("device %s records certificate %s as installed, which the log does not hold", d.Name, d.Last.Serial)
			}
		default:
			failed++
		}
	}
	for dev := range byDevice {
		if !slicesContainsDevice(devices, dev) {
			t.Errorf("the log holds a certificate of %s, which has no record", dev)
		}
	}
	rows := querySQL(t, pg.URL(), "SELECT count(*) FROM ucsec_capf_devices WHERE octet_length(data) = 0")
	if len(rows) != 1 || rows[0] != "0" {
		t.Errorf("empty device rows left: %v", rows)
	}
	t.Logf("issued log: %d entries; %d certificates received by phones; devices: %d installed, %d pending, %d failed",
		len(log), received, done, pending, failed)
}

func slicesContainsDevice(ds []*capf.Device, name string) bool {
	for _, d := range ds {
		if d.Name == name {
			return true
		}
	}
	return false
}

// TestFaultOutage stops PostgreSQL (a fast shutdown, as an outage) while
// phones enrol against a CAPF server on it: sessions fail with the
// store's error, nothing is half-written, and once PostgreSQL is back the
// same server, not restarted, serves every enrolment again.
func TestFaultOutage(t *testing.T) {
	pg := newPostgres(t, false)
	ctx := testContext(t)
	st := openCAPF(t, pg.URL(), "")
	f := newFleet(t)
	devices := f.schedule(t, st, "SEPA", 600)
	var logs testnet.Log
	srv := newServer(st, f.ca, f.caKey)
	srv.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	addr := serve(t, srv)

	// Phases: 0 before the outage, 1 from the shutdown's start, 2 down
	// (shutdown done), 3 from the restart's end.
	var phase atomic.Int32
	stopWorkers := enrolWorkers(devices, 8, func(_ int, d string) {
		s := f.enroll(ctx, t, d, "local", addr, int(phase.Load()))
		if s.err != nil {
			time.Sleep(20 * time.Millisecond) // spare the devices while the database is down
		}
	})
	defer stopWorkers()

	waitFor(t, ctx, "20 enrolments", func() bool { return f.count(func(s *session) bool { return s.err == nil }) >= 20 })
	phase.Store(1)
	start := time.Now()
	if err := pg.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL shut down in %s", since(start))
	phase.Store(2)
	down := time.Now()
	waitFor(t, ctx, "16 sessions during the outage", func() bool {
		return time.Since(down) > 500*time.Millisecond && f.count(func(s *session) bool { return s.phase == 2 }) >= 16
	})
	restart := time.Now()
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL started again in %s", since(restart))
	phase.Store(3)
	waitFor(t, ctx, "30 enrolments after the restart", func() bool {
		return f.count(func(s *session) bool { return s.phase == 3 && s.err == nil }) >= 30
	})
	stopWorkers()
	t.Logf("sessions:\n%s", f.summary())

	outage := 0
	for _, s := range f.runs {
		switch {
		case s.phase == 2 && s.end.Before(restart):
			// Started and ended while the database was down.
			outage++
			if !errors.Is(s.err, capf.ErrRefused) || s.cert != nil {
				t.Errorf("%s, while the database was down: %v (certificate received: %v), want a refusal", s.device, s.err, s.cert != nil)
			}
		case s.phase == 3 && s.err != nil:
			t.Errorf("%s, after the database was back: %v", s.device, s.err)
		}
	}
	if outage == 0 {
		t.Error("no session ran while the database was down")
	}
	if n := strings.Count(logs.String(), "postgres: capf: "); n == 0 {
		t.Errorf("the server logged no store error:\n%s", logs.String())
	} else {
		t.Logf("the server logged %d store errors, such as:\n%s", n, firstLine(logs.String(), "postgres: capf: "))
	}
	f.check(t, st, pg)
}

// firstLine returns the first line of s that holds sub.
func firstLine(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}
