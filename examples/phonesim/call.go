package main

// Calls: the controller as a back-to-back user agent between two phones,
// the phones' side of a call, and placeCall, which runs one call from the
// first INVITE to the last BYE.
//
// A call goes:
//
//	A → CCM   INVITE 1002 (SDP offer: A's RTP port, its SDES keys), with
//	          digest credentials (the nonce of A's registration, next count)
//	CCM       authenticates A (its connection and its digest user), then
//	          authorizes the number with A's calling search space
//	CCM → B   INVITE (its own dialog; A's offer, with the keys only if both
//	          legs are TLS; Call-Info security= Unknown; orientation= from)
//	B → CCM   200 OK (SDP answer: B's port, B's key for what B sends)
//	CCM → B   ACK, then UPDATE with Call-Info: the call's security status,
//	          computed with secstatus from both devices and the media
//	CCM → A   200 OK (B's answer, Call-Info with the same status); A ACKs
//	A ↔ B     RTP or SRTP over UDP, straight between the phones
//	A → CCM   BYE; CCM → B BYE
//
// Call-Info travels as CUCM sends it (Cisco Unified Communications Manager
// SIP Line Messaging Guide): in the 200 OK to the calling phone and, since
// an ACK cannot carry it, in an UPDATE to the called one.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ucsec/ucsec/secstatus"
	"github.com/ucsec/ucsec/srtpkeys"
)

// A dialog is one end's view of a SIP dialog, enough to send requests in
// it: its Call-ID, tags, URIs and the peer's Contact.
type dialog struct {
	callID              string
	localURI, remoteURI sip.Uri
	localTag, remoteTag string
	target              sip.Uri // the peer's Contact: the Request-URI of requests in the dialog
	// dest, if set, is where requests go (host:port) whatever the
	// target says: the controller sends a phone's requests over the
	// connection the phone registered on.
	dest      string
	transport string
	contact   *sip.ContactHeader // ours

	mu         sync.Mutex
	cseq       uint32 // the last CSeq this end sent
	inviteCSeq uint32 // the CSeq of the INVITE, for its ACK
}

// request builds a request in the dialog with the next CSeq (for ACK, the
// INVITE's). sipgo adds the Via when sending.
func (d *dialog) request(method sip.RequestMethod, body []byte) *sip.Request {
	d.mu.Lock()
	var cseq uint32
	switch method {
	case sip.ACK:
		cseq = d.inviteCSeq
	default:
		d.cseq++
		cseq = d.cseq
		if method == sip.INVITE {
			d.inviteCSeq = cseq
		}
	}
	remoteTag := d.remoteTag
	target := d.target
	d.mu.Unlock()

	req := sip.NewRequest(method, target)
	req.AppendHeader(&sip.FromHeader{Address: d.localURI, Params: sip.HeaderParams{{K: "tag", V: d.localTag}}})
	to := &sip.ToHeader{Address: d.remoteURI}
	if remoteTag != "" {
		to.Params = sip.HeaderParams{{K: "tag", V: remoteTag}}
	}
	req.AppendHeader(to)
	callID := sip.CallIDHeader(d.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	if d.contact != nil && (method == sip.INVITE || method == sip.UPDATE) {
		req.AppendHeader(sip.HeaderClone(d.contact))
	}
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	req.SetTransport(d.transport)
	if d.dest != "" {
		req.SetDestination(d.dest)
	}
	return req
}

// answered records the peer's tag and Contact from a 2xx to our INVITE.
func (d *dialog) answered(res *sip.Response) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if to := res.To(); to != nil {
		d.remoteTag, _ = to.Params.Get("tag")
	}
	if c := res.Contact(); c != nil {
		d.target = c.Address
	}
}

// matches reports whether req belongs to the dialog as seen from this end
// (Call-ID, and the tags: the peer's in From, ours in To).
func (d *dialog) matches(req *sip.Request) bool {
	if req.CallID() == nil || req.CallID().Value() != d.callID || req.From() == nil || req.To() == nil {
		return false
	}
	from, _ := req.From().Params.Get("tag")
	to, _ := req.To().Params.Get("tag")
	d.mu.Lock()
	defer d.mu.Unlock()
	return from == d.remoteTag && to == d.localTag
}

