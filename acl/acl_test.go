package acl

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ucsec/ucsec/digest"
)

// fixture is a trunk whose digest server knows the application user
// "unity" (a voice-mail system) and the end user "alice", who is not an
// application user.
type fixture struct {
	server *digest.Server
	now    time.Time
}

func newFixture() *fixture {
	f := &fixture{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	users := &digest.MemoryStore{}
	users.AddPassword("unity", "cluster", "vm-secret")
	users.AddPassword("alice", "cluster", "alice-secret")
	f.server = &digest.Server{Realm: "cluster", Credentials: users, Secrets: [][]byte{[]byte("0123456789abcdef0123")},
		Time: func() time.Time { return f.now }}
	return f
}

func (f *fixture) trunk(p TrunkProfile, appUser Accept) *Trunk {
	return &Trunk{Profile: &p, Digest: f.server, Users: UserMap{"unity": {Name: "unity", Accept: appUser}}}
}

// request builds the digest view of r with credentials for user (none
// when user is ""), answering a fresh challenge.
func (f *fixture) request(t *testing.T, r *Request, user, password string, nc uint32) *digest.Request {
	t.Helper()
	dr := &digest.Request{Method: r.Method, URI: "sip:cucm.example.com", RemoteAddr: netip.MustParseAddr("192.0.2.1")}
	if user == "" {
		return dr
	}
	chs, err := f.server.Challenges(dr, false)
	require.NoError(t, err)
	cr, err := digest.Respond(chs[0], digest.RespondOptions{Username: user, Password: password, Method: dr.Method, URI: dr.URI, QOP: "auth", CNonce: "c", NC: nc})
	require.NoError(t, err)
	dr.Authorization = []string{cr.String()}
	return dr
}

var (
	oodRefer     = &Request{Method: "REFER", ReferTo: "<sip:1000@cucm>"}
	oodNotify    = &Request{Method: "NOTIFY", Event: "message-summary"}
	presenceSub  = &Request{Method: "SUBSCRIBE", Event: "Presence;id=1"}
	inviteRepl   = &Request{Method: "INVITE", Replaces: true}
	plainInvite  = &Request{Method: "INVITE"}
	referReplace = &Request{Method: "REFER", ReferTo: "<sip:1000@cucm?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>"}
	all          = Accept{PresenceSubscription: true, OutOfDialogRefer: true, UnsolicitedNotification: true, ReplacesHeader: true}
)

// TestDecisionTable walks the 13 rows of the decision table in doc.go.
func TestDecisionTable(t *testing.T) {
	ctx := context.Background()
	type row struct {
		name      string
		row       int
		profile   TrunkProfile
		appUser   Accept
		req       *Request
		user, pw  string
		prepare   func(f *fixture, dr *digest.Request) // e.g. expire the nonce
		verdict   Verdict
		status    int
		stale     bool
		wantUser  string
		wantClass Class
	}
	digestOn := TrunkProfile{Name: "digest", Accept: all, DigestAuthentication: true}
	appLevel := TrunkProfile{Name: "app", Accept: all, DigestAuthentication: true, ApplicationLevelAuthorization: true}
	rows := []row{
		{name: "ACK passes", row: 1, profile: TrunkProfile{DigestAuthentication: true}, req: &Request{Method: "ACK", InDialog: true}, verdict: Allow},
		{name: "CANCEL passes", row: 1, profile: TrunkProfile{DigestAuthentication: true}, req: &Request{Method: "CANCEL"}, verdict: Allow},
		{name: "REFER without the trunk flag", row: 2, profile: TrunkProfile{DigestAuthentication: true}, req: oodRefer, verdict: Forbid, status: 403, wantClass: OutOfDialogRefer},
		{name: "NOTIFY without the trunk flag, even with credentials", row: 2, profile: TrunkProfile{DigestAuthentication: true}, req: oodNotify, user: "unity", pw: "vm-secret", verdict: Forbid, status: 403, wantClass: UnsolicitedNotify},
		{name: "presence without the flag", row: 2, profile: TrunkProfile{}, req: presenceSub, verdict: Forbid, status: 403, wantClass: Presence},
		{name: "INVITE with Replaces without the flag", row: 2, profile: TrunkProfile{}, req: inviteRepl, verdict: Forbid, status: 403, wantClass: Replaces},
		{name: "digest off", row: 3, profile: TrunkProfile{Accept: all}, req: oodRefer, verdict: Allow, wantClass: OutOfDialogRefer},
		{name: "digest off, other request", row: 3, profile: TrunkProfile{}, req: plainInvite, verdict: Allow},
		{name: "no credentials", row: 4, profile: digestOn, req: oodRefer, verdict: Challenge, status: 401, wantClass: OutOfDialogRefer},
		{name: "malformed credentials", row: 5, profile: digestOn, req: oodRefer, prepare: func(_ *fixture, dr *digest.Request) {
			dr.Authorization = []string{`Digest username="unity"`}
		}, verdict: Reject, status: 400, wantClass: OutOfDialogRefer},
		{name: "wrong password", row: 6, profile: digestOn, req: oodRefer, user: "unity", pw: "guess", verdict: Challenge, status: 401, wantClass: OutOfDialogRefer},
		{name: "unknown user", row: 6, profile: digestOn, req: oodRefer, user: "mallory", pw: "vm-secret", verdict: Challenge, status: 401, wantClass: OutOfDialogRefer},
		{name: "expired nonce", row: 7, profile: digestOn, req: oodRefer, user: "unity", pw: "vm-secret", prepare: func(f *fixture, _ *digest.Request) {
			f.now = f.now.Add(601 * time.Second)
		}, verdict: Challenge, status: 401, stale: true, wantClass: OutOfDialogRefer},
		{name: "replayed request", row: 8, profile: digestOn, req: oodRefer, user: "unity", pw: "vm-secret", prepare: func(f *fixture, dr *digest.Request) {
			_, err := f.server.Verify(context.Background(), dr)
			if err != nil {
				panic(err)
			}
		}, verdict: Challenge, status: 401, stale: true, wantClass: OutOfDialogRefer},
		{name: "other request, app level on", row: 9, profile: appLevel, req: plainInvite, user: "alice", pw: "alice-secret", verdict: Allow, wantUser: "alice"},
		{name: "flag on, app level off", row: 10, profile: digestOn, req: oodRefer, user: "alice", pw: "alice-secret", verdict: Allow, wantUser: "alice", wantClass: OutOfDialogRefer},
		{name: "not an application user", row: 11, profile: appLevel, appUser: all, req: oodRefer, user: "alice", pw: "alice-secret", verdict: Forbid, status: 403, wantUser: "alice", wantClass: OutOfDialogRefer},
		{name: "application user without the flag", row: 12, profile: appLevel, appUser: Accept{UnsolicitedNotification: true}, req: oodRefer, user: "unity", pw: "vm-secret", verdict: Forbid, status: 403, wantUser: "unity", wantClass: OutOfDialogRefer},
		{name: "application user with the flag", row: 13, profile: appLevel, appUser: Accept{UnsolicitedNotification: true}, req: oodNotify, user: "unity", pw: "vm-secret", verdict: Allow, wantUser: "unity", wantClass: UnsolicitedNotify},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			f := newFixture()
			tr := f.trunk(r.profile, r.appUser)
			dr := f.request(t, r.req, r.user, r.pw, 1)
			if r.prepare != nil {
				r.prepare(f, dr)
			}
			d, err := tr.Authorize(ctx, r.req, dr)
			require.NoError(t, err)
			assert.Equal(t, r.row, d.Row, d.Reason)
			assert.Equal(t, r.verdict, d.Verdict, d.Reason)
			assert.Equal(t, r.status, d.Status)
			assert.Equal(t, r.wantUser, d.User)
			assert.Equal(t, r.wantClass, d.Class)
			assert.NotEmpty(t, d.Reason)
			if r.verdict == Challenge {
				assert.Equal(t, "WWW-Authenticate", d.Header)
				require.NotEmpty(t, d.Challenges)
				chs, err := digest.ParseChallenges(d.Challenges[0])
				require.NoError(t, err)
				assert.Equal(t, r.stale, chs[0].Stale)
			} else {
				assert.Empty(t, d.Challenges)
			}
		})
	}
}

