package main

// The example server, started in-process on an ephemeral port of
// 127.0.0.1, against SIPp (Debian's sip-tester package) with the
// scenarios in testdata, over UDP and TCP: an out-of-dialog REFER and an
// unsolicited NOTIFY are refused with 403 (no challenge) when the trunk
// profile does not accept them, and challenged, then accepted when it
// does. Besides SIPp's verdict, the tests check the decisions the server
// made and that their reasons stayed out of the responses. A few cases
// SIPp cannot send (a forged To tag, compact headers, malformed
// credentials) are sent from a Go UDP socket.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/interop"

	"github.com/ucsec/ucsec/acl"
	"github.com/ucsec/ucsec/digest"
)

// decision is what the tests check of an acl.Decision.
type decision struct {
	Method  string
	Verdict acl.Verdict
	Status  int // 0 for Allow
	Row     int // of the decision table in the acl package documentation
	User    string
}

// testServer is the example server running in-process.
type testServer struct {
	addrs map[string]net.Addr // by network: "udp", "tcp"

	mu        sync.Mutex
	decisions []acl.Decision
	methods   []string
	log       bytes.Buffer
}

func (s *testServer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(p)
}

// got returns the decisions so far.
func (s *testServer) got() ([]decision, []acl.Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ds []decision
	for i, d := range s.decisions {
		ds = append(ds, decision{s.methods[i], d.Verdict, d.Status, d.Row, d.User})
	}
	return ds, slices.Clone(s.decisions)
}

func (s *testServer) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// startServer runs the example with the command-line flags args (plus
// -listen 127.0.0.1:0) until the test ends, and checks that it then
// stops cleanly. The server's log is shown if the test fails.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-listen", "127.0.0.1:0"}, args...), io.Discard)
	require.NoError(t, err)
	s := &testServer{addrs: map[string]net.Addr{}}
	cfg.log = slog.New(slog.NewTextHandler(s, nil))
	cfg.onDecision = func(method string, d acl.Decision) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.methods = append(s.methods, method)
		s.decisions = append(s.decisions, d)
	}

	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, func(addrs ...net.Addr) {
			for _, a := range addrs {
				s.addrs[a.Network()] = a
			}
			close(ready)
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "run")
		case <-time.After(10 * time.Second):
			t.Error("the server did not stop within 10 s")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs())
		}
	})
	return s
}

// runSipp runs one call of scenario (a file of testdata) over transport
// ("udp" or "tcp") against addr, with the example's test credentials for
// challenges, and returns SIPp's message log.
func runSipp(t *testing.T, scenario, transport string, addr net.Addr) string {
	t.Helper()
	mode := map[string]string{"udp": "u1", "tcp": "t1"}[transport]
	require.NotEmpty(t, mode, "transport %q", transport)
	return interop.RunSIPp(t, filepath.Join("testdata", scenario), addr.String(),
		"-t", mode, "-au", testUser, "-ap", testPassword)
}

var (
	// The first request of a challenged scenario, without credentials.
	challenged = func(method string) decision { return decision{method, acl.Challenge, 401, 4, ""} }
	// An accepted kind, authenticated, without application level
	// authorization.
	authenticated = func(method string) decision { return decision{method, acl.Allow, 0, 10, testUser} }
	// A kind the trunk profile does not accept.
	notAccepted = func(method string) decision { return decision{method, acl.Forbid, 403, 2, ""} }
)

