package main

// SIP: the cluster's registrar and call controller, and the phones' user
// agents, on emiago/sipgo.
//
// The registrar listens on 127.0.0.1 over TLS (secure phones) and TCP
// (non-secure phones). The TLS side requires a client certificate that
// chains to the CAPF CA (the phone's LSC); a REGISTER over it must come from
// the device the certificate names, and is digest-authenticated (package
// digest: nonces expire, and a replayed Authorization is refused). A
// phone reaches the registrar over TLS only if the registrar's
// certificate is one its trust list holds in the CCM role, as on a Cisco
// phone: no host name is checked.
//
// A phone opens one connection and keeps it; the controller sends the
// phone's incoming calls over that connection, as CUCM does with its TLS
// phones, so phones do not listen for SIP. That keeps the mutual
// authentication of the registration for every request either way: the
// phone checked the server's certificate, the server the phone's.
//
// Phones speak TLS 1.2, as Cisco phones do (the registrar accepts 1.2 and
// later). It also makes a refused phone certificate fail the phone's own
// handshake: in TLS 1.3 a client completes its handshake before the
// server has checked its certificate, and learns of the refusal only when
// it next reads.

import (
	"context"
	"crypto/rand"
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

// sipTimeout bounds one SIP transaction that main.go or a test starts
// without a deadline of its own, and each leg the controller sets up.
const sipTimeout = 10 * time.Second

// registerExpires is the registration lifetime phones ask for, in seconds.
const registerExpires = 3600

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
	// Clock is the digest server's clock; nil means time.Now.
	Clock func() time.Time
	// Lines are the phones the controller knows; other devices are
	// refused.
	Lines []phoneLine
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

// sipServer is where phones register: what a phone's configuration file
// tells it.
type sipServer struct {
	TLS, TCP netip.AddrPort // the registrar's TLS (secure phones) and TCP ports
	Realm    string
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

	mu       sync.Mutex
	byDevice map[string]*registration
	byExt    map[string]*registration
	bySource map[string]*registration // by transport + " " + source
	peers    map[string]*x509.Certificate
	calls    map[string]*b2bCall // by the Call-ID of either leg

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
	r := &registrar{
		cfg:      cfg,
		log:      log.With("part", "registrar"),
		lines:    make(map[string]phoneLine, len(cfg.Lines)),
		byDevice: make(map[string]*registration),
		byExt:    make(map[string]*registration),
		bySource: make(map[string]*registration),
		peers:    make(map[string]*x509.Certificate),
		calls:    make(map[string]*b2bCall),
		digest: &digest.Server{Realm: cfg.Realm, Credentials: cfg.Credentials,
			NonceValidity: cfg.NonceValidity, Clock: cfg.Clock},
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

// A trackListener records, for each connection the registrar accepts, the
// phone certificate its TLS handshake verified, and forgets it (and the
// registrations made over the connection) when sipgo closes it. sipgo
// hands a request to its handler with only the connection's remote
// address: this is how the registrar learns who sent it.
type trackListener struct {
	net.Listener
	r   *registrar
	tls bool
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, r: l.r, transport: "TCP"}
	if l.tls {
		tc.transport = "TLS"
	}
	return tc, nil
}

// handshakeTimeout bounds a phone's TLS handshake with the registrar.
const handshakeTimeout = 10 * time.Second

type trackedConn struct {
	net.Conn
	r         *registrar
	transport string

	once  sync.Once
	hsErr error
}

// Read runs the TLS handshake first (sipgo's reading goroutine calls it
// before anything else), and records the verified phone certificate.
func (c *trackedConn) Read(b []byte) (int, error) {
	c.once.Do(c.handshake)
	if c.hsErr != nil {
		return 0, c.hsErr
	}
	return c.Conn.Read(b)
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.once.Do(c.handshake)
	if c.hsErr != nil {
		return 0, c.hsErr
	}
	return c.Conn.Write(b)
}

func (c *trackedConn) handshake() {
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.r.ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.r.tlsRefused.Add(1)
		c.r.log.Info("TLS handshake refused", "source", c.RemoteAddr().String(), "error", err)
		c.hsErr = err
		return
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 { // RequireAndVerifyClientCert makes this impossible
		c.hsErr = errors.New("registrar: no client certificate")
		return
	}
	c.r.mu.Lock()
	c.r.peers[c.RemoteAddr().String()] = certs[0]
	c.r.mu.Unlock()
}

func (c *trackedConn) Close() error {
	c.r.connClosed(c.transport, c.RemoteAddr().String())
	return c.Conn.Close()
}

// connClosed forgets what was bound to a closed connection: its
// certificate and the registrations made over it (the phone must register
// again, as a CUCM TLS phone does after losing its connection).
func (r *registrar) connClosed(transport, source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if transport == "TLS" {
		delete(r.peers, source)
	}
	if reg := r.bySource[transport+" "+source]; reg != nil {
		r.unbindLocked(reg)
	}
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

// sipInstancePrefix starts a Cisco phone's +sip.instance: a UUID whose
// last group is the device's MAC address.
const sipInstancePrefix = "urn:uuid:00000000-0000-0000-0000-"

// instanceOf returns the +sip.instance value of device (SEP + MAC).
func instanceOf(device string) string {
	return `"<` + sipInstancePrefix + strings.ToLower(strings.TrimPrefix(device, "SEP")) + `>"`
}

// contactDevice returns the device a REGISTER claims to be, from its
// Contact's +sip.instance, as Cisco phones send it.
func contactDevice(req *sip.Request) (string, error) {
	c := req.Contact()
	if c == nil {
		return "", errors.New("no Contact")
	}
	v, ok := c.Params.Get("+sip.instance")
	if !ok {
		return "", errors.New("no +sip.instance in the Contact")
	}
	v = strings.Trim(strings.TrimSpace(v), `"<>`)
	mac, ok := strings.CutPrefix(strings.ToLower(v), sipInstancePrefix)
	if !ok || len(mac) != 12 {
		return "", errors.New("+sip.instance is not a device's")
	}
	if _, err := hex.DecodeString(mac); err != nil {
		return "", errors.New("+sip.instance is not a device's")
	}
	return "SEP" + strings.ToUpper(mac), nil
}

// A sipPhone is a simulated phone's SIP user agent: it registers, places
// and answers calls (one at a time), and shows each call's security icon.
// Make one with newSIPPhone.
type sipPhone struct {
	id        sipIdentity
	srv       sipServer
	log       *slog.Logger
	transport string         // "TLS" or "TCP"
	server    netip.AddrPort // the registrar address for the transport
	ua        *sipgo.UserAgent
	client    *sipgo.Client
	uas       *sipgo.Server
	digest    *digest.Client

	mu           sync.Mutex
	registered   bool
	regCallID    string
	regTag       string
	regCSeq      uint32
	local        string       // the phone's end of its connection, from the Via of its REGISTER
	lastRegister *sip.Request // the last REGISTER the registrar accepted, for negReplayedRegister
	call         *phoneCall   // the call in progress, if any
	ringing      chan *phoneCall
}

// newSIPPhone makes the SIP user agent of a provisioned phone: a secure
// one connects over TLS with its LSC as the client certificate, and
// accepts the server only if the server's certificate is one its trust
// list holds in the CCM role (id.Trust); a non-secure one connects over
// TCP. log may be nil. Nothing is sent until register.
func newSIPPhone(id sipIdentity, srv sipServer, log *slog.Logger) (*sipPhone, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &sipPhone{
		id: id, srv: srv, log: log.With("phone", id.Device),
		transport: "TCP", server: srv.TCP,
		digest: &digest.Client{Credentials: []digest.ClientCredential{
			{Realm: srv.Realm, Username: id.DigestUser, Password: id.DigestPassword}}},
		regCallID: newCallID(),
		regTag:    newTag(),
		ringing:   make(chan *phoneCall, 1),
	}
	var tlsConf *tls.Config
	if id.Secure {
		if len(id.LSC.Certificate) == 0 || id.Trust == nil {
			return nil, fmt.Errorf("phone %s: a secure phone needs its LSC and trust list", id.Device)
		}
		p.transport, p.server = "TLS", srv.TLS
		trust := id.Trust
		tlsConf = &tls.Config{
			Certificates: []tls.Certificate{id.LSC},
			// A phone trusts the server's certificate because its
			// trust list holds it in the CCM role, not for a host name
			// or a CA: VerifyConnection checks exactly that.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				return verifyCCM(cs.PeerCertificates, trust)
			},
			MinVersion: tls.VersionTLS12,
			MaxVersion: tls.VersionTLS12,
		}
	}
	var err error
	if p.ua, err = newUA("ucsec-phonesim-"+id.Device, p.log, tlsConf); err != nil {
		return nil, err
	}
	if p.client, err = sipgo.NewClient(p.ua, sipgo.WithClientLogger(p.log)); err != nil {
		_ = p.ua.Close()
		return nil, err
	}
	if p.uas, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(p.log)); err != nil {
		_ = p.ua.Close()
		return nil, err
	}
	p.uas.OnInvite(p.onInvite)
	p.uas.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	p.uas.OnUpdate(p.onUpdate)
	p.uas.OnBye(p.onBye)
	return p, nil
}

// verifyCCM checks that the server's certificate is one of trust's
// certificates itself (a chain of one), not merely one a certificate in
// trust has signed: a phone accepts the SIP server whose certificate its
// CTL or ITL lists in the CCM role. Validity dates are checked; key usage
// is not (the role is what counts).
func verifyCCM(certs []*x509.Certificate, trust *x509.CertPool) error {
	if len(certs) == 0 {
		return errors.New("phone: the server sent no certificate")
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: trust, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("phone: the server's certificate is not in the trust list's CCM role: %w", err)
	}
	for _, c := range chains {
		if len(c) == 1 {
			return nil
		}
	}
	return errors.New("phone: the server's certificate is not in the trust list's CCM role (only its issuer is)")
}

// Close closes the phone's connection, which ends its registration (the
// registrar forgets registrations whose connection is gone). It sends no
// BYE for a call in progress.
func (p *sipPhone) Close() error {
	return p.ua.Close()
}

// isRegistered reports whether the registrar accepted the phone's last
// REGISTER.
func (p *sipPhone) isRegistered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registered
}

