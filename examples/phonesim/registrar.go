package main

// The SIP registrar and call controller, server side: its configuration,
// the REGISTER handler with its mutual-TLS and digest checks, and the
// registrations it keeps. The calls it controls are in call.go, the
// simulated trunk in trunk.go, and how it learns who is on a connection
// in conntrack.go.
//
// The registrar listens on 127.0.0.1 over TLS (secure phones) and TCP
// (non-secure phones). The TLS side requires a client certificate that
// chains to the CAPF CA (the phone's LSC); a REGISTER over it must come from
// the device the certificate names, and is digest-authenticated (package
// digest: nonces expire, and a replayed Authorization is refused). A
// phone reaches the registrar over TLS only if the registrar's
// certificate is one its trust list holds in the CCM role, as on a Cisco
// phone: no host name is checked.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ucsec/ucsec/acl"
	"github.com/ucsec/ucsec/digest"
)

// A phoneLine is what the call controller's configuration holds about one
// phone, as CUCM's database does: the device, its directory number, the
// digest user of its line and its security profile.
type phoneLine struct {
	Device     string // SEP + 12 hex digits, the CN of its LSC
	Extension  string
	DigestUser string
	// Secure phones must register over TLS with their LSC; others over
	// TCP. A REGISTER over the other transport is refused, so that a
	// secure phone cannot be downgraded.
	Secure bool
}

// lineOf is the controller's configuration for a provisioned phone.
func lineOf(id sipIdentity) phoneLine {
	return phoneLine{Device: id.Device, Extension: id.Extension, DigestUser: id.DigestUser, Secure: id.Secure}
}

// registrarConfig configures startRegistrar.
type registrarConfig struct {
	// CCM is the server's certificate and key: the CallManager
	// certificate, which phones find in their trust lists.
	CCM tls.Certificate
	// PhoneCAs verify phones' client certificates: the CAPF CA.
	PhoneCAs *x509.CertPool
	// Credentials hold the digest users' HA1s (of phone lines; the trunk
	// has its own).
	Credentials digest.CredentialStore
	// Realm is the digest realm.
	Realm string
	// NonceValidity is how long a digest nonce is accepted; zero means
	// digest.DefaultNonceValidity.
	NonceValidity time.Duration
	// Time is the digest server's clock; nil means time.Now.
	Time func() time.Time
	// Lines are the phones the controller knows; other devices are
	// refused.
	Lines []phoneLine
	// Secrets are the digest nonce keys (digest.Server.Secrets): the
	// registrars of a cluster share them, so that each verifies the
	// others' nonces. Nil means a random key of this registrar's own.
	Secrets [][]byte
	// Replay is the digest replay store (digest.Server.Replay): the
	// registrars of a cluster share one. Nil means one of this
	// registrar's own, in memory.
	Replay digest.ReplayStore
	// Directory, if set, finds phones registered with the other nodes of
	// the cluster, and the registrar joins it (see directory).
	Directory *directory
	// Node names the registrar's node in its log records ("2"); empty
	// for a registrar alone.
	Node string
	// Log receives what the registrar does (refusals at Info, the rest
	// at Debug); nil discards it.
	Log *slog.Logger
}

// registrarConfigFor returns the configuration of the cluster's
// registrar for the phones ids: the CCM certificate, the CAPF CA, and the
// phones' lines and digest credentials (stored as HA1s). log may be nil.
func registrarConfigFor(pki *clusterPKI, ids []sipIdentity, realm string, log *slog.Logger) registrarConfig {
	cas := x509.NewCertPool()
	cas.AddCert(pki.CAPF)
	store := &digest.MemoryStore{}
	cfg := registrarConfig{
		CCM:         tls.Certificate{Certificate: [][]byte{pki.CCM.Raw}, PrivateKey: pki.CCMKey, Leaf: pki.CCM},
		PhoneCAs:    cas,
		Credentials: store,
		Realm:       realm,
		Log:         log,
	}
	for _, id := range ids {
		store.AddPassword(id.DigestUser, realm, id.DigestPassword)
		cfg.Lines = append(cfg.Lines, lineOf(id))
	}
	return cfg
}

// A registration is one registered phone.
type registration struct {
	Line      phoneLine
	Transport string // "TLS" or "TCP"
	// Source is the phone's end of its connection, host:port: the
	// controller sends the phone's requests there.
	Source string
	// Secure is true for a phone that registered over mutual TLS with an
	// LSC the CAPF CA issued for this device; a TCP phone is non-secure.
	Secure    bool
	LSCSerial string // the LSC's serial number in hex, for secure phones
	Contact   sip.Uri
	Expires   time.Time
}