// TestCombinations: a request of two kinds needs both flags, on the trunk
// and on the application user.
func TestCombinations(t *testing.T) {
	ctx := context.Background()
	oodReferReplaces := &Request{Method: "REFER", Replaces: true}
	assert.Equal(t, OutOfDialogRefer|Replaces, Classify(oodReferReplaces))

	f := newFixture()
	d, err := f.trunk(TrunkProfile{Accept: Accept{OutOfDialogRefer: true}}, Accept{}).Authorize(ctx, oodReferReplaces, nil)
	require.NoError(t, err)
	assert.Equal(t, Forbid, d.Verdict)
	assert.Equal(t, Replaces, d.Missing, "only the missing kind is named")

	d, err = f.trunk(TrunkProfile{Accept: Accept{OutOfDialogRefer: true, ReplacesHeader: true}}, Accept{}).Authorize(ctx, oodReferReplaces, nil)
	require.NoError(t, err)
	assert.Equal(t, Allow, d.Verdict)

	app := TrunkProfile{Accept: all, DigestAuthentication: true, ApplicationLevelAuthorization: true}
	dr := f.request(t, oodReferReplaces, "unity", "vm-secret", 1)
	d, err = f.trunk(app, Accept{OutOfDialogRefer: true}).Authorize(ctx, oodReferReplaces, dr)
	require.NoError(t, err)
	assert.Equal(t, 12, d.Row)
	assert.Equal(t, Replaces, d.Missing)

	dr = f.request(t, oodReferReplaces, "unity", "vm-secret", 1)
	d, err = f.trunk(app, Accept{OutOfDialogRefer: true, ReplacesHeader: true}).Authorize(ctx, oodReferReplaces, dr)
	require.NoError(t, err)
	assert.Equal(t, 13, d.Row)
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		r    *Request
		want Class
	}{
		{&Request{Method: "SUBSCRIBE", Event: "presence"}, Presence},
		{&Request{Method: "subscribe", Event: " PRESENCE ; id=5"}, Presence},
		{&Request{Method: "SUBSCRIBE", Event: "presence", InDialog: true}, 0},
		{&Request{Method: "SUBSCRIBE", Event: "dialog"}, 0},
		{&Request{Method: "SUBSCRIBE", Event: "presence.winfo"}, 0},
		{&Request{Method: "SUBSCRIBE", Event: "dialog, presence;id=2"}, Presence},
		{&Request{Method: "REFER"}, OutOfDialogRefer},
		{&Request{Method: "REFER", InDialog: true}, 0},
		{referReplace, OutOfDialogRefer | Replaces},
		{&Request{Method: "REFER", InDialog: true, ReferTo: "<sip:a@b?replaces=x>"}, Replaces},
		{&Request{Method: "REFER", ReferTo: "<sip:a@b;transport=tcp?Subject=Replaces>"}, OutOfDialogRefer},
		{&Request{Method: "REFER", ReferTo: "<sip:a@b?X=1&Replaces=y>"}, OutOfDialogRefer | Replaces},
		{&Request{Method: "REFER", ReferTo: "<sip:a@b>;x=?Replaces=z"}, OutOfDialogRefer},
		{&Request{Method: "REFER", ReferTo: `"a<b>" <sip:1002@h?Replaces=abc>`}, OutOfDialogRefer | Replaces},
		{&Request{Method: "REFER", ReferTo: `"a\"<b>" <sip:1002@h?Replaces=abc>`}, OutOfDialogRefer | Replaces},
		{&Request{Method: "REFER", ReferTo: `<sip:1002@h?%52eplaces=abc>`}, OutOfDialogRefer | Replaces},
		{&Request{Method: "REFER", ReferTo: `"unterminated <sip:1002@h>`}, OutOfDialogRefer | Replaces},
		{&Request{Method: "NOTIFY", Event: "message-summary"}, UnsolicitedNotify},
		{&Request{Method: "NOTIFY", InDialog: true}, 0},
		{&Request{Method: "INVITE", Replaces: true}, Replaces},
		{&Request{Method: "INVITE", InDialog: true, Replaces: true}, Replaces},
		{&Request{Method: "ACK", Replaces: true}, 0},
		{&Request{Method: "OPTIONS"}, 0},
	} {
		assert.Equal(t, c.want, Classify(c.r), "%+v", c.r)
	}
	assert.Equal(t, "other", Class(0).String())
	assert.Equal(t, "out-of-dialog REFER+Replaces header", (OutOfDialogRefer | Replaces).String())
}