// A phoneCall is a phone's side of a call.
type phoneCall struct {
	dialog   *dialog
	peer     string // the other party's number
	outgoing bool
	media    *mediaLeg

	mu        sync.Mutex
	level     secstatus.Level // from the controller's Call-Info
	icon      secstatus.Icon  // what the phone shows
	iconKnown chan struct{}   // closed once the controller told the status
	ended     chan struct{}   // closed when the call is over
	endOnce   sync.Once
}

func newPhoneCall(d *dialog, peer string, outgoing bool, m *mediaLeg) *phoneCall {
	return &phoneCall{dialog: d, peer: peer, outgoing: outgoing, media: m,
		iconKnown: make(chan struct{}), ended: make(chan struct{})}
}

// show records the status the controller sent and the icon the phone
// shows for it. A phone that can show both icons (secstatus.ShieldAndLock)
// shows the lock for Encrypted, the shield for Authenticated, nothing
// otherwise.
func (c *phoneCall) show(ci secstatus.CallInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.level = ci.Security
	c.icon = secstatus.LevelIcon(ci.Security, secstatus.ShieldAndLock)
	select {
	case <-c.iconKnown: // told before: this is an update
	default:
		close(c.iconKnown)
	}
}

// shown returns the call's status and the icon the phone shows.
func (c *phoneCall) shown() (secstatus.Level, secstatus.Icon) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.level, c.icon
}

// end marks the call over and closes its media socket.
func (c *phoneCall) end() {
	c.endOnce.Do(func() {
		close(c.ended)
		_ = c.media.conn.Close()
	})
}

// callEnded clears the phone's current call if it is c.
func (p *sipPhone) callEnded(c *phoneCall) {
	p.mu.Lock()
	if p.call == c {
		p.call = nil
	}
	p.mu.Unlock()
	c.end() // after: whoever waits for the end finds the phone idle
}

// errBusy is returned when a phone already in a call is asked to place
// another.
var errBusy = errors.New("phone busy: already in a call")