// uri returns a SIP URI at the registrar, with the phone's transport.
func (p *sipPhone) uri(user string, withPort bool) sip.Uri {
	u := sip.Uri{Scheme: "sip", User: user, Host: p.server.Addr().String(),
		UriParams: sip.HeaderParams{{K: "transport", V: strings.ToLower(p.transport)}}}
	if withPort {
		u.Port = int(p.server.Port())
	}
	return u
}

// register registers the phone's line: a REGISTER over the phone's
// connection (opened now, with the TLS handshake for a secure phone),
// answered with digest credentials when challenged.
func (p *sipPhone) register(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, sipTimeout)
	defer cancel()
	req := p.newRegister("")
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("phone %s: REGISTER: %w", p.id.Device, err)
	}
	if res.StatusCode == sip.StatusUnauthorized {
		auth, err := p.digest.Authorize(headerValues(res.Headers(), "WWW-Authenticate"), "REGISTER",
			req.Recipient.String(), req.Body())
		if err != nil {
			return fmt.Errorf("phone %s: REGISTER: %w", p.id.Device, err)
		}
		req = p.newRegister(auth)
		if res, err = p.client.Do(ctx, req); err != nil {
			return fmt.Errorf("phone %s: REGISTER: %w", p.id.Device, err)
		}
	}
	if res.StatusCode != sip.StatusOK {
		return fmt.Errorf("phone %s: REGISTER refused: %d %s", p.id.Device, res.StatusCode, res.Reason)
	}
	p.mu.Lock()
	p.registered = true
	p.lastRegister = req.Clone() // as sent: sipgo filled in the Via
	if via := res.Via(); via != nil {
		p.local = net.JoinHostPort(via.Host, strconv.Itoa(via.Port))
	}
	p.mu.Unlock()
	p.log.Debug("registered", "transport", p.transport)
	return nil
}

