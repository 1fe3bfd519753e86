package main

// The phone's SIP user agent: it connects to the registrar (a secure
// phone over TLS with its LSC, accepting the server by its trust list),
// registers with digest credentials, and places and answers calls (the
// call handlers are in call.go). When its node is lost it registers with
// the next node of its configuration (keepalive).
//
// Phones speak TLS 1.2, as Cisco phones do (the registrar accepts 1.2 and
// later). It also makes a refused phone certificate fail the phone's own
// handshake: in TLS 1.3 a client completes its handshake before the
// server has checked its certificate, and learns of the refusal only when
// it next reads.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ucsec/ucsec/digest"
)

// A sipPhone is a simulated phone's SIP user agent: it registers, places
// and answers calls (one at a time), and shows each call's security icon.
// Make one with newSIPPhone.
type sipPhone struct {
	id        sipIdentity
	srv       sipServer
	log       *slog.Logger
	transport string // "TLS" or "TCP"
	// nodes are the registrar addresses of the phone's nodes for its
	// transport, in the order it tries them: the server it was made
	// with first, then the others of its configuration (SIPServers).
	nodes  []netip.AddrPort
	ua     *sipgo.UserAgent
	client *sipgo.Client
	uas    *sipgo.Server
	digest *digest.Client

	mu           sync.Mutex
	server       netip.AddrPort // the registrar it registers with: nodes[active]
	active       int
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
	p.nodes = []netip.AddrPort{p.server}
	for _, s := range id.SIPServers {
		if ap, err := netip.ParseAddrPort(s); err == nil && !slices.Contains(p.nodes, ap) {
			p.nodes = append(p.nodes, ap)
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

// registrar returns the address of the registrar the phone registers
// with.
func (p *sipPhone) registrar() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.server
}

// uri returns a SIP URI at the registrar, with the phone's transport.
func (p *sipPhone) uri(user string, withPort bool) sip.Uri {
	server := p.registrar()
	u := sip.Uri{Scheme: "sip", User: user, Host: server.Addr().String(),
		UriParams: sip.HeaderParams{{K: "transport", V: strings.ToLower(p.transport)}}}
	if withPort {
		u.Port = int(server.Port())
	}
	return u
}

// keepalive refreshes the phone's registration, as a phone does every
// keepalive interval (CUCM's SIP Station KeepAlive Interval, 120 s by
// default), and reports whether the phone moved to another node. If the
// refresh fails (the node is gone: the phone's connection was closed,
// and a new one is refused; or the transaction fails), the phone has lost
// its node, and registers with the next node of its list, in order,
// until one accepts it, which is its node from then on.
func (p *sipPhone) keepalive(ctx context.Context) (moved bool, err error) {
	lost := p.register(ctx)
	if lost == nil {
		return false, nil
	}
	p.mu.Lock()
	from, n := p.active, len(p.nodes)
	p.mu.Unlock()
	p.log.Info("node lost", "registrar", p.registrar(), "error", lost)
	errs := []error{lost}
	for k := 1; k < n; k++ {
		next := (from + k) % n
		p.mu.Lock()
		p.active, p.server = next, p.nodes[next]
		// A new registration: another registrar, another Call-ID.
		p.registered, p.regCallID, p.local = false, newCallID(), ""
		p.mu.Unlock()
		if err := p.register(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		p.log.Info("failed over", "registrar", p.nodes[next])
		return true, nil
	}
	return false, fmt.Errorf("phone %s: lost its node, and no other took it: %w", p.id.Device, errors.Join(errs...))
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

// negReplayedRegister demonstrates that the registrar r refuses a
// replayed REGISTER: it sends p's last accepted REGISTER again,
// Authorization included, as an attacker who captured it would, and
// returns nil if r refused it (401 or 403) through its digest replay
// check. p must have registered, with r or with another node's registrar
// of the cluster: the registrars of a cluster share their nonce key, so r
// finds the nonce its own, and only the shared replay store knows that
// its count was used.
//
// The copy goes in a transaction of its own, with a new Via branch (which
// the digest response does not cover), as a replay sent after the
// original transaction has ended: sent byte for byte at once, it would be
// taken for a retransmission of the original, which the registrar answers
// by repeating its response without processing the request again. It goes
// over the phone's own connection to r (a new one, if p registered with
// another registrar), so that only the digest replay check stands in its
// way (without the phone's LSC an attacker would not get past TLS).
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
	client := p.client
	target := r.server().TCP
	if p.transport == "TLS" {
		target = r.server().TLS
	}
	if target != p.registrar() {
		// To another node: the Request-URI, which the digest response
		// covers, still names the node the phone registered with.
		q, err := newSIPPhone(p.id, r.server(), nil)
		if err != nil {
			return err
		}
		defer q.Close()
		client = q.client
		replay.SetDestination(target.String())
	}
	before := r.refusals().Replay
	res, err := client.Do(ctx, replay, sipgo.ClientRequestAddVia)
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
