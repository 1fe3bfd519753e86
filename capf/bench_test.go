package capf

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testpki"
)

// The enrolment benchmarks run the server in a child process (this test
// binary, re-executed with benchServerEnv set), so that its CPU time and
// memory can be read from /proc apart from the clients'. The child uses a
// durable BoltStore and a LocalCA with an RSA-2048 key; it schedules an
// RSA-2048 install for any device it does not know, so every enrolment
// costs the server one more store write than an enrolment scheduled ahead
// would.

const benchServerEnv = "CAPF_BENCH_SERVER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(benchServerEnv); dir != "" {
		os.Exit(benchServerMain(dir))
	}
	os.Exit(m.Run())
}

// autoSchedule is a Store that schedules an install for unknown devices.
type autoSchedule struct{ Store }

func (a autoSchedule) Get(ctx context.Context, name string) ([]byte, error) {
	data, err := a.Store.Get(ctx, name)
	if err == nil && len(data) == 0 {
		if err := ScheduleOperation(ctx, a.Store, name, Schedule{Operation: OpInstall, Key: RSA2048}, time.Now()); err != nil {
			return nil, err
		}
		return a.Store.Get(ctx, name)
	}
	return data, err
}

// benchServerMain runs the child: it reads the CAPF certificate and key
// from dir, serves on 127.0.0.1:0, prints the address and runs until its
// standard input closes.
func benchServerMain(dir string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	certPEM, err := os.ReadFile(filepath.Join(dir, "capf.pem"))
	if err != nil {
		return fail(err)
	}
	pair, err := tls.X509KeyPair(certPEM, certPEM)
	if err != nil {
		return fail(err)
	}
	st, err := OpenBoltStore(filepath.Join(dir, "capf.db"), nil)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	srv := &Server{
		Store:     autoSchedule{st},
		Issuer:    &LocalCA{Certificate: pair.Leaf, Signer: pair.PrivateKey.(crypto.Signer)},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}},
		// Every client comes from 127.0.0.1: no per-host bound.
		MaxConnsPerHost: -1,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	if path := os.Getenv("CAPF_BENCH_CPUPROFILE"); path != "" {
		// The server's own profile: go test -bench Enroll with
		// CAPF_BENCH_CPUPROFILE=server.prof in the environment.
		f, err := os.Create(path)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println(l.Addr().String())
	if err := srv.Serve(ctx, l); !errors.Is(err, ErrServerClosed) {
		return fail(err)
	}
	return 0
}

type benchChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startBenchServer starts a child serving with the CAPF certificate and
// key of the test PKI (RSA-2048).
func startBenchServer(b *testing.B) *benchChild {
	p := stPKIGet(b)
	return startBenchServerWith(b, p.capf, p.capfKey)
}

// startBenchServerWith starts a child serving with the CAPF certificate
// cert and its key.
func startBenchServerWith(b *testing.B, cert *x509.Certificate, key crypto.Signer) *benchChild {
	b.Helper()
	if runtime.GOOS != "linux" {
		b.Skip("reads the server's CPU time and memory from /proc")
	}
	dir := b.TempDir()
	testpki.WritePEM(b, dir, "capf", cert, key)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), benchServerEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &benchChild{cmd: cmd, stdin: stdin}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	c.addr = strings.TrimSpace(line)
	return c
}

// cpu returns the child's user+system CPU time.
func (c *benchChild) cpu(b *testing.B) time.Duration { return procCPU(b, c.cmd.Process.Pid) }

// procCPU returns the user+system CPU time of process pid, from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100 per second
	// on Linux).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// rss returns the child's resident set size in bytes.