// invite calls ext: an INVITE to the controller with the phone's SDP
// offer (SDES keys for a secure phone), digest credentials, then the ACK.
// It returns the established call, showing the icon the controller's
// Call-Info dictates.
func (p *sipPhone) invite(ctx context.Context, ext string) (*phoneCall, error) {
	if !p.isRegistered() {
		return nil, fmt.Errorf("phone %s: not registered", p.id.Device)
	}
	ctx, cancel := withDefaultTimeout(ctx, sipTimeout)
	defer cancel()
	conn, err := openMedia()
	if err != nil {
		return nil, err
	}
	call := newPhoneCall(nil, ext, true, &mediaLeg{conn: conn})
	p.mu.Lock()
	if p.call != nil {
		p.mu.Unlock()
		_ = conn.Close()
		return nil, errBusy
	}
	p.call = call
	p.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			p.callEnded(call)
		}
	}()

	offer := sdpMedia{Addr: localAddr(conn), Profile: profileRTP}
	var keys *srtpkeys.Offer
	if p.id.Secure {
		if keys, err = srtpkeys.NewOffer(nil, offerSuites...); err != nil {
			return nil, err
		}
		if offer.Crypto, err = keys.Attributes(); err != nil {
			return nil, err
		}
		offer.Profile = profileSRTP
	}
	body := offer.marshal(uint64(time.Now().UnixNano()))

	server := p.registrar()
	d := &dialog{
		callID:    newCallID(),
		localURI:  sip.Uri{Scheme: "sip", User: p.id.Extension, Host: server.Addr().String()},
		remoteURI: sip.Uri{Scheme: "sip", User: ext, Host: server.Addr().String()},
		localTag:  newTag(),
		target:    p.uri(ext, true),
		transport: p.transport,
		contact:   p.contact(nil),
	}
	call.dialog = d
	req := d.request(sip.INVITE, body)
	uri := req.Recipient.String()
	// Credentials up front, on the nonce of the registration with the
	// next nonce count, as phones do; a challenge is answered once.
	if auth, err := p.digest.Reauthorize(p.srv.Realm, "INVITE", uri, body); err == nil {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	res, err := p.client.Do(ctx, req)
	if err == nil && res.StatusCode == sip.StatusUnauthorized {
		var auth string
		if auth, err = p.digest.Authorize(headerValues(res.Headers(), "WWW-Authenticate"), "INVITE", uri, body); err == nil {
			req = d.request(sip.INVITE, body)
			req.AppendHeader(sip.NewHeader("Authorization", auth))
			res, err = p.client.Do(ctx, req)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("phone %s: INVITE %s: %w", p.id.Device, ext, err)
	}
	if !res.IsSuccess() {
		return nil, fmt.Errorf("phone %s: INVITE %s: %d %s", p.id.Device, ext, res.StatusCode, res.Reason)
	}
	d.answered(res)
	ack := d.request(sip.ACK, nil)
	if err := p.client.WriteRequest(ack); err != nil {
		return nil, fmt.Errorf("phone %s: ACK: %w", p.id.Device, err)
	}

	answer, err := parseSDP(res.Body())
	if err != nil {
		p.hangupQuietly(d)
		return nil, fmt.Errorf("phone %s: the answer: %w", p.id.Device, err)
	}
	call.media.remote = answer.Addr
	switch {
	case keys != nil && answer.secure():
		if len(answer.Crypto) != 1 {
			p.hangupQuietly(d)
			return nil, fmt.Errorf("phone %s: the answer has %d crypto attributes, want 1", p.id.Device, len(answer.Crypto))
		}
		if call.media.session, err = keys.Accept(answer.Crypto[0]); err != nil {
			p.hangupQuietly(d)
			return nil, fmt.Errorf("phone %s: the answer's keys: %w", p.id.Device, err)
		}
	case answer.secure():
		p.hangupQuietly(d)
		return nil, fmt.Errorf("phone %s: SRTP answered to an RTP offer", p.id.Device)
	default:
		// RTP: a secure phone falls back to it when the peer cannot do
		// SRTP (best effort), and shows no lock.
	}
	ci, _, err := secstatus.ParseCallInfo(headerValues(res.Headers(), "Call-Info")...)
	if err != nil {
		ci = secstatus.CallInfo{} // unreadable: Unknown, as a phone reads it
	}
	call.show(ci)
	ok = true
	return call, nil
}

// hangupQuietly sends BYE in d, for a call given up after its ACK.
func (p *sipPhone) hangupQuietly(d *dialog) {
	ctx, cancel := context.WithTimeout(context.Background(), sipTimeout)
	defer cancel()
	_, _ = p.client.Do(ctx, d.request(sip.BYE, nil))
}

// hangup ends c with a BYE.
func (p *sipPhone) hangup(ctx context.Context, c *phoneCall) error {
	defer p.callEnded(c)
	ctx, cancel := withDefaultTimeout(ctx, sipTimeout)
	defer cancel()
	res, err := p.client.Do(ctx, c.dialog.request(sip.BYE, nil))
	if err != nil {
		return fmt.Errorf("phone %s: BYE: %w", p.id.Device, err)
	}
	if res.StatusCode != sip.StatusOK {
		return fmt.Errorf("phone %s: BYE: %d %s", p.id.Device, res.StatusCode, res.Reason)
	}
	return nil
}

// fromController reports whether req came over the phone's connection to
// the registrar, the only party a phone takes requests from.
func (p *sipPhone) fromController(req *sip.Request) bool {
	return strings.EqualFold(req.Transport(), p.transport) && req.Source() == p.registrar().String()
}

// onInvite answers an incoming call: at once (auto-answer), with the
// phone's SDP answer: for a secure phone offered SRTP, a fresh key for
// what it sends (srtpkeys.Answer); otherwise RTP. A phone in a call is
// busy.
func (p *sipPhone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	refuse := func(status int) {
		respond(p.log, tx, sip.NewResponseFromRequest(req, status, reasonPhrase(status), nil))
	}
	if !p.fromController(req) {
		refuse(sip.StatusForbidden)
		return
	}
	if to := req.To(); to == nil || to.Params.Has("tag") || req.From() == nil || req.Contact() == nil {
		refuse(sip.StatusNotAcceptableHere) // no re-INVITEs here
		return
	}
	offer, err := parseSDP(req.Body())
	if err != nil {
		refuse(sip.StatusNotAcceptableHere)
		return
	}
	answer := sdpMedia{Profile: profileRTP}
	var session *srtpkeys.Session
	switch {
	case offer.Profile == profileSRTP && !p.id.Secure:
		refuse(sip.StatusNotAcceptableHere) // never sent to a non-secure phone
		return
	case offer.secure():
		crypto, s, err := srtpkeys.Answer(offer.Crypto, &srtpkeys.AnswerOptions{Suites: offerSuites})
		if err != nil {
			refuse(sip.StatusNotAcceptableHere)
			return
		}
		line, err := crypto.Attribute()
		if err != nil {
			refuse(sip.StatusInternalServerError)
			return
		}
		answer.Profile, answer.Crypto, session = profileSRTP, []string{line}, s
	}
	conn, err := openMedia()
	if err != nil {
		refuse(sip.StatusInternalServerError)
		return
	}
	answer.Addr = localAddr(conn)

	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", answer.marshal(uint64(time.Now().UnixNano())))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(p.contact(nil))
	localTag, _ := res.To().Params.Get("tag")
	remoteTag, _ := req.From().Params.Get("tag")
	d := &dialog{
		callID:    req.CallID().Value(),
		localURI:  req.To().Address,
		remoteURI: req.From().Address,
		localTag:  localTag,
		remoteTag: remoteTag,
		target:    req.Contact().Address,
		transport: p.transport,
		cseq:      1000,
	}
	call := newPhoneCall(d, req.From().Address.User, false,
		&mediaLeg{conn: conn, remote: offer.Addr, session: session})

	p.mu.Lock()
	if p.call != nil {
		p.mu.Unlock()
		_ = conn.Close()
		refuse(sip.StatusBusyHere)
		return
	}
	p.call = call
	p.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		p.callEnded(call)
		return
	}
	select {
	case p.ringing <- call:
	default: // nobody is waiting for it: the phone answered anyway
	}
}