// newRegister builds the phone's next REGISTER, with an Authorization
// value if auth is not empty.
func (p *sipPhone) newRegister(auth string) *sip.Request {
	p.mu.Lock()
	p.regCSeq++
	cseq := p.regCSeq
	p.mu.Unlock()
	req := sip.NewRequest(sip.REGISTER, p.uri("", true))
	aor := p.uri(p.id.Extension, false)
	aor.UriParams = nil
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: sip.HeaderParams{{K: "tag", V: p.regTag}}})
	req.AppendHeader(&sip.ToHeader{Address: aor})
	callID := sip.CallIDHeader(p.regCallID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(p.contact(sip.HeaderParams{{K: "+sip.instance", V: instanceOf(p.id.Device)}}))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(registerExpires)))
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	req.SetTransport(p.transport)
	req.SetBody(nil)
	return req
}

// contact returns the phone's Contact header. The controller reaches the
// phone over its connection whatever the Contact says, as CUCM reaches its
// TLS phones; the address is the phone's end of that connection once
// known.
func (p *sipPhone) contact(params sip.HeaderParams) *sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: p.id.Extension, Host: "127.0.0.1",
		UriParams: sip.HeaderParams{{K: "transport", V: strings.ToLower(p.transport)}}}
	p.mu.Lock()
	local := p.local
	p.mu.Unlock()
	if host, port, err := net.SplitHostPort(local); err == nil {
		u.Host = host
		u.Port, _ = strconv.Atoi(port)
	}
	return &sip.ContactHeader{Address: u, Params: params}
}

