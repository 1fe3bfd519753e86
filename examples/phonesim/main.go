// Command phonesim runs a small secure Cisco-style cluster on the loopback
// interface and simulated phones that go through the whole life of a
// secure phone, using the ucsec packages as any program would:
//
//  1. The cluster makes its PKI: the ITLRecovery (SAST) key that signs
//     the trust lists, the CallManager certificate (SIP-TLS server and
//     TFTP signer), the CAPF CA and the TVS certificate.
//  2. Each phone downloads the ITL from the file service (CUCM's
//     TFTP/HTTP 6970) and trusts it on first contact (rule P1, package
//     ctl), then the CTL, signed by the ITL's SAST (P3); enrolls with the CAPF for its LSC, typing its authentication
//     string (package capf); downloads its short signed configuration,
//     checks the signature against its trust list (P8) and that the
//     certHash names its LSC, then downloads and decrypts its full
//     configuration (packages sgn, cnfenc).
//  3. The cluster rolls its ITL over to a new signer. Before it publishes
//     the new list, the planner (package trustplan) predicts, from what
//     each phone holds and what the TVS vouches for, what the phone will
//     do with it; then each phone asks the TVS about the signer it does
//     not know and accepts the list (P4, package tvs), and the check
//     "rollover predicted by the planner for N phones" fails if any phone
//     did otherwise than predicted.
//  4. Each phone registers with the SIP registrar over TLS, its LSC as
//     client certificate and the server's certificate checked against its
//     trust list, answering a digest challenge (package digest).
//  5. Phones call each other in pairs through the call controller, keyed
//     with SDES in the SDP over TLS (package srtpkeys), exchange SRTP both
//     ways through pion contexts and check every packet, and show the
//     security icon the controller computes (package secstatus).
//
// Then it checks what must be refused: a tampered configuration, a wrong
// authentication string, a rogue CAPF whose certificate is a phone's LSC,
// a replayed REGISTER, requests a SIP trunk's security profile does not
// accept (package acl), and a non-secure phone must end its call without
// a lock.
//
// It prints a table, one line per phone, and a verdict; the exit status is
// 0 only if every phone reached its expected state and every check passed.
//
//	go run ./examples/phonesim
//	go run ./examples/phonesim -phones 50 -json
//	go run ./examples/phonesim -nodes 3
//
// Everything listens on 127.0.0.1 on ports the system picks. The keys are
// made at start-up and thrown away, unless -pki names a directory to keep
// them in; state (the CAPF store, the served files) goes to a temporary
// directory unless -state names one. (With several nodes the CAPF store is
// in PostgreSQL, see below.)
//
// # A cluster of several nodes
//
// With -nodes N (N from 2 to 16; 1 by default) the cluster has N nodes,
// as a CUCM cluster has a publisher and subscribers: each node runs its
// own CAPF, TVS and SIP registrar and call controller, and they behave as
// one cluster over shared state. The CAPF and TVS stores of every node
// are in one PostgreSQL database (package stores/postgres), and the
// digest replay store of every registrar in one Redis (package
// stores/redis); the registrars also share their digest nonce key. Each
// node opens stores of its own on them, as separate servers would. The
// servers are those of -postgres URL and -redis URL; without them
// phonesim starts throw-away instances in the temporary directory
// (package internal/dbtest: PostgreSQL's initdb and postgres, and
// redis-server, as Debian's postgresql and redis-server packages install
// them) and stops them at the end; if they are not installed it says how
// to install them and exits with status 2. With one node the stores are
// embedded, and nothing but Go is needed (-postgres and -redis, if given,
// are used by that node all the same).
//
// The file service stays one service that all nodes share: the nodes
// serve the same files in CUCM too. Each phone's configuration names its
// CallManager group, the nodes it registers with in order: phone i's
// first node is node i mod N + 1 (the publisher is node 1), then the
// others in turn (i+1 mod N, ...). The phone reads the list from its
// decrypted configuration, with each node's SIP ports and TVS, and it
// enrols with its first node's CAPF. Operations are scheduled and TVS
// entries loaded through the publisher, as CUCM is administered. The
// nodes present the cluster's one CallManager, CAPF and TVS certificate
// (a CUCM node has its own, all of them in the ITL), so the trust lists
// are those of one node.
//
// A phone calls a phone registered with another node through both nodes'
// call controllers: the caller's finds the callee's registration through
// an in-process directory of the nodes' registrars, which stands in for
// CUCM's intra-cluster signalling since all nodes run in this process,
// and hands the call to the callee's node, which sets up the leg to the
// callee over its connection. The SDES offer and answer pass through both
// controllers, so the media keys still go end to end between the phones,
// and the caller's controller computes the security status from both
// phones and the media, as within a node, for both phones' Call-Info.
//
// After the calls the run checks that the nodes act as one cluster; each
// check's name says which nodes it involved:
//
//   - phones registered with different nodes called each other, with the
//     lock (the calls in pairs: consecutive phones are on different
//     nodes);
//   - a REGISTER that a phone sent to node 1, replayed to node 2, is
//     refused by node 2's digest replay check: the count is in Redis;
//   - a CAPF operation scheduled through node 1 is completed by a phone
//     enrolling with node N's CAPF: the operation is in PostgreSQL, and
//     node 1 then sees the LSC issued;
//   - a TVS entry added through node N is answered by every node's TVS
//     (and by none before);
//   - a node is killed (the last node with phones; never the publisher):
//     its registrar's listeners and connections close at once, without a
//     SIP or TLS goodbye (a TCP reset), as a crash looks to its phones,
//     and its CAPF and TVS stop. Phones notice at their next keepalive
//     REGISTER (CUCM's SIP Station KeepAlive Interval), which the run
//     fires for every phone right after the kill: the refresh fails on
//     the lost connection (a new one is refused), and the phone registers
//     with the next node of its list. Each phone that failed over then
//     calls another phone (one of another node, where there is one), and
//     the call must end with the lock.
//     The table's NODE column shows where each phone registered, "3→1"
//     for a phone that failed over.
//
// With -json the cluster checks are entries of "checks", with "name",
// "ok" and the "nodes" they involved; each phone has its "node" (and
// "failedOverTo").
//
// # Phone keys: RSA or EC
//
// By default the CAPF installs ask each phone for an RSA-2048 key, and
// the phone's LSC is on it. With -keys ec they ask for an ECDSA P-256
// key instead, as CUCM does when a phone's CAPF settings have the key
// order "EC Only" or "EC Preferred, RSA Backup". Making an RSA-2048
// key is most of the CPU time of a run (tens of milliseconds per phone,
// against well under one for P-256); everything else stays the same.
//
// A phone with an EC LSC gets its full configuration signed
// (SEP….cnf.xml.sgn, with its secure settings), not encrypted: the
// encrypted configuration (SEP….cnf.xml.enc.sgn, package cnfenc) carries
// its file key wrapped with the phone's RSA public key (RSAES-PKCS1-v1_5),
// no variant of the format for an EC key is known, and cnfenc encrypts to
// RSA keys only. Its CONFIG is then "signed", which is the expected state
// for it; a phone with an RSA LSC must still decrypt its configuration,
// and refuses a signed full one. The check "tampered configuration
// refused by the phone" becomes "tampered signed configuration refused by
// the EC phone": it changes the phone's signed full configuration and
// serves another phone's in its place, and both must be refused; its
// third case, a changed encrypted configuration, applies to RSA phones
// only. The verdict names the key kind ("keys" in -json, and each
// phone's "key").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/secstatus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are what the flags set.
type options struct {
	phones     int
	cpuprofile string
	nodes      int
	postgres   string
	redis      string
	state      string
	pki        string
	json       bool
	timeout    time.Duration
	verbose    bool
	files      string
	keys       capf.KeySpec // -keys: capf.RSA2048 or capf.EC256
}