// A registrar is the cluster's SIP registrar and call controller (a
// back-to-back user agent), with a simulated SIP trunk. Make one with
// startRegistrar; it serves until its context is done or Close is called.
type registrar struct {
	cfg    registrarConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	digest *digest.Server
	css    *acl.CallingSearchSpace // what phones may call: every line
	lines  map[string]phoneLine    // by device

	tlsLn, tcpLn     net.Listener
	tlsAddr, tcpAddr netip.AddrPort
	trunk            *trunkServer
	dead             atomic.Bool // killed: the directory skips it

	mu       sync.Mutex
	byDevice map[string]*registration
	byExt    map[string]*registration
	bySource map[string]*registration // by transport + " " + source
	peers    map[string]*x509.Certificate
	calls    map[string]*b2bCall       // by the Call-ID of a leg this registrar holds
	conns    map[*trackedConn]struct{} // the connections accepted and open, for kill

	// Counters of refusals, for the demonstrations.
	tlsRefused atomic.Int64 // TLS handshakes refused (no LSC, or not from the CAPF CA)
	replays    atomic.Int64 // requests refused as digest replays
	stale      atomic.Int64 // right credentials on an expired nonce, challenged again
	gci        atomic.Uint64

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// startRegistrar starts the registrar, the call controller and the
// simulated trunk on 127.0.0.1, ports chosen by the system. They stop when
// ctx is done or Close is called.
func startRegistrar(ctx context.Context, cfg registrarConfig) (*registrar, error) {
	if len(cfg.CCM.Certificate) == 0 || cfg.PhoneCAs == nil || cfg.Credentials == nil || cfg.Realm == "" {
		return nil, errors.New("registrar: CCM certificate, PhoneCAs, Credentials and Realm are required")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Node != "" {
		log = log.With("node", cfg.Node)
	}
	r := &registrar{
		cfg:      cfg,
		log:      log.With("part", "registrar"),
		lines:    make(map[string]phoneLine, len(cfg.Lines)),
		byDevice: make(map[string]*registration),
		byExt:    make(map[string]*registration),
		bySource: make(map[string]*registration),
		peers:    make(map[string]*x509.Certificate),
		calls:    make(map[string]*b2bCall),
		conns:    make(map[*trackedConn]struct{}),
		digest: &digest.Server{Realm: cfg.Realm, Credentials: cfg.Credentials, Secrets: cfg.Secrets,
			Replay: cfg.Replay, NonceValidity: cfg.NonceValidity, Time: cfg.Time},
	}
	var exts []string
	for _, l := range cfg.Lines {
		if _, dup := r.lines[strings.ToUpper(l.Device)]; dup {
			return nil, fmt.Errorf("registrar: device %s configured twice", l.Device)
		}
		r.lines[strings.ToUpper(l.Device)] = l
		exts = append(exts, l.Extension)
	}
	// The phones' calling search space: one partition with every line's
	// number. acl also takes route patterns ("1XXX"); exact numbers keep
	// unconfigured ones unreachable.
	part, err := acl.NewPartition("phonesim-lines", exts...)
	if err != nil {
		return nil, fmt.Errorf("registrar: %w", err)
	}
	r.css = &acl.CallingSearchSpace{Name: "phonesim-phones", Partitions: []*acl.Partition{part}}

	r.ctx, r.cancel = context.WithCancel(ctx)
	if err := r.start(); err != nil {
		r.Close()
		return nil, err
	}
	if cfg.Directory != nil {
		cfg.Directory.add(r)
	}
	go func() {
		<-r.ctx.Done()
		r.Close()
	}()
	return r, nil
}

func (r *registrar) start() error {
	var err error
	if r.ua, err = newUA("ucsec-phonesim-ccm", r.log, nil); err != nil {
		return err
	}
	if r.srv, err = sipgo.NewServer(r.ua, sipgo.WithServerLogger(r.log)); err != nil {
		return err
	}
	if r.client, err = sipgo.NewClient(r.ua, sipgo.WithClientLogger(r.log)); err != nil {
		return err
	}
	r.srv.OnRegister(r.onRegister)
	r.srv.OnInvite(r.onInvite)
	r.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {}) // an ACK ends nothing here
	r.srv.OnBye(r.onBye)
	r.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(r.log, tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})

	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{r.cfg.CCM},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    r.cfg.PhoneCAs,
		MinVersion:   tls.VersionTLS12,
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.tlsLn = &trackListener{Listener: tls.NewListener(tcp, tlsConf), r: r, tls: true}
	r.tlsAddr = tcp.Addr().(*net.TCPAddr).AddrPort()
	plain, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.tcpLn = &trackListener{Listener: plain, r: r}
	r.tcpAddr = plain.Addr().(*net.TCPAddr).AddrPort()
	r.wg.Go(func() { _ = r.srv.ServeTLS(r.tlsLn) })
	r.wg.Go(func() { _ = r.srv.ServeTCP(r.tcpLn) })

	r.trunk, err = startTrunk(r)
	return err
}

