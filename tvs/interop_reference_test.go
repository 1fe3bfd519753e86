//go:build linux

package tvs

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/internal/testpki"
)

// Interop tests against the Python reference implementation,
// usecallmanagernz/daemons (tvsd, tvsc, tvsctl):
//
//   - TestReferenceServer: the reference client tvsc against our Server,
//     its printout compared with what it prints for tvsd holding the same
//     entry, the request id checked through a TLS tap;
//   - TestReferenceClient: our Client against tvsd, filled with tvsctl;
//   - TestReferenceWire: the same request bytes sent to tvsd and to our
//     Server, whose answers must be the same bytes; requests tvsd drops
//     are logged with what our Server does instead.
//
// The reference is GPL: it is run from a local checkout, never copied into
// this repository, and CI cannot fetch it. The tests therefore run only
// when TVS_REFERENCE_DIR (or CAPF_REFERENCE_DIR: the same checkout holds
// both daemons) names a checkout:
//
//	TVS_REFERENCE_DIR=/path/to/daemons go test ./tvs -run Reference -v -count=1
//
// TVS_REFERENCE_PYTHON (else CAPF_REFERENCE_PYTHON) selects the
// interpreter, by default /usr/bin/python3 with the cryptography module
// (Debian's python3-cryptography).
//
// tvsd binds 0.0.0.0, so it runs in a private network namespace (unshare
// -n; unshare -r -n when not root), next to a small relay from a Unix
// socket to its loopback port. The test reaches it through that socket.

// refDefaultTTL is the TTL tvsctl stores when it is given none (its help
// says 3600; it stores 86400), and our DefaultTTL.
const refDefaultTTL = 86400

func refSetup(t testing.TB) *interop.Reference {
	t.Helper()
	return interop.NewReference(t, []string{"TVS_REFERENCE_DIR", "CAPF_REFERENCE_DIR"},
		[]string{"TVS_REFERENCE_PYTHON", "CAPF_REFERENCE_PYTHON"}, []string{"tvsd", "tvsc", "tvsctl"})
}

// refExec runs a reference tool to completion within interop.RefTimeout.
func refExec(name string, args ...string) (stdout, stderr string, err error) {
	return interop.Exec([]string{"PYTHONDONTWRITEBYTECODE=1"}, name, args...)
}

// ---- the entries both servers hold ----

// A refCase is a certificate, and the entry both servers hold for it (none
// if roles is empty).
type refCase struct {
	name  string
	cert  *x509.Certificate
	file  string // its PEM, for tvsc and tvsctl
	roles []ctl.Role
	ttl   time.Duration // 0: the servers' default
	load  bool          // put with LoadCertificates rather than Put
}

func (c *refCase) known() bool { return len(c.roles) != 0 }

func (c *refCase) hash() string {
	s := sha256.Sum256(c.cert.Raw)
	return hex.EncodeToString(s[:])
}

// wantRoles is the roles in the reference's fixed order, their numbers.
func (c *refCase) wantRoles() []ctl.Role {
	r := slices.Clone(c.roles)
	slices.Sort(r)
	return r
}

func (c *refCase) wantNames() []string {
	var names []string
	for _, r := range c.wantRoles() {
		names = append(names, r.ShortName())
	}
	return names
}

func (c *refCase) wantTTL() uint32 {
	if c.ttl == 0 {
		return refDefaultTTL
	}
	return uint32(c.ttl / time.Second)
}

// ctlArgs is the tvsctl command line that adds the entry, its role flags
// in the order the case gives them.
func (c *refCase) ctlArgs() []string {
	args := []string{"-a", c.file}
	for _, r := range c.roles {
		args = append(args, "--"+strings.ReplaceAll(strings.ToLower(r.ShortName()), "+", "-"))
	}
	if c.ttl != 0 {
		args = append(args, "-L", strconv.Itoa(int(c.ttl/time.Second)))
	}
	return args
}

// ---- our Server ----

type refOurs struct {
	addr  string
	store *MemoryStore
	log   *interop.Log
}