// TestSIPp sends SIPp's REFER and NOTIFY to the example server.
func TestSIPp(t *testing.T) {
	interop.SIPp(t)

	type testCase struct {
		name     string
		flags    []string
		scenario string
		want     []decision
	}
	var cases []testCase
	for _, tr := range []string{"udp", "tcp"} {
		cases = append(cases,
			testCase{"REFER refused without accept-refer/" + tr, nil, "refer_forbidden.xml",
				[]decision{notAccepted("REFER")}},
			testCase{"REFER challenged, then accepted with accept-refer/" + tr, []string{"-accept-refer"}, "refer_auth.xml",
				[]decision{challenged("REFER"), authenticated("REFER")}},
			testCase{"NOTIFY refused without accept-notify/" + tr, nil, "notify_forbidden.xml",
				[]decision{notAccepted("NOTIFY")}},
			testCase{"NOTIFY challenged, then accepted with accept-notify/" + tr, []string{"-accept-notify"}, "notify_auth.xml",
				[]decision{challenged("NOTIFY"), authenticated("NOTIFY")}},
		)
	}
	cases = append(cases, testCase{"REFER challenged, then refused by the application user/udp",
		[]string{"-accept-refer", "-app-level", "-app-accept", "notify"}, "refer_auth_forbidden.xml",
		[]decision{challenged("REFER"), {"REFER", acl.Forbid, 403, 12, testUser}}},
		// SIPp 3.6.1 answers the first challenge only, and only with MD5:
		// a second challenge after it must not disturb it.
		testCase{"REFER challenged for MD5 and SHA-256, then accepted/udp",
			[]string{"-accept-refer", "-algorithms", "MD5,SHA-256"}, "refer_auth.xml",
			[]decision{challenged("REFER"), authenticated("REFER")}})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			transport := tc.name[strings.LastIndexByte(tc.name, '/')+1:]
			s := startServer(t, append(tc.flags, "-transport", transport)...)
			msgs := runSipp(t, tc.scenario, transport, s.addrs[transport])

			got, full := s.got()
			assert.Equal(t, tc.want, got, "the server's decisions")
			for _, d := range full {
				require.NotEmpty(t, d.Reason)
				assert.NotContains(t, msgs, d.Reason, "the reason went to the peer")
				assert.Contains(t, s.logs(), "reason="+strconv.Quote(d.Reason), "the reason is logged")
			}
		})
	}
}

