package postgres

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/internal/testpki"
	"github.com/ucsec/ucsec/tvs"
)

// BenchmarkEnroll measures whole RSA-2048 install sessions, as package
// capf's BenchmarkEnroll does, against a CAPF server in a child process
// on each store: the bbolt store (synced commits), and the PostgreSQL
// store with fsync on (durable, as in production) and off. The server
// schedules an install for each device it does not know, so each
// enrolment costs one store write more than one scheduled ahead. 64
// phones enrol at once, with a pre-generated key. It reports enrolments
// per second, the server's CPU time per enrolment, and for PostgreSQL
// the database's CPU time per enrolment (all its processes) and the sum
// of both, which compares with the bbolt server's. One more run takes
// the pool of pgx's default size on a small machine, 4 connections,
// instead of the store's 16.
func BenchmarkEnroll(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the CPU time of the server and the database from /proc")
	}
	b.Run("store=bolt", func(b *testing.B) {
		benchEnroll(b, childConfig{Store: "bolt", Path: filepath.Join(b.TempDir(), "capf.db")}, nil)
	})
	for _, v := range []struct {
		fsync bool
		conns string // pool_max_conns, if not the store's default
	}{{true, ""}, {false, ""}, {true, "4"}} {
		name := fmt.Sprintf("store=postgres/fsync=%v", v.fsync)
		url := sharedPostgres(b, v.fsync).URL()
		if v.conns != "" {
			// pgx's default on a small machine.
			name += "/conns=" + v.conns
			url += "&pool_max_conns=" + v.conns
		}
		b.Run(name, func(b *testing.B) {
			benchEnroll(b, childConfig{Store: "postgres", URL: url}, sharedPostgres(b, v.fsync))
		})
	}
}

var benchRun atomic.Int64

func benchEnroll(b *testing.B, cfg childConfig, pg *dbtest.Postgres) {
	caKey := testpki.Key(b, testpki.RSA2048)
	ca := testpki.SelfSigned(b, testpki.CA("pgstore bench CAPF"), caKey)
	cfg.CAPF, _ = testpki.WritePEM(b, b.TempDir(), "capf", ca, caKey)
	cfg.AutoSchedule = true
	// The server's own profile: go test -bench Enroll with
	// PGSTORE_BENCH_CPUPROFILE=server.prof in the environment.
	cfg.CPUProfile = os.Getenv("PGSTORE_BENCH_CPUPROFILE")
	node := startChild(b, cfg)
	key := testpki.Key(b, testpki.RSA2048)
	pins := []*x509.Certificate{ca}
	prefix := fmt.Sprintf("SEP%02X%02X", os.Getpid()%256, benchRun.Add(1)%256)
	var seq atomic.Int64
	enroll := func() error {
		c := &capf.Client{
			Device:           fmt.Sprintf("%s%08X", prefix, seq.Add(1)),
			CAPFCertificates: pins,
			GenerateKey:      func(capf.KeySpec) (crypto.Signer, error) { return key, nil },
		}
		_, err := c.Enroll(context.Background(), node.addr)
		return err
	}
	if err := enroll(); err != nil { // warm up
		b.Fatal(err)
	}
	cpu0 := procCPU(b, node.cmd.Process.Pid)
	var db0 time.Duration
	if pg != nil {
		db0 = postgresCPU(b, pg)
	}
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := enroll(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	server := procCPU(b, node.cmd.Process.Pid) - cpu0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "enrolments/s")
	b.ReportMetric(perOp(server), "server-cpu-ms/op")
	if pg != nil {
		db := postgresCPU(b, pg) - db0
		b.ReportMetric(perOp(db), "db-cpu-ms/op")
		b.ReportMetric(perOp(server+db), "total-cpu-ms/op")
	}
}