func refStartOurs(t testing.TB, cert tls.Certificate) *refOurs {
	t.Helper()
	o := &refOurs{store: NewMemoryStore(), log: &interop.Log{}}
	srv := &Server{
		Store:           o.store,
		TLSConfig:       &tls.Config{Certificates: []tls.Certificate{cert}},
		Timeout:         20 * time.Second,
		ShutdownTimeout: 2 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return o
}

// ---- tvsd in a network namespace ----

type refTvsd struct {
	env  *interop.Reference
	db   string
	out  *interop.Log // tvsd's log and the relay's output
	dial func(context.Context) (net.Conn, error)
	mode string
}

// refStartTvsd starts tvsd on the database db with the TVS certificate and
// key in pemFile, in a network namespace (interop.StartNetns). It is
// stopped when the test ends.
func refStartTvsd(t testing.TB, env *interop.Reference, db, pemFile string) *refTvsd {
	t.Helper()
	d := &refTvsd{env: env, db: db, out: &interop.Log{}}
	d.ctl(t, "-l") // tvsd needs the table; tvsctl creates it
	// Registered first, so run after tvsd has stopped.
	t.Cleanup(func() {
		if out := d.out.Since(0); strings.Contains(out, "Traceback") {
			t.Errorf("tvsd raised an exception:\n%s", out)
		}
	})
	n, err := interop.StartNetns(t, d.out, env.Python, filepath.Join(filepath.Dir(db), "tvsd.sock"), 2445,
		env.Script("tvsd"), db, "-T", pemFile)
	switch {
	case errors.Is(err, exec.ErrNotFound):
		t.Skipf("cannot run tvsd, which binds 0.0.0.0, in a network namespace: %v", err)
	case errors.Is(err, interop.ErrExited) && os.Geteuid() != 0:
		t.Skipf("cannot run tvsd in a network namespace as a user; run as root: %v", err)
	case err != nil:
		t.Fatalf("tvsd: %v", err)
	}
	d.dial, d.mode = n.Dial, n.Mode
	return d
}

// ctl runs tvsctl on the database and returns its output.
func (d *refTvsd) ctl(t testing.TB, args ...string) string {
	t.Helper()
	out, stderr, err := refExec(d.env.Python, append([]string{d.env.Script("tvsctl"), d.db}, args...)...)
	if err != nil {
		t.Fatalf("tvsctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// refListed is one entry as tvsctl -l shows it.
type refListed struct {
	roles []string
	ttl   string
}

// list returns tvsctl -l, by certificate hash.
func (d *refTvsd) list(t *testing.T) map[string]*refListed {
	t.Helper()
	found := map[string]*refListed{}
	var cur *refListed
	for line := range strings.Lines(d.ctl(t, "-l")) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "Certificate Hash":
			cur = &refListed{}
			found[v] = cur
		case "Role":
			if cur != nil {
				cur.roles = append(cur.roles, v)
			}
		case "TTL":
			if cur != nil {
				cur.ttl = v
			}
		}
	}
	return found
}

// refForward listens on 127.0.0.1 and forwards each connection, as bytes,
// to what dial gives: a TCP address for tvsc and our Client, whose TLS
// then runs end to end with tvsd.
func refForward(t testing.TB, dial func(context.Context) (net.Conn, error)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
				ctx, cancel := context.WithTimeout(context.Background(), interop.RefTimeout)
				defer cancel()
				up, err := dial(ctx)
				if err != nil {
					return
				}
				defer up.Close()
				deadline := time.Now().Add(interop.RefTimeout)
				c.SetDeadline(deadline)
				up.SetDeadline(deadline)
				var once sync.Once
				closeBoth := func() { once.Do(func() { c.Close(); up.Close() }) }
				var pumps sync.WaitGroup
				pumps.Go(func() { io.Copy(up, c); closeBoth() })
				io.Copy(c, up)
				closeBoth()
				pumps.Wait()
			})
		}
	})
	return l.Addr().String()
}

// ---- a frame tap: a TLS-terminating relay that records the plaintext ----

type refTapMode int

const (
	refTapRecord refTapMode = iota // pass every frame on unchanged
	refTapNewID                    // give each request a fresh random id; give the client its own id back if the server echoed the fresh one
	refTapBadID                    // flip the bits of every response id
)

// refStartTap starts a tap between tvsc and a server, terminating TLS on
// both sides (it holds the TVS key), which records every frame it relays,
// as the server saw it: a request after the tap changed it, a response
// before.
func refStartTap(t *testing.T, mode refTapMode, cert tls.Certificate, dial func(context.Context) (net.Conn, error)) *interop.Tap {
	t.Helper()
	cfg := interop.TapConfig{
		Cert:       cert,
		Dial:       dial,
		HeaderSize: capfwire.TVSHeaderSize,
		PayloadLen: func(hdr []byte) int { return int(binary.BigEndian.Uint16(hdr[8:10])) },
	}
	if mode != refTapRecord {
		cfg.Rewrite = func() func(bool, []byte) []byte {
			var clientID, serverID uint32 // the request's id from the client, and as sent on
			return func(fromServer bool, buf []byte) []byte {
				id := binary.BigEndian.Uint32(buf[4:8])
				out := buf
				switch {
				case !fromServer && mode == refTapNewID:
					clientID, serverID = id, id
					for serverID == id || serverID == 0 {
						var b [4]byte
						rand.Read(b[:])
						serverID = binary.BigEndian.Uint32(b[:])
					}
					binary.BigEndian.PutUint32(buf[4:8], serverID)
				case fromServer && mode == refTapNewID && id == serverID:
					out = slices.Clone(buf)
					binary.BigEndian.PutUint32(out[4:8], clientID)
				case fromServer && mode == refTapBadID:
					out = slices.Clone(buf)
					binary.BigEndian.PutUint32(out[4:8], ^id)
				}
				return out
			}
		}
	}
	return interop.StartTap(t, cfg)
}

