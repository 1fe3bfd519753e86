// Command sip-trunk-acl is a small SIP server that authorizes the requests
// of one SIP trunk as a CUCM SIP trunk security profile does: it shows how
// to drive the acl and digest packages from a SIP stack (emiago/sipgo).
//
// Every request goes through acl.Trunk.Authorize, and the decision becomes
// the answer:
//
//   - a request of a kind the profile does not accept (an out-of-dialog
//     REFER without -accept-refer, an unsolicited NOTIFY without
//     -accept-notify, a presence SUBSCRIBE without -accept-presence, any
//     Replaces without -accept-replaces) gets 403 Forbidden, without a
//     challenge;
//   - with -digest (the default), a request without valid credentials
//     gets 401 with one WWW-Authenticate header per challenge: one per
//     algorithm of -algorithms (MD5 alone by default), in that order of
//     preference (RFC 8760); malformed credentials get 400;
//   - with -app-level, the authenticated user must also be the
//     application user and accept the request's kinds (-app-accept);
//   - an allowed request of a method this example does not serve (any but
//     INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY and
//     REFER: REGISTER, UPDATE, PUBLISH …) gets 405 Method Not Allowed
//     with an Allow header that lists those nine. With -digest that comes
//     after authentication: an unauthenticated peer gets the challenge,
//     not the list;
//   - an allowed request of a served method gets a minimal answer: 202
//     Accepted for REFER, 486 Busy Here for INVITE (this example places
//     no calls), 481 for requests inside a dialog, BYE and CANCEL (it
//     keeps no dialogs), and 200 OK for the others. It does nothing else:
//     no NOTIFY follows a REFER or SUBSCRIBE.
//
// Why a request was refused is logged (log/slog, on stderr), never sent
// to the peer.
//
// Run it on the loopback interface (the default), accepting out-of-dialog
// REFER with digest authentication:
//
//	go run ./examples/sip-trunk-acl -accept-refer
//
// and send it a REFER that is challenged, then accepted, with SIPp:
//
//	sipp -sf examples/sip-trunk-acl/testdata/refer_auth.xml \
//	    -au trunkapp -ap test-only-password \
//	    -i 127.0.0.1 -p 5070 -ci 127.0.0.1 -m 1 127.0.0.1:5060
//
// The other scenarios in testdata: refer_forbidden.xml expects the 403
// given without -accept-refer; notify_auth.xml and notify_forbidden.xml do
// the same with a message-waiting NOTIFY and -accept-notify;
// refer_auth_forbidden.xml expects 401, then 403 from application level
// authorization (-accept-refer -app-level -app-accept notify). For TCP,
// add -t t1 to SIPp and -transport tcp (or both) here. The user and
// password defaults are test values: do not use them elsewhere.
//
// To offer SHA-256 with MD5 as a fallback, give -algorithms SHA-256,MD5:
// RFC 8760 clients take SHA-256, and a client that knows only MD5 must
// look past the first challenge for the MD5 one. Not all do: SIPp 3.6.1
// as Debian packages it answers only the first challenge, and only with
// MD5, so give it -algorithms MD5,SHA-256 (a client that takes the
// strongest algorithm offered, as digest.Client does, still uses SHA-256).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ucsec/ucsec/acl"
	"github.com/ucsec/ucsec/digest"
)

// Test credentials, so that the example runs without configuration. They
// are public: never use them outside a test.
const (
	testUser     = "trunkapp"
	testPassword = "test-only-password"
)

// config is what the flags set.
type config struct {
	listen    string // host:port; port 0 picks a free one
	transport string // "udp", "tcp" or "both"
	realm     string
	user      string // the digest user, also the application user
	password  string
	profile   acl.TrunkProfile
	appAccept acl.Accept // the application user's flags, used with -app-level
	// algorithms are the digest algorithms offered, one challenge each,
	// most preferred first; never empty.
	algorithms []digest.Algorithm

	log *slog.Logger // nil means slog.Default()
	// onDecision, if set, is called with every decision before the answer
	// is sent; the tests record them.
	onDecision func(method string, d acl.Decision)
}

