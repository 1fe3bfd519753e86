package digest

import (
	"context"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors from Server.Verify. Each says how to answer; see [Server.Answer].
var (
	// ErrNoCredentials means the request carries no credentials for the
	// server's realm: answer with a challenge.
	ErrNoCredentials = errors.New("digest: no credentials for this realm")

	// ErrUnauthorized means the credentials are wrong: an unknown user, a
	// wrong response, or parameters that do not match the challenge
	// (algorithm, qop, opaque, uri). Answer with a fresh challenge. It is
	// the same error for an unknown user and a wrong password.
	ErrUnauthorized = errors.New("digest: credentials rejected")

	// ErrStale means the response was right but its nonce is no longer
	// valid (expired, issued under a secret that has been rotated out,
	// or bound to another address): answer with a challenge with
	// stale=true, and the client retries without asking its user.
	ErrStale = errors.New("digest: stale nonce")

	// ErrReplay means the response was right but its nonce count (or its
	// single-use nonce) was used before: a replayed request. It is
	// answered like ErrStale.
	ErrReplay = errors.New("digest: replayed nonce count")

	// ErrUnknownUser is what a CredentialStore returns for a user it does
	// not hold. Verify turns it into ErrUnauthorized.
	ErrUnknownUser = errors.New("digest: unknown user")
)

// A CredentialStore looks up stored credentials: the HA1 (see [HA1]) of a
// user in a realm for the hash of an algorithm, so that passwords need
// not be stored.
type CredentialStore interface {
	// HA1 returns the lowercase hex HA1 of username in realm for alg's
	// hash (MD5 and MD5-sess share one HA1, SHA-256 and SHA-256-sess
	// another, ...), or an error wrapping ErrUnknownUser.
	HA1(ctx context.Context, username, realm string, alg Algorithm) (string, error)
}

// A UserHashStore is a CredentialStore that can also find a user from the
// hashed username of RFC 7616 §3.4.4, which a Server with UserHash needs.
type UserHashStore interface {
	CredentialStore
	// UserByHash returns the user whose UserHash(alg, user, realm) is
	// hash, or an error wrapping ErrUnknownUser.
	UserByHash(ctx context.Context, hash, realm string, alg Algorithm) (string, error)
}

// DefaultNonceValidity is CUCM's default nonce validity time.
const DefaultNonceValidity = 600 * time.Second

// maxClockSkew is how far in the future a nonce's issue time may be, for
// servers of a cluster whose clocks differ a little.
const maxClockSkew = 5 * time.Second

// Server verifies Digest credentials and makes challenges for one realm.
// Set its fields before first use and do not change them afterwards; it is
// then safe for concurrent use. The zero value is not usable: Realm and
// Credentials are required.
//
// Nonces are stateless: each carries its issue time (to the nanosecond)
// and 96 random bits and is authenticated with HMAC-SHA-256 over the
// algorithm of its challenge and, with BindAddress, the client's address,
// under a key derived from the first of Secrets and the realm (so that one
// secret serves several realms without their nonces crossing). Any server
// of the realm holding the same Secrets verifies it. Realm must not change
// once the server is in use.
type Server struct {
	// Realm is the protection realm, such as a cluster's host name.
	Realm string

	// Credentials finds the HA1 of a user.
	Credentials CredentialStore

	// Secrets are the nonce keys, each at least 16 random bytes. New
	// nonces use the first; nonces made with the others still verify
	// until they expire. Servers of a cluster share the list (and a
	// ReplayStore). To rotate without a restart, call SetSecrets with the
	// new secret first, and again without the old one after
	// NonceValidity. If empty, a random secret is made on first use, so
	// that nonces do not survive a restart and other servers cannot
	// verify them.
	Secrets [][]byte

	// NonceValidity is how long a nonce is accepted; zero means
	// DefaultNonceValidity (600 s, CUCM's default).
	NonceValidity time.Duration

	// Algorithms are offered in this order of preference, one challenge
	// each (RFC 8760). Credentials with an algorithm not in the list are
	// rejected. Nil means MD5 only, the one algorithm SIP phones (and
	// CUCM) support; offering SHA-256 first lets RFC 8760 clients use it.
	Algorithms []Algorithm

	// QOP lists the qop values offered: "auth" and/or "auth-int". Nil
	// means "auth". RFC 2069 responses (without qop) are accepted anyway,
	// as RFC 3261 §22.4 requires, and use their nonce only once, unless
	// RequireQOP is set.
	QOP []string

	// RequireQOP refuses responses without qop. Set it when offering
	// auth-int, or an attacker who strips qop from the challenge also
	// strips the body's protection.
	RequireQOP bool

	// IgnoreURI accepts credentials whose uri differs from the
	// Request-URI. RFC 3261 §22.4 allows it for proxies whose upstream
	// rewrote the Request-URI; by default the two must be equal.
	IgnoreURI bool

	// OmitQOP leaves qop out of challenges, for RFC 2069 clients.
	// RFC 3261 says servers always send it; this is for testing legacy
	// clients.
	OmitQOP bool

	// Opaque, if set, is sent in challenges and must come back unchanged.
	Opaque string

	// UserHash offers userhash=true (RFC 7616 §3.4.4), so that clients may
	// hide the user name. Credentials must then be a UserHashStore.
	UserHash bool

	// Proxy makes the server answer as a proxy: 407 with
	// Proxy-Authenticate instead of 401 with WWW-Authenticate.
	Proxy bool

	// BindAddress binds nonces to Request.RemoteAddr: a nonce used from
	// another address is stale.
	BindAddress bool

	// Replay remembers used nonce counts. Nil means one
	// MemoryReplayStore per Server, started when the Server is first
	// used, which is right for a single server only: the servers of a
	// cluster must share one store, or a captured request can be
	// replayed once on each other node. A request is accepted only if
	// Replay reports its count new without an error; an error makes
	// Verify fail with it.
	Replay ReplayStore

	// Time returns the current time; nil means time.Now.
	Time func() time.Time

	// Rand is the source of nonce randomness; nil means crypto/rand.
	Rand io.Reader

	once     sync.Once
	initErr  error
	macs     atomic.Pointer[[]*sync.Pool] // per secret: keyed HMAC-SHA-256 hashes
	replay   ReplayStore
	dummyHA1 map[int]string // per digest size, for unknown users
}

// Request is what Verify needs from a SIP request.
type Request struct {
	Method string // such as "REGISTER"
	URI    string // the Request-URI, as received
	Body   []byte // the message body, for qop=auth-int

	// Authorization holds the values of every Authorization (or, for a
	// proxy, Proxy-Authorization) header, one credential each.
	Authorization []string

	// RemoteAddr is the client's address, for BindAddress.
	RemoteAddr netip.Addr
}

// Result describes a successful verification; Verify returns the zero
// Result with an error.
type Result struct {
	Username  string    // the authenticated user (resolved when userhash was used)
	Algorithm Algorithm // the algorithm of the credentials
	QOP       string    // "auth", "auth-int" or "" (RFC 2069)
}

func (s *Server) init() error {
	s.once.Do(func() {
		switch {
		case s.Realm == "":
			s.initErr = errors.New("digest: Server.Realm is required")
			return
		case s.Credentials == nil:
			s.initErr = errors.New("digest: Server.Credentials is required")
			return
		}
		if _, ok := s.Credentials.(UserHashStore); s.UserHash && !ok {
			s.initErr = errors.New("digest: Server.UserHash needs a Credentials store that implements UserHashStore")
			return
		}
		if s.Algorithms != nil && len(s.Algorithms) == 0 {
			s.initErr = errors.New("digest: Server.Algorithms is empty (nil means MD5)")
			return
		}
		for _, a := range s.algorithms() {
			if !a.Supported() {
				s.initErr = fmt.Errorf("digest: unsupported algorithm %q", a)
				return
			}
		}
		if s.QOP != nil && len(s.QOP) == 0 {
			s.initErr = errors.New("digest: Server.QOP is empty (nil means auth; OmitQOP leaves qop out)")
			return
		}
		for _, q := range s.QOP {
			if q != "auth" && q != "auth-int" {
				s.initErr = fmt.Errorf("digest: unknown qop %q", q)
				return
			}
		}
		secrets := s.Secrets
		if len(secrets) == 0 {
			k := make([]byte, 32)
			if _, err := io.ReadFull(s.rand(), k); err != nil {
				s.initErr = fmt.Errorf("digest: making a nonce secret: %w", err)
				return
			}
			secrets = [][]byte{k}
		}
		if s.initErr = s.SetSecrets(secrets); s.initErr != nil {
			return
		}
		s.replay = s.Replay
		if s.replay == nil {
			s.replay = &MemoryReplayStore{Time: s.Time, Start: s.now()}
		}
		// Unknown users are checked against a random HA1, so that they
		// cost what a known user costs.
		s.dummyHA1 = map[int]string{}
		for _, size := range []int{16, 32} {
			k := make([]byte, size)
			if _, err := io.ReadFull(s.rand(), k); err != nil {
				s.initErr = fmt.Errorf("digest: %w", err)
				return
			}
			s.dummyHA1[size] = fmt.Sprintf("%x", k)
		}
	})
	return s.initErr
}

// SetSecrets replaces the nonce secrets (see Server.Secrets), for
// rotation without a restart. It is safe to call while the server is in
// use.
func (s *Server) SetSecrets(secrets [][]byte) error {
	if len(secrets) == 0 {
		return errors.New("digest: no nonce secrets")
	}
	pools := make([]*sync.Pool, 0, len(secrets))
	for _, k := range secrets {
		if len(k) < 16 {
			return errors.New("digest: a nonce secret is shorter than 16 bytes")
		}
		k := realmNonceKey(k, s.Realm)
		pools = append(pools, &sync.Pool{New: func() any {
			return &nonceMAC{h: hmac.New(sha256.New, k[:])}
		}})
	}
	s.macs.Store(&pools)
	return nil
}

func (s *Server) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return cryptorand.Reader
}