// ---- the rig: both servers, the same entries ----

// A refPeer is a TVS server the tests talk to over TCP, and its log.
type refPeer struct {
	name string
	addr string
	log  *interop.Log
	dial func(context.Context) (net.Conn, error) // for taps
	// done matches the log of a request once the server has handled it.
	done *regexp.Regexp
}

type refRig struct {
	env     *interop.Reference
	work    string
	tvsCert *x509.Certificate // the TVS certificate of both servers: a self-signed CA
	tvsKey  crypto.Signer
	tvsTLS  tls.Certificate
	caFile  string // the TVS certificate alone, for tvsc -T
	ours    *refOurs
	tvsd    *refTvsd
	peers   []*refPeer // ours, then tvsd
	cases   []*refCase // the last one unknown to both servers
}

func (r *refRig) file(name string) string { return filepath.Join(r.work, name) }

func refNewRig(t testing.TB) *refRig {
	t.Helper()
	env := refSetup(t)
	r := &refRig{env: env, work: t.TempDir()}
	tvsKey := testpki.NewKey(t, testpki.RSA2048)
	r.tvsKey = tvsKey
	tvsTmpl := testpki.CA("TVS-ucsec-interop")
	tvsTmpl.Subject = pkix.Name{CommonName: "TVS-ucsec-interop", Organization: []string{"ucsec interop"}, Country: []string{"NZ"}}
	tvsTmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	r.tvsCert = testpki.SelfSigned(t, tvsTmpl, tvsKey)
	r.tvsTLS = testpki.TLSCertificate(r.tvsCert, tvsKey)
	r.caFile, _ = testpki.WritePEM(t, r.work, "tvs-ca", r.tvsCert, nil)
	testpki.WritePEM(t, r.work, "tvs", r.tvsCert, tvsKey)

	// The certificates the servers vouch for, issued by a cluster CA.
	caKey := testpki.NewKey(t, testpki.EC256)
	ca := testpki.SelfSigned(t, testpki.CA("ucsec interop cluster CA"), caKey)
	leaf := func(cn string, pub crypto.PublicKey) *x509.Certificate {
		tmpl := testpki.Leaf(cn)
		tmpl.Subject = pkix.Name{CommonName: cn, Organization: []string{"ucsec interop"}, OrganizationalUnit: []string{"VoIP"}}
		return testpki.Issue(t, tmpl, ca, pub, caKey)
	}
	r.cases = []*refCase{
		{name: "capf ttl 3600", roles: []ctl.Role{ctl.RoleCAPF}, ttl: time.Hour},
		{name: "ccm+tftp and tvs ttl 600", roles: []ctl.Role{ctl.RoleTVS, ctl.RoleCCMTFTP}, ttl: 10 * time.Minute, load: true},
		{name: "every role ttl max", roles: []ctl.Role{ctl.RoleTVS, ctl.RoleAppServer, ctl.RoleCAPF, ctl.RoleTFTP, ctl.RoleCCMTFTP, ctl.RoleCCM, ctl.RoleSAST}, ttl: MaxTTL},
		{name: "sast default ttl", roles: []ctl.Role{ctl.RoleSAST}},
		{name: "ccm tftp app-server ttl 1", roles: []ctl.Role{ctl.RoleAppServer, ctl.RoleTFTP, ctl.RoleCCM}, ttl: time.Second},
		{name: "unknown"},
	}
	for i, c := range r.cases {
		pub := testpki.NewKey(t, testpki.EC256).Public()
		if i == 1 {
			pub = testpki.Key(t, testpki.RSA2048).Public()
		}
		c.cert = leaf(fmt.Sprintf("ucsec-tvs-interop-%d", i), pub)
		c.file, _ = testpki.WritePEM(t, r.work, fmt.Sprintf("case%d", i), c.cert, nil)
	}

	r.ours = refStartOurs(t, r.tvsTLS)
	r.tvsd = refStartTvsd(t, env, r.file("tvs.sqlite3"), r.file("tvs.pem"))
	t.Logf("tvsd: %s", r.tvsd.mode)
	ctx := context.Background()
	for _, c := range r.cases {
		if !c.known() {
			continue
		}
		if c.load {
			pemData, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := LoadCertificates(ctx, r.ours.store, pemData, c.roles, c.ttl); n != 1 || err != nil {
				t.Fatalf("LoadCertificates %s: %d, %v", c.name, n, err)
			}
		} else if err := Put(ctx, r.ours.store, &Entry{Certificate: c.cert, Roles: c.roles, TTL: c.ttl}); err != nil {
			t.Fatalf("Put %s: %v", c.name, err)
		}
		r.tvsd.ctl(t, c.ctlArgs()...)
	}
	r.peers = []*refPeer{
		{name: "our Server", addr: r.ours.addr, log: r.ours.log, done: regexp.MustCompile(`msg="tvs: request (?:answered|failed)"`),
			dial: func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", r.ours.addr)
			}},
		{name: "tvsd", addr: refForward(t, r.tvsd.dial), log: r.tvsd.out, dial: r.tvsd.dial,
			done: regexp.MustCompile(`Status: Invalid|TTL: \d+|Error: .*\n`)},
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("our Server's whole log:\n%s\ntvsd's whole log:\n%s", r.ours.log.Since(0), r.tvsd.out.Since(0))
		}
	})
	return r
}