// current returns the phone's call in progress if req belongs to it.
func (p *sipPhone) current(req *sip.Request) *phoneCall {
	p.mu.Lock()
	c := p.call
	p.mu.Unlock()
	if c == nil || c.dialog == nil || !c.dialog.matches(req) {
		return nil
	}
	return c
}

// onUpdate takes the controller's Call-Info for the call in progress: the
// status the called phone learns after its ACK.
func (p *sipPhone) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := p.current(req)
	if c == nil || !p.fromController(req) {
		respond(p.log, tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists,
			reasonPhrase(sip.StatusCallTransactionDoesNotExists), nil))
		return
	}
	ci, present, err := secstatus.ParseCallInfo(headerValues(req.Headers(), "Call-Info")...)
	if err == nil && present {
		c.show(ci)
	}
	respond(p.log, tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}

// onBye ends the call in progress.
func (p *sipPhone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := p.current(req)
	if c == nil || !p.fromController(req) {
		respond(p.log, tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists,
			reasonPhrase(sip.StatusCallTransactionDoesNotExists), nil))
		return
	}
	respond(p.log, tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	p.callEnded(c)
}

// A callReport says how one call went.
type callReport struct {
	Caller    string `json:"caller"` // device names
	Callee    string `json:"callee"`
	CallerExt string `json:"callerExtension"`
	CalleeExt string `json:"calleeExtension"`
	// SRTP is true when the media was keyed with SDES and sent as SRTP;
	// Suite is the negotiated suite then.
	SRTP  bool   `json:"srtp"`
	Suite string `json:"suite,omitempty"`
	// Level is the call's status as the controller sent it; the icons
	// are what each phone shows for it.
	Level      secstatus.Level `json:"level"`
	CallerIcon secstatus.Icon  `json:"callerIcon"`
	CalleeIcon secstatus.Icon  `json:"calleeIcon"`
	// AtoB is what the caller sent and the callee received intact; BtoA
	// the reverse.
	AtoB  streamResult  `json:"callerToCallee"`
	BtoA  streamResult  `json:"calleeToCaller"`
	Setup time.Duration `json:"setup"` // from the INVITE to both phones knowing their icon
	Total time.Duration `json:"total"` // to the end of the BYE
	Err   string        `json:"error,omitempty"`
}

