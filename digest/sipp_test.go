package digest

// Interop with a SIP client no one here wrote: SIPp (Debian's sip-tester
// package) registers with MD5 digest against a small UDP SIP server built
// on Server, over 127.0.0.1, with the scenarios in testdata/sipp. The
// server offers qop auth, auth and auth-int, or no
// qop at all; SIPp answers each, and a wrong password is refused.
//
// Replays. SIPp computes a fresh response (new cnonce, next nonce count)
// each time it answers a challenge with qop, so a SIPp scenario cannot
// replay a captured REGISTER by itself. The test therefore captures the
// authenticated REGISTER the server received from SIPp and, after SIPp has
// finished, sends it again from a Go UDP socket: byte for byte, and once
// more with a new Via branch and CSeq (what a replaying attacker does so
// that no transaction layer absorbs it as a retransmission). Both must be
// refused with a stale challenge (Verify returns ErrReplay: the nonce count
// was used); with the body altered as well, auth-int refuses it outright.
// Without qop SIPp does replay by itself: answering the same
// challenge again gives a byte-identical Authorization, which the
// register_noqop.xml scenario expects to be refused as stale.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ucsec/ucsec/internal/interop"
)

const (
	sippRealm    = "test.local"
	sippUser     = "alice"
	sippPassword = "s3cret"

	// sippMaxDatagram bounds the requests the test server reads; longer
	// datagrams are dropped.
	sippMaxDatagram = 8 << 10
)

// sipMessage is a SIP request or response, parsed just enough for the
// test server: the start line, the headers in order and the body.
type sipMessage struct {
	start   [3]string // method, Request-URI, version; or version, code, reason
	headers []sipHeader
	body    []byte
}

type sipHeader struct{ name, value string }

// parseSIP parses a SIP message from a datagram. Header names are matched
// without regard to case; folded lines are joined; compact header forms
// are not expanded (SIPp does not send them).
func parseSIP(b []byte) (*sipMessage, error) {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return nil, errors.New("no empty line after the headers")
	}
	lines := strings.Split(string(head), "\r\n")
	start := strings.SplitN(lines[0], " ", 3)
	if len(start) != 3 || (start[0] != "SIP/2.0" && start[2] != "SIP/2.0") {
		return nil, fmt.Errorf("bad start line %q", lines[0])
	}
	m := &sipMessage{start: [3]string(start)}
	for _, l := range lines[1:] {
		if l != "" && (l[0] == ' ' || l[0] == '\t') && len(m.headers) > 0 {
			m.headers[len(m.headers)-1].value += " " + strings.TrimSpace(l)
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("bad header line %q", l)
		}
		m.headers = append(m.headers, sipHeader{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	m.body = body
	if cl := m.get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(body) {
			return nil, fmt.Errorf("bad Content-Length %q for a %d-byte body", cl, len(body))
		}
		m.body = body[:n]
	}
	return m, nil
}

// all returns the values of every header called name.
func (m *sipMessage) all(name string) []string {
	var vs []string
	for _, h := range m.headers {
		if strings.EqualFold(h.name, name) {
			vs = append(vs, h.value)
		}
	}
	return vs
}

// get returns the value of the first header called name, or "".
func (m *sipMessage) get(name string) string {
	if vs := m.all(name); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

var sipReasons = map[int]string{200: "OK", 400: "Bad Request", 401: "Unauthorized",
	407: "Proxy Authentication Required", 500: "Server Internal Error", 501: "Not Implemented"}

// sipResponse builds the response to req: Via, From, To (with a tag),
// Call-ID and CSeq copied, then extra, and no body.
func sipResponse(req *sipMessage, status int, extra ...sipHeader) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", status, sipReasons[status])
	for _, v := range req.all("Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", v)
	}
	to := req.get("To")
	if !strings.Contains(strings.ToLower(to), ";tag=") {
		to += ";tag=ucsec-test"
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.get("From"), to, req.get("Call-ID"), req.get("CSeq"))
	for _, h := range extra {
		fmt.Fprintf(&b, "%s: %s\r\n", h.name, h.value)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// sipOutcome is what the test server did with one datagram.
type sipOutcome struct {
	datagram      []byte // as received
	cseq          string
	authorization []string     // the Authorization headers' values
	creds         *Credentials // the first of them, parsed; nil if none
	status        int          // of the response; 0 if none was sent
	result        Result       // from Verify, on success
	err           error        // from Verify, or why the datagram was not SIP
	challenges    []*Challenge // of the response
}

// sipUAS is a minimal UDP SIP registrar on 127.0.0.1: it answers REGISTER
// with 200 OK when Server.Verify accepts it and otherwise as Server.Answer
// says, statelessly (no transaction layer), and records what it did.
type sipUAS struct {
	auth *Server
	conn *net.UDPConn

	mu       sync.Mutex
	outcomes []sipOutcome
}

// startSipUAS starts a test server on an ephemeral port of 127.0.0.1. It
// stops when the test ends.
func startSipUAS(t *testing.T, auth *Server) *sipUAS {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	u := &sipUAS{auth: auth, conn: conn}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-done
	})
	return u
}