// Close stops the registrar, the controller and the trunk, and closes
// their connections. It is safe to call more than once.
func (r *registrar) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		for _, l := range []net.Listener{r.tlsLn, r.tcpLn} {
			if l != nil {
				_ = l.Close()
			}
		}
		r.wg.Wait()
		if r.trunk != nil {
			r.trunk.close()
		}
		if r.ua != nil {
			_ = r.ua.Close()
		}
	})
	return nil
}

// kill stops the registrar as a crash would look to its phones: its
// listeners close, and so do its connections, at once and without a word
// (no TLS close_notify; a TCP reset), and it leaves the cluster's
// directory. Then it closes as Close does.
func (r *registrar) kill() {
	r.dead.Store(true)
	for _, l := range []net.Listener{r.tlsLn, r.tcpLn} {
		if l != nil {
			_ = l.Close()
		}
	}
	r.mu.Lock()
	conns := make([]*trackedConn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	r.log.Info("killed", "connections", len(conns))
	r.Close()
}

// server returns where phones register.
func (r *registrar) server() sipServer {
	return sipServer{TLS: r.tlsAddr, TCP: r.tcpAddr, Realm: r.cfg.Realm}
}

// registered returns the registration of device, if it is registered.
func (r *registrar) registered(device string) (registration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reg := r.byDevice[device]; reg != nil {
		return *reg, true
	}
	return registration{}, false
}

// refusalCounts are the registrar's counts of refusals.
type refusalCounts struct {
	TLS    int64 // TLS handshakes refused: no client certificate, or not one from the CAPF CA
	Replay int64 // requests refused by the digest replay check
	Stale  int64 // right credentials on an expired nonce (answered with a fresh challenge)
}

// refusals returns the registrar's counts of refusals so far. A TLS
// refusal is counted when the registrar's side of the handshake returns,
// which can be a moment after the phone has seen the alert.
func (r *registrar) refusals() refusalCounts {
	return refusalCounts{TLS: r.tlsRefused.Load(), Replay: r.replays.Load(), Stale: r.stale.Load()}
}

func (r *registrar) unbindLocked(reg *registration) {
	delete(r.bySource, reg.Transport+" "+reg.Source)
	if r.byDevice[reg.Line.Device] == reg {
		delete(r.byDevice, reg.Line.Device)
	}
	if r.byExt[reg.Line.Extension] == reg {
		delete(r.byExt, reg.Line.Extension)
	}
}

// sender returns the registration of the phone that sent req: the one
// registered over req's connection.
func (r *registrar) sender(req *sip.Request) (registration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := r.bySource[strings.ToUpper(req.Transport())+" "+req.Source()]
	if reg == nil || time.Now().After(reg.Expires) {
		return registration{}, false
	}
	return *reg, true
}

// byExtension returns the registration of the phone with directory
// number ext.
func (r *registrar) byExtension(ext string) (registration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := r.byExt[ext]
	if reg == nil || time.Now().After(reg.Expires) {
		return registration{}, false
	}
	return *reg, true
}

// onRegister authenticates and records a REGISTER. In order:
//   - the device named by the Contact's +sip.instance must be configured;
//   - over TLS, the LSC the handshake verified must name that device, and
//     its security profile must be secure; over TCP it must be non-secure;
//   - the request must carry digest credentials of the device's line
//     (401 with a challenge otherwise; a replay is refused with a
//     stale challenge, as package digest answers it);
//   - the To user must be the device's directory number.
func (r *registrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	transport := strings.ToUpper(req.Transport())
	source := req.Source()
	refuse := func(status int, why string) {
		r.log.Info("REGISTER refused", "transport", transport, "source", source, "status", status, "reason", why)
		respond(r.log, tx, sip.NewResponseFromRequest(req, status, reasonPhrase(status), nil))
	}
	device, err := contactDevice(req)
	if err != nil {
		refuse(sip.StatusBadRequest, err.Error())
		return
	}
	line, known := r.lines[device]
	if !known {
		refuse(sip.StatusNotFound, "unknown device "+device)
		return
	}
	var lsc *x509.Certificate
	switch transport {
	case "TLS":
		r.mu.Lock()
		lsc = r.peers[source]
		r.mu.Unlock()
		switch {
		case lsc == nil:
			refuse(sip.StatusForbidden, "no verified certificate on the connection")
			return
		case !strings.EqualFold(lsc.Subject.CommonName, device):
			refuse(sip.StatusForbidden, "the certificate names "+lsc.Subject.CommonName+", not "+device)
			return
		case !line.Secure:
			refuse(sip.StatusForbidden, device+" is non-secure: it registers over TCP")
			return
		}
	case "TCP":
		if line.Secure {
			refuse(sip.StatusForbidden, device+" is secure: it must register over TLS")
			return
		}
	default:
		refuse(sip.StatusForbidden, "transport "+transport)
		return
	}

	dr := digestRequest(req)
	res, err := r.digest.Verify(r.ctx, &dr)
	if err != nil {
		r.challenge(req, tx, &dr, err)
		return
	}
	if res.Username != line.DigestUser {
		refuse(sip.StatusForbidden, "digest user "+res.Username+" is not the line's")
		return
	}
	to := req.To()
	if to == nil || to.Address.User != line.Extension {
		refuse(sip.StatusForbidden, "the To user is not the line's number")
		return
	}
	expires := registerExpires
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			expires = min(n, registerExpires)
		}
	}

	reg := &registration{Line: line, Transport: transport, Source: source, Secure: transport == "TLS",
		Contact: req.Contact().Address, Expires: time.Now().Add(time.Duration(expires) * time.Second)}
	if lsc != nil {
		reg.LSCSerial = hex.EncodeToString(lsc.SerialNumber.Bytes())
	}
	device = line.Device // as configured
	r.mu.Lock()
	if old := r.byDevice[device]; old != nil {
		r.unbindLocked(old)
	}
	if old := r.byExt[line.Extension]; old != nil {
		r.unbindLocked(old)
	}
	if old := r.bySource[transport+" "+source]; old != nil {
		r.unbindLocked(old)
	}
	if expires > 0 {
		r.byDevice[device], r.byExt[line.Extension], r.bySource[transport+" "+source] = reg, reg, reg
	}
	r.mu.Unlock()
	r.log.Debug("registered", "device", device, "extension", line.Extension, "transport", transport,
		"source", source, "secure", reg.Secure, "expires", expires)

	ok := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	if c := req.Contact(); c != nil {
		ok.AppendHeader(sip.HeaderClone(c))
	}
	ok.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	respond(r.log, tx, ok)
}