// mediaOK reports whether every packet arrived intact both ways.
func (r *callReport) mediaOK() bool {
	return r.AtoB.ok(callPackets) && r.BtoA.ok(callPackets)
}

// placeCall has phone a call phone b through the controller, exchange
// callPackets packets each way, and hang up. Both phones must be
// registered and idle. The report is filled as far as the call got, also
// when the error is not nil; a call that completes without a lock (a
// non-secure phone in it) is not an error.
func placeCall(ctx context.Context, a, b *sipPhone) (rep *callReport, err error) {
	rep = &callReport{Caller: a.id.Device, Callee: b.id.Device, CallerExt: a.id.Extension, CalleeExt: b.id.Extension}
	defer func() {
		if err != nil {
			rep.Err = err.Error()
		}
	}()
	ctx, cancel := withDefaultTimeout(ctx, 4*sipTimeout)
	defer cancel()
	start := time.Now()
	// A stale notice of an earlier call must not pass for this one.
	select {
	case <-b.ringing:
	default:
	}

	ac, err := a.invite(ctx, b.id.Extension)
	if err != nil {
		return rep, err
	}
	defer a.callEnded(ac)
	var bc *phoneCall
	select {
	case bc = <-b.ringing:
	case <-ctx.Done():
		return rep, fmt.Errorf("phone %s did not ring: %w", b.id.Device, ctx.Err())
	}
	if bc.peer != a.id.Extension {
		return rep, fmt.Errorf("phone %s rang for %s, not %s", b.id.Device, bc.peer, a.id.Extension)
	}
	select {
	case <-bc.iconKnown:
	case <-ctx.Done():
		return rep, fmt.Errorf("phone %s was not told the call's status: %w", b.id.Device, ctx.Err())
	}
	rep.Setup = time.Since(start)
	rep.Level, rep.CallerIcon = ac.shown()
	_, rep.CalleeIcon = bc.shown()
	if s := ac.media.session; s != nil {
		rep.SRTP, rep.Suite = true, s.Suite.String()
	}

	var merr error
	rep.AtoB, rep.BtoA, merr = exchangeMedia(ctx, ac.media, bc.media, callPackets)
	if merr == nil && !rep.mediaOK() {
		merr = fmt.Errorf("media: %d/%d packets arrived intact %s→%s, %d/%d back",
			rep.AtoB.Received, callPackets, rep.CallerExt, rep.CalleeExt, rep.BtoA.Received, callPackets)
	}

	herr := a.hangup(ctx, ac)
	if herr == nil {
		select {
		case <-bc.ended:
		case <-ctx.Done():
			herr = fmt.Errorf("phone %s was not hung up: %w", b.id.Device, ctx.Err())
		}
	}
	rep.Total = time.Since(start)
	return rep, errors.Join(merr, herr)
}

// A b2bCall is a call the controller holds between two phones: the A leg
// (the caller's dialog, where the controller is the UAS) and the B leg
// (its own dialog with the callee, where it is the UAC). Each leg is held
// by the registrar its phone registered with, which sends the leg's
// requests over the phone's connection: aNode and bNode are the same
// registrar for two phones of one node, and two nodes' registrars for a
// call across nodes (see directory).
type b2bCall struct {
	gci          string
	a, b         registration
	aNode, bNode *registrar
	aLeg         *dialog
	bLeg         *dialog
	result       *secstatus.Result
}

// controllerContact is the controller's Contact for a leg over transport.
func (r *registrar) controllerContact(transport string) *sip.ContactHeader {
	ap := r.tcpAddr
	if transport == "TLS" {
		ap = r.tlsAddr
	}
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "ccm", Host: ap.Addr().String(), Port: int(ap.Port()),
		UriParams: sip.HeaderParams{{K: "transport", V: strings.ToLower(transport)}}}}
}