// sipRequest writes a request from a UDP client at from, with extra
// header lines.
func sipRequest(method, ruri string, from net.Addr, cseq int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK-test-%d-%d\r\n", from, cseq, time.Now().UnixNano())
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:trunkapp@%s>;tag=test\r\n", from)
	fmt.Fprintf(&b, "Call-ID: test-%d@127.0.0.1\r\nCSeq: %d %s\r\n", time.Now().UnixNano(), cseq, method)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// exchange sends a request over UDP from c to addr and returns the
// response.
func exchange(t *testing.T, c *net.UDPConn, addr net.Addr, req string) *sip.Response {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := c.WriteTo([]byte(req), addr)
	require.NoError(t, err)
	buf := make([]byte, 8<<10)
	for {
		n, err := c.Read(buf)
		require.NoError(t, err, "no response to\n%s", req)
		msg, err := sip.ParseMessage(buf[:n])
		require.NoError(t, err)
		res, ok := msg.(*sip.Response)
		require.True(t, ok, "not a response: %s", buf[:n])
		if res.StatusCode >= 200 { // skip a 100 Trying
			return res
		}
	}
}

// Requests SIPp cannot send easily, from a Go UDP socket.
func TestRequests(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   []string
		method  string
		headers []string
		status  int
		want    decision
	}{{
		// acl takes a To tag as proof of a dialog, so a forged one
		// takes a REFER out of the out-of-dialog class: acl allows it
		// even though the profile refuses out-of-dialog REFER. The
		// server must then check the dialog: this one has none and
		// answers 481.
		name: "REFER with a forged To tag", flags: []string{"-digest=false"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>;tag=forged", "Refer-To: <sip:1002@127.0.0.1>"},
		status:  481, want: decision{"REFER", acl.Allow, 0, 3, ""},
	}, {
		name: "REFER with an upper-case TAG", flags: []string{"-digest=false"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>;TAG=forged", "Refer-To: <sip:1002@127.0.0.1>"},
		status:  481, want: decision{"REFER", acl.Allow, 0, 3, ""},
	}, {
		// sipgo does not expand the compact forms o (Event) and r
		// (Refer-To); the example looks for them itself.
		name: "presence SUBSCRIBE with a compact Event header", method: "SUBSCRIBE",
		headers: []string{"To: <sip:1001@127.0.0.1>", "o: presence", "Expires: 60"},
		status:  403, want: notAccepted("SUBSCRIBE"),
	}, {
		name: "REFER with Replaces in a compact Refer-To", flags: []string{"-accept-refer"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>", "r: <sip:1002@127.0.0.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"},
		status:  403, want: notAccepted("REFER"),
	}, {
		// acl scans the Refer-To text for the URI; a display name with
		// <> in it hides the Replaces from that scan, so the example
		// gives acl the URI as sipgo parsed it.
		name: "REFER with Replaces behind a display name", flags: []string{"-accept-refer"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>", `Refer-To: "a<b>" <sip:1002@127.0.0.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>`},
		status:  403, want: notAccepted("REFER"),
	}, {
		name: "REFER with Replaces behind a display name, compact", flags: []string{"-accept-refer"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>", `r: "a<b>" <sip:1002@127.0.0.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>`},
		status:  403, want: notAccepted("REFER"),
	}, {
		name: "REFER accepted, digest off", flags: []string{"-accept-refer", "-digest=false"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>", `Refer-To: "Bob" <sip:1002@127.0.0.1>`},
		status:  202, want: decision{"REFER", acl.Allow, 0, 3, ""},
	}, {
		name: "malformed credentials", flags: []string{"-accept-notify"}, method: "NOTIFY",
		headers: []string{"To: <sip:1001@127.0.0.1>", "Event: message-summary", "Subscription-State: active",
			`Authorization: Digest username="trunkapp", realm="ucsec.test", nc=zz`},
		status: 400, want: decision{"NOTIFY", acl.Reject, 400, 5, ""},
	}, {
		// RFC 3515 allows one Refer-To; with two, classifying by either
		// would let the other through unchecked.
		name: "REFER with two Refer-To headers", flags: []string{"-accept-refer", "-digest=false"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>", "Refer-To: <sip:1002@127.0.0.1>",
			"Refer-To: <sip:1002@127.0.0.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"},
		status: 400,
	}, {
		name: "REFER with full and compact Refer-To", flags: []string{"-accept-refer", "-digest=false"}, method: "REFER",
		headers: []string{"To: <sip:1001@127.0.0.1>", "r: <sip:1002@127.0.0.1>",
			"Refer-To: <sip:1002@127.0.0.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"},
		status: 400,
	}, {
		// Every Event value counts, not just the first header.
		name: "presence behind a second Event header", flags: []string{"-digest=false"}, method: "SUBSCRIBE",
		headers: []string{"To: <sip:1001@127.0.0.1>", "o: dialog", "Event: presence", "Expires: 60"},
		status:  403, want: notAccepted("SUBSCRIBE"),
	}, {
		name: "presence in an Event list", flags: []string{"-digest=false"}, method: "SUBSCRIBE",
		headers: []string{"To: <sip:1001@127.0.0.1>", "Event: dialog, presence", "Expires: 60"},
		status:  403, want: notAccepted("SUBSCRIBE"),
	}, {
		// RFC 3261 §8.2.1, §21.4.6: a 405 carries Allow with the methods
		// served. The trunk's checks come first: each of these is
		// authorized (row 3) before its method is refused.
		name: "REGISTER, digest off", flags: []string{"-digest=false"}, method: "REGISTER",
		headers: []string{"To: <sip:trunkapp@127.0.0.1>", "Contact: <sip:trunkapp@127.0.0.1:5070>", "Expires: 60"},
		status:  405, want: decision{"REGISTER", acl.Allow, 0, 3, ""},
	}, {
		name: "PUBLISH, digest off", flags: []string{"-digest=false"}, method: "PUBLISH",
		headers: []string{"To: <sip:trunkapp@127.0.0.1>", "Event: presence", "Expires: 60"},
		status:  405, want: decision{"PUBLISH", acl.Allow, 0, 3, ""},
	}, {
		// An unserved method is refused as such, not as a request of a
		// dialog this server does not hold (481).
		name: "UPDATE in a dialog, digest off", flags: []string{"-digest=false"}, method: "UPDATE",
		headers: []string{"To: <sip:1001@127.0.0.1>;tag=1"},
		status:  405, want: decision{"UPDATE", acl.Allow, 0, 3, ""},
	}, {
		// With digest, an unauthenticated peer gets the challenge, not
		// the list of methods (RFC 3261 §8.2: authentication first).
		name: "REGISTER without credentials", method: "REGISTER",
		headers: []string{"To: <sip:trunkapp@127.0.0.1>", "Contact: <sip:trunkapp@127.0.0.1:5070>", "Expires: 60"},
		status:  401, want: challenged("REGISTER"),
	}, {
		name: "UPDATE without credentials", method: "UPDATE",
		headers: []string{"To: <sip:1001@127.0.0.1>;tag=1"},
		status:  401, want: challenged("UPDATE"),
	}, {
		name: "PUBLISH without credentials", method: "PUBLISH",
		headers: []string{"To: <sip:trunkapp@127.0.0.1>", "Event: presence", "Expires: 60"},
		status:  401, want: challenged("PUBLISH"),
	}, {
		// A kind the profile does not accept is refused before the
		// method, as before the challenge.
		name: "PUBLISH with Replaces", method: "PUBLISH",
		headers: []string{"To: <sip:trunkapp@127.0.0.1>", "Event: presence", "Replaces: abc@h;to-tag=1;from-tag=2"},
		status:  403, want: notAccepted("PUBLISH"),
	}, {
		name: "OPTIONS without credentials", method: "OPTIONS",
		headers: []string{"To: <sip:1001@127.0.0.1>"},
		status:  401, want: challenged("OPTIONS"),
	}, {
		name: "OPTIONS, digest off", flags: []string{"-digest=false"}, method: "OPTIONS",
		headers: []string{"To: <sip:1001@127.0.0.1>"},
		status:  200, want: decision{"OPTIONS", acl.Allow, 0, 3, ""},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.flags...)
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			defer c.Close()

			addr := s.addrs["udp"]
			res := exchange(t, c, addr, sipRequest(tc.method, "sip:"+addr.String(), c.LocalAddr(), 1, tc.headers...))
			assert.Equal(t, tc.status, res.StatusCode, "response:\n%s", res)
			got, _ := s.got()
			if tc.want.Method == "" {
				assert.Empty(t, got, "refused before any decision")
			} else {
				assert.Equal(t, []decision{tc.want}, got)
			}
			if tc.status == 401 {
				assert.Len(t, res.GetHeaders("WWW-Authenticate"), 1, "one challenge (MD5)")
			}
			if tc.status == 405 || tc.method == "OPTIONS" && tc.status == 200 {
				assert.ElementsMatch(t, served, allowHeader(res), "Allow")
			} else {
				assert.Empty(t, res.GetHeaders("Allow"), "Allow only with 405 and OPTIONS")
			}
		})
	}
}

// served are the methods the example serves, which a 405 (and the 200 to
// OPTIONS) lists in Allow.
var served = []string{"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER"}

// allowHeader returns the methods of res's Allow headers.
func allowHeader(res *sip.Response) []string {
	var ms []string
	for _, h := range res.GetHeaders("Allow") {
		for m := range strings.SplitSeq(h.Value(), ",") {
			ms = append(ms, strings.TrimSpace(m))
		}
	}
	return ms
}

// challenges returns the Digest challenges of a 401, in order.
func challenges(t *testing.T, res *sip.Response) []*digest.Challenge {
	t.Helper()
	var chs []*digest.Challenge
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		c, err := digest.ParseChallenges(h.Value())
		require.NoError(t, err)
		chs = append(chs, c...)
	}
	return chs
}

// An authenticated peer sending a method the example does not serve gets
// 405 with Allow: after the challenge, not instead of it.
func TestMethodNotAllowed(t *testing.T) {
	for _, tc := range []struct {
		method  string
		headers []string
	}{
		{"REGISTER", []string{"To: <sip:trunkapp@127.0.0.1>", "Contact: <sip:trunkapp@127.0.0.1:5070>", "Expires: 60"}},
		{"UPDATE", []string{"To: <sip:1001@127.0.0.1>;tag=1"}},
		{"PUBLISH", []string{"To: <sip:trunkapp@127.0.0.1>", "Event: presence", "Expires: 60"}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			s := startServer(t)
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			defer c.Close()
			addr := s.addrs["udp"]
			ruri := "sip:" + addr.String()

			res := exchange(t, c, addr, sipRequest(tc.method, ruri, c.LocalAddr(), 1, tc.headers...))
			require.Equal(t, 401, res.StatusCode, "response:\n%s", res)
			assert.Empty(t, res.GetHeaders("Allow"), "no method list before authentication")
			var chs []string
			for _, h := range res.GetHeaders("WWW-Authenticate") {
				chs = append(chs, h.Value())
			}
			client := &digest.Client{Credentials: []digest.ClientCredential{{Realm: "ucsec.test", Username: testUser, Password: testPassword}}}
			auth, err := client.Authorize(chs, tc.method, ruri, nil)
			require.NoError(t, err)

			res = exchange(t, c, addr, sipRequest(tc.method, ruri, c.LocalAddr(), 2, append(tc.headers, "Authorization: "+auth)...))
			assert.Equal(t, 405, res.StatusCode, "response:\n%s", res)
			assert.ElementsMatch(t, served, allowHeader(res), "Allow")
			got, _ := s.got()
			assert.Equal(t, []decision{challenged(tc.method), {tc.method, acl.Allow, 0, 9, testUser}}, got)
		})
	}
}

// With -algorithms SHA-256,MD5, a 401 carries one challenge per algorithm,
// most preferred first (RFC 8760), and an answer to either is accepted.
func TestAlgorithms(t *testing.T) {
	s := startServer(t, "-algorithms", "SHA-256,MD5")
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	addr := s.addrs["udp"]
	ruri := "sip:" + addr.String()
	to := "To: <sip:1001@127.0.0.1>"

	var want []decision
	for i, alg := range []digest.Algorithm{digest.SHA256, digest.MD5} {
		cseq := 2 * i
		res := exchange(t, c, addr, sipRequest("OPTIONS", ruri, c.LocalAddr(), cseq+1, to))
		require.Equal(t, 401, res.StatusCode, "response:\n%s", res)
		chs := challenges(t, res)
		require.Len(t, chs, 2, "one challenge per algorithm")
		assert.Equal(t, []digest.Algorithm{digest.SHA256, digest.MD5}, []digest.Algorithm{chs[0].Algorithm, chs[1].Algorithm},
			"in the order of -algorithms")
		for _, ch := range chs {
			assert.Equal(t, "ucsec.test", ch.Realm)
			assert.Equal(t, []string{"auth"}, ch.QOP)
		}
		assert.NotEqual(t, chs[0].Nonce, chs[1].Nonce, "one nonce per challenge")

		cred, err := digest.Respond(chs[i], digest.RespondOptions{Username: testUser, Password: testPassword, Method: "OPTIONS", URI: ruri, QOP: "auth", CNonce: fmt.Sprintf("cnonce%d", i), NC: 1})
		require.NoError(t, err)
		require.Equal(t, alg, cred.Algorithm)
		res = exchange(t, c, addr, sipRequest("OPTIONS", ruri, c.LocalAddr(), cseq+2, to, "Authorization: "+cred.String()))
		assert.Equal(t, 200, res.StatusCode, "%s answered; response:\n%s", alg, res)
		want = append(want, challenged("OPTIONS"), decision{"OPTIONS", acl.Allow, 0, 9, testUser})
	}
	got, _ := s.got()
	assert.Equal(t, want, got)

	// A client that picks the strongest algorithm offered takes SHA-256.
	res := exchange(t, c, addr, sipRequest("OPTIONS", ruri, c.LocalAddr(), 5, to))
	require.Equal(t, 401, res.StatusCode)
	var vs []string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		vs = append(vs, h.Value())
	}
	client := &digest.Client{Credentials: []digest.ClientCredential{{Realm: "ucsec.test", Username: testUser, Password: testPassword}}}
	auth, err := client.Authorize(vs, "OPTIONS", ruri, nil)
	require.NoError(t, err)
	cred, err := digest.ParseCredentials(auth)
	require.NoError(t, err)
	assert.Equal(t, digest.SHA256, cred.Algorithm)
	res = exchange(t, c, addr, sipRequest("OPTIONS", ruri, c.LocalAddr(), 6, to, "Authorization: "+auth))
	assert.Equal(t, 200, res.StatusCode, "response:\n%s", res)
}

// The digest uri parameter must equal the Request-URI the server gives
// digest.Server: sipgo writes back the parsed URI, which is the same
// string for SIPp's sip:IP:PORT and other usual URIs, not for all.
func TestDigestURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		same bool
	}{
		{"sip:127.0.0.1:5060", true}, // SIPp's [remote_ip]:[remote_port]
		{"sip:1001@127.0.0.1:5060;transport=tcp", true},
		{"sip:%61lice@example.com;lr", true},
		{"sip:[::1]:5060", true},
		{"sip:bob@example.com?Subject=hi", true},
		{"tel:+15551234567", true},
		{"SIP:127.0.0.1:5060", false},  // scheme lower-cased
		{"sip:127.0.0.1:05060", false}, // port normalized
	} {
		raw := sipRequest("OPTIONS", tc.uri, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5070}, 1,
			"To: <sip:1001@127.0.0.1>", `Authorization: Digest username="a"`, "Authorization: Other x")
		msg, err := sip.ParseMessage([]byte(raw))
		require.NoError(t, err, tc.uri)
		dr := digestRequest(msg.(*sip.Request))
		assert.Equal(t, tc.same, dr.URI == tc.uri, "%s became %s", tc.uri, dr.URI)
		assert.Equal(t, []string{`Digest username="a"`, "Other x"}, dr.Authorization)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5060", cfg.listen, "loopback by default")
	assert.True(t, cfg.profile.DigestAuthentication)
	assert.Equal(t, acl.Accept{}, cfg.profile.Accept, "nothing accepted by default")
	assert.Equal(t, []digest.Algorithm{digest.MD5}, cfg.algorithms, "MD5 only by default, as CUCM")

	cfg, err = parseFlags([]string{"-accept-refer", "-accept-replaces", "-app-level", "-app-accept", "refer, notify"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, acl.Accept{OutOfDialogRefer: true, ReplacesHeader: true}, cfg.profile.Accept)
	assert.Equal(t, acl.Accept{OutOfDialogRefer: true, UnsolicitedNotification: true}, cfg.appAccept)

	cfg, err = parseFlags([]string{"-algorithms", " sha-256 , MD5,SHA-512-256-SESS"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []digest.Algorithm{digest.SHA256, digest.MD5, digest.SHA512_256Sess}, cfg.algorithms, "canonical names, in order")

	for _, bad := range [][]string{{"-app-accept", "invite"}, {"extra"}, {"-nosuchflag"},
		{"-algorithms", "SHA-1"}, {"-algorithms", ""}, {"-algorithms", ","}, {"-algorithms", "MD5,md5"}} {
		_, err := parseFlags(bad, io.Discard)
		assert.Error(t, err, "%q", bad)
	}
	_, err = parseFlags([]string{"-algorithms", "SHA-256,SHA-1"}, io.Discard)
	assert.ErrorContains(t, err, `unknown digest algorithm "SHA-1"`)

	// CUCM refuses application level authorization without digest.
	cfg, err = parseFlags([]string{"-app-level", "-digest=false", "-listen", "127.0.0.1:0"}, io.Discard)
	require.NoError(t, err)
	assert.ErrorIs(t, run(t.Context(), cfg, nil), acl.ErrInvalidProfile)
	cfg.profile.ApplicationLevelAuthorization = false
	cfg.transport = "sctp"
	assert.ErrorContains(t, run(t.Context(), cfg, nil), "unknown transport")
}

// The server stops when its context is cancelled, over both transports on
// one port, and leaves no goroutines behind.
func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg, err := parseFlags([]string{"-listen", "127.0.0.1:0", "-transport", "both", "-digest=false"}, io.Discard)
	require.NoError(t, err)
	cfg.log = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, func(a ...net.Addr) { addrs <- a }) }()
	var as []net.Addr
	select {
	case as = <-addrs:
	case err := <-done:
		t.Fatalf("the server did not start: %v", err)
	}
	require.Len(t, as, 2)
	assert.Equal(t, "udp", as[0].Network())
	assert.Equal(t, "tcp", as[1].Network())
	assert.Equal(t, as[0].(*net.UDPAddr).Port, as[1].(*net.TCPAddr).Port, "one port for both")

	// A UDP transaction (kept for retransmissions) and an open TCP
	// connection must not keep the server, or its goroutines, up.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	res := exchange(t, c, as[0], sipRequest("OPTIONS", "sip:"+as[0].String(), c.LocalAddr(), 1, "To: <sip:1001@127.0.0.1>"))
	assert.Equal(t, 200, res.StatusCode)
	tc, err := net.Dial("tcp", as[1].String())
	require.NoError(t, err)
	defer tc.Close()

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10 s")
	}
	c.Close() // the client's TCP connection stays open: the server closes its end
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
