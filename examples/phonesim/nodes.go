package main

// A cluster of several nodes: the registrars' directory, starting and
// killing the nodes' SIP side, and the checks that the nodes behave as
// one cluster over their shared state.

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/tvs"
)

// A directory is the table of a cluster's registrars through which the
// call controller of one node finds a phone registered with another and
// hands it the call: the simulation's stand-in for CUCM's intra-cluster
// signalling (SDL between the nodes' call processing), possible because
// every node runs in the one phonesim process. What passes through it is
// what would pass between the nodes: the callee's registration, the SDP
// offer with the caller's SDES keys and the answer with the callee's, and
// the call's security status; each phone's leg stays with the node it
// registered with (see onInvite).
type directory struct {
	mu    sync.Mutex
	nodes []*registrar
}

// add makes r one of the directory's registrars.
func (d *directory) add(r *registrar) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes = append(d.nodes, r)
}

// locate finds the registration of the phone with directory number ext
// with a registrar of the directory other than from, skipping those
// killed or closed, and returns the registrar that holds it.
func (d *directory) locate(ext string, from *registrar) (*registrar, registration, bool) {
	d.mu.Lock()
	nodes := slices.Clone(d.nodes)
	d.mu.Unlock()
	for _, r := range nodes {
		if r == from || r.dead.Load() || r.ctx.Err() != nil {
			continue
		}
		if reg, ok := r.byExtension(ext); ok {
			return r, reg, true
		}
	}
	return nil, registration{}, false
}

// startSIP starts the SIP registrar and call controller of every node,
// for the phones of lines (which every node knows), in realm. The
// registrars share the digest nonce key, and each uses its node's replay
// store: with several nodes, one Redis. With several nodes they join a
// directory, to reach each other's phones. The cluster's close stops
// them.
func (c *cluster) startSIP(ctx context.Context, lines []phoneLine, realm string) error {
	cas := x509.NewCertPool()
	cas.AddCert(c.PKI.CAPF)
	if len(c.nodes) > 1 {
		c.dir = &directory{}
	}
	for i, nd := range c.nodes {
		cfg := registrarConfig{
			CCM:         tlsCert(c.PKI.CCM, c.PKI.CCMKey),
			PhoneCAs:    cas,
			Credentials: c.credentialStore(),
			Realm:       realm,
			Lines:       lines,
			Secrets:     [][]byte{c.secret},
			Replay:      nd.replay,
			Directory:   c.dir,
			Log:         c.log,
		}
		if len(c.nodes) > 1 {
			cfg.Node = strconv.Itoa(i + 1)
		}
		reg, err := startRegistrar(ctx, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", nd.name(), err)
		}
		nd.reg = reg
		srv := reg.server()
		c.setSIP(i, srv.TLS.String(), srv.TCP.String())
	}
	return nil
}

// registrar returns node i's registrar (after startSIP).
func (c *cluster) registrar(i int) *registrar { return c.nodes[i].reg }

// nodeOf returns the index of the node whose registrar listens on ap (TLS
// or TCP), or -1.
func (c *cluster) nodeOf(ap netip.AddrPort) int {
	for i, nd := range c.nodes {
		if nd.reg == nil {
			continue
		}
		if srv := nd.reg.server(); srv.TLS == ap || srv.TCP == ap {
			return i
		}
	}
	return -1
}

// kill kills node i as a crash would: its registrar's listeners and
// connections close at once, without a word (registrar.kill), and its
// CAPF and TVS stop. Its stores stay open until the cluster closes; the
// shared state is in PostgreSQL and Redis.
func (c *cluster) kill(i int) {
	nd := c.nodes[i]
	nd.mu.Lock()
	if nd.killed {
		nd.mu.Unlock()
		return
	}
	nd.killed = true
	nd.mu.Unlock()
	if nd.reg != nil {
		nd.reg.kill()
	}
	nd.cancel()
	nd.wg.Wait()
	c.log.Info("node killed", "node", i+1)
}

// listNodes names nodes for a check: "1", "1 and 2", "1, 2 and 3".
func listNodes(nodes []int) string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = strconv.Itoa(n + 1)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// oneBased returns node indexes as the output numbers them.
func oneBased(nodes ...int) []int {
	out := make([]int, len(nodes))
	for i, n := range nodes {
		out[i] = n + 1
	}
	return out
}