// maxNodes bounds -nodes.
const maxNodes = 16

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("phonesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.phones, "phones", 4, "how many secure phones to simulate, 2 to 1000")
	fs.IntVar(&o.nodes, "nodes", 1, "run the cluster on `N` nodes, 1 to 16, each with its own CAPF, TVS and SIP registrar and call controller over shared state in PostgreSQL and Redis (see -postgres, -redis); 1 keeps the state in embedded stores")
	fs.StringVar(&o.postgres, "postgres", "", "keep the CAPF and TVS stores in the PostgreSQL database at `URL` (postgres://user@host:port/db, the password in it, PGPASSWORD or ~/.pgpass; default: with -nodes 1 embedded stores, with more a throw-away local PostgreSQL, if installed)")
	fs.StringVar(&o.redis, "redis", "", "keep the digest replay store in the Redis at `URL` (redis://:password@host:port/0; default: with -nodes 1 each registrar's own in memory, with more a throw-away local Redis, if installed)")
	fs.StringVar(&o.state, "state", "", "keep the cluster's state (the CAPF store of a single node, the served files) in `DIR` (default: a temporary directory, removed at the end)")
	fs.StringVar(&o.pki, "pki", "", "load the cluster's certificates and keys from `DIR`, or make them there if it has none (default: made at start-up, thrown away)")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON instead of a table")
	keys := fs.String("keys", keysRSA, "the kind of key, `rsa|ec`, that the CAPF installs ask the phones to make for their LSCs: rsa is RSA-2048, ec is ECDSA P-256, as CUCM's key order \"EC Preferred\" gives (far less CPU to make). A phone with an EC LSC gets its full configuration signed, not encrypted: the encrypted configuration (.cnf.xml.enc.sgn) wraps its file key with the phone's RSA key, and no EC variant of it exists")
	fs.StringVar(&o.files, "files", filesTFTP, "phones fetch their trust lists and configurations over `tftp` or http (the file service serves both)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after `DUR`")
	fs.BoolVar(&o.verbose, "v", false, "log what the cluster and the phones do on standard error")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: phonesim [flags]

phonesim starts a secure Cisco-style cluster on 127.0.0.1 (file service
with signed trust lists and encrypted configurations, which phones fetch
over TFTP, or over HTTP with -files http; CAPF, TVS, a SIP-TLS
registrar and call controller) and simulated phones that trust the lists,
enrol for their certificates, read their encrypted configurations, accept
a rolled-over trust list through TVS (as the planner of package trustplan
predicted before it was published), register with mutual TLS and digest,
and call each other with SRTP. Progress goes to standard error; standard
output gets one line per phone (ITL: the trust-list rules that accepted
its lists, P1 on first contact and P4 through TVS; PACKETS: received and
decrypted / sent) and a verdict. The exit status is 0 if every phone
ended secure and every check went as it must, 1 if not, and 2 if the
cluster could not run or -timeout ran out.

With -nodes N (2 or more) the cluster has N nodes (node 1, the publisher,
and subscribers), each with its own CAPF, TVS and SIP registrar and call
controller, over shared state: the CAPF and TVS stores in one PostgreSQL
database (-postgres), the digest replay store in one Redis (-redis). The
file service stays one, shared. Without -postgres and -redis phonesim
starts throw-away local servers if PostgreSQL and Redis are installed
(Debian: apt-get install postgresql redis-server), and exits 2 saying so
if not. Each phone's configuration lists its nodes in order (phone i
starts at node i mod N + 1, then the others); the table's NODE column
shows where each registered. Cluster checks follow the negative checks:
calls between phones of different nodes; a REGISTER captured on node 1
and replayed on node 2 refused (Redis); a CAPF operation scheduled on
node 1 completed by enrolment at node N (PostgreSQL); a TVS entry added
on node N answered by every node; and one node killed after the calls,
whose phones fail over to their next node ("3→1"), register again and
call with the lock.

