package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/stores/postgres"
	"github.com/ucsec/ucsec/stores/redis"
	"github.com/ucsec/ucsec/tftpd"
	"github.com/ucsec/ucsec/tvs"
)

// The cluster: its nodes and the services they share. A node stands for
// a CUCM server: each runs its own CAPF, TVS and SIP registrar and call
// controller (registrar.go), on 127.0.0.1 with ports the system chooses;
// node 1 is the publisher, through which the cluster is administered
// (CAPF operations scheduled, TVS entries loaded), and the others are
// subscribers.
//
//   - The TFTP/HTTP file service (package tftpd; CUCM's TFTP port 69 and
//     HTTP port 6970): ITLFile.tlv, CTLFile.tlv and each phone's
//     configuration, from the directory STATE/tftp. Phones fetch over
//     TFTP (-files http: over HTTP). It is one service that all nodes
//     share (CUCM runs one on each node that has the TFTP role, serving
//     the same files).
//   - CAPF (port 3804): issues the phones' LSCs from the CAPF CA. With
//     one node its operations are in the bbolt file STATE/capf.db, so
//     that a -state directory keeps them from one run to the next; with
//     several they are in PostgreSQL (package stores/postgres), one
//     database that every node's CAPF shares, each through a store of
//     its own as separate servers would.
//   - TVS (port 2445): vouches for the cluster's certificates. With one
//     node in memory, loaded from the trust lists at every start; with
//     several in the same PostgreSQL database.
//
// The nodes share the cluster's PKI: one CallManager, CAPF and TVS
// certificate, which every node presents. (Each CUCM node has
// certificates of its own, all in the ITL; one set keeps the trust lists
// and the phones' checks as they are with one node.)

// fileHash is the hash of every signature the cluster makes (ITL, CTL,
// signed and encrypted configurations): CUCM's SHA-512 mode. Its default,
// SHA-1, works as well; SHA-512 is chosen because nothing here needs the
// weaker one.
const fileHash = crypto.SHA512

// Names of the trust lists on the file service.
const (
	itlName = "ITLFile.tlv"
	ctlName = "CTLFile.tlv"
)

// clusterOptions configure startCluster. The zero value (or nil) is one
// node with embedded stores.
type clusterOptions struct {
	// Nodes is the number of nodes; 0 means 1. More than one needs
	// Postgres and Redis.
	Nodes int
	// Postgres is the connection string of the PostgreSQL database that
	// holds the CAPF and TVS stores of every node; "" means embedded
	// stores (bbolt for the CAPF, memory for the TVS), for one node.
	Postgres string
	// Redis is the URL of the Redis that holds the digest replay store of
	// every node's registrar; "" means each registrar's own, in memory,
	// for one node.
	Redis string
	// Files is how phones fetch their files: "tftp" (or "") or "http".
	Files string
	// Keys is the key the CAPF installs ask the phones to make (-keys):
	// capf.RSA2048 (or the zero value) or capf.EC256. A phone with an EC
	// LSC gets its full configuration signed, not encrypted (see
	// publish).
	Keys capf.KeySpec
}

// A cluster is a running set of nodes and the file service, started by
// startCluster (the provisioning services) and startSIP (the SIP side),
// and stopped by close.
type cluster struct {
	// PKI holds the cluster's certificates and keys.
	PKI *clusterPKI
	// FileURL is the base URL phones fetch from: the file service over
	// TFTP, "tftp://127.0.0.1:PORT/", or over HTTP (-files http),
	// "http://127.0.0.1:PORT/": a phone downloads FileURL + "ITLFile.tlv".
	FileURL string
	// TFTPAddr and HTTPAddr are the file service's, "127.0.0.1:PORT":
	// both serve the same files.
	TFTPAddr, HTTPAddr string
	// CAPFAddr and TVSAddr are the publisher's CAPF and TVS,
	// "127.0.0.1:PORT".
	CAPFAddr, TVSAddr string
	// StateDir holds the file service's directory (tftp) and, with one
	// node, the CAPF's store (capf.db).
	StateDir string

	log      *slog.Logger
	tftpDir  string
	nodes    []*node
	capf     capf.Store   // the publisher's: where the cluster schedules operations
	tvsStore tvs.Store    // the publisher's: where the cluster loads TVS entries
	secret   []byte       // the digest nonce key that every node's registrar shares
	keySpec  capf.KeySpec // what CAPF installs ask for (clusterOptions.Keys)
	dir      *directory   // the nodes' registrars, once startSIP has run
	httpSrv  *http.Server
	files    *tftpd.Server // the file service, over TFTP and httpSrv
	newConns connSet       // the file service's connections that have sent no request yet
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error // one per service, when it stops

	mu      sync.Mutex
	first   map[string]int      // by device: its first node (place); 0 if not placed
	lines   map[string]lineInfo // by device: what publish wrote
	users   map[string]string   // digest user → password
	decoys  int                 // devices made up by negative cases
	closing bool
}

