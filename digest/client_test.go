package digest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientServer runs the client against the server: a challenge, an
// answer, later requests with the same nonce, and a stale nonce that the
// client answers again without asking anyone.
func TestClientServer(t *testing.T) {
	c := newClock()
	s := testServer(c)
	s.Algorithms = []Algorithm{MD5, SHA256} // MD5 first: the client still picks SHA-256
	cl := &Client{Credentials: []ClientCredential{{Realm: "test.local", Username: "alice", Password: "s3cret"}}}
	ctx := context.Background()

	_, err := s.Verify(ctx, register())
	a, err := s.Answer(register(), err)
	require.NoError(t, err)
	h, err := cl.Authorize(a.Values, "REGISTER", "sip:test.local", nil)
	require.NoError(t, err)
	assert.Contains(t, h, "algorithm=SHA-256")
	assert.Contains(t, h, "nc=00000001")
	res, err := s.Verify(ctx, register(h))
	require.NoError(t, err)
	assert.Equal(t, SHA256, res.Algorithm)

	h, err = cl.Reauthorize("test.local", "REGISTER", "sip:test.local", nil)
	require.NoError(t, err)
	assert.Contains(t, h, "nc=00000002")
	_, err = s.Verify(ctx, register(h))
	require.NoError(t, err)

	c.Add(DefaultNonceValidity + time.Second)
	h, err = cl.Reauthorize("test.local", "REGISTER", "sip:test.local", nil)
	require.NoError(t, err)
	_, err = s.Verify(ctx, register(h))
	require.ErrorIs(t, err, ErrStale)
	a, err = s.Answer(register(), err)
	require.NoError(t, err)
	h, err = cl.Authorize(a.Values, "REGISTER", "sip:test.local", nil)
	require.NoError(t, err)
	assert.Contains(t, h, "nc=00000001", "a new nonce counts from 1")
	_, err = s.Verify(ctx, register(h))
	require.NoError(t, err)
}

func TestClientChoices(t *testing.T) {
	cl := &Client{Credentials: []ClientCredential{{Realm: "trunk", Username: "u", Password: "p"}}}
	md5 := `Digest realm="trunk", nonce="n1", algorithm=MD5, qop="auth"`
	sha := `Digest realm="trunk", nonce="n2", algorithm=SHA-256, qop="auth"`
	other := `Digest realm="attacker", nonce="n3", algorithm=SHA-512-256, qop="auth"`

	_, err := cl.Authorize([]string{other}, "BYE", "sip:x", nil)
	require.ErrorIs(t, err, ErrNoRealm, "never answer an unknown realm")

	h, err := cl.Authorize([]string{md5, other, sha}, "INVITE", "sip:x", nil)
	require.NoError(t, err)
	assert.Contains(t, h, `nonce="n2"`)

	strict := &Client{Credentials: cl.Credentials, Algorithms: []Algorithm{SHA256}}
	_, err = strict.Authorize([]string{md5}, "INVITE", "sip:x", nil)
	require.ErrorIs(t, err, ErrNoAlgorithm)

	_, err = cl.Authorize([]string{`Digest realm="trunk", nonce="n", algorithm=AKAv1-MD5`}, "INVITE", "sip:x", nil)
	require.ErrorIs(t, err, ErrNoAlgorithm)
	_, err = cl.Authorize([]string{`Digest realm="trunk", nonce="n", qop="auth-conf"`}, "INVITE", "sip:x", nil)
	require.ErrorIs(t, err, ErrNoAlgorithm)
	_, err = cl.Authorize([]string{`Digest realm="trunk", nonce="n", algorithm=MD5-sess`}, "INVITE", "sip:x", nil)
	require.ErrorIs(t, err, ErrNoAlgorithm, "-sess needs qop")

	both := `Digest realm="trunk", nonce="n4", qop="auth,auth-int"`
	h, err = cl.Authorize([]string{both}, "INVITE", "sip:x", []byte("body"))
	require.NoError(t, err)
	assert.Contains(t, h, "qop=auth,")
	h, err = (&Client{Credentials: cl.Credentials, PreferAuthInt: true}).Authorize([]string{both}, "INVITE", "sip:x", []byte("body"))
	require.NoError(t, err)
	assert.Contains(t, h, "qop=auth-int")

	h, err = cl.Authorize([]string{`Digest realm="trunk", nonce="n5"`}, "INVITE", "sip:x", nil)
	require.NoError(t, err)
	assert.NotContains(t, h, "qop")
	assert.NotContains(t, h, "cnonce")

	_, err = cl.Authorize([]string{`Digest realm="trunk"`}, "INVITE", "sip:x", nil)
	require.ErrorIs(t, err, ErrMalformed)
	_, err = cl.Reauthorize("nowhere", "INVITE", "sip:x", nil)
	require.ErrorIs(t, err, ErrNoRealm)

	// Fresh cnonces.
	h1, _ := cl.Authorize([]string{md5}, "INVITE", "sip:x", nil)
	h2, _ := cl.Authorize([]string{md5}, "INVITE", "sip:x", nil)
	c1, _ := ParseCredentials(h1)
	c2, _ := ParseCredentials(h2)
	assert.NotEqual(t, c1.CNonce, c2.CNonce)
	assert.Equal(t, c1.NC+1, c2.NC)
}

