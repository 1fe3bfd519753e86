package srtpkeys

import (
	"fmt"
	"strconv"

	"github.com/pion/srtp/v3"
)

// DefaultReplayWindow is the replay window, in packets, that [NewContext]
// gives SRTP and SRTCP when the session parameters carry no larger window
// size hint. It is RFC 3711's minimum (§3.3.2).
const DefaultReplayWindow = 64

// MaxReplayWindow caps the replay window a window size hint (WSH) from the
// peer can ask for. pion builds a receiver's replay detector for a new
// SSRC before it authenticates the packet, so a large window would make
// every forged packet with a fresh SSRC cost the receiver memory and time.
const MaxReplayWindow = 1024

// NewContext returns a pion/srtp context for one direction of a stream
// keyed with k. p holds the stream's session parameters (nil for none) and
// opts are further pion options, applied after this package's, so they
// can override them.
//
// Unlike a bare srtp.CreateContext, the context has replay protection on
// for SRTP and SRTCP, with a window of DefaultReplayWindow packets or the
// peer's WSH hint, whichever is larger (up to MaxReplayWindow). Pass
// srtp.SRTPNoReplayProtection() in opts to turn it off. The MKI of k, if
// any, is what the context sends and accepts; add further keys with
// [AddKey]. UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP and UNAUTHENTICATED_SRTP in
// p switch off encryption or authentication as RFC 4568 §6.3 says.
//
// pion cannot run the AES-192 suites nor a key derivation rate other than 0;
// both give a *[PionError] wrapping [ErrPionUnsupported]. pion does not
// enforce k.Lifetime either: a caller that needs it must count packets and
// rekey itself (pion stops only at the index limits, 2^48 SRTP and 2^31
// SRTCP packets).
func NewContext(k MasterKey, p *SessionParams, opts ...srtp.ContextOption) (*srtp.Context, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	profile, err := k.Suite.PionProfile()
	if err != nil {
		return nil, err
	}
	m := k.m
	key, salt := m.b[:m.klen], m.b[m.klen:m.klen+m.slen]
	if p == nil && k.MKI == nil && len(opts) == 0 {
		// The common case: exactly the call a caller would write by hand.
		return createContext(key, salt, profile,
			srtp.SRTPReplayProtection(DefaultReplayWindow), srtp.SRTCPReplayProtection(DefaultReplayWindow))
	}
	window := uint(DefaultReplayWindow)
	all := make([]srtp.ContextOption, 0, 6+len(opts))
	if p != nil {
		if p.KDR != 0 {
			return nil, &PionError{What: "key derivation rate " + strconv.FormatUint(p.KDR, 10) + " (only 0, derive once)"}
		}
		if p.UnauthenticatedSRTP && k.Suite.AEAD() {
			return nil, fmt.Errorf("%w: UNAUTHENTICATED_SRTP is not allowed with an AEAD suite (RFC 7714)", ErrMalformed)
		}
		if p.WSH > DefaultReplayWindow {
			window = uint(min(p.WSH, MaxReplayWindow))
		}
		if p.UnencryptedSRTP {
			all = append(all, srtp.SRTPNoEncryption())
		}
		if p.UnencryptedSRTCP {
			all = append(all, srtp.SRTCPNoEncryption())
		}
		if p.UnauthenticatedSRTP {
			all = append(all, srtp.SRTPAuthenticationTagLength(0))
		}
	}
	all = append(all, srtp.SRTPReplayProtection(window), srtp.SRTCPReplayProtection(window))
	if k.MKI != nil {
		all = append(all, srtp.MasterKeyIndicator(k.MKI))
	}
	all = append(all, opts...)
	return createContext(key, salt, profile, all...)
}

func createContext(key, salt []byte, profile srtp.ProtectionProfile, opts ...srtp.ContextOption) (*srtp.Context, error) {
	c, err := srtp.CreateContext(key, salt, profile, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrContext, err)
	}
	return c, nil
}

// AddKey adds k to a context built by [NewContext] as a further key,
// selected by its MKI: a receiver accepts packets under every key added;
// a sender switches with c.SetSendMKI(k.MKI). k needs an MKI of the same
// length as the context's, and the context's suite: pion does not expose
// a context's suite, so AddKey cannot check it, and a key of another suite
// with the same lengths (a _32 key on an _80 context) is taken as the
// context's suite.
func AddKey(c *srtp.Context, k MasterKey) error {
	if err := k.check(); err != nil {
		return err
	}
	if k.MKI == nil {
		return keyErr("a further key needs an MKI")
	}
	m := k.m
	if err := c.AddCipherForMKI(k.MKI, m.b[:m.klen], m.b[m.klen:m.klen+m.slen]); err != nil {
		return fmt.Errorf("%w: %w", ErrContext, err)
	}
	return nil
}