// A node is one node of the cluster: its CAPF and TVS, their stores, and
// its registrar once startSIP has run.
type node struct {
	Index int // 0 for the publisher; nodes are shown numbered from 1
	// CAPFAddr and TVSAddr are its CAPF's and TVS's "127.0.0.1:PORT".
	CAPFAddr, TVSAddr string

	capf   capf.Store
	tvs    tvs.Store
	replay digest.ReplayStore // shared by the registrars; nil: each its own, in memory
	reg    *registrar
	cancel context.CancelFunc // stops its CAPF and TVS
	wg     sync.WaitGroup     // its CAPF and TVS

	mu     sync.Mutex
	sipTLS string // SIP server addresses that configurations name
	sipTCP string //
	killed bool
}

// name is how the output names a node: "node 1" for the publisher.
func (n *node) name() string { return nodeName(n.Index) }

func nodeName(i int) string { return fmt.Sprintf("node %d", i+1) }

// lineInfo is what the cluster knows of a phone it configured.
type lineInfo struct {
	Extension, User string
	Secure          bool
}

// startCluster starts the file service and each node's CAPF and TVS on
// 127.0.0.1 with ports chosen by the system, with pki, keeping state in
// stateDir (created if needed; a temporary directory unless -state is
// given) and, with opts.Postgres and opts.Redis, in those servers. It
// writes the ITL (signed by pki.SAST; records SAST, CCM+TFTP, CAPF and
// TVS) and the CTL (signed by pki.SAST; records SAST, CCM+TFTP and CAPF),
// and loads both into the TVS. log receives the services' records; nil is
// silent. The services run until ctx is done or close is called; call
// close in any case.
func startCluster(ctx context.Context, pki *clusterPKI, stateDir string, opts *clusterOptions, log *slog.Logger) (_ *cluster, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts == nil {
		opts = &clusterOptions{}
	}
	n := max(opts.Nodes, 1)
	if n > 1 && (opts.Postgres == "" || opts.Redis == "") {
		return nil, errors.New("cluster: several nodes need PostgreSQL and Redis for their shared state")
	}
	c := &cluster{
		PKI:      pki,
		StateDir: stateDir,
		log:      log,
		tftpDir:  filepath.Join(stateDir, "tftp"),
		secret:   make([]byte, 32),
		keySpec:  opts.Keys,
		first:    make(map[string]int),
		lines:    make(map[string]lineInfo),
		users:    make(map[string]string),
		errs:     make(chan error, 2+2*n), // the file service over HTTP and TFTP, and each node's CAPF and TVS
	}
	if _, err := rand.Read(c.secret); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.tftpDir, 0o700); err != nil {
		return nil, err
	}

	// The trust lists, written first so that the file service never
	// serves a directory without them.
	itlData, itlFile, err := buildITL(pki, pki.SAST, pki.SASTKey)
	if err != nil {
		return nil, err
	}
	ctlData, ctlFile, err := buildCTL(pki)
	if err != nil {
		return nil, err
	}
	if err := c.writeFile(itlName, itlData); err != nil {
		return nil, err
	}
	if err := c.writeFile(ctlName, ctlData); err != nil {
		return nil, err
	}

	var listeners []net.Listener
	defer func() {
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			for _, nd := range c.nodes {
				nd.closeStores()
			}
		}
	}()
	listen := func() (net.Listener, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			listeners = append(listeners, l)
		}
		return l, err
	}
	for i := range n {
		nd := &node{Index: i}
		c.nodes = append(c.nodes, nd)
		if err := nd.openStores(ctx, stateDir, opts, log); err != nil {
			return nil, fmt.Errorf("%s: %w", nd.name(), err)
		}
	}
	c.capf, c.tvsStore = c.nodes[0].capf, c.nodes[0].tvs
	for _, f := range []*ctl.File{itlFile, ctlFile} {
		if _, err := tvs.LoadTrustList(ctx, c.tvsStore, f, 0); err != nil {
			return nil, err
		}
	}

	httpL, err := listen()
	if err != nil {
		return nil, err
	}
	udpL, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		httpL.Close()
		return nil, err
	}
	if err := c.newFileService(log); err != nil {
		httpL.Close()
		udpL.Close()
		return nil, err
	}
	type nodeListeners struct{ capf, tvs net.Listener }
	nls := make([]nodeListeners, n)
	for i, nd := range c.nodes {
		if nls[i].capf, err = listen(); err != nil {
			return nil, err
		}
		if nls[i].tvs, err = listen(); err != nil {
			return nil, err
		}
		nd.CAPFAddr, nd.TVSAddr = nls[i].capf.Addr().String(), nls[i].tvs.Addr().String()
	}
	c.TFTPAddr, c.HTTPAddr = udpL.LocalAddr().String(), httpL.Addr().String()
	if c.FileURL, err = fileURL(opts.Files, udpL, httpL); err != nil {
		return nil, err
	}
	c.CAPFAddr, c.TVSAddr = c.nodes[0].CAPFAddr, c.nodes[0].TVSAddr
	c.httpSrv = &http.Server{
		Handler:           c.fileHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         c.newConns.track,
	}

	srvCtx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	for i, nd := range c.nodes {
		nlog := log
		if n > 1 {
			nlog = log.With("node", i+1)
		}
		capfSrv := &capf.Server{
			Store:     nd.capf,
			Issuer:    &capf.LocalCA{Certificate: pki.CAPF, Signer: pki.CAPFKey},
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{tlsCert(pki.CAPF, pki.CAPFKey)}},
			// Every simulated phone comes from the loopback address: no
			// per-host bound.
			MaxConnsPerHost: -1,
			Logger:          nlog.With("service", "capf"),
		}
		tvsSrv := &tvs.Server{
			Store:           nd.tvs,
			TLSConfig:       &tls.Config{Certificates: []tls.Certificate{tlsCert(pki.TVS, pki.TVSKey)}},
			MaxConnsPerHost: -1, // as for the CAPF
			Logger:          nlog.With("service", "tvs"),
		}
		nodeCtx, nodeCancel := context.WithCancel(srvCtx)
		nd.cancel = nodeCancel
		capfL, tvsL := nls[i].capf, nls[i].tvs
		c.serve(&nd.wg, "capf", func() error { return ignore(capfSrv.Serve(nodeCtx, capfL), capf.ErrServerClosed) })
		c.serve(&nd.wg, "tvs", func() error { return ignore(tvsSrv.Serve(nodeCtx, tvsL), tvs.ErrServerClosed) })
	}
	c.serve(&c.wg, "files", func() error { return ignore(c.httpSrv.Serve(httpL), http.ErrServerClosed) })
	c.serveTFTP(srvCtx, udpL)
	// The file service has no context of its own: stop it with the
	// others when ctx is done.
	c.wg.Go(func() {
		<-srvCtx.Done()
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer scancel()
		// Shutdown waits up to 5 seconds for connections that have not
		// sent a request yet; HTTP clients open spare ones (Go's
		// Transport does, when a request races for a connection) and may
		// never use them. Close them: no request is under way on them.
		c.newConns.closeAll()
		if err := c.httpSrv.Shutdown(sctx); err != nil {
			c.httpSrv.Close()
		}
	})
	log.Info("cluster started", "files", c.FileURL, "tftp", c.TFTPAddr, "http", c.HTTPAddr, "capf", c.CAPFAddr, "tvs", c.TVSAddr, "state", stateDir, "nodes", n)
	return c, nil
}

