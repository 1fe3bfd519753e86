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
	"github.com/ucsec/ucsec/tvs"
)

// The cluster's provisioning side: the services of a CUCM node that a
// phone meets before it registers, on 127.0.0.1 with ports the system
// chooses.
//
//   - The TFTP/HTTP file service (CUCM's port 6970): ITLFile.tlv,
//     CTLFile.tlv and each phone's configuration, from the directory
//     STATE/tftp.
//   - CAPF (port 3804): issues the phones' LSCs from the CAPF CA, with its
//     operations in the bbolt file STATE/capf.db, so that a -state
//     directory keeps them from one run to the next.
//   - TVS (port 2445): vouches for the cluster's certificates, in memory:
//     they are loaded from the trust lists at every start.

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

// A cluster is a running set of provisioning services, started by
// startCluster and stopped by close.
type cluster struct {
	// PKI holds the cluster's certificates and keys.
	PKI *clusterPKI
	// FileURL is the base URL of the file service, "http://127.0.0.1:PORT/":
	// a phone downloads FileURL + "ITLFile.tlv".
	FileURL string
	// CAPFAddr and TVSAddr are the CAPF's and the TVS's "127.0.0.1:PORT".
	CAPFAddr, TVSAddr string
	// StateDir holds the file service's directory (tftp) and the CAPF's
	// store (capf.db).
	StateDir string

	log      *slog.Logger
	tftpDir  string
	capf     *capf.BoltStore
	tvsStore *tvs.MemoryStore
	httpSrv  *http.Server
	newConns connSet // the file service's connections that have sent no request yet
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error // one per service, when it stops

	mu      sync.Mutex
	sipTLS  string              // SIP server addresses that configurations name
	sipTCP  string              //
	lines   map[string]lineInfo // by device: what publish wrote
	users   map[string]string   // digest user → password
	decoys  int                 // devices made up by negative cases
	closing bool
}

// lineInfo is what the cluster knows of a phone it configured.
type lineInfo struct {
	Extension, User string
	Secure          bool
}

// startCluster starts the file service, the CAPF and the TVS on 127.0.0.1
// with ports chosen by the system, with pki, keeping state in stateDir
// (created if needed; a temporary directory unless -state is given).
// It writes the ITL (signed by pki.SAST; records SAST, CCM+TFTP, CAPF and
// TVS) and the CTL (signed by pki.SAST; records SAST, CCM+TFTP and CAPF),
// and loads both into the TVS. log receives the services' records; nil is
// silent. The services run until ctx is done or close is called; call
// close in any case.
func startCluster(ctx context.Context, pki *clusterPKI, stateDir string, log *slog.Logger) (_ *cluster, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &cluster{
		PKI:      pki,
		StateDir: stateDir,
		log:      log,
		tftpDir:  filepath.Join(stateDir, "tftp"),
		tvsStore: tvs.NewMemoryStore(),
		lines:    make(map[string]lineInfo),
		users:    make(map[string]string),
		errs:     make(chan error, 3),
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
	for _, f := range []*ctl.File{itlFile, ctlFile} {
		if _, err := tvs.LoadTrustList(ctx, c.tvsStore, f, 0); err != nil {
			return nil, err
		}
	}

	c.capf, err = capf.OpenBoltStore(filepath.Join(stateDir, "capf.db"), nil)
	if err != nil {
		return nil, err
	}
	var listeners []net.Listener
	defer func() {
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			c.capf.Close()
		}
	}()
	listen := func() (net.Listener, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			listeners = append(listeners, l)
		}
		return l, err
	}
	httpL, err := listen()
	if err != nil {
		return nil, err
	}
	capfL, err := listen()
	if err != nil {
		return nil, err
	}
	tvsL, err := listen()
	if err != nil {
		return nil, err
	}
	c.FileURL = "http://" + httpL.Addr().String() + "/"
	c.CAPFAddr = capfL.Addr().String()
	c.TVSAddr = tvsL.Addr().String()

	capfSrv := &capf.Server{
		Store:     c.capf,
		Issuer:    &capf.LocalCA{Certificate: pki.CAPF, Signer: pki.CAPFKey},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{tlsCert(pki.CAPF, pki.CAPFKey)}},
		// Every simulated phone comes from the loopback address: no
		// per-host bound.
		MaxConnsPerHost: -1,
		Logger:          log.With("service", "capf"),
	}
	tvsSrv := &tvs.Server{
		Store:           c.tvsStore,
		TLSConfig:       &tls.Config{Certificates: []tls.Certificate{tlsCert(pki.TVS, pki.TVSKey)}},
		MaxConnsPerHost: -1, // as for the CAPF
		Logger:          log.With("service", "tvs"),
	}
	c.httpSrv = &http.Server{
		Handler:           c.fileHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         c.newConns.track,
	}

	srvCtx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	c.serve("capf", func() error { return ignore(capfSrv.Serve(srvCtx, capfL), capf.ErrServerClosed) })
	c.serve("tvs", func() error { return ignore(tvsSrv.Serve(srvCtx, tvsL), tvs.ErrServerClosed) })
	c.serve("files", func() error { return ignore(c.httpSrv.Serve(httpL), http.ErrServerClosed) })
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
	log.Info("cluster started", "files", c.FileURL, "capf", c.CAPFAddr, "tvs", c.TVSAddr, "state", stateDir)
	return c, nil
}