// runCheck runs f as the check name, involving nodes (indexes).
func runCheck(name string, nodes []int, f func() error) check {
	c := check{Name: name, Nodes: oneBased(nodes...), OK: true}
	if err := f(); err != nil {
		c.OK, c.Err = false, oneLine(err)
	}
	return c
}

// capfAcrossNodes schedules an install for a device that no phone of the
// run has through the store of node on (as an administrator on the
// publisher does), and has a phone enrol for it with the CAPF of node at,
// which finds the operation only in the shared store. The phone must get
// its LSC, and node on's store must then show the operation done and
// hold that LSC, issued once.
func capfAcrossNodes(ctx context.Context, c *cluster, on, at *node) error {
	p := &phone{Device: c.decoyDevice(), Secure: true}
	auth, err := newAuthString()
	if err != nil {
		return err
	}
	sch := capf.Schedule{Operation: capf.OpInstall, Auth: capf.AuthString, AuthString: auth, Key: c.keys()}
	if err := capf.ScheduleOperation(ctx, on.capf, p.Device, sch, time.Now()); err != nil {
		return fmt.Errorf("scheduling on %s: %w", on.name(), err)
	}
	defer capf.RemoveDevice(context.WithoutCancel(ctx), on.capf, p.Device)
	p.report = &provisionReport{Device: p.Device, Secure: true}
	if err := p.firstContact(ctx, c); err != nil {
		return err
	}
	out, err := p.enroll(ctx, at.CAPFAddr, auth, func(spec capf.KeySpec) (crypto.Signer, error) {
		if spec != sch.Key {
			return nil, fmt.Errorf("CAPF asked for a %s key, not the scheduled %s", spec, sch.Key)
		}
		return generateKey(ctx, spec)
	})
	switch {
	case err != nil:
		return fmt.Errorf("enrolling at %s: %w", at.name(), err)
	case out.Certificate == nil:
		return fmt.Errorf("%s issued no LSC (operation %s)", at.name(), out.Operation)
	}
	d, err := capf.LookupDevice(ctx, on.capf, p.Device)
	if err != nil {
		return fmt.Errorf("%s: %w", on.name(), err)
	}
	switch {
	case d.Pending != nil:
		return fmt.Errorf("%s still has the operation pending (%s)", on.name(), d.Status())
	case !bytes.Equal(d.Certificate, out.Certificate.Raw):
		return fmt.Errorf("%s does not hold the LSC that %s issued (%s)", on.name(), at.name(), d.Status())
	}
	issued, err := capf.ListIssued(ctx, on.capf, p.Device)
	if err != nil {
		return fmt.Errorf("%s: %w", on.name(), err)
	}
	serial := capf.SerialHex(out.Certificate.SerialNumber)
	if n := len(slices.DeleteFunc(issued, func(ic *capf.IssuedCertificate) bool { return ic.Serial != serial })); n != 1 {
		return fmt.Errorf("%s's log has the LSC issued %d times, want once", on.name(), n)
	}
	return nil
}