With -keys ec the phones make ECDSA P-256 keys for their LSCs instead of
RSA-2048 ones, and get their configurations signed rather than
encrypted: an encrypted configuration's key is wrapped with the phone's
RSA key, and the format has no EC variant.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.phones < 2 || o.phones > 1000:
		return nil, fmt.Errorf("-phones %d: want 2 to 1000", o.phones)
	case o.nodes < 1 || o.nodes > maxNodes:
		return nil, fmt.Errorf("-nodes %d: want 1 to %d", o.nodes, maxNodes)
	case o.timeout <= 0:
		return nil, fmt.Errorf("-timeout %v: want a positive duration", o.timeout)
	case o.files != filesTFTP && o.files != filesHTTP:
		return nil, fmt.Errorf("-files %q: want tftp or http", o.files)
	}
	switch *keys {
	case keysRSA:
		o.keys = capf.RSA2048
	case keysEC:
		o.keys = capf.EC256
	default:
		return nil, fmt.Errorf("-keys %q: want rsa or ec", *keys)
	}
	return o, nil
}

// The values of -keys.
const (
	keysRSA = "rsa"
	keysEC  = "ec"
)

// Exit statuses.
const (
	exitOK    = 0 // every phone reached its expected state, every check passed
	exitFail  = 1 // some phone or check did not
	exitError = 2 // usage error, or the cluster could not start
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "phonesim:", err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	if o.verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// The SIP stack (emiago/sipgo) also logs some transport events through
	// the default logger.
	slog.SetDefault(log)
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "phonesim: -cpuprofile:", err)
			return exitError
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	start := time.Now()
	rep, err := simulate(ctx, o, log, progress(stderr))
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "phonesim: gave up: %v (-timeout %v)\n", context.Cause(ctx), o.timeout)
		return exitError
	}
	if err != nil {
		fmt.Fprintln(stderr, "phonesim:", err)
		return exitError
	}
	rep.finish(time.Since(start).Seconds())
	if o.json {
		if err := rep.writeJSON(stdout); err != nil {
			fmt.Fprintln(stderr, "phonesim:", err)
			return exitError
		}
	} else {
		rep.writeText(stdout)
	}
	if !rep.OK {
		return exitFail
	}
	return exitOK
}