func (s *Server) now() time.Time {
	if s.Time != nil {
		return s.Time()
	}
	return time.Now()
}

func (s *Server) algorithms() []Algorithm {
	if s.Algorithms == nil {
		return []Algorithm{MD5}
	}
	return s.Algorithms
}

func (s *Server) qop() []string {
	if s.QOP == nil {
		return []string{"auth"}
	}
	return s.QOP
}

func (s *Server) validity() time.Duration {
	if s.NonceValidity > 0 {
		return s.NonceValidity
	}
	return DefaultNonceValidity
}

// Nonce layout: version, issue time in Unix nanoseconds (so that a replay
// store can tell a nonce issued just before it started from one issued
// just after), random, MAC, in unpadded base64url.
const (
	nonceVersion = 3
	nonceTimeLen = 8
	nonceRandom  = 12
	nonceMACLen  = 16
	nonceHead    = 1 + nonceTimeLen + nonceRandom
	nonceLen     = nonceHead + nonceMACLen
	nonceText    = (nonceLen*8 + 5) / 6
)

// nonceEncoding writes nonces (decodeNonce reads them); Strict, so that
// a nonce has one text only.
var nonceEncoding = base64.RawURLEncoding.Strict()

// nonceAlphabet maps the characters of unpadded base64url to their
// values, and every other byte to 0xFF.
var nonceAlphabet = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(abc) {
		t[abc[i]] = byte(i)
	}
	return t
}()