// device describes a registered phone to secstatus.
func device(reg registration, srtp bool) secstatus.Device {
	mode := secstatus.ModeNonSecure
	if reg.Secure {
		mode = secstatus.ModeEncrypted
	}
	return secstatus.Device{Name: reg.Line.Device, Mode: mode, Display: secstatus.ShieldAndLock, AudioSRTP: srtp}
}

// locate finds the registration of the phone with directory number ext:
// with this registrar, or else with another node's (through the
// directory), and returns the registrar that holds it.
func (r *registrar) locate(ext string) (*registrar, registration, bool) {
	if reg, ok := r.byExtension(ext); ok {
		return r, reg, true
	}
	if r.cfg.Directory != nil {
		return r.cfg.Directory.locate(ext, r)
	}
	return nil, registration{}, false
}

// onInvite sets up a call from a registered phone to another:
// authentication (the sender's registration on this connection, and
// digest credentials of its line), authorization (the number in the
// calling search space), then the B leg, the security status and the
// answer. SDES keys go only from a TLS leg to a TLS leg: an offer with
// keys to or from a non-secure phone is passed on without them, and the
// call falls back to RTP.
//
// A callee registered with another node gets its B leg from that node's
// registrar (calleeLeg), to which this one hands the offer, as CUCM's
// nodes hand a call to each other; the answer comes back the same way,
// and this registrar, which holds the caller, computes the call's
// security status from both phones and the media, as for a call within
// the node, and has the other send it to the callee.
func (r *registrar) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	refuse := func(status int, why string) {
		r.log.Info("INVITE refused", "source", req.Source(), "number", req.Recipient.User, "status", status, "reason", why)
		respond(r.log, tx, sip.NewResponseFromRequest(req, status, reasonPhrase(status), nil))
	}
	if to := req.To(); to == nil || to.Params.Has("tag") {
		refuse(sip.StatusNotAcceptableHere, "re-INVITE (not supported here)")
		return
	}
	if req.From() == nil || req.Contact() == nil || req.CallID() == nil {
		refuse(sip.StatusBadRequest, "no From, Contact or Call-ID")
		return
	}
	caller, ok := r.sender(req)
	if !ok {
		refuse(sip.StatusForbidden, "not from a registered phone")
		return
	}
	dr := digestRequest(req)
	res, err := r.digest.Verify(r.ctx, &dr)
	if err != nil {
		r.challenge(req, tx, &dr, err)
		return
	}
	if res.Username != caller.Line.DigestUser {
		refuse(sip.StatusForbidden, "digest user "+res.Username+" is not the caller's line's")
		return
	}
	number := req.Recipient.User
	if _, ok := r.css.Match(number); !ok {
		refuse(sip.StatusNotFound, "number not in the calling search space")
		return
	}
	peer, callee, ok := r.locate(number)
	if !ok {
		refuse(sip.StatusTemporarilyUnavailable, "number not registered")
		return
	}
	if callee.Line.Device == caller.Line.Device {
		refuse(sip.StatusBusyHere, "calling itself")
		return
	}
	offer, err := parseSDP(req.Body())
	if err != nil {
		refuse(sip.StatusNotAcceptableHere, err.Error())
		return
	}
	respond(r.log, tx, sip.NewResponseFromRequest(req, sip.StatusTrying, "Trying", nil))

	ctx, cancel := context.WithTimeout(r.ctx, sipTimeout)
	defer cancel()
	call := &b2bCall{gci: "1-" + strconv.FormatUint(r.gci.Add(1), 10), a: caller, b: callee, aNode: r, bNode: peer}
	// The keys go on only from a TLS leg; the callee's registrar adds its
	// own condition.
	fwd := sdpMedia{Addr: offer.Addr, Profile: profileRTP}
	if offer.secure() && caller.Secure {
		fwd.Profile, fwd.Crypto = profileSRTP, offer.Crypto
	}
	keyed := fwd.secure() && callee.Secure
	answer, status, err := peer.calleeLeg(ctx, call, fwd, r.gci.Load())
	if err != nil {
		refuse(status, err.Error())
		return
	}
	if answer.secure() && !keyed {
		peer.bye(call.bLeg)
		refuse(sip.StatusNotAcceptableHere, "the called phone's answer: SRTP answered to an RTP offer")
		return
	}
	srtp := keyed && answer.secure()
	call.result, err = secstatus.Evaluate(&secstatus.Call{Devices: []secstatus.Device{device(caller, srtp), device(callee, srtp)}},
		&secstatus.Options{MixedMode: true})
	if err != nil {
		peer.bye(call.bLeg)
		refuse(sip.StatusInternalServerError, err.Error())
		return
	}
	level := call.result.Level

	// The called phone learns the status now that its dialog is
	// confirmed.
	peer.tellCallee(ctx, call, level)

	aAnswer := sdpMedia{Addr: answer.Addr, Profile: profileRTP}
	if srtp {
		aAnswer.Profile, aAnswer.Crypto = profileSRTP, answer.Crypto
	}
	ok200 := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", aAnswer.marshal(r.gci.Load()))
	ok200.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ok200.AppendHeader(r.controllerContact(caller.Transport))
	ok200.AppendHeader(sip.NewHeader("Call-Info", callInfo(level, "to", call.gci)))
	localTag, _ := ok200.To().Params.Get("tag")
	remoteTag, _ := req.From().Params.Get("tag")
	call.aLeg = &dialog{
		callID:    req.CallID().Value(),
		localURI:  req.To().Address,
		remoteURI: req.From().Address,
		localTag:  localTag,
		remoteTag: remoteTag,
		target:    req.Contact().Address,
		dest:      caller.Source,
		transport: caller.Transport,
		cseq:      1000,
	}
	r.mu.Lock()
	r.calls[call.aLeg.callID] = call
	r.mu.Unlock()
	peer.mu.Lock()
	peer.calls[call.bLeg.callID] = call
	peer.mu.Unlock()
	if err := tx.Respond(ok200); err != nil {
		call.drop()
		peer.bye(call.bLeg)
		return
	}
	r.log.Debug("call", "gci", call.gci, "from", caller.Line.Device, "to", callee.Line.Device,
		"srtp", srtp, "level", level.String(), "callee node", peer.cfg.Node)
}