// ---- tvsc ----

// refTvscRun is one tvsc run against a peer (or a tap in front of it).
type refTvscRun struct {
	args           []string
	stdout, stderr string
	err            error
	status, ttl    string
	roles          []string
	peer           string
	peerLog        string
}

func (r *refTvscRun) String() string {
	return fmt.Sprintf("tvsc %s\nexit: %v\nstdout:\n%s\nstderr:\n%s\n%s's log:\n%s",
		strings.Join(r.args, " "), r.err, r.stdout, r.stderr, r.peer, r.peerLog)
}

// tvsc runs tvsc against addr (p's, or a tap's in front of p) about c.
func (r *refRig) tvsc(t *testing.T, p *refPeer, addr string, c *refCase, opts ...string) *refTvscRun {
	t.Helper()
	mark := p.log.Len()
	args := append([]string{r.env.Script("tvsc"), "-h", addr, "-T", r.caFile, "-t", "20"}, opts...)
	args = append(args, c.file)
	run := &refTvscRun{args: args[1:], peer: p.name}
	run.stdout, run.stderr, run.err = refExec(r.env.Python, args...)
	p.log.WaitFor(mark, p.done, 3*time.Second) // the server may log after tvsc has its answer
	run.peerLog = p.log.Since(mark)
	for line := range strings.Lines(run.stdout) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch v = strings.TrimSpace(v); k {
		case "Status":
			run.status = v
		case "Role":
			run.roles = append(run.roles, v)
		case "TTL":
			run.ttl = v
		}
	}
	return run
}

// expect checks that tvsc exited 0 and printed c's verdict.
func (run *refTvscRun) expect(t *testing.T, c *refCase) {
	t.Helper()
	status, ttl := "Invalid", ""
	if c.known() {
		status, ttl = "Valid", fmt.Sprintf("%d seconds", c.wantTTL())
	}
	if run.err != nil || run.status != status || !slices.Equal(run.roles, c.wantNames()) || run.ttl != ttl {
		t.Fatalf("want status %s, roles %v, TTL %q:\n%v", status, c.wantNames(), ttl, run)
	}
}

