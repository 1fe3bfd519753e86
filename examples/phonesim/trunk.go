package main

// The simulated SIP trunk: a second SIP port of the controller, for one
// trunk peer, whose requests go through acl.Trunk with the trunk's
// security profile, as CUCM authorizes a SIP trunk (examples/sip-trunk-acl
// is the full program; this is the same wiring, smaller):
//
//   - the profile accepts none of the four request kinds, so an
//     out-of-dialog REFER is refused with 403 before any challenge, even
//     with valid credentials;
//   - it has digest authentication on: every other request needs the
//     trunk's credentials (401 with a challenge otherwise);
//   - an authorized INVITE is routed by the trunk's calling search space:
//     the trunk may reach only the controller's test number, which answers
//     (and declines the audio: the demonstration is about signalling);
//     other numbers get 404.
//
// trunkCheck plays the trunk peer and checks each of these answers.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ucsec/ucsec/acl"
	"github.com/ucsec/ucsec/digest"
)

const (
	trunkTestNumber = "8000"         // what the trunk may call: the controller's test number
	trunkUser       = "phonesim-sbc" // the trunk's digest user
)

// A trunkServer serves the simulated trunk's port.
type trunkServer struct {
	r      *registrar
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	ln     net.Listener
	addr   netip.AddrPort
	peer   netip.Addr // the configured trunk peer; requests from elsewhere are refused
	trunk  *acl.Trunk
	css    *acl.CallingSearchSpace
	secret string // the trunk user's password, made at start: only trunkCheck knows it
	wg     sync.WaitGroup

	mu      sync.Mutex
	dialogs map[string]string // answered calls: Call-ID → our To tag
}

func startTrunk(r *registrar) (*trunkServer, error) {
	t := &trunkServer{r: r, peer: netip.MustParseAddr("127.0.0.1"), secret: randomHex(16),
		dialogs: make(map[string]string)}
	store := &digest.MemoryStore{}
	store.AddPassword(trunkUser, r.cfg.Realm, t.secret)
	profile := &acl.TrunkProfile{Name: "phonesim-trunk-profile", DigestAuthentication: true,
		NonceValidity: r.cfg.NonceValidity}
	if err := profile.Validate(); err != nil {
		return nil, err
	}
	t.trunk = &acl.Trunk{Profile: profile,
		Digest: &digest.Server{Realm: r.cfg.Realm, Credentials: store, NonceValidity: profile.NonceValidity}}
	part, err := acl.NewPartition("phonesim-trunk-test", trunkTestNumber)
	if err != nil {
		return nil, err
	}
	t.css = &acl.CallingSearchSpace{Name: "phonesim-trunk", Partitions: []*acl.Partition{part}}

	log := r.log.With("part", "trunk")
	if t.ua, err = newUA("ucsec-phonesim-trunk", log, nil); err != nil {
		return nil, err
	}
	if t.srv, err = sipgo.NewServer(t.ua, sipgo.WithServerLogger(log)); err != nil {
		_ = t.ua.Close()
		return nil, err
	}
	for _, m := range []sip.RequestMethod{sip.REFER, sip.NOTIFY, sip.SUBSCRIBE, sip.INVITE,
		sip.OPTIONS, sip.MESSAGE, sip.BYE, sip.ACK} {
		t.srv.OnRequest(m, t.serve)
	}
	if t.ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		_ = t.ua.Close()
		return nil, err
	}
	t.addr = t.ln.Addr().(*net.TCPAddr).AddrPort()
	t.wg.Go(func() { _ = t.srv.ServeTCP(t.ln) })
	return t, nil
}

func (t *trunkServer) close() {
	_ = t.ln.Close()
	t.wg.Wait()
	_ = t.ua.Close()
}

