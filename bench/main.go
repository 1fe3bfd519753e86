// Command bench measures ucsec's hot paths on this machine, each side by
// side with a baseline written from the standard library alone, and
// prints one table: path, goal, library, baseline, ratio, verdict.
//
// Run it from the root of a checkout:
//
//	go run ./bench           # the full report, several minutes
//	go run ./bench -short    # one quick round of everything, to check that it runs
//
// Each row comes from a benchmark of the library's own test files, run
// with go test in this process's working tree:
//
//   - sgn, trust-list and digest verification and SRTP key derivation run
//     library and baseline in alternating batches in one benchmark
//     (internal/benchpair), so that a busy machine slows both alike; the
//     report gives the median of -count runs.
//   - the memory a replay store keeps per nonce is measured at several
//     numbers of outstanding nonces, and the worst is reported.
//   - CAPF enrolments run 64 clients against a server in a child process
//     with a bbolt store, with an RSA-2048 and an ECDSA P-256 CAPF
//     certificate; the baseline is the CPU time of the two signatures an
//     enrolment needs with that key (the TLS handshake's and the LSC's).
//   - with CAPF_REFERENCE_DIR naming a checkout of the Python reference
//     daemons (usecallmanagernz/daemons), the same enrolments run against
//     its capfd, a black box, and are compared with ucsec's, and TVS
//     queries go to its tvsd and to ours: rows that appear only then.
//   - phonesim is built and run with 200 phones, with EC P-256 phone
//     keys (the goal) and with RSA-2048 ones (reported: the phones' key
//     generation is most of it); its CPU time (user and system, with its
//     children) is divided by the number of phones.
//
// The verdict compares the median with the goal; -short runs too little
// for its verdicts to mean anything and says so. The exit status is 0
// unless a benchmark could not run: a goal missed is reported, not fatal.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	short  bool
	count  int
	phones int
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.short, "short", false, "run each benchmark once, briefly: checks that the report runs; its verdicts mean nothing")
	fs.IntVar(&o.count, "count", 5, "runs of each paired benchmark; the report gives their median")
	fs.IntVar(&o.phones, "phones", 200, "phones of the phonesim run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 || o.count < 1 || o.phones < 2 {
		fmt.Fprintln(stderr, "usage: go run ./bench [-short] [-count N] [-phones N]")
		return 2
	}
	if o.short {
		o.count, o.phones = 1, 10
	}
	if _, err := os.Stat("bench/main.go"); err != nil {
		fmt.Fprintln(stderr, "bench: run it from the root of the ucsec checkout (go run ./bench)")
		return 2
	}
	fmt.Fprintf(stdout, "ucsec benchmark report, %s, %s/%s, %d CPUs, %s\n", time.Now().UTC().Format("2006-01-02"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
	if o.short {
		fmt.Fprintln(stdout, "-short: one brief run of each; the verdicts below mean nothing")
	}
	fmt.Fprintln(stdout)

	var rows []row
	failed := false
	for _, m := range measures {
		if m.reference != "" && os.Getenv(m.reference) == "" {
			continue // the reference tools are not here: no row
		}
		fmt.Fprintf(stderr, "bench: %s\n", m.path)
		r, err := m.run(o)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", m.path, err)
			r = row{verdict: "error"}
			failed = true
		}
		r.path, r.goal = m.path, m.goal
		if o.short && r.verdict != "error" {
			r.verdict = "(short)"
		}
		rows = append(rows, r)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "path\tgoal\tlibrary\tbaseline\tratio\tverdict")
	fmt.Fprintln(tw, "----\t----\t-------\t--------\t-----\t-------")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.path, r.goal, r.library, r.baseline, r.ratio, r.verdict)
	}
	tw.Flush()
	if failed {
		return 1
	}
	return 0
}

// A row is one line of the report.
type row struct {
	path, goal                        string
	library, baseline, ratio, verdict string
}

// A measure is one row's benchmark.
type measure struct {
	path, goal string
	run        func(options) (row, error)
	// reference is the environment variable that must name the Python
	// reference tools (usecallmanagernz/daemons) for the row to run; ""
	// for the rows of the library itself.
	reference string
}

// enrolled holds what the RSA-2048 CAPF row measured, for the reference
// row to compare with.
var enrolled struct{ rate, cpu float64 }