// negReplayedRegister demonstrates that the registrar refuses a replayed
// REGISTER: it sends p's last accepted REGISTER again, Authorization
// included, as an attacker who captured it would, and returns nil if the
// registrar refused it (401 or 403) through its digest replay check. p
// must have registered.
//
// The copy goes in a transaction of its own, with a new Via branch (which
// the digest response does not cover), as a replay sent after the
// original transaction has ended: sent byte for byte at once, it would be
// taken for a retransmission of the original, which the registrar answers
// by repeating its response without processing the request again. It goes
// over the phone's own connection, so that only the digest replay check
// stands in its way (without the phone's LSC an attacker would not get
// past TLS).
func negReplayedRegister(ctx context.Context, r *registrar, p *sipPhone) error {
	p.mu.Lock()
	captured := p.lastRegister
	p.mu.Unlock()
	if captured == nil {
		return errors.New("replayed REGISTER: the phone has not registered")
	}
	ctx, cancel := withDefaultTimeout(ctx, sipTimeout)
	defer cancel()
	replay := captured.Clone()
	replay.RemoveHeader("Via")
	before := r.refusals().Replay
	res, err := p.client.Do(ctx, replay, sipgo.ClientRequestAddVia)
	if err != nil {
		return fmt.Errorf("replayed REGISTER: %w", err)
	}
	after := r.refusals().Replay
	switch {
	case res.StatusCode == sip.StatusOK:
		return errors.New("replayed REGISTER: accepted")
	case res.StatusCode != sip.StatusUnauthorized && res.StatusCode != sip.StatusForbidden:
		return fmt.Errorf("replayed REGISTER: answered %d %s, want 401 or 403", res.StatusCode, res.Reason)
	case after == before:
		return fmt.Errorf("replayed REGISTER: refused with %d, but not by the replay check", res.StatusCode)
	}
	return nil
}

// newUA makes a sipgo user agent logging to log. tlsConf, if not nil, is
// the configuration of the TLS connections it opens. Transactions end as
// soon as their connection closes, rather than when their timers run out.
func newUA(name string, log *slog.Logger, tlsConf *tls.Config) (*sipgo.UserAgent, error) {
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(name),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log),
			sip.WithTransactionLayerTerminateOnConnClose()),
	}
	if tlsConf != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(tlsConf))
	}
	return sipgo.NewUA(opts...)
}

// respond sends res, logging a failure.
func respond(log *slog.Logger, tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		log.Debug("sending a response", "status", res.StatusCode, "error", err)
	}
}

func reasonPhrase(status int) string {
	switch status {
	case sip.StatusBadRequest:
		return "Bad Request"
	case sip.StatusUnauthorized:
		return "Unauthorized"
	case sip.StatusForbidden:
		return "Forbidden"
	case sip.StatusNotFound:
		return "Not Found"
	case sip.StatusProxyAuthRequired:
		return "Proxy Authentication Required"
	case sip.StatusTemporarilyUnavailable:
		return "Temporarily Unavailable"
	case sip.StatusCallTransactionDoesNotExists:
		return "Call/Transaction Does Not Exist"
	case sip.StatusBusyHere:
		return "Busy Here"
	case sip.StatusNotAcceptableHere:
		return "Not Acceptable Here"
	case sip.StatusInternalServerError:
		return "Server Internal Error"
	}
	return "Error"
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

// headerValues returns the values of the headers with one of names
// (compared without regard to case), in order.
func headerValues(hs []sip.Header, names ...string) []string {
	var vs []string
	for _, h := range hs {
		for _, n := range names {
			if strings.EqualFold(h.Name(), n) {
				vs = append(vs, h.Value())
			}
		}
	}
	return vs
}

// withDefaultTimeout bounds ctx by d, or by its own deadline if that is
// earlier.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// newTag returns a random From/To tag.
func newTag() string { return randomHex(8) }

// newCallID returns a random Call-ID.
func newCallID() string { return randomHex(16) + "@phonesim" }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