// serve authorizes a request from the trunk and answers it.
func (t *trunkServer) serve(req *sip.Request, tx sip.ServerTransaction) {
	log := t.r.log.With("part", "trunk")
	answer := func(status int) {
		if !req.IsAck() {
			respond(log, tx, sip.NewResponseFromRequest(req, status, reasonPhrase(status), nil))
		}
	}
	if src, err := netip.ParseAddrPort(req.Source()); err != nil || src.Addr().Unmap() != t.peer {
		answer(sip.StatusForbidden) // not the trunk's peer
		return
	}
	ar, tagged, ok := t.aclRequest(req)
	if !ok {
		answer(sip.StatusBadRequest)
		return
	}
	dr := digestRequest(req)
	d, err := t.trunk.Authorize(t.r.ctx, &ar, &dr)
	if err != nil {
		answer(sip.StatusInternalServerError)
		return
	}
	log.Debug("trunk request", "method", ar.Method, "class", d.Class.String(), "verdict", d.Verdict.String(),
		"row", d.Row, "user", d.User, "reason", d.Reason)
	switch d.Verdict {
	case acl.Allow:
	case acl.Challenge:
		res := sip.NewResponseFromRequest(req, d.Status, reasonPhrase(d.Status), nil)
		for _, v := range d.Challenges {
			res.AppendHeader(sip.NewHeader(d.Header, v))
		}
		respond(log, tx, res)
		return
	case acl.Forbid:
		answer(sip.StatusForbidden)
		return
	default:
		answer(sip.StatusBadRequest)
		return
	}
	switch {
	case req.IsAck():
	case tagged && !ar.InDialog:
		// A To tag that names no dialog of ours (acl.Request.InDialog).
		answer(sip.StatusCallTransactionDoesNotExists)
	case req.Method == sip.BYE:
		t.mu.Lock()
		delete(t.dialogs, req.CallID().Value())
		t.mu.Unlock()
		answer(sip.StatusOK)
	case req.Method == sip.INVITE && ar.InDialog:
		answer(sip.StatusNotAcceptableHere) // no re-INVITEs
	case req.Method == sip.INVITE:
		t.invite(req, tx)
	case req.Method == sip.REFER:
		answer(sip.StatusAccepted) // only if a profile accepted it; this one does not
	default:
		answer(sip.StatusOK)
	}
}

// invite routes an authorized INVITE by the trunk's calling search space.
// The test number answers and declines the offered audio stream (port 0),
// which keeps the SDP exchange valid without media.
func (t *trunkServer) invite(req *sip.Request, tx sip.ServerTransaction) {
	log := t.r.log.With("part", "trunk")
	if _, ok := t.css.Match(req.Recipient.User); !ok {
		respond(log, tx, sip.NewResponseFromRequest(req, sip.StatusNotFound, reasonPhrase(sip.StatusNotFound), nil))
		return
	}
	offer, err := parseSDP(req.Body())
	if err != nil {
		respond(log, tx, sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, reasonPhrase(sip.StatusNotAcceptableHere), nil))
		return
	}
	declined := sdpMedia{Addr: netip.AddrPortFrom(t.addr.Addr(), 0), Profile: offer.Profile}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", declined.marshal(1))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: trunkTestNumber,
		Host: t.addr.Addr().String(), Port: int(t.addr.Port()), UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}}})
	tag, _ := res.To().Params.Get("tag")
	t.mu.Lock()
	t.dialogs[req.CallID().Value()] = tag
	t.mu.Unlock()
	respond(log, tx, res)
}

// aclRequest takes from req what acl classifies, reading headers in full
// and compact form, as examples/sip-trunk-acl does. InDialog is set only
// for a To tag that names a call the trunk answered; tagged reports any To
// tag. ok is false for a REFER with several Refer-To headers.
func (t *trunkServer) aclRequest(req *sip.Request) (ar acl.Request, tagged, ok bool) {
	hs := req.Headers()
	ar = acl.Request{
		Method:   req.Method.String(),
		Event:    strings.Join(headerValues(hs, "Event", "o"), ", "),
		Replaces: len(headerValues(hs, "Replaces")) > 0,
	}
	if req.Method == sip.REFER {
		referTos := headerValues(hs, "Refer-To", "r")
		if len(referTos) > 1 {
			return ar, false, false
		}
		if len(referTos) == 1 {
			ar.ReferTo = referTos[0]
		}
	}
	if to := req.To(); to != nil {
		var tag string
		for _, kv := range to.Params {
			if strings.EqualFold(strings.TrimSpace(kv.K), "tag") {
				tag, tagged = kv.V, true
			}
		}
		if tagged && req.CallID() != nil {
			t.mu.Lock()
			ours, held := t.dialogs[req.CallID().Value()]
			t.mu.Unlock()
			ar.InDialog = held && ours == tag
		}
	}
	return ar, tagged, true
}

