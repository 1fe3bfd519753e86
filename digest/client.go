package digest

import (
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// Errors from Client.Authorize.
var (
	// ErrNoRealm means no challenge names a realm the client has
	// credentials for: the client does not answer (a peer that challenges
	// with an unknown realm must not get a crackable response).
	ErrNoRealm = errors.New("digest: no credentials for the challenged realm")

	// ErrNoAlgorithm means the challenges for the client's realms offer
	// no algorithm and qop the client supports and allows.
	ErrNoAlgorithm = errors.New("digest: no supported algorithm offered")
)

// ClientCredential is a user name and password for one realm, such as one
// of a SIP trunk's "SIP Realm" entries.
type ClientCredential struct {
	Realm    string
	Username string
	Password string
}

// Client answers Digest challenges with per-realm credentials. Set its
// fields before first use; it is then safe for concurrent use.
type Client struct {
	// Credentials lists the realms the client answers, one entry each.
	// A challenge for any other realm is not answered.
	Credentials []ClientCredential

	// Algorithms, if set, limits the algorithms the client uses (to
	// refuse MD5, say). Among those offered, the client picks the
	// strongest: SHA-512-256, then SHA-256, then MD5, rather than the
	// server's first choice, which an on-path attacker can reorder
	// (RFC 8760 §3).
	Algorithms []Algorithm

	// PreferAuthInt makes the client use qop=auth-int (which also covers
	// the body) when offered with auth. By default it uses auth, which
	// survives proxies that rewrite bodies.
	PreferAuthInt bool

	// Rand is the source of client nonces; nil means crypto/rand.
	Rand io.Reader

	mu     sync.Mutex
	last   map[string]*Challenge // by realm: the challenge last answered
	counts map[nonceKey]uint32   // nonce counts used, at most maxClientNonces
	order  []nonceKey            // keys of counts, oldest first
}

// nonceKey identifies a nonce of a realm.
type nonceKey struct{ realm, nonce string }

// maxClientNonces bounds the nonces whose counts a client remembers.
const maxClientNonces = 64

// Authorize answers the challenges in the WWW-Authenticate (or
// Proxy-Authenticate) header values of a 401 (or 407) to a request with
// method, uri (the Request-URI, exactly as sent) and body, and returns
// the value of the Authorization (or Proxy-Authorization) header for the
// resent request. It answers only challenges for a configured realm, picks
// the strongest algorithm offered, and counts nonce uses; after
// stale=true it simply answers the new challenge.
func (c *Client) Authorize(challenges []string, method, uri string, body []byte) (string, error) {
	var best *Challenge
	var cred *ClientCredential
	sawRealm := false
	for _, h := range challenges {
		chs, err := ParseChallenges(h)
		if err != nil {
			return "", err
		}
		for _, ch := range chs {
			cr := c.credential(ch.Realm)
			if cr == nil {
				continue
			}
			sawRealm = true
			if !c.usable(ch) {
				continue
			}
			if best == nil || ch.Algorithm.Strength() > best.Algorithm.Strength() {
				best, cred = ch, cr
			}
		}
	}
	switch {
	case !sawRealm:
		return "", ErrNoRealm
	case best == nil:
		return "", ErrNoAlgorithm
	}
	c.mu.Lock()
	if c.last == nil {
		c.last = map[string]*Challenge{}
	}
	c.last[best.Realm] = best
	nc := c.nextCount(best)
	c.mu.Unlock()
	return c.answer(best, nc, cred, method, uri, body)
}

// Reauthorize answers again, with the next nonce count, the challenge
// last answered for realm, so that a request can carry credentials
// without waiting for a new challenge. The server may still answer with a
// challenge (stale, for an expired nonce); answer that with Authorize.
func (c *Client) Reauthorize(realm, method, uri string, body []byte) (string, error) {
	cred := c.credential(realm)
	c.mu.Lock()
	ch := c.last[realm]
	var nc uint32
	if ch != nil {
		nc = c.nextCount(ch)
	}
	c.mu.Unlock()
	if ch == nil || cred == nil {
		return "", ErrNoRealm
	}
	return c.answer(ch, nc, cred, method, uri, body)
}

// nextCount returns the next nonce count for ch's nonce. c.mu is held.
func (c *Client) nextCount(ch *Challenge) uint32 {
	if len(ch.QOP) == 0 {
		return 0
	}
	k := nonceKey{ch.Realm, ch.Nonce}
	if c.counts == nil {
		c.counts = map[nonceKey]uint32{}
	}
	if _, ok := c.counts[k]; !ok {
		if len(c.order) == maxClientNonces {
			delete(c.counts, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, k)
	}
	c.counts[k]++
	return c.counts[k]
}

func (c *Client) credential(realm string) *ClientCredential {
	for i := range c.Credentials {
		if c.Credentials[i].Realm == realm {
			return &c.Credentials[i]
		}
	}
	return nil
}

// usable reports whether the client can and may answer ch.
func (c *Client) usable(ch *Challenge) bool {
	a := ch.Algorithm.canonical()
	if !a.Supported() || c.Algorithms != nil && !slices.Contains(c.Algorithms, a) {
		return false
	}
	if a.Sess() && len(ch.QOP) == 0 {
		return false
	}
	return len(ch.QOP) == 0 || c.chooseQOP(ch) != ""
}

func (c *Client) chooseQOP(ch *Challenge) string {
	auth, authInt := ch.offers("auth"), ch.offers("auth-int")
	switch {
	case authInt && (c.PreferAuthInt || !auth):
		return "auth-int"
	case auth:
		return "auth"
	}
	return ""
}

// answer computes the credentials for ch with nonce count nc.
func (c *Client) answer(ch *Challenge, nc uint32, cred *ClientCredential, method, uri string, body []byte) (string, error) {
	opts := RespondOptions{Username: cred.Username, Password: cred.Password, Method: method, URI: uri, Body: body}
	if len(ch.QOP) > 0 {
		opts.QOP = c.chooseQOP(ch)
		var b [12]byte
		r := c.Rand
		if r == nil {
			r = cryptorand.Reader
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("digest: making a cnonce: %w", err)
		}
		opts.CNonce = hex.EncodeToString(b[:])
		opts.NC = nc
	}
	cr, err := Respond(ch, opts)
	if err != nil {
		return "", err
	}
	return cr.String(), nil
}

// quotable reports whether v can be written in a quoted string as it is.
func quotable(v string) bool {
	for i := 0; i < len(v); i++ {
		if !isQuotedText(v[i]) {
			return false
		}
	}
	return true
}

// offers reports whether ch offers qop, compared without regard to case.
func (ch *Challenge) offers(qop string) bool {
	for _, q := range ch.QOP {
		if strings.EqualFold(q, qop) {
			return true
		}
	}
	return false
}

// RespondOptions are the inputs of [Respond]: who answers, the request
// the answer is for, and the values a client chooses. The fields marked
// Required must be set; for the others the zero value is the default, and
// QOP, CNonce and NC all zero answer a challenge without qop.
type RespondOptions struct {
	Username string // Required: the user
	Password string // the user's password
	Method   string // Required: the request's method, such as "REGISTER"
	URI      string // Required: the Request-URI as sent
	Body     []byte // the request body, for qop=auth-int

	QOP    string // "auth" or "auth-int"; must be offered by the challenge
	CNonce string // the client nonce; required with QOP
	NC     uint32 // the nonce count, from 1; required with QOP
}

// Respond computes the credentials that answer challenge ch for the
// request and user opts describes. It is the low-level form of
// [Client.Authorize], for callers that choose the cnonce and nonce count,
// such as tests and the ucsec CLI.
func Respond(ch *Challenge, opts RespondOptions) (*Credentials, error) {
	switch {
	case opts.Username == "":
		return nil, errors.New("digest: RespondOptions.Username is required")
	case opts.Method == "":
		return nil, errors.New("digest: RespondOptions.Method is required")
	case opts.URI == "":
		return nil, errors.New("digest: RespondOptions.URI is required")
	}
	a := ch.Algorithm.canonical()
	switch {
	case !a.Supported():
		return nil, fmt.Errorf("%w: %q", ErrNoAlgorithm, ch.Algorithm)
	case opts.QOP == "" && len(ch.QOP) > 0:
		return nil, errors.New("digest: the challenge offers qop: RespondOptions.QOP is required")
	case opts.QOP != "" && !ch.offers(opts.QOP):
		return nil, fmt.Errorf("digest: the challenge does not offer qop %q", opts.QOP)
	case opts.QOP != "" && (opts.CNonce == "" || opts.NC == 0):
		return nil, errors.New("digest: qop needs a cnonce and a nonce count")
	case a.Sess() && opts.QOP == "":
		return nil, errors.New("digest: a -sess algorithm needs qop")
	}
	username, password, uri := opts.Username, opts.Password, opts.URI
	for _, v := range []string{username, uri, opts.CNonce, ch.Realm, ch.Nonce, ch.Opaque} {
		if !quotable(v) {
			return nil, errors.New("digest: a value holds a control character, which a header cannot carry")
		}
	}
	in := responseInput{alg: a, nonce: ch.Nonce, cnonce: opts.CNonce, nc: opts.NC, qop: opts.QOP, method: opts.Method, uri: uri, body: opts.Body}
	var ha1, resp [2 * maxDigest]byte
	h1 := a.hexSum(ha1[:0], username, ch.Realm, password)
	cr := &Credentials{
		Username:  username,
		Realm:     ch.Realm,
		Nonce:     ch.Nonce,
		URI:       uri,
		Response:  string(in.response(resp[:0], string(h1))),
		Algorithm: ch.Algorithm,
		Opaque:    ch.Opaque,
		QOP:       opts.QOP,
		UserHash:  ch.UserHash,
	}
	if opts.QOP != "" {
		cr.CNonce, cr.NC = opts.CNonce, opts.NC
	}
	if ch.UserHash {
		cr.Username = UserHash(a, username, ch.Realm)
	}
	return cr, nil
}

// ResponseMatches reports whether the credentials' response is right for
// a request with method and body, given the user's HA1 (see [HA1]) for
// the credentials' realm and algorithm. It checks nothing else: not the
// nonce, its count or the URI; see [Server.Verify] for that.
func (c *Credentials) ResponseMatches(method string, body []byte, ha1 string) bool {
	a := c.Algorithm.canonical()
	if !a.Supported() || a.Sess() && c.QOP == "" {
		return false
	}
	in := responseInput{alg: a, nonce: c.Nonce, cnonce: c.CNonce, nc: c.NC, qop: c.QOP, method: method, uri: c.URI, body: body}
	return equalHex(c.Response, in.response(nil, ha1))
}