// parseFlags reads the command line into a config.
func parseFlags(args []string, out io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("sip-trunk-acl", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:5060", "address to listen on (`host:port`; port 0 picks one)")
	fs.StringVar(&cfg.transport, "transport", "udp", "`transport`: udp, tcp or both (on one port)")
	fs.StringVar(&cfg.realm, "realm", "ucsec.test", "digest realm")
	fs.StringVar(&cfg.user, "user", testUser, "digest user name, also the application user (TEST default)")
	fs.StringVar(&cfg.password, "password", testPassword, "the user's password (TEST default)")
	fs.StringVar(&cfg.profile.Name, "profile", "example-trunk-profile", "trunk security profile name, for logs")
	fs.BoolVar(&cfg.profile.Accept.OutOfDialogRefer, "accept-refer", false, "accept out-of-dialog REFER")
	fs.BoolVar(&cfg.profile.Accept.UnsolicitedNotification, "accept-notify", false, "accept unsolicited NOTIFY")
	fs.BoolVar(&cfg.profile.Accept.PresenceSubscription, "accept-presence", false, "accept presence SUBSCRIBE")
	fs.BoolVar(&cfg.profile.Accept.ReplacesHeader, "accept-replaces", false, "accept Replaces")
	fs.BoolVar(&cfg.profile.DigestAuthentication, "digest", true, "enable digest authentication")
	fs.DurationVar(&cfg.profile.NonceValidity, "nonce-validity", digest.DefaultNonceValidity, "digest nonce validity")
	fs.BoolVar(&cfg.profile.ApplicationLevelAuthorization, "app-level", false, "enable application level authorization (needs -digest)")
	appAccept := fs.String("app-accept", "refer,notify,presence,replaces",
		"comma-separated kinds the application user accepts, with -app-level: refer, notify, presence, replaces")
	algorithms := fs.String("algorithms", "MD5",
		"comma-separated digest `algorithms` to offer, one challenge each, most preferred first (RFC 8760): "+
			"MD5, SHA-256, SHA-512-256 or their -sess forms")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if cfg.appAccept, err = parseAccept(*appAccept); err != nil {
		return config{}, err
	}
	if cfg.algorithms, err = parseAlgorithms(*algorithms); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// parseAlgorithms reads a comma-separated list of digest algorithms, in
// order of preference. Names are matched without regard to case; each may
// appear once, since RFC 8760 wants the challenges of one realm to differ
// in algorithm.
func parseAlgorithms(s string) ([]digest.Algorithm, error) {
	var algs []digest.Algorithm
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		a := digest.ParseAlgorithm(name)
		switch {
		case !a.Supported():
			return nil, fmt.Errorf("unknown digest algorithm %q (want MD5, SHA-256, SHA-512-256 or their -sess forms)", name)
		case slices.Contains(algs, a):
			return nil, fmt.Errorf("digest algorithm %s given twice", a)
		}
		algs = append(algs, a)
	}
	if len(algs) == 0 {
		return nil, errors.New("no digest algorithm (-algorithms)")
	}
	return algs, nil
}

// parseAccept reads a comma-separated list of request kinds.
func parseAccept(s string) (acl.Accept, error) {
	var a acl.Accept
	for _, kind := range strings.Split(s, ",") {
		switch strings.TrimSpace(kind) {
		case "":
		case "refer":
			a.OutOfDialogRefer = true
		case "notify":
			a.UnsolicitedNotification = true
		case "presence":
			a.PresenceSubscription = true
		case "replaces":
			a.ReplacesHeader = true
		default:
			return acl.Accept{}, fmt.Errorf("unknown request kind %q (want refer, notify, presence or replaces)", kind)
		}
	}
	return a, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "sip-trunk-acl:", err)
		os.Exit(2)
	}
	if err := serve(cfg); err != nil {
		slog.Error("sip-trunk-acl", "error", err)
		os.Exit(1)
	}
}

// serve runs the server until SIGINT or SIGTERM.
func serve(cfg config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.password == testPassword {
		slog.Warn("using the built-in TEST password; set -password for anything but a test")
	}
	err := run(ctx, cfg, func(addrs ...net.Addr) {
		for _, a := range addrs {
			slog.Info("listening", "network", a.Network(), "addr", a.String())
		}
	})
	if err == nil {
		slog.Info("stopped")
	}
	return err
}