// trunkCheck plays the trunk's peer against the controller's trunk port
// and checks that the trunk's ACL behaves: an out-of-dialog REFER is
// refused (403) with and without credentials, an INVITE without
// credentials is challenged (401), with them it is answered (200, then
// ACK and an authorized BYE), and an INVITE to a number outside the
// trunk's calling search space gets 404. It returns nil if every answer
// was the expected one.
func (r *registrar) trunkCheck(ctx context.Context) error {
	t := r.trunk
	ctx, cancel := withDefaultTimeout(ctx, 4*sipTimeout)
	defer cancel()
	ua, err := newUA("ucsec-phonesim-trunk-peer", r.log.With("part", "trunk-peer"), nil)
	if err != nil {
		return err
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(r.log))
	if err != nil {
		return err
	}
	peer := &trunkPeer{client: client, server: t.addr,
		digest: &digest.Client{Credentials: []digest.ClientCredential{{Realm: r.cfg.Realm, Username: trunkUser, Password: t.secret}}}}
	var errs []error
	expect := func(step string, res *sip.Response, err error, want int) *sip.Response {
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("trunk: %s: %w", step, err))
			return nil
		case res.StatusCode != want:
			errs = append(errs, fmt.Errorf("trunk: %s: answered %d %s, want %d", step, res.StatusCode, res.Reason, want))
			return nil
		}
		return res
	}

	refer := peer.outOfDialog(sip.REFER, "1001", nil)
	refer.AppendHeader(sip.NewHeader("Refer-To", "<sip:1002@127.0.0.1>"))
	res, err := client.Do(ctx, refer)
	expect("out-of-dialog REFER", res, err, sip.StatusForbidden)

	d := peer.dialog(trunkTestNumber)
	offer := sdpMedia{Addr: netip.MustParseAddrPort("127.0.0.1:4000"), Profile: profileRTP}
	body := offer.marshal(1)
	inv := d.request(sip.INVITE, body)
	res, err = client.Do(ctx, inv)
	if res = expect("INVITE without credentials", res, err, sip.StatusUnauthorized); res != nil {
		auth, aerr := peer.digest.Authorize(headerValues(res.Headers(), "WWW-Authenticate"), "INVITE", inv.Recipient.String(), body)
		if aerr != nil {
			errs = append(errs, fmt.Errorf("trunk: answering the challenge: %w", aerr))
		} else {
			inv = d.request(sip.INVITE, body)
			inv.AppendHeader(sip.NewHeader("Authorization", auth))
			res, err = client.Do(ctx, inv)
			if res = expect("INVITE with credentials", res, err, sip.StatusOK); res != nil {
				d.answered(res)
				if err := client.WriteRequest(d.request(sip.ACK, nil)); err != nil {
					errs = append(errs, fmt.Errorf("trunk: ACK: %w", err))
				}
				bye := d.request(sip.BYE, nil)
				peer.authorize(bye)
				res, err = client.Do(ctx, bye)
				expect("BYE", res, err, sip.StatusOK)
			}
		}
	}

	refer = peer.outOfDialog(sip.REFER, "1001", nil)
	refer.AppendHeader(sip.NewHeader("Refer-To", "<sip:1002@127.0.0.1>"))
	peer.authorize(refer)
	res, err = client.Do(ctx, refer)
	expect("out-of-dialog REFER with credentials", res, err, sip.StatusForbidden)

	inv = peer.dialog("5555").request(sip.INVITE, body)
	peer.authorize(inv)
	res, err = client.Do(ctx, inv)
	expect("INVITE outside the calling search space", res, err, sip.StatusNotFound)
	return errors.Join(errs...)
}

// A trunkPeer is the far end of the simulated trunk, an SBC say.
type trunkPeer struct {
	client *sipgo.Client
	server netip.AddrPort
	digest *digest.Client
}

func (p *trunkPeer) dialog(number string) *dialog {
	host := p.server.Addr().String()
	return &dialog{
		callID:    newCallID(),
		localURI:  sip.Uri{Scheme: "sip", User: "sbc", Host: host},
		remoteURI: sip.Uri{Scheme: "sip", User: number, Host: host},
		localTag:  newTag(),
		target: sip.Uri{Scheme: "sip", User: number, Host: host, Port: int(p.server.Port()),
			UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}},
		transport: "TCP",
		contact:   &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "sbc", Host: "127.0.0.1"}},
	}
}

// outOfDialog builds a request outside any dialog.
func (p *trunkPeer) outOfDialog(method sip.RequestMethod, number string, body []byte) *sip.Request {
	return p.dialog(number).request(method, body)
}

// authorize adds credentials from the last challenge, with the next nonce
// count, if there was one.
func (p *trunkPeer) authorize(req *sip.Request) {
	if auth, err := p.digest.Reauthorize(p.digest.Credentials[0].Realm, req.Method.String(), req.Recipient.String(), req.Body()); err == nil {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
}