func (c *benchChild) rss(b *testing.B) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkEnroll measures whole install sessions of RSA-2048 phone keys
// against a server in a child process, with an RSA-2048 CAPF certificate
// and with an ECDSA P-256 one: TLS handshake, AUTH, KEY_GENERATE with a
// pre-generated phone key, issuing and two durable store writes, STORE
// and END. 32 clients per GOMAXPROCS run at once, as a cluster's phones
// do after a restart: an enrolment waits for several synced store
// commits, which bbolt batches, so throughput needs concurrency. It
// reports enrolments per second, the server's CPU time per enrolment, the
// time of the two signatures every enrolment needs with the CAPF key (the
// TLS handshake's and the LSC's), measured in this process, and the ratio
// of the two (the rest is the TLS handshake's key exchange, the protocol,
// the certificate and the store).
func BenchmarkEnroll(b *testing.B) {
	p := stPKIGet(b)
	ecKey := testpki.NewKey(b, testpki.EC256)
	ecCAPF := testpki.SelfSigned(b, testpki.CA("CAPF-test-EC"), ecKey)
	for _, c := range []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
	}{{"capf=RSA2048", p.capf, p.capfKey}, {"capf=EC256", ecCAPF, ecKey}} {
		b.Run(c.name, func(b *testing.B) { benchEnroll(b, c.cert, c.key) })
	}
}

func benchEnroll(b *testing.B, capfCert *x509.Certificate, capfKey crypto.Signer) {
	child := startBenchServerWith(b, capfCert, capfKey)
	p := stPKIGet(b)
	key := p.keys[RSA2048]
	pins := []*x509.Certificate{capfCert}
	var seq atomic.Int64
	// Warm up the child (first store writes, TLS session setup).
	c0 := &Client{Device: "SEPFFFFFFFFFFFF", CAPFCertificates: pins,
		GenerateKey: func(KeySpec) (crypto.Signer, error) { return key, nil }}
	if _, err := c0.Enroll(context.Background(), child.addr); err != nil {
		b.Fatal(err)
	}
	cpu0 := child.cpu(b)
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := &Client{
				Device:           fmt.Sprintf("SEP%012X", seq.Add(1)),
				CAPFCertificates: pins,
				GenerateKey:      func(KeySpec) (crypto.Signer, error) { return key, nil },
			}
			if _, err := c.Enroll(context.Background(), child.addr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := child.cpu(b) - cpu0
	perOp := float64(cpu.Microseconds()) / 1000 / float64(b.N)
	sigs := signatureTime(b, capfKey, 2)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "enrolments/s")
	b.ReportMetric(perOp, "server-cpu-ms/op")
	b.ReportMetric(sigs, "signatures-ms/op")
	b.ReportMetric(perOp/sigs, "cpu/signatures")
}

// signatureTime returns the CPU time, in milliseconds, of n signatures of
// a SHA-256 digest with key, as crypto/tls and x509.CreateCertificate
// make them (PKCS #1 v1.5 for RSA, ASN.1 ECDSA), measured as this
// thread's CPU time (so that a busy machine does not inflate it) over
// enough rounds to be stable.
func signatureTime(b *testing.B, key crypto.Signer, n int) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	digest := make([]byte, 32)
	const rounds = 200
	start := threadCPU(b)
	for range rounds {
		if _, err := key.Sign(rand.Reader, digest, crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
	return float64((threadCPU(b) - start).Nanoseconds()) / 1e6 / rounds * float64(n)
}

// BenchmarkIdleConnection measures the server's memory per connection
// that finished its TLS handshake and waits for AUTH_RESPONSE: it opens
// 500 such connections (the first iteration; later ones only hold them)
// and reports the growth of the child's resident set divided by 500.
// Run it with -benchtime=1x.
func BenchmarkIdleConnection(b *testing.B) {
	const n = 500
	child := startBenchServer(b)
	cfg := &tls.Config{InsecureSkipVerify: true} // raw connections: trust is not measured
	var conns []*tls.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	rss0 := child.rss(b)
	b.ResetTimer()
	for range b.N {
		for len(conns) < n {
			c, err := tls.Dial("tcp", child.addr, cfg)
			if err != nil {
				b.Fatal(err)
			}
			// Wait for AUTH_REQUEST: the server's session is then set up.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 64)); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
	}
	b.StopTimer()
	time.Sleep(100 * time.Millisecond)
	b.ReportMetric(float64(child.rss(b)-rss0)/n, "server-bytes/conn")
}