// decodeNonce decodes the text of a nonce into b as nonceEncoding does
// (exactly nonceText characters; the unused low bits of the last one
// zero), without a copy of the string: the hot path of Verify.
func decodeNonce(b *[nonceLen]byte, s string) bool {
	_ = [1]int{}[nonceLen-37] // written for 37 bytes: 12 groups of 4 characters, then 2
	if len(s) != nonceText {
		return false
	}
	var bad byte
	j := 0
	for i := 0; i+4 <= len(s); i += 4 {
		c0, c1, c2, c3 := nonceAlphabet[s[i]], nonceAlphabet[s[i+1]], nonceAlphabet[s[i+2]], nonceAlphabet[s[i+3]]
		bad |= c0 | c1 | c2 | c3
		v := uint32(c0)<<18 | uint32(c1)<<12 | uint32(c2)<<6 | uint32(c3)
		b[j], b[j+1], b[j+2] = byte(v>>16), byte(v>>8), byte(v)
		j += 3
	}
	// nonceLen = 37 = 12·3 + 1: two characters, 12 bits, the last 4 zero.
	c0, c1 := nonceAlphabet[s[nonceText-2]], nonceAlphabet[s[nonceText-1]]
	bad |= c0 | c1
	b[j] = c0<<2 | c1>>4
	return bad&0xC0 == 0 && c1&0x0F == 0
}