// progress returns the function that reports each stage on stderr.
func progress(w io.Writer) func(format string, args ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "phonesim: "+format+"\n", args...)
	}
}

// simulated phones: SEP0011220000nn, extensions from 1001. The
// non-secure phone of the last check is SEP00112200FFFF, 1999.
func phoneDevice(i int) string { return fmt.Sprintf("SEP00112200%04X", i+1) }
func phoneExt(i int) string    { return fmt.Sprintf("%d", 1001+i) }

const (
	plainDevice = "SEP00112200FFFF"
	plainExt    = "1999"
	realm       = "phonesim"
)

// simulate runs the cluster and the phones and returns what happened. An
// error means the cluster itself could not run.
func simulate(ctx context.Context, o *options, log *slog.Logger, say func(string, ...any)) (*report, error) {
	stateDir := o.state
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "phonesim-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		stateDir = dir
	} else if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	nodes := max(o.nodes, 1)
	copts := &clusterOptions{Nodes: nodes, Postgres: o.postgres, Redis: o.redis, Files: o.files, Keys: o.keys}

	// With several nodes, the servers of the shared state start while
	// the PKI is made; they stop after the cluster has closed.
	var backs *backends
	var backErr error
	backDone := make(chan struct{})
	if nodes > 1 {
		go func() {
			defer close(backDone)
			backs, backErr = startBackends(ctx, o.postgres, o.redis, engines{})
		}()
		defer func() {
			<-backDone
			if backs != nil {
				backs.stop()
			}
		}()
	} else {
		close(backDone)
	}

	var pki *clusterPKI
	var err error
	if o.pki != "" {
		var created bool
		pki, created, err = loadOrCreatePKI(o.pki, nil)
		if err == nil && created {
			say("made the cluster's PKI in %s", o.pki)
		}
	} else {
		pki, err = newClusterPKI(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("PKI: %w", err)
	}
	<-backDone
	if backErr != nil {
		return nil, fmt.Errorf("-nodes %d: %w", nodes, backErr)
	}
	if backs != nil {
		copts.Postgres, copts.Redis = backs.Postgres, backs.Redis
		say("shared state: %s", backs.describe())
	}

	c, err := startCluster(ctx, pki, stateDir, copts, log)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer c.close()

	// The controller knows every line before any phone appears, as CUCM's
	// database does; the digest user of a line is its extension. Phone i
	// starts at node i mod N; the non-secure phone at the publisher.
	phones := make([]*phone, o.phones)
	lines := make([]phoneLine, 0, o.phones+1)
	for i := range phones {
		phones[i] = &phone{Device: phoneDevice(i), Extension: phoneExt(i), Secure: true}
		lines = append(lines, phoneLine{Device: phones[i].Device, Extension: phones[i].Extension, DigestUser: phones[i].Extension, Secure: true})
		c.place(phones[i].Device, i%nodes)
	}
	plain := &phone{Device: plainDevice, Extension: plainExt}
	lines = append(lines, phoneLine{Device: plain.Device, Extension: plain.Extension, DigestUser: plain.Extension})
	if err := c.startSIP(ctx, lines, realm); err != nil {
		return nil, fmt.Errorf("registrar: %w", err)
	}
	reg := c.registrar(0)
	srv := reg.server()
	if nodes == 1 {
		say("cluster up: files %s, CAPF %s, TVS %s, SIP-TLS %s", c.FileURL, c.CAPFAddr, c.TVSAddr, srv.TLS)
	} else {
		say("cluster up: files %s, %d nodes", c.FileURL, nodes)
		for i, nd := range c.nodes {
			role := "subscriber"
			if i == 0 {
				role = "publisher"
			}
			say("  node %d (%s): CAPF %s, TVS %s, SIP-TLS %s", i+1, role, nd.CAPFAddr, nd.TVSAddr, nd.reg.server().TLS)
		}
	}

	authStrings := make(map[string]string, len(phones))
	for _, p := range phones {
		s, err := newAuthString()
		if err != nil {
			return nil, err
		}
		authStrings[p.Device] = s
	}
	if err := c.scheduleAll(ctx, authStrings); err != nil {
		return nil, fmt.Errorf("scheduling CAPF operations: %w", err)
	}

	rep := &report{Phones: make([]phoneRow, len(phones)), Keys: c.keys()}
	if nodes > 1 {
		rep.Nodes = nodes
	}
	ids := make([]*sipIdentity, len(phones))
	var wg sync.WaitGroup
	for i, p := range phones {
		wg.Go(func() {
			row := &rep.Phones[i]
			row.Phone, row.Extension, row.Secure = p.Device, p.Extension, true
			id, prep, err := p.provision(ctx, c, authStrings[p.Device])
			row.LSCSerial, row.Key, row.Config, row.ITL = prep.LSCSerial, prep.Key, prep.Config, prep.itlRules()
			if err != nil {
				row.Err = oneLine(err)
				if row.Config == "" {
					row.Config = "failed"
				}
				return
			}
			ids[i] = id
		})
	}
	wg.Wait()
	say("%d phones provisioned", count(ids))

	// The ITL rolls over to a new signer: the phones accept it through
	// TVS. Before it is published, the planner predicts what each phone
	// will do; afterwards, each must have done so.
	nextData, next, err := c.prepareRollover(ctx)
	if err != nil {
		return nil, fmt.Errorf("rolling the ITL over: %w", err)
	}
	preds, err := predictRollover(ctx, c, phones, ids, next)
	if err != nil {
		return nil, fmt.Errorf("planning the ITL rollover: %w", err)
	}
	say("planner: the rolled-over ITL will be %s", predictedRules(preds))
	if err := c.publishITL(nextData); err != nil {
		return nil, fmt.Errorf("rolling the ITL over: %w", err)
	}
	for i, p := range phones {
		if ids[i] == nil {
			continue
		}
		wg.Go(func() {
			row := &rep.Phones[i]
			rule, err := p.acceptRolledITL(ctx, c)
			if pr := preds[i]; pr != nil {
				pr.rule, pr.err, pr.did = rule, err, true
			}
			row.ITL = p.report.itlRules()
			if err == nil && rule != ctl.RuleTVS {
				err = fmt.Errorf("rolled-over ITL accepted by rule %s, not %s", rule, ctl.RuleTVS)
			}
			if err != nil {
				row.Err = oneLine(err)
				ids[i] = nil
			}
		})
	}
	wg.Wait()
	say("rolled-over ITL accepted through TVS by %d phones", count(ids))

	// Registration, over TLS with the LSC and digest, with the first node
	// of each phone's configuration.
	sps := make([]*sipPhone, len(phones))
	for i := range phones {
		if ids[i] == nil {
			continue
		}
		wg.Go(func() {
			row := &rep.Phones[i]
			sp, err := newSIPPhone(*ids[i], serverOf(ids[i], srv), log)
			if err == nil {
				if err = sp.register(ctx); err != nil {
					sp.Close()
				}
			}
			if err != nil {
				row.Err = oneLine(fmt.Errorf("register: %w", err))
				return
			}
			row.Registered = true
			if nodes > 1 {
				row.Node = c.nodeOf(sp.registrar()) + 1
			}
			sps[i] = sp
		})
	}
	wg.Wait()
	defer func() {
		for _, sp := range sps {
			if sp != nil {
				sp.Close()
			}
		}
	}()
	say("%d phones registered", count(sps))

	// Calls in pairs: 1001→1002, 1003→1004, …; with an odd number the
	// last phone calls the first once the others are done.
	var callsMu sync.Mutex
	var calls []placedCall
	call := func(a, b int) placedCall {
		ra, rb := &rep.Phones[a], &rep.Phones[b]
		if sps[a] == nil || sps[b] == nil {
			return placedCall{a: a, b: b, nodeA: -1, nodeB: -1, err: errors.New("a phone is not registered")}
		}
		pc := placedCall{a: a, b: b, nodeA: c.nodeOf(sps[a].registrar()), nodeB: c.nodeOf(sps[b].registrar())}
		cr, err := placeCall(ctx, sps[a], sps[b])
		pc.rep, pc.err = cr, err
		media := "RTP"
		if cr.SRTP {
			media = cr.Suite
		}
		for _, side := range []struct {
			row            *phoneRow
			call           string
			sent, received int
			icon           secstatus.Icon
		}{
			{ra, "→" + rb.Extension, cr.AtoB.Sent, cr.BtoA.Received, cr.CallerIcon},
			{rb, "←" + ra.Extension, cr.BtoA.Sent, cr.AtoB.Received, cr.CalleeIcon},
		} {
			callsMu.Lock()
			r := side.row
			r.Calls++
			r.Call = strings.TrimSpace(r.Call + " " + side.call)
			r.Sent += side.sent
			r.Received += side.received
			if r.Media == "" || r.Media == media {
				r.Media = media
			} else {
				r.Media = "mixed"
			}
			// A phone shows the lock only if every call of it did.
			if r.Icon == "" || r.Icon == "lock" {
				r.Icon = iconName(side.icon)
			}
			if err != nil {
				r.Call += " failed"
				r.Err = oneLine(err)
			}
			callsMu.Unlock()
		}
		return pc
	}
	record := func(pc placedCall) {
		callsMu.Lock()
		defer callsMu.Unlock()
		calls = append(calls, pc)
	}
	for i := 0; i+1 < len(phones); i += 2 {
		wg.Go(func() { record(call(i, i+1)) })
	}
	wg.Wait()
	if len(phones)%2 == 1 {
		record(call(len(phones)-1, 0))
	}
	say("calls done")

	// Several nodes: the cluster checks, the kill of a node and the calls
	// of the phones that failed over.
	var clusterChecks []check
	if nodes > 1 {
		clusterChecks = runClusterChecks(ctx, c, sps, rep.Phones, calls, call, say)
	}

	// A phone's LSC is on the key the CAPF asked for, and its
	// configuration came encrypted to it if it is RSA, else signed.
	wantConfig := "encrypted"
	if rep.Keys.RSABits() == 0 {
		wantConfig = "signed"
	}
	for i := range rep.Phones {
		row := &rep.Phones[i]
		row.OK = row.Err == "" && row.LSCSerial != "" && row.Key == rep.Keys.String() && row.Config == wantConfig && row.ITL == "P1 P4" &&
			row.Registered && row.Calls > 0 && row.Sent == row.Calls*callPackets && row.Received == row.Calls*callPackets &&
			row.Media != "" && row.Media != "RTP" && row.Media != "mixed" && row.Icon == "lock"
		if !row.OK && row.Err == "" {
			row.Err = "did not end secure"
		}
	}

	rep.Checks = append([]check{rolloverCheck(preds)}, negativeChecks(ctx, c, reg, phones[0], sps[0], plain, log)...)
	rep.Checks = append(rep.Checks, clusterChecks...)
	return rep, nil
}