// TestReferenceServer: the reference client tvsc against our Server.
func TestReferenceServer(t *testing.T) {
	r := refNewRig(t)
	ours, tvsd := r.peers[0], r.peers[1]

	// Status, roles and TTL as set; the whole printout as tvsc prints it
	// for tvsd holding the same entry.
	for _, c := range r.cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.tvsc(t, ours, ours.addr, c)
			got.expect(t, c)
			ref := r.tvsc(t, tvsd, tvsd.addr, c)
			ref.expect(t, c)
			if got.stdout != ref.stdout {
				t.Errorf("tvsc prints differently for our Server and for tvsd:\n--- ours\n%v\n--- tvsd\n%v", got, ref)
			}
			if want := "device=" + DefaultDeviceName + " sha256=" + c.hash(); !strings.Contains(got.peerLog, want) {
				t.Errorf("our Server's log lacks %q:\n%v", want, got)
			}
		})
	}

	t.Run("device name", func(t *testing.T) {
		const dev = "CP-7962-SEP001122334455"
		c := r.cases[0]
		got := r.tvsc(t, ours, ours.addr, c, "-d", dev)
		got.expect(t, c)
		if !strings.Contains(got.peerLog, "device="+dev+" ") {
			t.Errorf("our Server did not log device %s:\n%v", dev, got)
		}
		ref := r.tvsc(t, tvsd, tvsd.addr, c, "-d", dev)
		ref.expect(t, c)
		if !strings.Contains(ref.peerLog, "Device Name: "+dev) {
			t.Errorf("tvsd did not log device %s:\n%v", dev, ref)
		}
	})

	// tvsc checks the response id, but always sends 1, so that a server
	// that answered 1 whatever it got would pass. A tap gives each request
	// a random id and checks the response carries it; tvsc gets its 1 back.
	var answers [2][][]byte // each peer's responses, one per case, as recorded
	t.Run("request id echoed", func(t *testing.T) {
		for pi, p := range r.peers {
			tap := refStartTap(t, refTapNewID, r.tvsTLS, p.dial)
			for i, c := range r.cases {
				run := r.tvsc(t, p, tap.Addr, c)
				run.expect(t, c)
				s := tap.Session(i)
				if len(s) != 2 || s[0].FromServer || !s[1].FromServer {
					t.Fatalf("%s: want one request and one response, recorded %d frames:\n%v", p.name, len(s), run)
				}
				req, resp := s[0].Raw, s[1].Raw
				if !bytes.Equal(req[4:8], resp[4:8]) {
					t.Errorf("%s, %s: request id %x, response id %x", p.name, c.name, req[4:8], resp[4:8])
				}
				answers[pi] = append(answers[pi], resp)
			}
		}
	})

	// The same answers, byte for byte but the id (the tap gave each
	// request its own), whoever answers.
	t.Run("same frames as tvsd", func(t *testing.T) {
		if len(answers[0]) != len(r.cases) || len(answers[1]) != len(r.cases) {
			t.Skip("needs the recorded answers")
		}
		for i, c := range r.cases {
			a, b := slices.Clone(answers[0][i]), slices.Clone(answers[1][i])
			clear(a[4:8])
			clear(b[4:8])
			if !bytes.Equal(a, b) {
				t.Errorf("%s: response to tvsc differs (id zeroed):\n ours % x\n tvsd % x", c.name, a, b)
			}
		}
	})

	t.Run("tvsc checks the id", func(t *testing.T) {
		tap := refStartTap(t, refTapBadID, r.tvsTLS, ours.dial)
		run := r.tvsc(t, ours, tap.Addr, r.cases[0])
		if run.err == nil || !strings.Contains(run.stderr, "Mismatched session ID") {
			t.Fatalf("want tvsc to refuse a response with another id:\n%v", run)
		}
	})
}