// serve runs a service until it stops, and logs and keeps for close the
// error it stopped with, if any.
func (c *cluster) serve(name string, run func() error) {
	c.wg.Go(func() {
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
// exchanges and downloads finish first) and closes the CAPF store. It
// returns the first error a service stopped with.
func (c *cluster) close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	close(c.errs)
	var errs []error
	for err := range c.errs {
		errs = append(errs, err)
	}
	errs = append(errs, c.capf.Close(), c.tvsStore.Close())
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
// service on port 6970 does, without directory listings.
func (c *cluster) fileHandler() http.Handler {
	files := http.FileServer(http.Dir(c.tftpDir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || strings.Contains(r.URL.Path, "/.") {
			http.NotFound(w, r)
			return
		}
		c.log.Debug("file request", "path", r.URL.Path, "from", r.RemoteAddr)
		files.ServeHTTP(w, r)
	})
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
// after a change of the cluster's keys: the TVS first vouches for
// pki.NextSAST (role SAST, with the other certificates of the new list),
// then ITLFile.tlv is replaced by a list signed by NextSAST, which holds
// NextSAST as its SAST instead of SAST. A phone holding the old ITL does
// not know the new signer and accepts the list only through TVS (rule
// P4).
func (c *cluster) rollITL(ctx context.Context) error {
	data, f, err := buildITL(c.PKI, c.PKI.NextSAST, c.PKI.NextSASTKey)
	if err != nil {
		return err
	}
	if _, err := tvs.LoadTrustList(ctx, c.tvsStore, f, 0); err != nil {
		return err
	}
	if err := c.writeFile(itlName, data); err != nil {
		return err
	}
	c.log.Info("ITL rolled over", "signer", c.PKI.NextSAST.Subject.CommonName)
	return nil
}

// setSIP tells the cluster the SIP server's addresses, which the phone
// configurations name: tlsAddr for secure phones (<securedSipPort>),
// tcpAddr for non-secure ones (<sipPort>), both "127.0.0.1:PORT" on the
// same host. Call it before publish.
func (c *cluster) setSIP(tlsAddr, tcpAddr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sipTLS, c.sipTCP = tlsAddr, tcpAddr
}

// schedule schedules a CAPF install of an RSA-2048 LSC (cnfenc encrypts
// configurations only to RSA keys) for device, as CUCM's "Certificate
// Operation: Install/Upgrade": with authString, 4 to 10 digits, as the
// authentication string by default, or by null string if authString is
// "".
func (c *cluster) schedule(ctx context.Context, device, authString string) error {
	sch := capf.Schedule{Operation: capf.OpInstall, Auth: capf.AuthString, AuthString: authString, Key: capf.RSA2048}
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
// store holds (not one the phone hands over); for a non-secure phone it
// publishes the signed configuration.
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
// device, its extension ext on line 1, the SIP server (setSIP) and the
// line's digest credentials (user ext; the password made on the first
// publish and kept, see credentials).
//
// A secure phone gets what CUCM's "TFTP Encrypted Config" serves: the full
// configuration encrypted to lsc as SEP….cnf.xml.enc.sgn, and the short
// signed configuration SEP….cnf.xml.sgn that points to it by lsc's
// certHash, with the CAPF settings (capfAuthMode 1, capfList). A
// non-secure phone (lsc nil) gets its full configuration signed, as
// SEP….cnf.xml.sgn.
func (c *cluster) publish(device, ext string, lsc *x509.Certificate, secure bool) error {
	if secure && lsc == nil {
		return errors.New("cluster: a secure phone's configuration needs its LSC")
	}
	c.mu.Lock()
	sipTLS, sipTCP := c.sipTLS, c.sipTCP
	c.mu.Unlock()
	if sipTLS == "" || sipTCP == "" {
		return errors.New("cluster: no SIP server address (call setSIP first)")
	}
	host, sipsPort, err := splitHostPort(sipTLS)
	if err != nil {
		return err
	}
	_, sipPort, err := splitHostPort(sipTCP)
	if err != nil {
		return err
	}
	_, capfPort, err := splitHostPort(c.CAPFAddr)
	if err != nil {
		return err
	}
	password, err := c.account(device, ext, secure)
	if err != nil {
		return err
	}
	d := configData{
		Device: device, Extension: ext,
		SecurityMode: securityModeNonSecure,
		Node:         host, SIPPort: sipPort, SIPSPort: sipsPort, LinePort: sipPort,
		AuthName: ext, Password: password,
		CAPFAuthMode: capfAuthModeNone, CAPFPort: capfPort,
		Load: phoneLoad,
	}
	if secure {
		d.SecurityMode, d.LinePort, d.CAPFAuthMode = securityModeEncrypted, sipsPort, capfAuthModeString
	}
	full, err := fullConfig(d)
	if err != nil {
		return err
	}
	signer, key := c.PKI.CCM, c.PKI.CCMKey
	if !secure {
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