func TestRespondErrors(t *testing.T) {
	ch := &Challenge{Realm: "r", Nonce: "n", QOP: []string{"auth"}}
	req := RespondOptions{Username: "u", Password: "p", Method: "GET", URI: "/"}
	with := func(f func(*RespondOptions)) RespondOptions { o := req; f(&o); return o }
	for _, opts := range []RespondOptions{
		req, // the challenge offers qop
		with(func(o *RespondOptions) { o.QOP, o.CNonce, o.NC = "auth-int", "c", 1 }),
		with(func(o *RespondOptions) { o.QOP, o.NC = "auth", 1 }),
		with(func(o *RespondOptions) { o.QOP, o.CNonce = "auth", "c" }),
		with(func(o *RespondOptions) { o.QOP, o.CNonce, o.NC, o.Username = "auth", "c", 1, "" }),
		with(func(o *RespondOptions) { o.QOP, o.CNonce, o.NC, o.Method = "auth", "c", 1, "" }),
		with(func(o *RespondOptions) { o.QOP, o.CNonce, o.NC, o.URI = "auth", "c", 1, "" }),
	} {
		_, err := Respond(ch, opts)
		assert.Error(t, err, "%+v", opts)
	}
	_, err := Respond(&Challenge{Realm: "r", Nonce: "n", Algorithm: MD5Sess}, RespondOptions{Username: "u", Password: "p", Method: "GET", URI: "/"})
	assert.ErrorContains(t, err, "-sess")
	_, err = Respond(&Challenge{Realm: "r", Nonce: "n", Algorithm: "X"}, RespondOptions{Username: "u", Password: "p", Method: "GET", URI: "/"})
	assert.ErrorIs(t, err, ErrNoAlgorithm)
	assert.False(t, (&Credentials{Algorithm: "X"}).ResponseMatches("GET", nil, strings.Repeat("0", 32)))
}

func TestRespondRefusesUnwritableValues(t *testing.T) {
	ch := &Challenge{Realm: "r", Nonce: "n"}
	for _, user := range []string{"al\x01ice", "a\r\nb"} {
		_, err := Respond(ch, RespondOptions{Username: user, Password: "p", Method: "GET", URI: "/"})
		assert.ErrorContains(t, err, "control character")
	}
	_, err := Respond(ch, RespondOptions{Username: "alice", Password: "p", Method: "GET", URI: "/\n"})
	assert.ErrorContains(t, err, "control character")
}

// TestClientStateBounded: a client keeps one nonce per realm, however
// often it is challenged.
func TestClientStateBounded(t *testing.T) {
	cl := &Client{Credentials: []ClientCredential{{Realm: "trunk", Username: "u", Password: "p"}}}
	for i := range 100 {
		_, err := cl.Authorize([]string{fmt.Sprintf(`Digest realm="trunk", nonce="n%d", qop="auth"`, i)}, "OPTIONS", "sip:x", nil)
		require.NoError(t, err)
	}
	assert.Len(t, cl.last, 1)
	assert.LessOrEqual(t, len(cl.counts), maxClientNonces)
	h, err := cl.Reauthorize("trunk", "OPTIONS", "sip:x", nil)
	require.NoError(t, err)
	assert.Contains(t, h, `nonce="n99"`)
	assert.Contains(t, h, "nc=00000002")

	// Counts are per nonce: going back to a nonce continues its count.
	a := []string{`Digest realm="trunk", nonce="n98", qop="auth"`}
	h, err = cl.Authorize(a, "OPTIONS", "sip:x", nil)
	require.NoError(t, err)
	assert.Contains(t, h, "nc=00000002")
}
