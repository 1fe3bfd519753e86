package srtpkeys

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/pion/srtp/v3"
)

// Session is the keying of one negotiated SRTP media stream as seen from
// one end: what it sends with and what it receives with. [Answer],
// [Offer.Accept] and [FromDTLS] return one.
type Session struct {
	// Suite is the negotiated crypto suite.
	Suite Suite

	// Tag is the SDES tag of the accepted attribute; 0 for DTLS-SRTP.
	Tag int

	// Local protects what this end sends; LocalParams are the session
	// parameters this end announced with it.
	Local       MasterKey
	LocalParams SessionParams

	// Remote unprotects what the peer sends; RemoteParams are the
	// session parameters the peer announced with it. RemoteExtra holds
	// any further keys the peer announced, told apart by MKI.
	Remote       MasterKey
	RemoteExtra  []MasterKey
	RemoteParams SessionParams
}

// SendContext returns a pion context that protects what this end sends
// (see [NewContext]; opts are passed on).
func (s *Session) SendContext(opts ...srtp.ContextOption) (*srtp.Context, error) {
	return NewContext(s.Local, &s.LocalParams, opts...)
}

// ReceiveContext returns a pion context, with replay protection, that
// unprotects what the peer sends, holding every key the peer announced.
func (s *Session) ReceiveContext(opts ...srtp.ContextOption) (*srtp.Context, error) {
	c, err := NewContext(s.Remote, &s.RemoteParams, opts...)
	if err != nil {
		return nil, err
	}
	for _, k := range s.RemoteExtra {
		if err := AddKey(c, k); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Offer is an SDES offer this end made: one crypto attribute per suite,
// each with a fresh key of its own.
type Offer struct {
	Crypto []Crypto
}

// NewOffer returns an offer with one attribute per suite, tags 1, 2, … in
// the given order (the order of preference; a suite may appear more than
// once), each with a fresh master key
// read from rand (crypto/rand.Reader when nil). With no suites it offers
// [PionSuites]. The attributes use the minimal form (tag, suite, key), which
// every SDES peer parses.
func NewOffer(rand io.Reader, suites ...Suite) (*Offer, error) {
	if len(suites) == 0 {
		suites = PionSuites()
	}
	o := &Offer{Crypto: make([]Crypto, 0, len(suites))}
	for i, s := range suites {
		k, err := GenerateMasterKey(rand, s)
		if err != nil {
			return nil, err
		}
		o.Crypto = append(o.Crypto, Crypto{Tag: i + 1, Suite: s, Keys: []MasterKey{k}})
	}
	return o, nil
}

// Attributes returns the offer's SDP lines, "a=crypto:1 …" (see
// [Crypto.Attribute]). They hold the real keys.
func (o *Offer) Attributes() ([]string, error) {
	out := make([]string, len(o.Crypto))
	for i := range o.Crypto {
		line, err := o.Crypto[i].Attribute()
		if err != nil {
			return nil, err
		}
		out[i] = line
	}
	return out, nil
}

// Accept checks the peer's answer, an a=crypto attribute in any form
// [ParseCrypto] takes, against the offer and returns the session: the
// answer must echo the tag of an offered attribute, with its suite and the
// same UNENCRYPTED/UNAUTHENTICATED parameters. Local is the key offered
// under that tag; Remote is the answerer's key.
func (o *Offer) Accept(answer string) (*Session, error) {
	a, err := ParseCrypto(answer)
	if err != nil {
		return nil, err
	}
	for i := range o.Crypto {
		c := &o.Crypto[i]
		if c.Tag != a.Tag {
			continue
		}
		if c.Suite != a.Suite {
			return nil, fmt.Errorf("%w: the answer has suite %s for tag %d, offered was %s", ErrNoCommonSuite, a.Suite, a.Tag, c.Suite)
		}
		if !sameProtection(&c.Params, &a.Params) {
			return nil, fmt.Errorf("%w: the answer changes the UNENCRYPTED/UNAUTHENTICATED parameters of tag %d", ErrNoCommonSuite, a.Tag)
		}
		return newSession(c, a), nil
	}
	return nil, fmt.Errorf("%w: the answer's tag %d was not offered", ErrNoCommonSuite, a.Tag)
}

func sameProtection(a, b *SessionParams) bool {
	return a.UnencryptedSRTP == b.UnencryptedSRTP &&
		a.UnencryptedSRTCP == b.UnencryptedSRTCP &&
		a.UnauthenticatedSRTP == b.UnauthenticatedSRTP
}

func newSession(local, remote *Crypto) *Session {
	return &Session{
		Suite:        local.Suite,
		Tag:          local.Tag,
		Local:        local.Keys[0],
		LocalParams:  local.Params,
		Remote:       remote.Keys[0],
		RemoteExtra:  remote.Keys[1:],
		RemoteParams: remote.Params,
	}
}

// AnswerOptions tune [Answer]. The zero value is the safe default.
type AnswerOptions struct {
	// Rand is the source of the answer's key; nil means crypto/rand.Reader.
	Rand io.Reader

	// Suites lists the suites this end accepts; nil means [PionSuites].
	Suites []Suite

	// AllowUnprotected accepts offered attributes that switch off
	// encryption or authentication (UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP,
	// UNAUTHENTICATED_SRTP); by default they are skipped.
	AllowUnprotected bool

	// AllowKDR accepts offered attributes with a key derivation rate
	// (KDR=n). pion/srtp cannot run them, so by default they are skipped.
	AllowKDR bool
}

// Answer answers an SDES offer: offered holds the offer's a=crypto
// attributes (one media section), in any form [ParseCrypto] takes. It picks
// the first offered attribute whose suite is in opts.Suites (RFC 4568
// §7.1.2: the offer's order is the offerer's preference), echoes its tag,
// makes a fresh key for this end, and returns the answer attribute and the
// session.
//
// Attributes with an unknown suite are skipped, as RFC 4568 says; a
// malformed attribute, or two with the same tag, reject the whole offer.
// Attributes that ask for unprotected media or a key derivation rate are
// skipped unless opts allow them. The answer repeats the offer's
// UNENCRYPTED/UNAUTHENTICATED parameters, as RFC 4568 §6.3 requires, and
// no others.
func Answer(offered []string, opts *AnswerOptions) (*Crypto, *Session, error) {
	if opts == nil {
		opts = &AnswerOptions{}
	}
	accept := opts.Suites
	if accept == nil {
		accept = PionSuites()
	}
	var chosen *Crypto
	seen := make(map[int]bool, len(offered))
	for i, line := range offered {
		c, err := ParseCrypto(line)
		if err != nil {
			if isUnknownSuite(err) {
				continue
			}
			return nil, nil, fmt.Errorf("%w (offered attribute %d of %d)", err, i+1, len(offered))
		}
		if seen[c.Tag] {
			return nil, nil, fmt.Errorf("%w: tag %d appears twice in the offer", ErrMalformed, c.Tag)
		}
		seen[c.Tag] = true
		if chosen != nil || !slices.Contains(accept, c.Suite) ||
			(c.Params.Unprotected() && !opts.AllowUnprotected) ||
			(c.Params.KDR != 0 && !opts.AllowKDR) {
			continue
		}
		chosen = c
	}
	if chosen == nil {
		return nil, nil, fmt.Errorf("%w: none of the %d offered attributes is acceptable", ErrNoCommonSuite, len(offered))
	}
	k, err := GenerateMasterKey(opts.Rand, chosen.Suite)
	if err != nil {
		return nil, nil, err
	}
	ans := &Crypto{Tag: chosen.Tag, Suite: chosen.Suite, Keys: []MasterKey{k}}
	ans.Params.UnencryptedSRTP = chosen.Params.UnencryptedSRTP
	ans.Params.UnencryptedSRTCP = chosen.Params.UnencryptedSRTCP
	ans.Params.UnauthenticatedSRTP = chosen.Params.UnauthenticatedSRTP
	return ans, newSession(ans, chosen), nil
}

func isUnknownSuite(err error) bool {
	var se *SuiteError
	return errors.As(err, &se)
}