func (u *sipUAS) addr() netip.AddrPort { return u.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (u *sipUAS) serve(ctx context.Context) {
	buf := make([]byte, sippMaxDatagram+1)
	for ctx.Err() == nil {
		// The deadline only makes the loop look at ctx now and then;
		// closing the socket ends it at once.
		if err := u.conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			return
		}
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case err != nil, n > sippMaxDatagram:
			continue // a deadline, or a datagram too long to be ours
		}
		if resp := u.handle(ctx, slices.Clone(buf[:n]), from); resp != nil {
			_, _ = u.conn.WriteToUDPAddrPort(resp, from)
		}
	}
}

// handle answers one datagram, or returns nil for no answer.
func (u *sipUAS) handle(ctx context.Context, datagram []byte, from netip.AddrPort) []byte {
	o := sipOutcome{datagram: datagram}
	defer func() {
		u.mu.Lock()
		u.outcomes = append(u.outcomes, o)
		u.mu.Unlock()
	}()
	req, err := parseSIP(datagram)
	if err == nil && req.start[2] != "SIP/2.0" {
		err = errors.New("a response")
	}
	if err != nil {
		o.err = fmt.Errorf("not a SIP request: %w", err)
		return nil
	}
	o.cseq = req.get("CSeq")
	switch req.start[0] {
	case "ACK":
		return nil
	case "REGISTER":
	default:
		o.status = 501
		return sipResponse(req, o.status)
	}
	r := &Request{Method: req.start[0], URI: req.start[1], Body: req.body,
		Authorization: req.all("Authorization"), RemoteAddr: from.Addr()}
	o.authorization = r.Authorization
	if len(r.Authorization) > 0 {
		o.creds, _ = ParseCredentials(r.Authorization[0])
	}
	o.result, o.err = u.auth.Verify(ctx, r)
	if o.err == nil {
		o.status = 200
		return sipResponse(req, o.status)
	}
	a, err := u.auth.Answer(r, o.err)
	if err != nil {
		o.err = fmt.Errorf("%w; answer: %w", o.err, err)
	}
	o.status = a.Status
	var extra []sipHeader
	for _, v := range a.Values {
		extra = append(extra, sipHeader{a.Header, v})
		if chs, err := ParseChallenges(v); err == nil {
			o.challenges = append(o.challenges, chs...)
		}
	}
	return sipResponse(req, o.status, extra...)
}

// results returns a copy of the outcomes so far.
func (u *sipUAS) results() []sipOutcome {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.outcomes)
}

// runSipp runs one call of scenario (a file of testdata/sipp) against the
// server at addr. Retransmissions are off: this stateless server would
// refuse them as replays.
func runSipp(t *testing.T, scenario string, addr netip.AddrPort) {
	t.Helper()
	interop.RunSIPp(t, filepath.Join("testdata", "sipp", scenario), addr.String(), "-nr")
}