// realmNonceKey derives the key of a realm's nonce MACs from a secret:
// HMAC-SHA-256(secret, label ‖ realm). Binding the realm into the key
// rather than into each MAC keeps a nonce's MAC input within one SHA-256
// block (see nonceMACSum).
func realmNonceKey(secret []byte, realm string) [sha256.Size]byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("ucsec digest nonce key\x00"))
	h.Write([]byte(realm))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// nonceMACSum computes the MAC of a nonce's first bytes with the key of
// pool (the realm's), over them, the algorithm and, when bound, the
// address, and copies it to out. The input is at most 1+21+16+1 bytes, one
// SHA-256 block with its padding, so that a MAC costs two block
// computations, the least HMAC-SHA-256 can.
func (s *Server) nonceMACSum(out []byte, pool *sync.Pool, head []byte, alg Algorithm, addr netip.Addr) {
	m := pool.Get().(*nonceMAC)
	m.h.Reset()
	msg := append(m.buf[:0], head...)
	msg = append(msg, alg.code())
	if s.BindAddress {
		// Unmapped, so that ::ffff:192.0.2.1 and 192.0.2.1 are one client.
		a := addr.Unmap()
		b := a.As16()
		msg = append(msg, byte(a.BitLen()/8))
		msg = append(msg, b[:]...)
	}
	m.h.Write(msg)
	copy(out, m.h.Sum(m.sum[:0]))
	pool.Put(m)
}

// nonceMAC is a keyed HMAC with buffers for its message and sum, pooled
// per secret so that checking a nonce does not allocate.
type nonceMAC struct {
	h   hash.Hash
	buf [nonceHead + 1 + 1 + 16]byte
	sum [sha256.Size]byte
}

// newNonce makes a nonce for a challenge with algorithm alg.
func (s *Server) newNonce(alg Algorithm, addr netip.Addr) (string, error) {
	var b [nonceLen]byte
	b[0] = nonceVersion
	binary.BigEndian.PutUint64(b[1:], uint64(s.now().UnixNano()))
	if _, err := io.ReadFull(s.rand(), b[1+nonceTimeLen:nonceHead]); err != nil {
		return "", fmt.Errorf("digest: making a nonce: %w", err)
	}
	s.nonceMACSum(b[nonceHead:], (*s.macs.Load())[0], b[:nonceHead], alg, addr)
	return nonceEncoding.EncodeToString(b[:]), nil
}

// checkNonce reports whether nonce is one of ours, for alg and addr, and
// still valid, and returns its identifier, issue time and expiry.
func (s *Server) checkNonce(nonce string, alg Algorithm, addr netip.Addr) (id NonceID, issued, expires time.Time, ok bool) {
	var b [nonceLen]byte
	if !decodeNonce(&b, nonce) || b[0] != nonceVersion {
		return NonceID{}, time.Time{}, time.Time{}, false
	}
	head, mac := b[:nonceHead], b[nonceHead:]
	valid := 0
	var sum [nonceMACLen]byte
	for _, pool := range *s.macs.Load() {
		s.nonceMACSum(sum[:], pool, head, alg, addr)
		valid |= subtle.ConstantTimeCompare(mac, sum[:])
	}
	if valid != 1 {
		return NonceID{}, time.Time{}, time.Time{}, false
	}
	issued = time.Unix(0, int64(binary.BigEndian.Uint64(b[1:])))
	expires = issued.Add(s.validity())
	now := s.now()
	if !now.Before(expires) || issued.Sub(now) > maxClockSkew {
		return NonceID{}, time.Time{}, time.Time{}, false
	}
	copy(id[:], b[1+nonceTimeLen:])
	return id, issued, expires, true
}