// procCPU returns the user and system CPU time of the process pid; with
// children, also that of its children that have ended.
func procCPU(b testing.TB, pid int, children ...bool) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the parenthesised command name start with the
	// third; utime, stime, cutime and cstime are the 14th to the 17th,
	// in clock ticks (100 a second on Linux).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	n := 2
	if len(children) > 0 && children[0] {
		n = 4
	}
	var ticks int64
	for i := range n {
		v, _ := strconv.ParseInt(f[11+i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// postgresCPU returns the CPU time of the PostgreSQL server: its
// postmaster with its ended children, and its running children (the
// backends and the background processes).
func postgresCPU(b testing.TB, pg *dbtest.Postgres) time.Duration {
	pidFile, err := os.ReadFile(filepath.Join(pg.DataDir(), "postmaster.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		b.Fatal(err)
	}
	total := procCPU(b, pm, true)
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
		if ppid, _ := strconv.Atoi(f[1]); ppid == pm {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			if d, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && len(d) > 0 {
				total += procCPU(b, pid)
			}
		}
	}
	return total
}

// BenchmarkLookup measures tvs.Lookup, what each phone's TVS request
// costs, from 64 goroutines at once, on the memory store and on the
// PostgreSQL store (with the store's default pool of 16 connections, and
// with pgx's default of 4 on this machine), with 1000 entries. It reports
// lookups per second and, for PostgreSQL, the database's CPU time per
// lookup.
func BenchmarkLookup(b *testing.B) {
	entries := benchEntries(b, 1000)
	b.Run("store=memory", func(b *testing.B) {
		benchLookup(b, tvs.NewMemoryStore(), entries, nil)
	})
	for _, conns := range []string{"", "4"} {
		name := "store=postgres/conns=default"
		if conns != "" {
			name = "store=postgres/conns=" + conns
		}
		b.Run(name, func(b *testing.B) {
			pg := sharedPostgres(b, false)
			url := pg.URL()
			if conns != "" {
				url += "&pool_max_conns=" + conns
			}
			s, err := OpenTVSStore(testContext(b), url, &Options{Schema: "bench_tvs"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchLookup(b, s, entries, pg)
		})
	}
}

// benchEntries returns n entries of certificates of one key.
func benchEntries(b *testing.B, n int) []*tvs.Entry {
	key := testpki.Key(b, testpki.EC256)
	ca := testpki.SelfSigned(b, testpki.CA("pgstore bench TVS"), key)
	es := make([]*tvs.Entry, n)
	for i := range es {
		tmpl := testpki.Server(fmt.Sprintf("tvs-bench-%d", i))
		es[i] = &tvs.Entry{Certificate: testpki.Issue(b, tmpl, ca, key.Public(), key), Roles: []ctl.Role{ctl.RoleCCM}, TTL: time.Hour}
	}
	return es
}

func benchLookup(b *testing.B, st tvs.Store, entries []*tvs.Entry, pg *dbtest.Postgres) {
	ctx := context.Background()
	sums := make([][32]byte, len(entries))
	for i, e := range entries {
		if err := tvs.Put(ctx, st, e); err != nil {
			b.Fatal(err)
		}
		sums[i] = e.Sum()
	}
	var db0 time.Duration
	if pg != nil {
		db0 = postgresCPU(b, pg)
	}
	var next atomic.Int64
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			e, err := tvs.Lookup(ctx, st, sums[i%int64(len(sums))])
			if err != nil || e.TTL != time.Hour {
				b.Errorf("Lookup: %v", err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lookups/s")
	if pg != nil {
		b.ReportMetric(float64((postgresCPU(b, pg)-db0).Microseconds())/float64(b.N), "db-cpu-µs/op")
	}
}

// BenchmarkCAPFStore measures the store's calls alone, from 64
// goroutines at once on devices of their own, with fsync off: a Get, an
// Update of an existing record, and a RecordIssued. It reports the
// database's CPU time per call.
func BenchmarkCAPFStore(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		pg := sharedPostgres(b, fsync)
		st, err := OpenCAPFStore(testContext(b), pg.URL(), &Options{Schema: "bench_capf"})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		record := make([]byte, 800)
		set := func([]byte) ([]byte, error) { return record, nil }
		var serial atomic.Int64
		serial.Store(time.Now().UnixNano())
		for _, call := range []struct {
			name string
			do   func(ctx context.Context, dev string) error
		}{
			{"Get", func(ctx context.Context, dev string) error { _, err := st.Get(ctx, dev); return err }},
			{"Update", func(ctx context.Context, dev string) error { return st.Update(ctx, dev, set) }},
			{"RecordIssued", func(ctx context.Context, dev string) error {
				rec := capf.IssuedRecord{Serial: strconv.FormatInt(serial.Add(1), 16), Device: dev, Data: record[:700]}
				return st.RecordIssued(ctx, rec, set)
			}},
		} {
			b.Run(fmt.Sprintf("%s/fsync=%v", call.name, fsync), func(b *testing.B) {
				ctx := context.Background()
				var worker atomic.Int64
				db0 := postgresCPU(b, pg)
				b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					dev := fmt.Sprintf("SEP%012X", worker.Add(1))
					if err := st.Update(ctx, dev, set); err != nil {
						b.Error(err)
						return
					}
					for pb.Next() {
						if err := call.do(ctx, dev); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64((postgresCPU(b, pg)-db0).Microseconds())/float64(b.N), "db-cpu-µs/op")
			})
		}
	}
}