// tvsAcrossNodes adds, through the store of node on, a TVS entry for a
// certificate made now, in the CCM role, and asks every node's TVS about
// it as a phone would: each must answer that it is not trusted before the
// entry is added, and trusted, as CCM, after. The entry is removed
// afterwards.
func tvsAcrossNodes(ctx context.Context, c *cluster, on *node) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "phonesim TVS check", Organization: pkiSubject.Organization},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	device := "CP-8845-" + c.decoyDevice()
	ask := func(nd *node) (*tvs.Verdict, error) {
		cl := &tvs.Client{
			Servers:         []string{nd.TVSAddr},
			TVSCertificates: []*x509.Certificate{c.PKI.TVS},
			DeviceName:      device,
			Timeout:         10 * time.Second,
			CacheSize:       -1,
		}
		return cl.Verify(ctx, cert)
	}
	var errs []error
	for _, nd := range c.nodes {
		v, err := ask(nd)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s before: %w", nd.name(), err))
		case v.Valid:
			errs = append(errs, fmt.Errorf("%s vouched for the certificate before its entry was added", nd.name()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e := &tvs.Entry{Certificate: cert, Roles: []ctl.Role{ctl.RoleCCM}, TTL: time.Minute}
	if err := tvs.Put(ctx, on.tvs, e); err != nil {
		return fmt.Errorf("adding the entry on %s: %w", on.name(), err)
	}
	defer on.tvs.Delete(context.WithoutCancel(ctx), e.Sum())
	for _, nd := range c.nodes {
		v, err := ask(nd)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", nd.name(), err))
		case !v.Valid || !v.Has(ctl.RoleCCM):
			errs = append(errs, fmt.Errorf("%s did not vouch for the certificate as CCM (valid %v, roles %v)", nd.name(), v.Valid, v.Roles))
		case v.Server != nd.TVSAddr:
			errs = append(errs, fmt.Errorf("%s: answered by %s", nd.name(), v.Server))
		}
	}
	return errors.Join(errs...)
}

// A placedCall is a call of the run between phones a and b (indexes),
// with the nodes they were registered with.
type placedCall struct {
	a, b         int
	nodeA, nodeB int
	rep          *callReport
	err          error
}

// secure reports whether the call completed with SRTP, every packet, and
// the lock on both phones.
func (pc placedCall) secure() error {
	switch {
	case pc.err != nil:
		return pc.err
	case pc.rep == nil:
		return errors.New("no call")
	case !pc.rep.SRTP || !pc.rep.mediaOK():
		return fmt.Errorf("%s→%s: SRTP %v, %d/%d and %d/%d packets", pc.rep.CallerExt, pc.rep.CalleeExt,
			pc.rep.SRTP, pc.rep.AtoB.Received, callPackets, pc.rep.BtoA.Received, callPackets)
	case iconName(pc.rep.CallerIcon) != "lock" || iconName(pc.rep.CalleeIcon) != "lock":
		return fmt.Errorf("%s→%s: icons %s and %s", pc.rep.CallerExt, pc.rep.CalleeExt,
			iconName(pc.rep.CallerIcon), iconName(pc.rep.CalleeIcon))
	}
	return nil
}

// crossNodeCheck is the check that phones registered with different
// nodes called each other with the lock, from the calls of the run.
func crossNodeCheck(calls []placedCall) check {
	calls = slices.Clone(calls)
	slices.SortFunc(calls, func(x, y placedCall) int { return cmp.Compare(x.a, y.a) })
	var routes []string
	var nodes []int
	var errs []error
	for _, pc := range calls {
		if pc.nodeA == pc.nodeB || pc.nodeA < 0 || pc.nodeB < 0 {
			continue
		}
		route := fmt.Sprintf("%d→%d", pc.nodeA+1, pc.nodeB+1)
		if !slices.Contains(routes, route) {
			routes = append(routes, route)
		}
		for _, n := range []int{pc.nodeA, pc.nodeB} {
			if !slices.Contains(nodes, n) {
				nodes = append(nodes, n)
			}
		}
		if err := pc.secure(); err != nil {
			errs = append(errs, err)
		}
	}
	slices.Sort(nodes)
	name := "calls between phones on different nodes"
	if len(routes) > 0 {
		name += " (" + strings.Join(routes, ", ") + ")"
	}
	return runCheck(name+" completed with the lock", nodes, func() error {
		if len(routes) == 0 {
			return errors.New("no call between phones on different nodes")
		}
		return errors.Join(errs...)
	})
}

// pairFailedOver pairs each phone of failed (indexes) with a phone of
// others to call, preferring one registered with another node
// (nodeOf(i) gives phone i's node), and returns the calls grouped by the
// phone called, so that each group can run in turn while the groups run
// at once.
func pairFailedOver(failed, others []int, nodeOf func(int) int) map[int][]int {
	groups := make(map[int][]int)
	if len(others) == 0 {
		return groups
	}
	for k, f := range failed {
		var away []int
		for _, o := range others {
			if nodeOf(o) != nodeOf(f) {
				away = append(away, o)
			}
		}
		if len(away) == 0 {
			away = others
		}
		callee := away[k%len(away)]
		groups[callee] = append(groups[callee], f)
	}
	return groups
}

// runClusterChecks runs the checks of a cluster of several nodes, after
// the calls of the phones with their first nodes (calls; call places one
// more and adds it to the table's rows): calls across nodes, a REGISTER
// replayed to another node, a CAPF operation and a TVS entry across
// nodes, and the kill of a node, after which every phone's keepalive runs
// (those of the killed node fail over) and each phone that failed over
// calls a phone of another node.
func runClusterChecks(ctx context.Context, c *cluster, sps []*sipPhone, rows []phoneRow, calls []placedCall,
	call func(a, b int) placedCall, say func(string, ...any)) []check {
	n := len(c.nodes)
	last := c.nodes[n-1]
	checks := []check{
		crossNodeCheck(calls),
		runCheck("REGISTER captured on node 1 and replayed on node 2 refused", []int{0, 1}, func() error {
			// Phone 0 registered with node 1, its first. It registers
			// again first, so that the REGISTER captured is on a nonce
			// issued after every node's replay store started: a node
			// with a store of its own would take it for new.
			if sps[0] == nil || c.nodeOf(sps[0].registrar()) != 0 {
				return errors.New("no phone registered with node 1 to capture from")
			}
			if err := sps[0].register(ctx); err != nil {
				return err
			}
			return negReplayedRegister(ctx, c.registrar(1), sps[0])
		}),
		runCheck(fmt.Sprintf("CAPF operation scheduled on node 1 completed by enrolment at node %d", n), []int{0, n - 1}, func() error {
			return capfAcrossNodes(ctx, c, c.nodes[0], last)
		}),
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	checks = append(checks, runCheck(fmt.Sprintf("TVS entry added on node %d answered by nodes %s", n, listNodes(all)), all, func() error {
		return tvsAcrossNodes(ctx, c, last)
	}))

	// The kill: the last node that phones registered with first (phone i
	// with node i mod N), never the publisher.
	killed := min(n, len(rows)) - 1
	var onKilled []int
	var next []int // the nodes its phones should fail over to
	for i := range rows {
		if rows[i].Node == killed+1 && sps[i] != nil {
			onKilled = append(onKilled, i)
			if k := c.group(rows[i].Phone)[1].Index; !slices.Contains(next, k) {
				next = append(next, k)
			}
		}
	}
	slices.Sort(next)
	say("killing node %d (%d %s registered with it)", killed+1, len(onKilled), plural(len(onKilled), "phone", "phones"))
	c.kill(killed)

	// Every phone's keepalive, at once.
	moved := make([]bool, len(sps))
	live := make([]bool, len(sps))
	var wg sync.WaitGroup
	for i, sp := range sps {
		if sp == nil {
			continue
		}
		wg.Go(func() {
			m, err := sp.keepalive(ctx)
			if err != nil {
				rows[i].Err = oneLine(fmt.Errorf("keepalive: %w", err))
				return
			}
			live[i], moved[i] = true, m
			if m {
				rows[i].FailedOverTo = c.nodeOf(sp.registrar()) + 1
			}
		})
	}
	wg.Wait()
	var failed, others []int
	for i := range sps {
		switch {
		case moved[i]:
			failed = append(failed, i)
		case live[i]:
			others = append(others, i)
		}
	}
	say("%d %s failed over from node %d", len(failed), plural(len(failed), "phone", "phones"), killed+1)

	// Each phone that failed over calls a phone of another node.
	var mu sync.Mutex
	var after []placedCall
	for callee, callers := range pairFailedOver(failed, others, func(i int) int { return c.nodeOf(sps[i].registrar()) }) {
		wg.Go(func() {
			for _, a := range callers {
				pc := call(a, callee)
				mu.Lock()
				after = append(after, pc)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	say("calls after the failover done")

	name := fmt.Sprintf("node %d killed: its phones failed over to node %s, registered again and called with the lock",
		killed+1, listNodes(next))
	checks = append(checks, runCheck(name, append([]int{killed}, next...), func() error {
		var errs []error
		if len(onKilled) == 0 {
			return fmt.Errorf("no phone was registered with node %d", killed+1)
		}
		for _, i := range onKilled {
			want := c.group(rows[i].Phone)[1].Index
			switch {
			case !live[i]:
				errs = append(errs, fmt.Errorf("%s did not register again", rows[i].Phone))
			case !moved[i]:
				errs = append(errs, fmt.Errorf("%s did not fail over", rows[i].Phone))
			case rows[i].FailedOverTo != want+1:
				errs = append(errs, fmt.Errorf("%s failed over to node %d, not %d", rows[i].Phone, rows[i].FailedOverTo, want+1))
			}
		}
		for i := range rows {
			if moved[i] && rows[i].Node != killed+1 {
				errs = append(errs, fmt.Errorf("%s moved although node %d was up", rows[i].Phone, rows[i].Node))
			}
		}
		called := make(map[int]bool)
		for _, pc := range after {
			called[pc.a] = true
			if err := pc.secure(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, i := range failed {
			if !called[i] {
				errs = append(errs, fmt.Errorf("%s placed no call after failing over", rows[i].Phone))
			}
		}
		return errors.Join(errs...)
	}))
	return checks
}