func TestProfileValidation(t *testing.T) {
	bad := &TrunkProfile{Name: "x", ApplicationLevelAuthorization: true}
	require.ErrorIs(t, bad.Validate(), ErrInvalidProfile)
	_, err := (&Trunk{Profile: bad}).Authorize(context.Background(), plainInvite, nil)
	require.ErrorIs(t, err, ErrInvalidProfile)
	require.ErrorIs(t, (&TrunkProfile{NonceValidity: -1}).Validate(), ErrInvalidProfile)
	require.NoError(t, (&TrunkProfile{DigestAuthentication: true, ApplicationLevelAuthorization: true}).Validate())

	_, err = (&Trunk{}).Authorize(context.Background(), plainInvite, nil)
	assert.Error(t, err)
	_, err = (&Trunk{Profile: &TrunkProfile{DigestAuthentication: true}}).Authorize(context.Background(), plainInvite, &digest.Request{})
	assert.ErrorContains(t, err, "Trunk.Digest")
	f := newFixture()
	tr := &Trunk{Profile: &TrunkProfile{Accept: all, DigestAuthentication: true, ApplicationLevelAuthorization: true}, Digest: f.server}
	_, err = tr.Authorize(context.Background(), oodRefer, f.request(t, oodRefer, "unity", "vm-secret", 1))
	assert.ErrorContains(t, err, "Trunk.Users")
}