// methods are the requests the server serves, in the order of its Allow
// header. The others go through the same checks and, if allowed, get 405
// Method Not Allowed (see answer).
var methods = []sip.RequestMethod{sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE,
	sip.OPTIONS, sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER}

// allowList is the Allow header value of a 405 and of the 200 to
// OPTIONS: the methods served (RFC 3261 §20.5).
var allowList = func() string {
	names := make([]string, len(methods))
	for i, m := range methods {
		names[i] = m.String()
	}
	return strings.Join(names, ", ")
}()

// serves reports whether the server serves method.
func serves(method sip.RequestMethod) bool { return slices.Contains(methods, method) }

// run serves SIP on cfg.listen until ctx is done, then stops listening,
// waits for the requests being handled and returns. It calls ready with
// the bound addresses (UDP first) once the server listens.
func run(ctx context.Context, cfg config, ready func(addrs ...net.Addr)) error {
	if err := cfg.profile.Validate(); err != nil {
		return err
	}
	if cfg.profile.DigestAuthentication && (cfg.realm == "" || cfg.user == "") {
		return errors.New("digest authentication needs -realm and -user")
	}
	log := cfg.log
	if log == nil {
		log = slog.Default()
	}

	store := &digest.MemoryStore{}
	store.AddPassword(cfg.user, cfg.realm, cfg.password)
	h := &handler{
		ctx: ctx,
		log: log,
		trunk: &acl.Trunk{
			Profile: &cfg.profile,
			Digest: &digest.Server{Realm: cfg.realm, Credentials: store,
				NonceValidity: cfg.profile.NonceValidity, Algorithms: cfg.algorithms},
			Users: acl.UserMap{cfg.user: {Name: cfg.user, Accept: cfg.appAccept}},
		},
		onDecision: cfg.onDecision,
	}

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("ucsec-sip-trunk-acl"))
	if err != nil {
		return err
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		return err
	}
	for _, m := range methods {
		srv.OnRequest(m, h.serve)
	}
	// sipgo would answer the other methods itself, with a 405 that has no
	// Allow header and comes before authentication; h.serve answers them
	// instead.
	srv.OnNoRoute(h.serve)

	ls, err := listen(cfg.listen, cfg.transport)
	if err != nil {
		return err
	}
	addrs := make([]net.Addr, len(ls))
	for i, l := range ls {
		addrs[i] = l.addr
	}
	if ready != nil {
		ready(addrs...)
	}

	// The listeners are created here rather than by srv.ListenAndServe
	// so that port 0 works and the bound ports are known before serving.
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			var err error
			if pc, ok := l.conn.(net.PacketConn); ok {
				err = srv.ServeUDP(pc) // nil once the socket is closed
			} else {
				err = srv.ServeTCP(l.conn.(net.Listener))
			}
			errc <- listenerStopped(l.addr, err)
		}()
	}

	var stopErr error
	pending := len(ls)
	select {
	case <-ctx.Done():
	case stopErr = <-errc: // a listener failed before we closed it
		pending--
	}
	for _, l := range ls {
		_ = l.conn.Close() // what ends Serve*; an error only repeats one
	}
	for ; pending > 0; pending-- {
		<-errc // errors after Close are expected
	}
	// Requests read before the listeners closed may still be in their
	// handlers; ua.Close (deferred) then ends the transactions and TCP
	// connections.
	h.shutdown()
	return stopErr
}

// listener is a UDP socket (a net.PacketConn) or a TCP net.Listener.
type listener struct {
	conn io.Closer
	addr net.Addr
}

// listen opens the sockets for transport on addr. With "both" and port 0,
// TCP listens on the port UDP got, as SIP servers use one port for both.
func listen(addr, transport string) (ls []listener, err error) {
	defer func() {
		if err != nil {
			for _, l := range ls {
				l.conn.Close()
			}
			ls = nil
		}
	}()
	if transport == "udp" || transport == "both" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return ls, err
		}
		ls = append(ls, listener{pc, pc.LocalAddr()})
		addr = pc.LocalAddr().String()
	}
	if transport == "tcp" || transport == "both" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return ls, err
		}
		ls = append(ls, listener{ln, ln.Addr()})
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("unknown transport %q (want udp, tcp or both)", transport)
	}
	return ls, nil
}