// Challenges returns the challenges for a response to r: one per offered
// algorithm, in order of preference, each with a fresh nonce. With stale,
// they carry stale=true. Send them as WWW-Authenticate headers with a 401
// (Proxy-Authenticate with a 407 for a Proxy server), one header each.
func (s *Server) Challenges(r *Request, stale bool) ([]*Challenge, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	var addr netip.Addr
	if r != nil {
		addr = r.RemoteAddr
	}
	if s.BindAddress && !addr.IsValid() {
		return nil, errors.New("digest: BindAddress needs Request.RemoteAddr")
	}
	var out []*Challenge
	for _, a := range s.algorithms() {
		nonce, err := s.newNonce(a, addr)
		if err != nil {
			return nil, err
		}
		c := &Challenge{Realm: s.Realm, Nonce: nonce, Opaque: s.Opaque, Stale: stale, Algorithm: a, UserHash: s.UserHash}
		if !s.OmitQOP {
			c.QOP = s.qop()
		}
		out = append(out, c)
	}
	return out, nil
}

// Answer is how to answer a request that Verify refused.
type Answer struct {
	Status int    // 401 or 407 with challenges, 400 for malformed credentials, 500 otherwise
	Header string // "WWW-Authenticate" or "Proxy-Authenticate" when there are challenges
	Values []string
}

// Answer returns how to answer r after Verify returned err: a challenge
// (with stale=true after ErrStale or ErrReplay), 400 Bad Request for
// malformed credentials, or 500 for a failure of the credential or replay
// store.
func (s *Server) Answer(r *Request, err error) (Answer, error) {
	switch {
	case errors.Is(err, ErrMalformed):
		return Answer{Status: 400}, nil
	case errors.Is(err, ErrNoCredentials), errors.Is(err, ErrUnauthorized),
		errors.Is(err, ErrStale), errors.Is(err, ErrReplay):
	default:
		return Answer{Status: 500}, nil
	}
	chs, cerr := s.Challenges(r, errors.Is(err, ErrStale) || errors.Is(err, ErrReplay))
	if cerr != nil {
		return Answer{Status: 500}, cerr
	}
	a := Answer{Status: 401, Header: "WWW-Authenticate"}
	if s.Proxy {
		a = Answer{Status: 407, Header: "Proxy-Authenticate"}
	}
	for _, c := range chs {
		a.Values = append(a.Values, c.String())
	}
	return a, nil
}