// sippSend sends datagram to addr from a new socket and returns the
// response.
func sippSend(t *testing.T, addr netip.AddrPort, datagram []byte) *sipMessage {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write(datagram)
	require.NoError(t, err)
	buf := make([]byte, sippMaxDatagram)
	n, err := c.Read(buf)
	require.NoError(t, err)
	resp, err := parseSIP(buf[:n])
	require.NoError(t, err)
	return resp
}

// sippStep is what the server should have done with one REGISTER.
type sippStep struct {
	status int
	err    error  // Verify's error; nil for 200
	qop    string // of the credentials (and the Result)
	nc     uint32 // of the credentials
	creds  bool   // the REGISTER carries credentials
}

func sippOK(qop string, nc uint32) sippStep {
	return sippStep{status: 200, qop: qop, nc: nc, creds: true}
}

var sippChallenge = sippStep{status: 401, err: ErrNoCredentials}

// sippCheckSteps compares the server's outcomes with want.
func sippCheckSteps(t *testing.T, got []sipOutcome, want []sippStep) {
	t.Helper()
	require.Len(t, got, len(want), "REGISTERs the server received")
	for i, w := range want {
		g := got[i]
		assert.Equal(t, w.status, g.status, "request %d (CSeq %s): status", i+1, g.cseq)
		if w.err == nil {
			assert.NoError(t, g.err, "request %d", i+1)
			assert.Equal(t, Result{Username: sippUser, Algorithm: MD5, QOP: w.qop}, g.result, "request %d", i+1)
		} else {
			assert.ErrorIs(t, g.err, w.err, "request %d", i+1)
			stale := errors.Is(w.err, ErrReplay) || errors.Is(w.err, ErrStale)
			if assert.Len(t, g.challenges, 1, "request %d", i+1) {
				assert.Equal(t, stale, g.challenges[0].Stale, "request %d: stale", i+1)
			}
		}
		if !w.creds {
			assert.Nil(t, g.creds, "request %d: credentials", i+1)
			continue
		}
		if assert.NotNil(t, g.creds, "request %d: credentials", i+1) {
			assert.Equal(t, sippUser, g.creds.Username, "request %d", i+1)
			assert.Equal(t, w.qop, g.creds.QOP, "request %d: qop", i+1)
			assert.Equal(t, w.nc, g.creds.NC, "request %d: nc", i+1)
		}
	}
}

// sippCheckReplays resends captured, an authenticated REGISTER the server
// accepted, byte for byte and with a new branch and CSeq, and checks that
// both are refused as replays (ErrReplay) with a stale challenge. If
// bodyErr is set, it also resends it with its body altered and checks that
// it is refused with bodyErr: ErrUnauthorized when qop=auth-int covers the
// body, ErrReplay otherwise.
func sippCheckReplays(t *testing.T, u *sipUAS, captured sipOutcome, bodyErr error) {
	t.Helper()
	require.Equal(t, 200, captured.status, "the captured REGISTER was accepted")
	type replay struct {
		name     string
		datagram []byte
		err      error
	}
	alter := func(b []byte, old, new string) []byte {
		out := bytes.Replace(b, []byte(old), []byte(new), 1)
		require.NotEqual(t, b, out, "%q not found", old)
		return out
	}
	replays := []replay{
		{"byte for byte", captured.datagram, ErrReplay},
		{"new branch and CSeq", alter(alter(captured.datagram, ";branch=", ";branch=z9hG4bK-replayed-"),
			"CSeq: "+captured.cseq, "CSeq: 99 REGISTER"), ErrReplay},
	}
	if bodyErr != nil {
		replays = append(replays, replay{"body altered", alter(captured.datagram, "\r\n\r\nbody of", "\r\n\r\nBODY OF"), bodyErr})
	}

	for _, r := range replays {
		n := len(u.results())
		resp := sippSend(t, u.addr(), r.datagram)
		assert.Equal(t, "401", resp.start[1], "%s: answered with %q", r.name, resp.start)
		vs := resp.all("WWW-Authenticate")
		require.Len(t, vs, 1, r.name)
		chs, err := ParseChallenges(vs[0])
		require.NoError(t, err, r.name)
		require.Len(t, chs, 1, r.name)
		assert.Equal(t, errors.Is(r.err, ErrReplay), chs[0].Stale, "%s: stale", r.name)

		got := u.results()
		require.Len(t, got, n+1, r.name)
		assert.ErrorIs(t, got[n].err, r.err, r.name)
		assert.Zero(t, got[n].result, r.name)
	}
}