// TestReferenceClient: our Client against tvsd, filled with tvsctl.
func TestReferenceClient(t *testing.T) {
	r := refNewRig(t)
	tvsd := r.peers[1]
	client := func(dev string) *Client {
		return &Client{Servers: []string{tvsd.addr}, TVSCertificates: []*x509.Certificate{r.tvsCert}, DeviceName: dev, Timeout: 10 * time.Second, CacheSize: -1}
	}
	verify := func(t *testing.T, c *Client, rc *refCase) (*Verdict, string, time.Duration, error) {
		t.Helper()
		mark := tvsd.log.Len()
		ctx, cancel := context.WithTimeout(context.Background(), interop.RefTimeout)
		defer cancel()
		start := time.Now()
		v, err := c.Verify(ctx, rc.cert)
		elapsed := time.Since(start)
		tvsd.log.WaitFor(mark, tvsd.done, 3*time.Second)
		return v, tvsd.log.Since(mark), elapsed, err
	}
	listed := r.tvsd.list(t)

	for _, rc := range r.cases {
		t.Run(rc.name, func(t *testing.T) {
			v, lg, _, err := verify(t, client(""), rc)
			if err != nil {
				t.Fatalf("Verify: %v\ntvsd's log:\n%s", err, lg)
			}
			if v.Valid != rc.known() || !slices.Equal(v.Roles, rc.wantRoles()) || v.Server != tvsd.addr {
				t.Fatalf("verdict %+v, want valid %v roles %v from %s\ntvsd's log:\n%s", v, rc.known(), rc.wantRoles(), tvsd.addr, lg)
			}
			wantTTL := time.Duration(0)
			if rc.known() {
				wantTTL = time.Duration(rc.wantTTL()) * time.Second
			}
			if v.TTL != wantTTL {
				t.Errorf("TTL %v, want %v", v.TTL, wantTTL)
			}
			if !strings.Contains(lg, "Device Name: "+DefaultDeviceName) {
				t.Errorf("tvsd did not log the default device name:\n%s", lg)
			}
			// What tvsctl says it holds.
			l := listed[rc.hash()]
			switch {
			case !rc.known() && l != nil:
				t.Errorf("tvsctl -l lists the unknown certificate: %+v", l)
			case rc.known() && l == nil:
				t.Errorf("tvsctl -l does not list %s", rc.hash())
			case rc.known():
				var names []string
				for _, role := range v.Roles {
					names = append(names, role.ShortName())
				}
				if !slices.Equal(names, l.roles) || strconv.Itoa(int(v.TTL/time.Second)) != l.ttl {
					t.Errorf("verdict roles %v TTL %v; tvsctl -l roles %v TTL %s", names, v.TTL, l.roles, l.ttl)
				}
			}
		})
	}

	t.Run("verifier", func(t *testing.T) {
		c := client("")
		ctx := context.Background()
		for _, q := range []struct {
			rc   *refCase
			role ctl.Role
			want bool
		}{
			{r.cases[0], ctl.RoleCAPF, true}, {r.cases[0], ctl.RoleTVS, false},
			{r.cases[1], ctl.RoleCCM, true}, {r.cases[1], ctl.RoleTFTP, true}, {r.cases[1], ctl.RoleTVS, true}, {r.cases[1], ctl.RoleSAST, false},
			{r.cases[len(r.cases)-1], ctl.RoleCCM, false},
		} {
			if ok, err := c.VerifyCertificate(ctx, q.rc.cert, q.role); ok != q.want || err != nil {
				t.Errorf("%s as %s: %v, %v; want %v", q.rc.name, q.role.ShortName(), ok, err, q.want)
			}
		}
	})

	// tvsd drops, unanswered, a request whose device name is not
	// CP-nnnn-SEP and 12 uppercase hex digits.
	t.Run("device name", func(t *testing.T) {
		rc := r.cases[0]
		const good = "CP-7962-SEP001122334455"
		v, lg, _, err := verify(t, client(good), rc)
		if err != nil || !v.Valid || !strings.Contains(lg, "Device Name: "+good) {
			t.Fatalf("device %s: %+v, %v\ntvsd's log:\n%s", good, v, err, lg)
		}
		for _, bad := range []string{"CP-7962-SEP001122aabbcc", "SEP001122334455", "CP-88651-SEP001122334455", "CP-7962G-SEP001122334455"} {
			c := client(bad)
			v, lg, elapsed, err := verify(t, c, rc)
			if err == nil {
				t.Errorf("device %s: tvsd answered %+v\ntvsd's log:\n%s", bad, v, lg)
				continue
			}
			t.Logf("device %s: after %v: %v", bad, elapsed.Round(time.Millisecond), err)
			if !strings.Contains(lg, "Invalid device name: "+bad) {
				t.Errorf("device %s: tvsd did not log it as invalid:\n%s", bad, lg)
			}
			var ne net.Error
			plain := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
			if !plain || !strings.Contains(err.Error(), tvsd.addr) || !strings.HasPrefix(err.Error(), "tvs:") {
				t.Errorf("device %s: want an error naming %s and wrapping EOF or a timeout, got %v", bad, tvsd.addr, err)
			}
			if elapsed >= c.Timeout {
				t.Errorf("device %s: the client waited its whole timeout (%v) for a closed connection", bad, elapsed)
			}
		}
		v, lg, _, err = verify(t, client(""), rc)
		if err != nil || !v.Valid || !strings.Contains(lg, "Device Name: "+DefaultDeviceName) {
			t.Fatalf("DefaultDeviceName after the dropped requests: %+v, %v\ntvsd's log:\n%s", v, err, lg)
		}
	})
}

// refAsk sends req, raw, over TLS to the server that dial reaches, and
// returns everything it sends back until it closes the connection.
func refAsk(dial func(context.Context) (net.Conn, error), roots *x509.CertPool, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	dl, _ := ctx.Deadline()
	raw.SetDeadline(dl)
	c := tls.Client(raw, &tls.Config{
		RootCAs:            roots,
		InsecureSkipVerify: true, // no host name; the chain is checked below
		VerifyPeerCertificate: func(certs [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(certs[0])
			if err != nil {
				return err
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots})
			return err
		},
	})
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// refDescribe shows the answer of a server, or that it gave none.
func refDescribe(b []byte, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("error %v after % x", err, b)
	case len(b) == 0:
		return "no answer (closed the connection)"
	}
	f, ferr := capfwire.ReadTVSFrame(bytes.NewReader(b))
	if ferr != nil {
		return fmt.Sprintf("unparsable (%v): % x", ferr, b)
	}
	var el []string
	for _, e := range f.Elements {
		el = append(el, fmt.Sprintf("%s=%x", capfwire.TVSTagName(e.Tag), e.Value))
	}
	s := fmt.Sprintf("%v id %08x [%s]", f.Command, f.ID, strings.Join(el, " "))
	if n := capfwire.TVSHeaderSize + int(binary.BigEndian.Uint16(b[8:10])); n < len(b) {
		s += fmt.Sprintf(", then %d more bytes", len(b)-n)
	}
	return s
}