// openStores opens the node's stores as opts says: embedded ones in
// stateDir, or its own connections to the shared PostgreSQL and Redis.
func (nd *node) openStores(ctx context.Context, stateDir string, opts *clusterOptions, log *slog.Logger) error {
	var err error
	if opts.Postgres == "" {
		if nd.capf, err = capf.OpenBoltStore(filepath.Join(stateDir, "capf.db"), nil); err != nil {
			return err
		}
		nd.tvs = tvs.NewMemoryStore()
	} else {
		if nd.capf, err = postgres.OpenCAPFStore(ctx, opts.Postgres, &postgres.Options{Logger: log}); err != nil {
			return err
		}
		if nd.tvs, err = postgres.OpenTVSStore(ctx, opts.Postgres, &postgres.Options{Logger: log}); err != nil {
			return err
		}
	}
	if opts.Redis != "" {
		rs, err := redis.OpenReplayStore(ctx, opts.Redis, &redis.Options{
			KeyPrefix: replayKeyPrefix,
			// The nodes run in one process, on one clock: no skew
			// between them to allow for (zero would mean the default,
			// 5 s, during which a new store refuses every nonce).
			ClockSkew: time.Millisecond,
			Logger:    log,
		})
		if err != nil {
			return err
		}
		nd.replay = rs
	}
	return nil
}