// listenerStopped explains why a Serve call returned.
func listenerStopped(addr net.Addr, err error) error {
	if err == nil {
		err = errors.New("stopped")
	}
	return fmt.Errorf("serving %s %s: %w", addr.Network(), addr, err)
}

// handler answers requests with the trunk's decisions.
type handler struct {
	ctx        context.Context
	log        *slog.Logger
	trunk      *acl.Trunk
	onDecision func(method string, d acl.Decision)

	// sipgo runs each request's handler in its own goroutine; these let
	// shutdown wait for them.
	mu      sync.Mutex
	closing bool
	active  sync.WaitGroup
}

// enter registers a running handler, unless the server is shutting down.
func (h *handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.active.Add(1)
	return true
}

// shutdown waits for the running handlers and turns new ones away.
func (h *handler) shutdown() {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.active.Wait()
}

func (h *handler) serve(req *sip.Request, tx sip.ServerTransaction) {
	if !h.enter() {
		return // shutting down: the peer retransmits or times out
	}
	defer h.active.Done()

	ar, ok := aclRequest(req)
	if !ok {
		h.log.Info("sip request refused", "method", ar.Method, "source", req.Source(), "reason", "more than one Refer-To")
		h.respond(req, tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	dr := digestRequest(req)
	d, err := h.trunk.Authorize(h.ctx, &ar, &dr)
	if err != nil {
		h.log.Error("authorizing a request", "method", ar.Method, "source", req.Source(), "error", err)
		h.respond(req, tx, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
		return
	}
	if h.onDecision != nil {
		h.onDecision(ar.Method, d)
	}
	if req.IsAck() {
		return // an ACK is never answered
	}
	res := answer(req, &ar, d)
	// d.Reason may name the profile, the user and what was checked: it is
	// for the logs only.
	h.log.Info("sip request", "method", ar.Method, "transport", req.Transport(), "source", req.Source(),
		"class", d.Class.String(), "verdict", d.Verdict.String(), "row", d.Row, "user", d.User,
		"status", res.StatusCode, "reason", d.Reason)
	h.respond(req, tx, res)
}

func (h *handler) respond(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		h.log.Warn("sending a response", "method", req.Method.String(), "status", res.StatusCode, "error", err)
	}
}

// answer builds the response to req for decision d.
//
// A method this server does not serve is refused only once the trunk
// allowed the request: after the profile's 403 and, with digest, after
// authentication. RFC 3261 §8.2 has a UAS start with authentication, then
// inspect the method (§8.2.1: "once a request is authenticated (or
// authentication is skipped)"), and this keeps the list of methods in the
// Allow header, which RFC 3261 §8.2.1 and §21.4.6 require in a 405, from
// unauthenticated peers: they get the challenge, whatever the method.
func answer(req *sip.Request, ar *acl.Request, d acl.Decision) *sip.Response {
	switch d.Verdict {
	case acl.Allow:
		if !serves(req.Method) {
			res := sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil)
			res.AppendHeader(sip.NewHeader("Allow", allowList))
			return res
		}
		return allowed(req, ar)
	case acl.Challenge:
		res := sip.NewResponseFromRequest(req, d.Status, reasonPhrase(d.Status), nil)
		for _, v := range d.Challenges {
			res.AppendHeader(sip.NewHeader(d.Header, v)) // one header per challenge
		}
		return res
	case acl.Forbid:
		return sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
	case acl.Reject:
		return sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil)
	}
	return sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil)
}

// allowed is the answer to an authorized request: the least a real UAS
// would say, since this example does nothing with the requests.
func allowed(req *sip.Request, ar *acl.Request) *sip.Response {
	switch {
	case ar.InDialog, req.Method == sip.BYE, req.Method == sip.CANCEL:
		// This server keeps no dialogs and finishes every INVITE
		// transaction at once, so these name something that does not
		// exist (RFC 3261 §12.2.2, §9.2). Answering 481 also matters for
		// security: a To tag is the peer's claim, and it takes a request
		// out of the out-of-dialog classes; a real server must check that
		// the dialog exists before it trusts InDialog.
		return sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil)
	case req.Method == sip.REFER:
		return sip.NewResponseFromRequest(req, sip.StatusAccepted, "Accepted", nil)
	case req.Method == sip.INVITE:
		return sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil)
	case req.Method == sip.SUBSCRIBE:
		// Accepted and over at once: this example sends no NOTIFY.
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.NewHeader("Expires", "0"))
		return res
	case req.Method == sip.OPTIONS:
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", allowList))
		return res
	}
	return sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
}