// Verify checks the Digest credentials of r for the server's realm. It
// returns the authenticated user, or an error that says how to answer
// (see [Server.Answer]): ErrNoCredentials, ErrUnauthorized, ErrStale,
// ErrReplay, an error wrapping ErrMalformed, or a store's error.
//
// The checks: the credentials name an offered algorithm and qop, the
// server's opaque and r.URI; the response matches the stored HA1 (compared
// in constant time; an unknown user costs the same as a wrong password and
// gets the same error); the nonce is one of ours for this algorithm (and
// address), not expired; and its nonce count was not used before. The
// count is recorded only after the response has been verified, so a
// forged request cannot use up a client's counts.
func (s *Server) Verify(ctx context.Context, r *Request) (Result, error) {
	if err := s.init(); err != nil {
		return Result{}, err
	}
	switch {
	case r == nil:
		return Result{}, errors.New("digest: no request")
	case s.BindAddress && !r.RemoteAddr.IsValid():
		return Result{}, errors.New("digest: BindAddress needs Request.RemoteAddr")
	}
	var cred Credentials
	if err := s.credentials(r, &cred); err != nil {
		return Result{}, err
	}
	c := &cred
	alg := c.Algorithm.canonical()
	if !s.offers(alg) || !s.acceptsQOP(c.QOP, alg) ||
		subtle.ConstantTimeCompare([]byte(c.Opaque), []byte(s.Opaque)) != 1 ||
		(c.URI != r.URI && !s.IgnoreURI) || (c.UserHash && !s.UserHash) {
		return Result{}, ErrUnauthorized
	}

	username := c.Username
	var err error
	if c.UserHash {
		username, err = s.Credentials.(UserHashStore).UserByHash(ctx, c.Username, s.Realm, alg)
	}
	var ha1 string
	if err == nil {
		ha1, err = s.Credentials.HA1(ctx, username, s.Realm, alg)
	}
	known := err == nil
	switch {
	case errors.Is(err, ErrUnknownUser):
		ha1 = s.dummyHA1[alg.size()]
	case err != nil:
		return Result{}, err
	}

	in := responseInput{alg: alg, nonce: c.Nonce, cnonce: c.CNonce, nc: c.NC, qop: c.QOP, method: r.Method, uri: c.URI, body: r.Body}
	var sum [maxDigest]byte
	want := in.responseSum(&sum, ha1)
	if !equalHexSum(c.Response, want) || !known || len(ha1) != 2*len(want) {
		return Result{}, ErrUnauthorized
	}

	id, issued, expires, ok := s.checkNonce(c.Nonce, alg, r.RemoteAddr)
	if !ok {
		return Result{}, ErrStale
	}
	fresh, err := s.replay.Use(ctx, id, c.NC, issued, expires)
	switch {
	case err != nil:
		return Result{}, fmt.Errorf("digest: replay store: %w", err)
	case !fresh:
		return Result{}, ErrReplay
	}
	return Result{Username: username, Algorithm: alg, QOP: c.QOP}, nil
}

// credentials finds and parses into c the credentials of r for the
// server's realm.
func (s *Server) credentials(r *Request, c *Credentials) error {
	*c = Credentials{}
	found, used := false, false
	for _, h := range r.Authorization {
		// Parsed straight into c until credentials for the realm are
		// found; any after that only to refuse them. Canonical Digest
		// credentials first, in one pass (see parseCredentials).
		dst := c
		if found {
			dst = new(Credentials)
		} else if used {
			*c = Credentials{} // what an earlier header left
		}
		used = true
		if len(h) > MaxHeaderLength || !parseCanonicalCredentials(dst, h) {
			if !isDigest(h) {
				continue // another scheme's credentials (RFC 8898)
			}
			*dst = Credentials{}
			if err := parseCredentials(dst, h); err != nil {
				return err
			}
		}
		if dst.Realm != s.Realm {
			continue // another hop's credentials
		}
		if found {
			return &SyntaxError{Msg: "several credentials for realm " + s.Realm}
		}
		found = true
	}
	if !found {
		return ErrNoCredentials
	}
	return nil
}

// isDigest reports whether a header value starts with the Digest scheme.
func isDigest(h string) bool {
	p := scanner{s: h}
	p.skipOWS()
	return strings.EqualFold(p.token(), "Digest")
}

func (s *Server) offers(alg Algorithm) bool {
	for _, a := range s.algorithms() {
		if a.canonical() == alg {
			return true
		}
	}
	return false
}

// acceptsQOP reports whether credentials with qop are acceptable: an
// offered qop, or none (RFC 2069) except with a -sess algorithm, which
// needs a cnonce.
func (s *Server) acceptsQOP(qop string, alg Algorithm) bool {
	if qop == "" {
		return !alg.Sess() && !s.RequireQOP
	}
	if s.OmitQOP {
		return false
	}
	for _, q := range s.qop() {
		if strings.EqualFold(q, qop) {
			return true
		}
	}
	return false
}

// Unchallenged reports whether RFC 3261 §22.1 forbids challenging requests
// of method: ACK (accepted on the strength of its INVITE) and CANCEL
// (which cannot be resubmitted). Callers that also exempt other requests,
// such as keep-alive OPTIONS, decide that themselves.
func Unchallenged(method string) bool {
	return method == "ACK" || method == "CANCEL"
}