// negativeChecks runs what must be refused.
func negativeChecks(ctx context.Context, c *cluster, reg *registrar, p *phone, sp *sipPhone, plain *phone, log *slog.Logger) []check {
	run := func(name string, f func() error) check {
		if err := f(); err != nil {
			return check{Name: name, Err: oneLine(err)}
		}
		return check{Name: name, OK: true}
	}
	checks := []check{
		run(tamperedConfigCheck(p), func() error { return negTamperedConfig(ctx, c, p) }),
		run("wrong authentication string refused by CAPF", func() error { return negWrongAuthString(ctx, c) }),
		run("rogue CAPF (a phone's LSC) refused by the phone", func() error { return negRogueCAPF(ctx, p) }),
		run("replayed REGISTER refused by the registrar", func() error {
			if sp == nil {
				return errors.New("no registered phone to replay from")
			}
			return negReplayedRegister(ctx, reg, sp)
		}),
		run("SIP trunk refuses what its profile does not accept", func() error { return reg.trunkCheck(ctx) }),
		run("non-secure phone ends its call without a lock", func() error { return plainCall(ctx, c, reg, plain, sp, log) }),
	}
	return checks
}

// tamperedConfigCheck names the tampered-configuration check of phone p:
// when p's LSC is not RSA its configuration is signed, not encrypted, and
// only the cases of a signed configuration apply (see negTamperedConfig).
func tamperedConfigCheck(p *phone) string {
	if p.Secure && p.key != nil && !isRSA(p.key.Public()) {
		return "tampered signed configuration refused by the EC phone"
	}
	return "tampered configuration refused by the phone"
}