func reasonPhrase(status int) string {
	switch status {
	case sip.StatusUnauthorized:
		return "Unauthorized"
	case sip.StatusProxyAuthRequired:
		return "Proxy Authentication Required"
	}
	return "Error"
}

// aclRequest takes from req what acl.Trunk.Authorize classifies. It
// reports false for a REFER with more than one Refer-To (RFC 3515 allows
// exactly one), which must be refused rather than classified by one of
// them.
func aclRequest(req *sip.Request) (acl.Request, bool) {
	r := acl.Request{
		Method: req.Method.String(),
		// sipgo expands the compact forms of only some headers (t for To,
		// but not o for Event or r for Refer-To): a peer could otherwise
		// hide a presence SUBSCRIBE or a Replaces from the classifier.
		// Every Event value counts, not just the first.
		Event:    strings.Join(headerValues(req, "Event", "o"), ", "),
		Replaces: len(headerValues(req, "Replaces")) > 0,
	}
	if req.Method == sip.REFER {
		referTos := headerValues(req, "Refer-To", "r")
		if len(referTos) > 1 {
			return r, false
		}
		if len(referTos) == 1 {
			r.ReferTo = referTo(referTos[0])
		}
	}
	if to := req.To(); to != nil {
		r.InDialog = hasParam(to.Params, "tag")
	}
	return r, true
}

// headerValues returns the values of every header with one of names
// (compared without regard to case), in order.
func headerValues(req *sip.Request, names ...string) []string {
	var vs []string
	for _, h := range req.Headers() {
		for _, n := range names {
			if strings.EqualFold(h.Name(), n) {
				vs = append(vs, h.Value())
			}
		}
	}
	return vs
}

// referTo returns a Refer-To URI as sipgo writes it back, "<uri>",
// without a display name or parameters: acl finds a Replaces in the URI by
// scanning the text, which a display name such as "a<b>" misleads.
func referTo(v string) string {
	var uri sip.Uri
	var params sip.HeaderParams
	if _, err := sip.ParseAddressValue(v, &uri, &params); err != nil {
		return v // acl makes what it can of it
	}
	return "<" + uri.String() + ">"
}

// hasParam reports whether params has name. Parameter names are
// case-insensitive (RFC 3261 §7.3.1), but sipgo's HeaderParams.Has
// compares them exactly, so ";TAG=x" would go unnoticed.
func hasParam(params sip.HeaderParams, name string) bool {
	for _, kv := range params {
		if strings.EqualFold(strings.TrimSpace(kv.K), name) {
			return true
		}
	}
	return false
}

// digestRequest takes from req what digest verification needs.
//
// The Request-URI must be the string the client put in the digest uri
// parameter. sipgo keeps only the parsed URI; Recipient.String() writes it
// back, which gives the same string for the usual URIs (SIPp's
// sip:127.0.0.1:5060 included; see TestDigestURI) but not for all. An
// upper-case scheme (SIP:) or a port with leading zeros comes back
// normalized, and such a client is refused (401 again). Repeated or empty
// URI parameters and headers are merged (sip:u@h;a=b;a=c becomes
// sip:u@h;a=c), so credentials made for one such string are accepted for
// the other: harmless here, since the nonce count still stops replays, but
// a server that routes on those parameters should compare the raw
// Request-URI, which sipgo does not keep.
func digestRequest(req *sip.Request) digest.Request {
	r := digest.Request{
		Method: req.Method.String(),
		URI:    req.Recipient.String(),
		Body:   req.Body(),
	}
	for _, h := range req.GetHeaders("Authorization") {
		r.Authorization = append(r.Authorization, h.Value())
	}
	// Source is the transport's peer address (ip:port), not the Via.
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		r.RemoteAddr = ap.Addr().Unmap()
	}
	return r
}