var measures = []measure{
	{
		path: "sgn parse + verify, 1 MiB, RSA-2048, SHA-1",
		goal: "≤ 1.10× hash + RSA verify",
		run:  paired("./sgn", "BenchmarkVerifyPaired", 1.10, "20x"),
	},
	{
		path: "ITL parse + verify, 10 records, RSA-2048",
		goal: "≤ 1.15× hash + RSA verify",
		run:  paired("./ctl", "BenchmarkParseVerifyPaired", 1.15, "300x"),
	},
	{
		path: "digest Server.Verify, MD5, qop=auth, valid",
		goal: "≤ 2× two MD5s + nonce HMAC",
		run:  paired("./digest", "BenchmarkVerifyPaired", 2, "200x"),
	},
	{
		path: "replay memory per outstanding nonce",
		goal: "≤ 128 B",
		run:  replayMemory,
	},
	{
		path: "SRTP session keys, AES-128, cipher cached",
		goal: "≤ 150 ns, 0 allocs",
		run:  srtpDerive,
	},
	{
		path: "CAPF enrolments, bbolt, RSA-2048 CAPF, 64 clients",
		goal: "≥ 300/s",
		run:  enrol("capf=RSA2048"),
	},
	{
		path: "CAPF enrolments, bbolt, ECDSA P-256 CAPF, 64 clients",
		goal: "≥ 300/s",
		run:  enrol("capf=EC256"),
	},
	{
		path:      "CAPF enrolments, Python reference capfd, RSA-2048 CAPF, 16 clients",
		goal:      "ucsec ≥ 10× its rate",
		run:       referenceCapfd,
		reference: "CAPF_REFERENCE_DIR",
	},
	{
		path:      "TVS queries, Python reference tvsd, RSA-2048 key, new TLS each, 8 clients",
		goal:      "none: compared",
		run:       referenceTvsd,
		reference: "CAPF_REFERENCE_DIR",
	},
	{
		path: "phonesim, CPU per phone, EC P-256 phone keys",
		goal: "≤ 50 ms",
		run:  phonesim("ec", 50*time.Millisecond),
	},
	{
		path: "phonesim, CPU per phone, RSA-2048 phone keys",
		goal: "none: the phones' key generation",
		run:  phonesim("rsa", 0),
	},
}

// paired returns the measure of a benchpair benchmark: the medians of
// its ours-ns, base-ns and ratio metrics over o.count runs.
func paired(pkg, name string, goal float64, short string) func(options) (row, error) {
	return func(o options) (row, error) {
		benchtime := "2s"
		if o.short {
			benchtime = short
		}
		res, err := goBench(pkg, "^"+name+"$", benchtime, o.count)
		if err != nil {
			return row{}, err
		}
		ours, base, ratio := res.median(name, "ours-ns"), res.median(name, "base-ns"), res.median(name, "ratio")
		return row{
			library:  duration(ours),
			baseline: duration(base),
			ratio:    fmt.Sprintf("%.3f×", ratio),
			verdict:  verdict(ratio <= goal),
		}, nil
	}
}

// replayMemory reports the worst memory per nonce of the memory replay
// store over the counts its benchmark measures.
func replayMemory(o options) (row, error) {
	res, err := goBench("./digest", "^BenchmarkReplayStore$/^memory", "1x", 1)
	if err != nil {
		return row{}, err
	}
	worst, at := 0.0, ""
	for name, metrics := range res {
		if v := median(metrics["bytes/nonce"]); v > worst {
			worst, at = v, name[strings.LastIndexByte(name, '=')+1:]
		}
	}
	return row{
		library:  fmt.Sprintf("%.0f B (worst, at %s nonces)", worst, at),
		baseline: "—",
		ratio:    "—",
		verdict:  verdict(worst <= 128),
	}, nil
}

// srtpDerive reports SRTPInto's time next to the raw PRF's, and its
// allocations.
func srtpDerive(o options) (row, error) {
	r, err := paired("./srtpkeys", "BenchmarkDerivePaired", 1e9, "2000x")(o)
	if err != nil {
		return row{}, err
	}
	benchtime := "1s"
	if o.short {
		benchtime = "20000x"
	}
	const name = "BenchmarkDerive/AES_CM_128_HMAC_SHA1_80/into"
	res, err := goBench("./srtpkeys", "^BenchmarkDerive$/^AES_CM_128_HMAC_SHA1_80$/^into$", benchtime, o.count)
	if err != nil {
		return row{}, err
	}
	ns, allocs := res.median(name, "ns/op"), res.median(name, "allocs/op")
	r.library = fmt.Sprintf("%s, %.0f allocs", duration(ns), allocs)
	r.verdict = verdict(ns <= 150 && allocs == 0)
	return r, nil
}

// enrol returns the measure of one CAPF enrolment benchmark: enrolments
// per second and the server's CPU per enrolment, next to the CPU time of
// the enrolment's two signatures.
func enrol(sub string) func(options) (row, error) {
	return func(o options) (row, error) {
		benchtime := "2000x"
		if o.short {
			benchtime = "64x"
		}
		name := "BenchmarkEnroll/" + sub
		res, err := goBench("./capf", "^BenchmarkEnroll$/^"+sub+"$", benchtime, 1)
		if err != nil {
			return row{}, err
		}
		rate, cpu := res.median(name, "enrolments/s"), res.median(name, "server-cpu-ms/op")
		sigs, ratio := res.median(name, "signatures-ms/op"), res.median(name, "cpu/signatures")
		if sub == "capf=RSA2048" {
			enrolled.rate, enrolled.cpu = rate, cpu
		}
		return row{
			library:  fmt.Sprintf("%.0f/s, %.2f ms CPU each", rate, cpu),
			baseline: fmt.Sprintf("2 signatures: %.2f ms", sigs),
			ratio:    fmt.Sprintf("%.2f× (CPU / signatures)", ratio),
			verdict:  verdict(rate >= 300),
		}, nil
	}
}

