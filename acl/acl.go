package acl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ucsec/ucsec/digest"
)

// Accept holds the four accept flags that a SIP trunk security profile
// and an application user each have.
type Accept struct {
	PresenceSubscription    bool // "Accept Presence Subscription"
	OutOfDialogRefer        bool // "Accept Out-of-Dialog REFER"
	UnsolicitedNotification bool // "Accept Unsolicited Notification"
	ReplacesHeader          bool // "Accept Replaces Header"
}

// classes returns the kinds the flags accept.
func (a Accept) classes() Class {
	var c Class
	if a.PresenceSubscription {
		c |= Presence
	}
	if a.OutOfDialogRefer {
		c |= OutOfDialogRefer
	}
	if a.UnsolicitedNotification {
		c |= UnsolicitedNotify
	}
	if a.ReplacesHeader {
		c |= Replaces
	}
	return c
}

// Allows reports whether the flags accept every kind in c.
func (a Accept) Allows(c Class) bool { return c&^a.classes() == 0 }

// TrunkProfile is the authorization part of a CUCM SIP trunk security
// profile.
type TrunkProfile struct {
	Name string

	// Accept are the profile's four accept flags. A request of a kind
	// whose flag is off is refused with 403, before any challenge.
	Accept Accept

	// DigestAuthentication challenges every request from the trunk
	// ("Enable Digest Authentication").
	DigestAuthentication bool

	// NonceValidity is the digest nonce validity time; zero means 600 s.
	// Give it to the digest.Server that authenticates the trunk.
	NonceValidity time.Duration

	// ApplicationLevelAuthorization also requires the authenticated
	// application user to accept the request's kinds ("Enable
	// Application Level Authorization"). It needs DigestAuthentication.
	ApplicationLevelAuthorization bool
}

// ErrInvalidProfile is wrapped by the errors of TrunkProfile.Validate.
var ErrInvalidProfile = errors.New("acl: invalid trunk security profile")

// Validate reports whether the profile is one CUCM accepts: application
// level authorization needs digest authentication, and the nonce validity
// is not negative.
func (p *TrunkProfile) Validate() error {
	switch {
	case p.ApplicationLevelAuthorization && !p.DigestAuthentication:
		return fmt.Errorf("%w %q: application level authorization requires digest authentication", ErrInvalidProfile, p.Name)
	case p.NonceValidity < 0:
		return fmt.Errorf("%w %q: negative nonce validity", ErrInvalidProfile, p.Name)
	}
	return nil
}

// ApplicationUser is the authorization part of a CUCM application user:
// the same four accept flags as a trunk profile.
type ApplicationUser struct {
	Name   string
	Accept Accept
}

// An Authenticator verifies digest credentials and makes challenges: a
// *digest.Server.
type Authenticator interface {
	Verify(ctx context.Context, r *digest.Request) (digest.Result, error)
	Answer(r *digest.Request, err error) (digest.Answer, error)
}

// ApplicationUsers finds application users by the name they authenticate
// with. It returns nil (and no error) for a name that is not an
// application user.
type ApplicationUsers interface {
	ApplicationUser(ctx context.Context, name string) (*ApplicationUser, error)
}

// UserMap is an ApplicationUsers in a map, keyed by name.
type UserMap map[string]*ApplicationUser

// ApplicationUser implements ApplicationUsers.
func (m UserMap) ApplicationUser(_ context.Context, name string) (*ApplicationUser, error) {
	return m[name], nil
}

// Verdict is the outcome of an authorization.
type Verdict uint8

