package srtpkeys

import (
	"bytes"
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
// same UNENCRYPTED/UNAUTHENTICATED parameters, and its keys must differ
// (in key and in salt) from every key of the offer, so that an answer that
// reflects the offer back cannot make one key serve both directions. Local
// is the key offered under that tag; Remote is the answerer's key.
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
		for j := range o.Crypto {
			if reusesKey(&o.Crypto[j], a) {
				return nil, fmt.Errorf("%w: the answer reuses a key of the offer", ErrNoCommonSuite)
			}
		}
		return newSession(c, a), nil
	}
	return nil, fmt.Errorf("%w: the answer's tag %d was not offered", ErrNoCommonSuite, a.Tag)
}

// reusesKey reports whether any key of a shares its key or its salt with
// any key of b (keys of suites with other lengths never match).
func reusesKey(a, b *Crypto) bool {
	for _, ka := range append(a.Keys, a.Params.FECKey...) {
		for _, kb := range append(b.Keys, b.Params.FECKey...) {
			if !distinctKeys(ka, kb) {
				return true
			}
		}
	}
	return false
}

func sameProtection(a, b *SessionParams) bool {
	return a.UnencryptedSRTP == b.UnencryptedSRTP &&
		a.UnencryptedSRTCP == b.UnencryptedSRTCP &&
		a.UnauthenticatedSRTP == b.UnauthenticatedSRTP
}

// newSession builds a Session that shares no slice with local or remote.
func newSession(local, remote *Crypto) *Session {
	return &Session{
		Suite:        local.Suite,
		Tag:          local.Tag,
		Local:        cloneKey(local.Keys[0]),
		LocalParams:  cloneParams(local.Params),
		Remote:       cloneKey(remote.Keys[0]),
		RemoteExtra:  cloneKeys(remote.Keys[1:]),
		RemoteParams: cloneParams(remote.Params),
	}
}

// cloneKey copies k's MKI; the key bytes are immutable and may be shared.
func cloneKey(k MasterKey) MasterKey {
	k.MKI = bytes.Clone(k.MKI)
	return k
}

func cloneKeys(keys []MasterKey) []MasterKey {
	if len(keys) == 0 {
		return nil
	}
	out := make([]MasterKey, len(keys))
	for i, k := range keys {
		out[i] = cloneKey(k)
	}
	return out
}

func cloneParams(p SessionParams) SessionParams {
	p.FECKey = cloneKeys(p.FECKey)
	p.Extensions = slices.Clone(p.Extensions)
	return p
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
// Attributes this end cannot use are skipped, as RFC 4568 lets an answerer
// do: an unknown suite, a malformed attribute, an unknown session
// parameter, and (unless opts allow them) unprotected media or a key
// derivation rate. Two attributes with the same tag (read as ParseCrypto
// reads it, even on lines otherwise unusable) reject the whole offer.
// When nothing is acceptable the error wraps [ErrNoCommonSuite] and says
// why the first unusable attribute was refused. The answer repeats the
// offer's UNENCRYPTED/UNAUTHENTICATED parameters, as RFC 4568 §6.3
// requires, and no others.
func Answer(offered []string, opts *AnswerOptions) (*Crypto, *Session, error) {
	if opts == nil {
		opts = &AnswerOptions{}
	}
	accept := opts.Suites
	if accept == nil {
		accept = PionSuites()
	}
	var (
		chosen   *Crypto
		firstErr error
	)
	seen := make(map[int]bool, len(offered))
	for i, line := range offered {
		if tag, ok := leadingTag(line); ok {
			if seen[tag] {
				return nil, nil, fmt.Errorf("%w: tag %d appears twice in the offer", ErrMalformed, tag)
			}
			seen[tag] = true
		}
		c, err := ParseCrypto(line)
		if err != nil {
			if firstErr == nil {
				firstErr = &lineError{line: i + 1, of: len(offered), err: err}
			}
			continue
		}
		var why string
		switch {
		case !slices.Contains(accept, c.Suite):
			why = "suite " + c.Suite.String() + " is not accepted"
		case c.Params.Unprotected() && !opts.AllowUnprotected:
			why = "it switches off encryption or authentication"
		case c.Params.KDR != 0 && !opts.AllowKDR:
			why = "it asks for a key derivation rate"
		}
		if why != "" {
			if firstErr == nil {
				firstErr = &lineError{line: i + 1, of: len(offered), err: errors.New(why)}
			}
			continue
		}
		if chosen == nil {
			chosen = c
		}
	}
	if chosen == nil {
		if firstErr == nil {
			return nil, nil, fmt.Errorf("%w: the offer has no attributes", ErrNoCommonSuite)
		}
		return nil, nil, fmt.Errorf("%w: none of the %d offered attributes is acceptable (%w)", ErrNoCommonSuite, len(offered), firstErr)
	}
	k, err := GenerateMasterKey(opts.Rand, chosen.Suite)
	if err != nil {
		return nil, nil, err
	}
	ans := &Crypto{Tag: chosen.Tag, Suite: chosen.Suite, Keys: []MasterKey{k}}
	if reusesKey(ans, chosen) {
		return nil, nil, fmt.Errorf("%w: the new key equals an offered one", ErrRandom)
	}
	ans.Params.UnencryptedSRTP = chosen.Params.UnencryptedSRTP
	ans.Params.UnencryptedSRTCP = chosen.Params.UnencryptedSRTCP
	ans.Params.UnauthenticatedSRTP = chosen.Params.UnauthenticatedSRTP
	return ans, newSession(ans, chosen), nil
}

// leadingTag reads the tag of an a=crypto attribute with ParseCrypto's own
// tokenizer, without parsing the rest, so duplicate tags are found even on
// lines that are otherwise unusable, however they are spaced.
func leadingTag(line string) (int, bool) {
	p := newCryptoParser(line)
	tag, err := p.tag()
	return tag, err == nil
}

// lineError says which offered attribute was refused and why.
type lineError struct {
	line, of int
	err      error
}

func (e *lineError) Error() string {
	return fmt.Sprintf("offered attribute %d of %d: %v", e.line, e.of, e.err)
}

func (e *lineError) Unwrap() error { return e.err }