// replayKeyPrefix starts the keys of the Redis replay store, so that a
// Redis that other programs use keeps phonesim's apart.
const replayKeyPrefix = "phonesim:digest:"

// closeStores closes the node's stores, returning the first error.
func (nd *node) closeStores() error {
	var errs []error
	if nd.capf != nil {
		errs = append(errs, nd.capf.Close())
	}
	if nd.tvs != nil {
		errs = append(errs, nd.tvs.Close())
	}
	if c, ok := nd.replay.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// serve runs a service in wg until it stops, and logs and keeps for close
// the error it stopped with, if any.
func (c *cluster) serve(wg *sync.WaitGroup, name string, run func() error) {
	wg.Go(func() {
		err := run()
		if err != nil {
			err = fmt.Errorf("%s service: %w", name, err)
			c.log.Error("service stopped", "service", name, "error", err)
		}
		c.errs <- err
	})
}

// ignore returns err unless it is expected.
func ignore(err, expected error) error {
	if errors.Is(err, expected) {
		return nil
	}
	return err
}

// close stops the services gracefully (running CAPF sessions, TVS
// exchanges and downloads finish first), the registrars, and closes the
// stores. It returns the first error a service stopped with.
func (c *cluster) close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.reg != nil {
			nd.reg.Close()
		}
	}
	c.cancel()
	for _, nd := range c.nodes {
		nd.wg.Wait()
	}
	c.wg.Wait()
	close(c.errs)
	var errs []error
	for err := range c.errs {
		errs = append(errs, err)
	}
	for _, nd := range c.nodes {
		errs = append(errs, nd.closeStores())
	}
	if c.files != nil {
		errs = append(errs, c.files.Root.Close())
	}
	return errors.Join(errs...)
}

// connSet tracks the connections of an http.Server that are new: accepted
// but without a request yet.
type connSet struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

// track is an http.Server's ConnState hook.
func (s *connSet) track(conn net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state == http.StateNew {
		if s.m == nil {
			s.m = make(map[net.Conn]struct{})
		}
		s.m[conn] = struct{}{}
	} else {
		delete(s.m, conn)
	}
}

// closeAll closes the new connections.
func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for conn := range s.m {
		conn.Close()
	}
}

// tlsCert returns cert and key as a TLS certificate.
func tlsCert(cert *x509.Certificate, key crypto.Signer) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// fileHandler serves the files of the TFTP directory, as CUCM's HTTP
// service on port 6970 does: the file service, package tftpd.
func (c *cluster) fileHandler() http.Handler {
	return c.files
}

// writeFile puts a file on the file service, atomically.
func (c *cluster) writeFile(name string, data []byte) error {
	return writeFileAtomic(filepath.Join(c.tftpDir, name), data, 0o644)
}

// roleCert is a certificate of a trust list, in its role.
type roleCert struct {
	cert *x509.Certificate
	role ctl.Role
}

// listRecords returns the trust-list records of rcs.
func listRecords(rcs ...roleCert) ([]ctl.Record, error) {
	records := make([]ctl.Record, 0, len(rcs))
	for _, rc := range rcs {
		r, err := ctl.NewRecord(rc.cert, rc.role)
		if err != nil {
			return nil, err
		}
		records = append(records, r)
	}
	return records, nil
}