// Verdicts.
const (
	Allow     Verdict = iota + 1 // process the request
	Challenge                    // answer 401 (or 407) with the challenges
	Forbid                       // answer 403 Forbidden
	Reject                       // answer 400 Bad Request (malformed credentials)
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Challenge:
		return "challenge"
	case Forbid:
		return "forbid"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Decision is what to do with a request.
type Decision struct {
	Verdict Verdict
	// Status is the SIP status to answer with: 0 for Allow, else 401 or
	// 407, 403 or 400.
	Status int
	// Header and Challenges are the challenge header name
	// (WWW-Authenticate or Proxy-Authenticate) and values, for Challenge.
	Header     string
	Challenges []string
	// Class is the request's kinds.
	Class Class
	// Missing is, for a Forbid by the trunk profile or the application
	// user, the kinds it does not accept.
	Missing Class
	// User is the authenticated digest user, if any.
	User string
	// Row is the row of the decision table (see the package
	// documentation) that decided, for logs and tests.
	Row int
	// Reason says why, for logs, as a constant text (refusals stay cheap
	// under a flood); with Row, Class, Missing and User it tells the whole
	// story. It is not meant for the peer.
	Reason string
}

// Trunk authorizes the requests of one SIP trunk. Set its fields before
// first use; it is then safe for concurrent use if its Digest and Users
// are.
type Trunk struct {
	Profile *TrunkProfile
	// Digest authenticates requests; required with DigestAuthentication.
	Digest Authenticator
	// Users finds application users; required with
	// ApplicationLevelAuthorization.
	Users ApplicationUsers
}

// Authorize decides what to do with a request from the trunk, following
// CUCM's order (the decision table of the package documentation): ACK and
// CANCEL pass; a request of a kind the profile does not accept is
// forbidden without a challenge; with
// digest authentication, the request must carry valid credentials (else a
// challenge, stale after an expired nonce or a replay, or 400 for
// malformed credentials); with application level authorization, the
// authenticated user must be an application user that accepts the
// request's kinds too. Other requests (INVITE, in-dialog requests) are
// authorized by calling search spaces, not here; see
// [CallingSearchSpace].
//
// dr carries the request's digest view (method, Request-URI, body,
// Authorization values, remote address); it is used only with digest
// authentication. The error is for failures of the digest or user
// stores; a refusal is a Decision, not an error.
func (t *Trunk) Authorize(ctx context.Context, r *Request, dr *digest.Request) (Decision, error) {
	p := t.Profile
	if p == nil {
		return Decision{}, errors.New("acl: Trunk.Profile is required")
	}
	if err := p.Validate(); err != nil {
		return Decision{}, err
	}
	c := Classify(r)
	d := Decision{Class: c}
	if digest.Unchallenged(r.Method) {
		return d.allow(1, "never challenged (RFC 3261 §22.1)"), nil
	}
	if !p.Accept.Allows(c) {
		d.Missing = c &^ p.Accept.classes()
		return d.forbid(2, "the trunk profile does not accept the request's kinds (see Missing)"), nil
	}
	if !p.DigestAuthentication {
		return d.allow(3, "digest authentication off"), nil
	}
	if t.Digest == nil {
		return Decision{}, errors.New("acl: Trunk.Digest is required with digest authentication")
	}
	res, err := t.Digest.Verify(ctx, dr)
	if err != nil {
		return t.refuse(d, dr, err)
	}
	if res.Username == "" {
		return Decision{}, errors.New("acl: the Authenticator returned neither a user nor an error")
	}
	d.User = res.Username
	switch {
	case c == 0:
		return d.allow(9, "authenticated; application level authorization covers only the four request kinds"), nil
	case !p.ApplicationLevelAuthorization:
		return d.allow(10, "authenticated; application level authorization off"), nil
	}
	if t.Users == nil {
		return Decision{}, errors.New("acl: Trunk.Users is required with application level authorization")
	}
	u, err := t.Users.ApplicationUser(ctx, res.Username)
	switch {
	case err != nil:
		return Decision{}, fmt.Errorf("acl: looking up application user: %w", err)
	case u == nil:
		return d.forbid(11, "the authenticated user is not an application user"), nil
	case !u.Accept.Allows(c):
		d.Missing = c &^ u.Accept.classes()
		return d.forbid(12, "the application user does not accept the request's kinds (see Missing)"), nil
	}
	return d.allow(13, "the application user accepts the request's kinds"), nil
}

// refuse turns a digest verification error into a decision.
func (t *Trunk) refuse(d Decision, dr *digest.Request, verr error) (Decision, error) {
	a, err := t.Digest.Answer(dr, verr)
	if err != nil {
		return Decision{}, fmt.Errorf("acl: making a challenge: %w", err)
	}
	d.Reason = verr.Error()
	switch {
	case errors.Is(verr, digest.ErrMalformed):
		d.Verdict, d.Status, d.Row = Reject, 400, 5
		return d, nil
	case a.Status != 401 && a.Status != 407:
		return Decision{}, fmt.Errorf("acl: digest verification: %w", verr)
	}
	d.Verdict, d.Status, d.Header, d.Challenges = Challenge, a.Status, a.Header, a.Values
	switch {
	case errors.Is(verr, digest.ErrNoCredentials):
		d.Row = 4
	case errors.Is(verr, digest.ErrStale):
		d.Row = 7
	case errors.Is(verr, digest.ErrReplay):
		d.Row = 8
	default:
		d.Row = 6
	}
	return d, nil
}

func (d Decision) allow(row int, reason string) Decision {
	d.Verdict, d.Row, d.Reason = Allow, row, reason
	return d
}

func (d Decision) forbid(row int, reason string) Decision {
	d.Verdict, d.Status, d.Row, d.Reason = Forbid, 403, row, reason
	return d
}