// plainCall provisions the non-secure phone, registers it over TCP and has
// it call the secure phone sp: the call must work, in plain RTP, and show
// no lock on either side.
func plainCall(ctx context.Context, c *cluster, reg *registrar, plain *phone, sp *sipPhone, log *slog.Logger) error {
	if sp == nil {
		return errors.New("no registered secure phone to call")
	}
	id, _, err := plain.provision(ctx, c, "")
	if err != nil {
		return err
	}
	pp, err := newSIPPhone(*id, serverOf(id, reg.server()), log)
	if err != nil {
		return err
	}
	defer pp.Close()
	if err := pp.register(ctx); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	cr, err := placeCall(ctx, pp, sp)
	if err != nil {
		return err
	}
	if cr.SRTP || cr.CallerIcon == secstatus.IconLock || cr.CalleeIcon == secstatus.IconLock {
		return fmt.Errorf("call with a non-secure phone: SRTP %v, icons %v and %v", cr.SRTP, cr.CallerIcon, cr.CalleeIcon)
	}
	return nil
}

// serverOf returns the SIP server a phone registers with: the address its
// configuration names, over its transport (TLS for a secure phone).
func serverOf(id *sipIdentity, srv sipServer) sipServer {
	ap, err := netip.ParseAddrPort(id.SIPServer)
	if err != nil {
		return sipServer{Realm: srv.Realm} // no address: registering fails
	}
	out := sipServer{Realm: srv.Realm}
	if id.Secure {
		out.TLS = ap
	} else {
		out.TCP = ap
	}
	return out
}

func iconName(i secstatus.Icon) string {
	if s := i.String(); s != "" {
		return s
	}
	return "none"
}

func count[T any](s []*T) int {
	n := 0
	for _, v := range s {
		if v != nil {
			n++
		}
	}
	return n
}