type failingUsers struct{}

var errDirectory = errors.New("directory down")

func (failingUsers) ApplicationUser(context.Context, string) (*ApplicationUser, error) {
	return nil, errDirectory
}

func TestStoreErrors(t *testing.T) {
	f := newFixture()
	tr := &Trunk{Profile: &TrunkProfile{Accept: all, DigestAuthentication: true, ApplicationLevelAuthorization: true},
		Digest: f.server, Users: failingUsers{}}
	_, err := tr.Authorize(context.Background(), oodRefer, f.request(t, oodRefer, "unity", "vm-secret", 1))
	require.ErrorIs(t, err, errDirectory)
}

// TestProxyChallenge: behind a proxy-style digest server the challenge is
// a 407.
func TestProxyChallenge(t *testing.T) {
	f := newFixture()
	f.server.Proxy = true
	d, err := f.trunk(TrunkProfile{Accept: all, DigestAuthentication: true}, Accept{}).Authorize(context.Background(), oodRefer, f.request(t, oodRefer, "", "", 0))
	require.NoError(t, err)
	assert.Equal(t, 407, d.Status)
	assert.Equal(t, "Proxy-Authenticate", d.Header)
}

func TestVerdictString(t *testing.T) {
	assert.Equal(t, "allow", Allow.String())
	assert.Equal(t, "forbid", Forbid.String())
	assert.Equal(t, "Verdict(9)", Verdict(9).String())
}