// calleeLeg sets up the B leg of call to its callee, registered with r:
// an INVITE over the callee's connection with offer (its keys only if the
// callee registered over TLS; Call-Info security= Unknown), then the ACK.
// It returns the callee's answer, or an error with the status for the
// caller. version is the SDP session version.
func (r *registrar) calleeLeg(ctx context.Context, call *b2bCall, offer sdpMedia, version uint64) (*sdpMedia, int, error) {
	caller, callee := call.a, call.b
	bOffer := sdpMedia{Addr: offer.Addr, Profile: profileRTP}
	if offer.secure() && callee.Secure {
		bOffer.Profile, bOffer.Crypto = profileSRTP, offer.Crypto
	}
	call.bLeg = &dialog{
		callID:    newCallID(),
		localURI:  sip.Uri{Scheme: "sip", User: caller.Line.Extension, Host: "127.0.0.1"},
		remoteURI: sip.Uri{Scheme: "sip", User: callee.Line.Extension, Host: "127.0.0.1"},
		localTag:  newTag(),
		target:    callee.Contact,
		dest:      callee.Source,
		transport: callee.Transport,
		contact:   r.controllerContact(callee.Transport),
	}
	binv := call.bLeg.request(sip.INVITE, bOffer.marshal(version))
	binv.AppendHeader(sip.NewHeader("Call-Info",
		secstatus.CallInfo{Security: secstatus.Unknown, Orientation: "from", GCI: call.gci, CallInstance: 1}.String()))
	bres, err := r.client.Do(ctx, binv)
	if err != nil {
		return nil, sip.StatusTemporarilyUnavailable, fmt.Errorf("the called phone: %w", err)
	}
	if !bres.IsSuccess() {
		status := bres.StatusCode
		if status < 400 || status == sip.StatusUnauthorized || status == sip.StatusProxyAuthRequired {
			status = sip.StatusTemporarilyUnavailable
		}
		return nil, status, fmt.Errorf("the called phone answered %d", bres.StatusCode)
	}
	call.bLeg.answered(bres)
	if err := r.client.WriteRequest(call.bLeg.request(sip.ACK, nil)); err != nil {
		return nil, sip.StatusTemporarilyUnavailable, fmt.Errorf("ACK to the called phone: %w", err)
	}
	answer, err := parseSDP(bres.Body())
	if err == nil && answer.secure() && !bOffer.secure() {
		err = errors.New("SRTP answered to an RTP offer")
	}
	if err != nil {
		r.bye(call.bLeg)
		return nil, sip.StatusNotAcceptableHere, fmt.Errorf("the called phone's answer: %w", err)
	}
	return answer, 0, nil
}