// buildITL makes an ITL signed by sast (the ITLRecovery, in the list as
// SAST) with the CallManager as CCM+TFTP, the CAPF and the TVS, and
// returns it and its parse.
func buildITL(pki *clusterPKI, sast *x509.Certificate, key crypto.Signer) ([]byte, *ctl.File, error) {
	records, err := listRecords(roleCert{sast, ctl.RoleSAST}, roleCert{pki.CCM, ctl.RoleCCMTFTP}, roleCert{pki.CAPF, ctl.RoleCAPF}, roleCert{pki.TVS, ctl.RoleTVS})
	if err != nil {
		return nil, nil, err
	}
	data, err := itl.Create(nil, &ctl.File{Header: sgn.Header{Hash: fileHash}, Records: records}, sast, key)
	if err != nil {
		return nil, nil, err
	}
	f, err := itl.Parse(data)
	return data, f, err
}

// buildCTL makes the CTL of a cluster in mixed mode, signed by pki.SAST:
// SAST, the CallManager as CCM+TFTP, and the CAPF.
func buildCTL(pki *clusterPKI) ([]byte, *ctl.File, error) {
	records, err := listRecords(roleCert{pki.SAST, ctl.RoleSAST}, roleCert{pki.CCM, ctl.RoleCCMTFTP}, roleCert{pki.CAPF, ctl.RoleCAPF})
	if err != nil {
		return nil, nil, err
	}
	data, err := ctl.Create(nil, &ctl.File{Header: sgn.Header{Hash: fileHash}, Records: records}, pki.SAST, pki.SASTKey)
	if err != nil {
		return nil, nil, err
	}
	f, err := ctl.Parse(data)
	return data, f, err
}

// rollITL rolls the cluster's ITL over to the next ITLRecovery key, as
// after a change of the cluster's keys: prepareRollover, then
// publishITL.
func (c *cluster) rollITL(ctx context.Context) error {
	data, _, err := c.prepareRollover(ctx)
	if err != nil {
		return err
	}
	return c.publishITL(data)
}

// prepareRollover makes the ITL that the cluster's ITL rolls over to and
// has the TVS vouch for its certificates: a list signed by pki.NextSAST,
// which holds NextSAST as its SAST instead of SAST, and whose
// certificates the TVS then vouches for in their roles (NextSAST as SAST).
// A phone holding the old ITL does not know the new signer and accepts
// the list only through TVS (rule P4). Nothing is published yet: plan
// with the list (package trustplan) before publishITL.
func (c *cluster) prepareRollover(ctx context.Context) ([]byte, *ctl.File, error) {
	data, f, err := buildITL(c.PKI, c.PKI.NextSAST, c.PKI.NextSASTKey)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tvs.LoadTrustList(ctx, c.tvsStore, f, 0); err != nil {
		return nil, nil, err
	}
	return data, f, nil
}

// publishITL replaces ITLFile.tlv with data, the list of prepareRollover.
func (c *cluster) publishITL(data []byte) error {
	if err := c.writeFile(itlName, data); err != nil {
		return err
	}
	c.log.Info("ITL rolled over", "signer", c.PKI.NextSAST.Subject.CommonName)
	return nil
}

// setSIP tells the cluster the SIP server's addresses of node i, which
// the phone configurations name: tlsAddr for secure phones
// (<securedSipPort>), tcpAddr for non-secure ones (<sipPort>), both
// "127.0.0.1:PORT" on the same host. startSIP calls it; call it for every
// node before publish.
func (c *cluster) setSIP(i int, tlsAddr, tcpAddr string) {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	nd.sipTLS, nd.sipTCP = tlsAddr, tcpAddr
}

// place makes node first the first node of device's CallManager group:
// its group is that node, then the others in order (first+1, first+2,
// ..., wrapping round), as a cluster spreads its phones over the nodes'
// groups. An unplaced device starts at node 0, the publisher.
func (c *cluster) place(device string, first int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.first[device] = first % len(c.nodes)
}

// group returns the nodes of device's CallManager group, in order.
func (c *cluster) group(device string) []*node {
	c.mu.Lock()
	first := c.first[device]
	c.mu.Unlock()
	g := make([]*node, len(c.nodes))
	for k := range g {
		g[k] = c.nodes[(first+k)%len(c.nodes)]
	}
	return g
}

// capfAddrFor returns the CAPF that device enrolls with: its first node's.
// (A phone finds it in the capfList of the configuration it has before it
// enrolls; the simulated phone has none yet, and asks the cluster.)
func (c *cluster) capfAddrFor(device string) string { return c.group(device)[0].CAPFAddr }

// tvsAddrsFor returns the TVS addresses of device's group, in order.
func (c *cluster) tvsAddrsFor(device string) []string {
	var addrs []string
	for _, nd := range c.group(device) {
		addrs = append(addrs, nd.TVSAddr)
	}
	return addrs
}