// TestReferenceWire: the same request, byte for byte, to tvsd and to our
// Server; the answers must be the same bytes.
func TestReferenceWire(t *testing.T) {
	r := refNewRig(t)
	ours, tvsd := r.peers[0], r.peers[1]
	roots := testpki.Pool(r.tvsCert)
	type request struct {
		name    string
		version uint8
		cmd     capfwire.TVSCommand
		id      uint32
		el      capfwire.Elements
		// accept says why a different answer from tvsd's is not a
		// failure.
		accept string
	}
	nameEl := func(dev string) capfwire.Element {
		v, err := capfwire.WrapTVSDeviceName(dev)
		if err != nil {
			t.Fatal(err)
		}
		return capfwire.Element{Tag: capfwire.TVSTagDeviceName, Value: v}
	}
	certEl := func(c *refCase) capfwire.Element {
		return capfwire.Element{Tag: capfwire.TVSTagCertificate, Value: c.cert.Raw}
	}
	exchange := func(t *testing.T, q request) (o, d []byte, oerr, derr error) {
		t.Helper()
		f := &capfwire.TVSFrame{Version: q.version, Command: q.cmd, ID: q.id, Elements: q.el}
		req, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		o, oerr = refAsk(ours.dial, roots, req)
		d, derr = refAsk(tvsd.dial, roots, req)
		return
	}

	for i, c := range r.cases {
		t.Run(c.name, func(t *testing.T) {
			id := 0xA5C30000 + uint32(i)
			o, d, oerr, derr := exchange(t, request{version: 1, cmd: capfwire.TVSCmdVerifyRequest, id: id, el: capfwire.Elements{nameEl(DefaultDeviceName), certEl(c)}})
			if oerr != nil || derr != nil || len(d) < capfwire.TVSHeaderSize {
				t.Fatalf("ours: %s\ntvsd: %s\ntvsd's log:\n%s", refDescribe(o, oerr), refDescribe(d, derr), tvsd.log.Since(0))
			}
			if !bytes.Equal(o, d) {
				t.Fatalf("the answers differ:\n ours % x\n tvsd % x\n ours: %s\n tvsd: %s", o, d, refDescribe(o, nil), refDescribe(d, nil))
			}
			if got := binary.BigEndian.Uint32(o[4:8]); got != id {
				t.Errorf("response id %08x, request id %08x", got, id)
			}
			t.Logf("both: % x", o)
		})
	}

	// The sample exchange observed between tvsc and tvsd: CAPF role, TTL 3600.
	t.Run("reference sample", func(t *testing.T) {
		const id = 0x01020304
		o, d, oerr, derr := exchange(t, request{version: 1, cmd: capfwire.TVSCmdVerifyRequest, id: id, el: capfwire.Elements{nameEl("CP-7962-SEP001122334455"), certEl(r.cases[0])}})
		want, _ := hex.DecodeString("57010200" + "01020304" + "000f" + "07000100" + "08000104" + "090004" + "00000e10")
		if oerr != nil || derr != nil || !bytes.Equal(o, want) || !bytes.Equal(d, want) {
			t.Errorf("want % x\n ours %s: % x\n tvsd %s: % x", want, refDescribe(o, oerr), o, refDescribe(d, derr), d)
		}
	})

	// Requests off the beaten track. Where tvsd answers, we must answer the
	// same bytes; where it drops the request, what we do is logged, and
	// checked only where the package documentation promises an answer (a
	// bad device name gets one, STATUS 1 at worst).
	t.Run("divergences", func(t *testing.T) {
		known, unknown := r.cases[0], r.cases[len(r.cases)-1]
		withNUL := append([]byte{0x01}, DefaultDeviceName+"\x00"...)
		for i, q := range []request{
			{name: "lowercase hex device name", el: capfwire.Elements{nameEl("CP-7962-SEP001122aabbcc"), certEl(known)}},
			{name: "device name without CP- (CAPF style)", el: capfwire.Elements{nameEl("SEP001122334455"), certEl(known)}},
			{name: "device name with a letter in the model", el: capfwire.Elements{nameEl("CP-7962G-SEP001122334455"), certEl(known)}},
			{name: "device name, unknown certificate", el: capfwire.Elements{nameEl("CP-7962-SEP001122aabbcc"), certEl(unknown)}},
			{name: "no device name", el: capfwire.Elements{certEl(known)}},
			{name: "device name without the 0x01", el: capfwire.Elements{{Tag: capfwire.TVSTagDeviceName, Value: []byte(DefaultDeviceName)}, certEl(known)}},
			{name: "device name with a NUL", el: capfwire.Elements{{Tag: capfwire.TVSTagDeviceName, Value: withNUL}, certEl(known)}},
			{name: "certificate first", el: capfwire.Elements{certEl(known), nameEl(DefaultDeviceName)}},
			{name: "no certificate", el: capfwire.Elements{nameEl(DefaultDeviceName)}},
			{name: "certificate not DER", el: capfwire.Elements{nameEl(DefaultDeviceName), {Tag: capfwire.TVSTagCertificate, Value: []byte("not a certificate")}}},
			{name: "unknown element tag 3", el: capfwire.Elements{nameEl(DefaultDeviceName), certEl(known), {Tag: 3, Value: []byte{0}}}},
			// tvsd keeps the last of repeated elements, our Server (capfwire's
			// getters) the first. Phones send one certificate.
			{name: "two certificates, known first", el: capfwire.Elements{nameEl(DefaultDeviceName), certEl(known), certEl(unknown)}, accept: "tvsd looks up the last CERTIFICATE, our Server the first"},
			{name: "two certificates, unknown first", el: capfwire.Elements{nameEl(DefaultDeviceName), certEl(unknown), certEl(known)}, accept: "tvsd looks up the last CERTIFICATE, our Server the first"},
			{name: "QUERY_REQUEST", cmd: capfwire.TVSCmdQueryRequest, el: capfwire.Elements{nameEl(DefaultDeviceName), certEl(known)}},
			{name: "version 2", version: 2, el: capfwire.Elements{nameEl(DefaultDeviceName), certEl(known)}},
		} {
			q.version = cmp.Or(q.version, 1)
			q.cmd = cmp.Or(q.cmd, capfwire.TVSCmdVerifyRequest)
			q.id = 0x5EED0000 + uint32(i)
			mark := tvsd.log.Len()
			o, d, oerr, derr := exchange(t, q)
			tvsd.log.WaitFor(mark, tvsd.done, 2*time.Second)
			why := ""
			if m := regexp.MustCompile(`Error: (.*)`).FindStringSubmatch(tvsd.log.Since(mark)); m != nil {
				why = fmt.Sprintf(" (tvsd: %q)", m[1])
			}
			t.Logf("%s:\n  tvsd: %s%s\n  ours: %s", q.name, refDescribe(d, derr), why, refDescribe(o, oerr))
			switch {
			case len(d) != 0 && !bytes.Equal(o, d) && q.accept != "":
				t.Logf("%s: DIFFERENCE, not failed (%s)", q.name, q.accept)
			case len(d) != 0 && !bytes.Equal(o, d):
				t.Errorf("%s: tvsd answers, and we answer differently:\n ours % x\n tvsd % x", q.name, o, d)
			case strings.Contains(q.name, "device name") && q.cmd == capfwire.TVSCmdVerifyRequest && len(o) == 0:
				t.Errorf("%s: our Server gave no answer (a bad device name must get an answer, STATUS 1 at worst)", q.name)
			}
		}
	})
}

// BenchmarkReferenceQuery asks our Server and the reference tvsd (a black
// box in its network namespace, reached through the test's relay) about
// the same known certificate, with the same RSA-2048 TVS key: our Client,
// a new connection and a full TLS handshake each time (no session cache,
// no verdict cache), 8 at once. It reports queries per second of each.
func BenchmarkReferenceQuery(b *testing.B) {
	r := refNewRig(b)
	known := r.cases[0]
	for _, p := range r.peers {
		name := map[string]string{"our Server": "ucsec", "tvsd": "tvsd"}[p.name]
		b.Run(name, func(b *testing.B) {
			c := &Client{Servers: []string{p.addr}, TVSCertificates: []*x509.Certificate{r.tvsCert}, Timeout: 20 * time.Second, CacheSize: -1}
			ctx := context.Background()
			b.SetParallelism(4) // 8 on 2 CPUs
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					v, err := c.Verify(ctx, known.cert)
					if err != nil || !v.Valid {
						b.Errorf("%s: verdict %+v, %v", name, v, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
		})
	}
}