// challenge answers a request whose digest verification failed with
// err, as package digest says: a challenge (stale after an expired nonce
// or a replay), 400 for malformed credentials, 500 for a store failure.
func (r *registrar) challenge(req *sip.Request, tx sip.ServerTransaction, dr *digest.Request, verr error) {
	switch {
	case errors.Is(verr, digest.ErrReplay):
		r.replays.Add(1)
	case errors.Is(verr, digest.ErrStale):
		r.stale.Add(1)
	}
	if !errors.Is(verr, digest.ErrNoCredentials) {
		r.log.Info("digest refused", "method", req.Method.String(), "source", req.Source(), "error", verr)
	}
	ans, err := r.digest.Answer(dr, verr)
	if err != nil {
		respond(r.log, tx, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
		return
	}
	res := sip.NewResponseFromRequest(req, ans.Status, reasonPhrase(ans.Status), nil)
	for _, v := range ans.Values {
		res.AppendHeader(sip.NewHeader(ans.Header, v)) // one header per challenge
	}
	respond(r.log, tx, res)
}

// digestRequest takes from req what digest verification needs, as
// examples/sip-trunk-acl does: the Request-URI as sipgo writes it back
// (the phones here compute their responses over the same string).
func digestRequest(req *sip.Request) digest.Request {
	r := digest.Request{
		Method:        req.Method.String(),
		URI:           req.Recipient.String(),
		Body:          req.Body(),
		Authorization: headerValues(req.Headers(), "Authorization"),
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		r.RemoteAddr = ap.Addr().Unmap()
	}
	return r
}