// tellCallee sends the callee of call, registered with r, the call's
// security status in an UPDATE with Call-Info.
func (r *registrar) tellCallee(ctx context.Context, call *b2bCall, level secstatus.Level) {
	upd := call.bLeg.request(sip.UPDATE, nil)
	upd.AppendHeader(sip.NewHeader("Call-Info", callInfo(level, "from", call.gci)))
	if ures, err := r.client.Do(ctx, upd); err != nil || ures.StatusCode != sip.StatusOK {
		r.log.Info("UPDATE with Call-Info not accepted", "device", call.b.Line.Device, "error", err)
	}
}

// callInfo is the Call-Info header value for a call at level.
func callInfo(level secstatus.Level, orientation, gci string) string {
	return secstatus.CallInfo{Security: level, Orientation: orientation, UIState: "connected",
		GCI: gci, CallInstance: 1, Params: []secstatus.Param{{Name: "isVoip"}}}.String()
}

// bye ends a leg with a BYE, not waiting long for the answer.
func (r *registrar) bye(d *dialog) {
	ctx, cancel := context.WithTimeout(r.ctx, sipTimeout)
	defer cancel()
	if res, err := r.client.Do(ctx, d.request(sip.BYE, nil)); err != nil || res.StatusCode != sip.StatusOK {
		r.log.Debug("BYE not answered with 200", "call-id", d.callID, "error", err)
	}
}

// drop makes the registrars of both legs forget the call.
func (c *b2bCall) drop() {
	for _, leg := range []struct {
		r *registrar
		d *dialog
	}{{c.aNode, c.aLeg}, {c.bNode, c.bLeg}} {
		leg.r.mu.Lock()
		if leg.r.calls[leg.d.callID] == c {
			delete(leg.r.calls, leg.d.callID)
		}
		leg.r.mu.Unlock()
	}
}

// onBye ends a call from either phone: BYE on the other leg (sent by the
// registrar that holds it), then 200 OK. Only the phone of the leg may
// end it, over its registered connection.
func (r *registrar) onBye(req *sip.Request, tx sip.ServerTransaction) {
	var callID string
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	r.mu.Lock()
	call := r.calls[callID]
	r.mu.Unlock()
	var other *dialog
	var otherNode *registrar
	var from registration
	switch {
	case call == nil:
	case call.aNode == r && call.aLeg.matches(req):
		other, otherNode, from = call.bLeg, call.bNode, call.a
	case call.bNode == r && call.bLeg.matches(req):
		other, otherNode, from = call.aLeg, call.aNode, call.b
	}
	sender, registered := r.sender(req)
	if other == nil || !registered || sender.Line.Device != from.Line.Device {
		respond(r.log, tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists,
			reasonPhrase(sip.StatusCallTransactionDoesNotExists), nil))
		return
	}
	call.drop()
	otherNode.bye(other)
	respond(r.log, tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}

// activeCalls returns how many calls the controller holds a leg of.
func (r *registrar) activeCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := make(map[*b2bCall]bool, len(r.calls))
	for _, c := range r.calls {
		calls[c] = true
	}
	return len(calls)
}