// keys returns the key the cluster's CAPF installs ask for: RSA-2048 by
// default, or the EC key of clusterOptions.Keys.
func (c *cluster) keys() capf.KeySpec {
	if c.keySpec == capf.KeyDefault {
		return capf.RSA2048
	}
	return c.keySpec
}

// schedule schedules a CAPF install of an LSC on a key of c.keys() for
// device (RSA-2048 by default, so that its configuration can be
// encrypted: cnfenc encrypts only to RSA keys), as CUCM's "Certificate
// Operation: Install/Upgrade": with authString, 4 to 10 digits, as the
// authentication string by default, or by null string if authString is
// "".
func (c *cluster) schedule(ctx context.Context, device, authString string) error {
	sch := capf.Schedule{Operation: capf.OpInstall, Auth: capf.AuthString, AuthString: authString, Key: c.keys()}
	if authString == "" {
		sch.Auth = capf.AuthNull
	}
	return capf.ScheduleOperation(ctx, c.capf, device, sch, time.Now())
}

// scheduleAll schedules installs as schedule does, for every device of
// authStrings (device → authentication string), at once: the CAPF store
// syncs each write to disk, about 10 ms for one caller alone, and shares
// one sync among concurrent writes.
func (c *cluster) scheduleAll(ctx context.Context, authStrings map[string]string) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for device, auth := range authStrings {
		wg.Go(func() {
			if err := c.schedule(ctx, device, auth); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", device, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// capfDevice returns the CAPF's record of device.
func (c *cluster) capfDevice(ctx context.Context, device string) (*capf.Device, error) {
	return capf.LookupDevice(ctx, c.capf, device)
}

// newAuthString returns a random 6-digit CAPF authentication string, as
// CUCM's "Generate String" makes.
func newAuthString() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n), nil
}

// deviceReady stands in for CUCM reacting to a phone's provisioning: for
// a secure phone, once the CAPF has recorded its LSC, it publishes the
// phone's configuration encrypted to that LSC, the certificate the CAPF
// store holds (not one the phone hands over), or signed if the LSC's key
// is not RSA (see publish); for a non-secure phone it publishes the
// signed configuration.
func (c *cluster) deviceReady(ctx context.Context, device, ext string, secure bool) error {
	if !secure {
		return c.publish(device, ext, nil, false)
	}
	d, err := capf.LookupDevice(ctx, c.capf, device)
	if err != nil {
		return err
	}
	if d.Certificate == nil {
		return fmt.Errorf("cluster: the CAPF has no LSC for %s (%s)", device, d.Status())
	}
	lsc, err := x509.ParseCertificate(d.Certificate)
	if err != nil {
		return err
	}
	return c.publish(device, ext, lsc, true)
}

// publish writes device's configuration files, signed by the CallManager
// key as TFTP signer (hash fileHash). The full configuration names the
// device, its extension ext on line 1, the nodes of its CallManager group
// in order (place) with their SIP servers (setSIP), TVS and CAPF, and the
// line's digest credentials (user ext; the password made on the first
// publish and kept, see credentials).
//
// A secure phone gets what CUCM's "TFTP Encrypted Config" serves: the full
// configuration encrypted to lsc as SEP….cnf.xml.enc.sgn, and the short
// signed configuration SEP….cnf.xml.sgn that points to it by lsc's
// certHash, with the CAPF settings (capfAuthMode 1, capfList). A
// non-secure phone (lsc nil) gets its full configuration signed, as
// SEP….cnf.xml.sgn; so does a secure phone whose LSC has an EC key
// (-keys ec), with its secure settings: the encrypted file wraps its key
// to the phone's RSA key, no EC variant of the format is known, and
// package cnfenc encrypts to no other kind.
func (c *cluster) publish(device, ext string, lsc *x509.Certificate, secure bool) error {
	if secure && lsc == nil {
		return errors.New("cluster: a secure phone's configuration needs its LSC")
	}
	var nodes []configNode
	for _, nd := range c.group(device) {
		nd.mu.Lock()
		sipTLS, sipTCP := nd.sipTLS, nd.sipTCP
		nd.mu.Unlock()
		if sipTLS == "" || sipTCP == "" {
			return fmt.Errorf("cluster: no SIP server address for %s (call setSIP first)", nd.name())
		}
		host, sipsPort, err := splitHostPort(sipTLS)
		if err != nil {
			return err
		}
		_, sipPort, err := splitHostPort(sipTCP)
		if err != nil {
			return err
		}
		_, capfPort, err := splitHostPort(nd.CAPFAddr)
		if err != nil {
			return err
		}
		_, tvsPort, err := splitHostPort(nd.TVSAddr)
		if err != nil {
			return err
		}
		nodes = append(nodes, configNode{Name: host, SIPPort: sipPort, SIPSPort: sipsPort, TVSPort: tvsPort, CAPFPort: capfPort})
	}
	password, err := c.account(device, ext, secure)
	if err != nil {
		return err
	}
	d := configData{
		Device: device, Extension: ext,
		SecurityMode: securityModeNonSecure,
		Nodes:        nodes, LinePort: nodes[0].SIPPort,
		AuthName: ext, Password: password,
		CAPFAuthMode: capfAuthModeNone,
		Load:         phoneLoad,
	}
	if secure {
		d.SecurityMode, d.LinePort, d.CAPFAuthMode = securityModeEncrypted, nodes[0].SIPSPort, capfAuthModeString
	}
	full, err := fullConfig(d)
	if err != nil {
		return err
	}
	signer, key := c.PKI.CCM, c.PKI.CCMKey
	if !secure || !isRSA(lsc.PublicKey) {
		signed, err := sgn.Sign(nil, full, signer, key, sgn.SignOptions{Filename: cnfenc.ShortName(device), Hash: fileHash})
		if err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(c.tftpDir, cnfenc.EncryptedName(device))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return c.writeFile(cnfenc.ShortName(device), signed)
	}
	enc, err := cnfenc.Encrypt(nil, full, lsc, signer, key, cnfenc.EncryptOptions{DeviceName: device, Hash: fileHash})
	if err != nil {
		return err
	}
	short, err := cnfenc.ShortConfig(full, lsc)
	if err != nil {
		return err
	}
	signedShort, err := sgn.Sign(nil, short, signer, key, sgn.SignOptions{Filename: cnfenc.ShortName(device), Hash: fileHash})
	if err != nil {
		return err
	}
	// The encrypted file first: the short one sends the phone to it.
	if err := c.writeFile(cnfenc.EncryptedName(device), enc); err != nil {
		return err
	}
	return c.writeFile(cnfenc.ShortName(device), signedShort)
}

// splitHostPort splits "host:port" with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	return host, port, nil
}