// referenceCapfd runs the enrolments against the Python reference capfd,
// a black box that package capf's BenchmarkReferenceEnroll starts from
// CAPF_REFERENCE_DIR (never part of this module), and compares its rate
// and CPU per enrolment with the RSA-2048 row's.
func referenceCapfd(o options) (row, error) {
	benchtime := "64x"
	if o.short {
		benchtime = "8x"
	}
	const name = "BenchmarkReferenceEnroll"
	res, err := goBench("./capf", "^"+name+"$", benchtime, 1)
	if err != nil {
		return row{}, err
	}
	rate, cpu := res.median(name, "enrolments/s"), res.median(name, "server-cpu-ms/op")
	r := row{library: "—", baseline: fmt.Sprintf("capfd: %.1f/s, %.1f ms CPU each", rate, cpu), ratio: "—", verdict: "(no ucsec row)"}
	if enrolled.rate > 0 && rate > 0 && enrolled.cpu > 0 {
		r.library = fmt.Sprintf("ucsec: %.0f/s, %.2f ms CPU each", enrolled.rate, enrolled.cpu)
		r.ratio = fmt.Sprintf("%.1f× the rate, %.1f× less CPU", enrolled.rate/rate, cpu/enrolled.cpu)
		r.verdict = verdict(enrolled.rate >= 10*rate)
	}
	return r, nil
}

// referenceTvsd runs the same TVS queries against our Server and the
// Python reference tvsd (a black box in a network namespace, reached
// through a relay), both started by package tvs's
// BenchmarkReferenceQuery, and compares their rates. The client, ours,
// runs in the same process for both: the rates include its work.
func referenceTvsd(o options) (row, error) {
	benchtime := "300x"
	if o.short {
		benchtime = "20x"
	}
	res, err := goBench("./tvs", "^BenchmarkReferenceQuery$", benchtime, 1)
	if err != nil {
		return row{}, err
	}
	ours, ref := res.median("BenchmarkReferenceQuery/ucsec", "queries/s"), res.median("BenchmarkReferenceQuery/tvsd", "queries/s")
	r := row{library: fmt.Sprintf("ucsec: %.0f/s", ours), baseline: fmt.Sprintf("tvsd: %.0f/s", ref), ratio: "—", verdict: "(reported)"}
	if ref > 0 {
		r.ratio = fmt.Sprintf("%.1f× the rate", ours/ref)
	}
	return r, nil
}

// phonesim returns the measure of examples/phonesim with -keys keys and
// o.phones phones: its CPU time per phone, against goal (none if 0).
func phonesim(keys string, goal time.Duration) func(options) (row, error) {
	return func(o options) (row, error) {
		dir, err := os.MkdirTemp("", "ucsec-bench-")
		if err != nil {
			return row{}, err
		}
		defer os.RemoveAll(dir)
		exe := filepath.Join(dir, "phonesim")
		if out, err := exec.Command("go", "build", "-o", exe, "./examples/phonesim").CombinedOutput(); err != nil {
			return row{}, fmt.Errorf("go build ./examples/phonesim: %v\n%s", err, out)
		}
		cmd := exec.Command(exe, "-phones", strconv.Itoa(o.phones), "-keys", keys)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return row{}, fmt.Errorf("phonesim -phones %d -keys %s: %v\n%s", o.phones, keys, err, out.Bytes())
		}
		wall := time.Since(start)
		// On Linux, wait4 reports the child's own time and that of the
		// children it reaped.
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		per := cpu / time.Duration(o.phones)
		r := row{
			library:  fmt.Sprintf("%s (%d phones, %.1f s CPU, %.1f s wall)", per.Round(100*time.Microsecond), o.phones, cpu.Seconds(), wall.Seconds()),
			baseline: "—",
			ratio:    "—",
			verdict:  "(reported)",
		}
		if goal > 0 {
			r.verdict = verdict(per <= goal)
		}
		return r, nil
	}
}

// results are a go test -bench run's metrics: benchmark name (without
// the -GOMAXPROCS suffix) → unit → values, one per run.
type results map[string]map[string][]float64

func (r results) median(name, unit string) float64 { return median(r[name][unit]) }

// goBench runs go test -bench on pkg and parses its output.
func goBench(pkg, pattern, benchtime string, count int) (results, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern, "-benchmem",
		"-benchtime", benchtime, "-count", strconv.Itoa(count), pkg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench %s %s: %v\n%s", pattern, pkg, err, out)
	}
	res := parseBench(out)
	if len(res) == 0 {
		return nil, fmt.Errorf("go test -bench %s %s: no results\n%s", pattern, pkg, out)
	}
	return res, nil
}

// parseBench reads the result lines of go test -bench output:
//
//	BenchmarkName-2   1000   1234 ns/op   1.05 ratio ...
func parseBench(out []byte) results {
	res := results{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res
}

// median returns the median of vs, or 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func duration(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func verdict(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗ missed"
}

// cpuModel returns the processor's model name, from /proc/cpuinfo where
// there is one.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