func sippServer(qop []string, omitQOP bool) *Server {
	store := &MemoryStore{}
	store.AddPassword(sippUser, sippRealm, sippPassword)
	return &Server{Realm: sippRealm, Credentials: store, QOP: qop, OmitQOP: omitQOP, Opaque: "op4que"}
}

// TestSIPp registers with SIPp, a SIP client no one here wrote.
func TestSIPp(t *testing.T) {
	interop.SIPp(t)

	for _, tc := range []struct {
		name string
		qop  []string // offered
		want string   // what SIPp answers with
	}{
		{"auth", nil, "auth"},
		{"auth and auth-int", []string{"auth", "auth-int"}, "auth-int"}, // SIPp prefers auth-int
		{"auth-int", []string{"auth-int"}, "auth-int"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := startSipUAS(t, sippServer(tc.qop, false))
			runSipp(t, "register.xml", u.addr())
			got := u.results()
			sippCheckSteps(t, got, []sippStep{sippChallenge, sippOK(tc.want, 1), sippOK(tc.want, 2)})
			bodyErr := ErrReplay // the body is not covered: only the count is wrong
			if tc.want == "auth-int" {
				bodyErr = ErrUnauthorized
			}
			sippCheckReplays(t, u, got[1], bodyErr)
		})
	}

	t.Run("no qop", func(t *testing.T) {
		u := startSipUAS(t, sippServer(nil, true))
		runSipp(t, "register_noqop.xml", u.addr())
		got := u.results()
		sippCheckSteps(t, got, []sippStep{
			sippChallenge,
			sippOK("", 0),
			{status: 401, err: ErrReplay, creds: true}, // the nonce again: single use without qop
			sippOK("", 0), // the stale challenge's fresh nonce
		})
		require.Len(t, got, 4)
		assert.Equal(t, got[1].authorization, got[2].authorization, "SIPp sent the same Authorization again")
		sippCheckReplays(t, u, got[3], nil)
	})

	t.Run("wrong password", func(t *testing.T) {
		u := startSipUAS(t, sippServer(nil, false))
		runSipp(t, "register_wrong.xml", u.addr())
		sippCheckSteps(t, u.results(), []sippStep{sippChallenge, {status: 401, err: ErrUnauthorized, qop: "auth", nc: 1, creds: true}})
	})
}

// The test server's parser: header names in any case, repeated headers in
// order, folded lines, and the body cut at Content-Length.
func TestParseSIP(t *testing.T) {
	m, err := parseSIP([]byte("REGISTER sip:127.0.0.1:5070 SIP/2.0\r\n" +
		"via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n" +
		"AUTHORIZATION: Digest username=\"alice\",\r\n realm=\"other\"\r\n" +
		"Authorization: Digest username=\"alice\", realm=\"test.local\"\r\n" +
		"content-length: 2\r\n\r\nhi-and-more"))
	require.NoError(t, err)
	assert.Equal(t, [3]string{"REGISTER", "sip:127.0.0.1:5070", "SIP/2.0"}, m.start)
	assert.Equal(t, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1", m.get("Via"))
	assert.Equal(t, []string{`Digest username="alice", realm="other"`, `Digest username="alice", realm="test.local"`},
		m.all("Authorization"))
	assert.Equal(t, "hi", string(m.body))

	for _, bad := range []string{
		"REGISTER sip:a SIP/2.0\r\nVia: x\r\n",                  // no empty line
		"REGISTER sip:a HTTP/1.1\r\n\r\n",                       // not SIP
		"REGISTER sip:a SIP/2.0\r\nno colon\r\n\r\n",            // bad header
		"REGISTER sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\nhi", // body too short
		"REGISTER sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n",  // negative length
	} {
		_, err := parseSIP([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}