// account records device's line and returns the password of its digest
// user, making one the first time.
func (c *cluster) account(device, ext string, secure bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lines[device]; ok && old.User != ext {
		delete(c.users, old.User)
	}
	c.lines[device] = lineInfo{Extension: ext, User: ext, Secure: secure}
	if pw, ok := c.users[ext]; ok {
		return pw, nil
	}
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := strings.ToLower(base32.StdEncoding.EncodeToString(b))
	c.users[ext] = pw
	return pw, nil
}

// credentials returns the SIP digest password of user, the authName of a
// line the cluster configured (its extension), and whether there is such
// a user. For a digest.Server, see credentialStore.
func (c *cluster) credentials(user string) (password string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	password, ok = c.users[user]
	return password, ok
}

// published returns the devices whose configurations the cluster
// published, with their lines.
func (c *cluster) published() map[string]lineInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]lineInfo, len(c.lines))
	for k, v := range c.lines {
		m[k] = v
	}
	return m
}

// credentialStore returns the cluster's digest users as a
// digest.CredentialStore, for a digest.Server in any realm: it computes
// the HA1 from the password that credentials returns.
func (c *cluster) credentialStore() digest.CredentialStore { return clusterCredentials{c} }

type clusterCredentials struct{ c *cluster }

func (s clusterCredentials) HA1(_ context.Context, username, realm string, alg digest.Algorithm) (string, error) {
	pw, ok := s.c.credentials(username)
	if !ok {
		return "", digest.ErrUnknownUser
	}
	ha1 := digest.HA1(alg, username, realm, pw)
	if ha1 == "" {
		return "", fmt.Errorf("digest: algorithm %q not supported", alg)
	}
	return ha1, nil
}

// decoyDevice returns a device name no phone of the run has, for the
// negative cases.
func (c *cluster) decoyDevice() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decoys++
	return fmt.Sprintf("SEPBAD%09X", c.decoys)
}
