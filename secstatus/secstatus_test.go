package secstatus

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var mixed = &Options{MixedMode: true}

func TestLevel(t *testing.T) {
	for i, n := range []string{"Unknown", "NotAuthenticated", "Authenticated", "Encrypted"} {
		l := Level(i)
		assert.Equal(t, n, l.String())
		got, ok := ParseLevel(" " + n + "\t")
		assert.True(t, ok)
		assert.Equal(t, l, got)
		var u Level
		require.NoError(t, u.UnmarshalText([]byte("  "+n)))
		assert.Equal(t, l, u)
	}
	got, ok := ParseLevel("eNcRyPtEd")
	assert.True(t, ok)
	assert.Equal(t, Encrypted, got)
	for _, bad := range []string{"", "Bogus", "Encrypted!", "Encrypteſ"} {
		l, ok := ParseLevel(bad)
		assert.False(t, ok, bad)
		assert.Equal(t, Unknown, l)
		var u Level
		assert.ErrorIs(t, u.UnmarshalText([]byte(bad)), ErrInvalid)
	}
	assert.Equal(t, "Level(9)", Level(9).String())
	_, err := Level(9).MarshalText()
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, Unknown, Min())
	assert.Equal(t, Authenticated, Min(Encrypted, Authenticated, Encrypted))
	assert.True(t, Unknown < NotAuthenticated && NotAuthenticated < Authenticated && Authenticated < Encrypted)
}

// TestTable4 walks the Security overview's Table 4 row by row for both
// display kinds, and the BFCP override.
func TestTable4(t *testing.T) {
	for _, r := range []struct {
		row                             string
		auth, audio, video, videoSecure bool
		both, lockOnly                  Icon
	}{
		{"I1", false, true, false, false, IconLock, IconLock},
		{"I1 auth", true, true, false, false, IconLock, IconLock},
		{"I2", true, true, true, false, IconShield, IconNone},
		{"I2 no auth flag", false, true, true, false, IconShield, IconNone},
		{"I3", true, true, true, true, IconLock, IconLock},
		{"I4", true, false, false, false, IconShield, IconNone},
		{"I5", true, false, true, false, IconShield, IconNone},
		{"I6", false, false, false, false, IconNone, IconNone},
		{"I7", false, false, true, false, IconNone, IconNone},
	} {
		m := Media{Authenticated: r.auth, AudioSecure: r.audio, Video: r.video, VideoSecure: r.videoSecure}
		assert.Equal(t, r.both, IconFor(m, ShieldAndLock, false), "%s shield-and-lock", r.row)
		assert.Equal(t, r.lockOnly, IconFor(m, LockOnly, false), "%s lock-only", r.row)
	}
	// I8: secure audio shows the lock whatever the video, with the override.
	m := Media{Authenticated: true, AudioSecure: true, Video: true}
	assert.Equal(t, IconLock, IconFor(m, ShieldAndLock, true))
	assert.Equal(t, IconLock, IconFor(m, LockOnly, true))
	assert.Equal(t, IconShield, IconFor(Media{Authenticated: true, Video: true}, ShieldAndLock, true), "no secure audio, no lock")

	assert.Equal(t, IconLock, LevelIcon(Encrypted, LockOnly))
	assert.Equal(t, IconShield, LevelIcon(Authenticated, ShieldAndLock))
	assert.Equal(t, IconNone, LevelIcon(Authenticated, LockOnly))
	assert.Equal(t, IconNone, LevelIcon(NotAuthenticated, ShieldAndLock))
	assert.Equal(t, IconNone, LevelIcon(Unknown, ShieldAndLock))
}

func enc(name string) Device {
	return Device{Name: name, Mode: ModeEncrypted, AudioSRTP: true}
}

func eval(t *testing.T, c *Call, o *Options) *Result {
	t.Helper()
	r, err := Evaluate(c, o)
	require.NoError(t, err)
	return r
}

// TestDeviceRules covers the device rules, D1–D9.
func TestDeviceRules(t *testing.T) {
	for _, c := range []struct {
		rule string
		d    Device
		o    *Options
		want Level
	}{
		{"D1 non-secure cluster", enc("a"), &Options{}, NotAuthenticated},
		{"D1 nil options", enc("a"), nil, NotAuthenticated},
		{"D2 non-secure mode", Device{Mode: ModeNonSecure, AudioSRTP: true}, mixed, NotAuthenticated},
		{"D3 authenticated mode", Device{Mode: ModeAuthenticated}, mixed, Authenticated},
		{"D3 authenticated mode ignores SRTP", Device{Mode: ModeAuthenticated, AudioSRTP: true}, mixed, Authenticated},
		{"D4 encrypted with SRTP", enc("a"), mixed, Encrypted},
		{"D5 encrypted, RTP fallback", Device{Mode: ModeEncrypted}, mixed, Authenticated},
		{"D6 untrusted", Device{Mode: ModeEncrypted, AudioSRTP: true, Untrusted: true}, mixed, NotAuthenticated},
		{"D9 SIP without sis 2.0.0", Device{Mode: ModeEncrypted, AudioSRTP: true, NoSIS2: true}, mixed, Authenticated},
	} {
		r := eval(t, &Call{Devices: []Device{c.d}}, c.o)
		assert.Equal(t, c.want, r.Level, c.rule)
		assert.Equal(t, c.want, r.Devices[0].Leg, c.rule)
		assert.NotEmpty(t, r.Devices[0].Reason, c.rule)
	}
	// D7: old firmware joins a conference as authenticated at most.
	old := enc("old")
	old.LegacyFirmware = true
	assert.Equal(t, Encrypted, eval(t, &Call{Devices: []Device{old}}, mixed).Level, "two-party calls are unaffected")
	conf := &Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), old}}
	r, err := conf.Evaluate(mixed)
	require.NoError(t, err)
	assert.Equal(t, Authenticated, r.Level)
	assert.Contains(t, r.Reason, "firmware")
}

// TestCallRules covers the call rules, R1–R10 and R14.
func TestCallRules(t *testing.T) {
	// R1: the least of every endpoint; R14: every device shows the call's
	// level, not its own leg's.
	r := eval(t, &Call{Devices: []Device{enc("a"), {Name: "b", Mode: ModeAuthenticated}}}, mixed)
	assert.Equal(t, Authenticated, r.Level)
	assert.Equal(t, Encrypted, r.Devices[0].Leg)
	assert.Equal(t, IconShield, r.Devices[0].Icon)
	assert.Equal(t, IconShield, r.Devices[1].Icon)
	assert.Contains(t, r.Devices[0].Reason, "call is Authenticated")

	// R2: encrypted audio with video that is not: shield, or none on a
	// lock-only phone.
	a, b := enc("a"), enc("b")
	a.Video, b.Video, b.VideoSRTP, b.Display = true, true, true, LockOnly
	r = eval(t, &Call{Devices: []Device{a, b}}, mixed)
	assert.Equal(t, Encrypted, r.Level)
	assert.Equal(t, Media{Authenticated: true, AudioSecure: true, Video: true}, r.Media)
	assert.Equal(t, IconShield, r.Devices[0].Icon)
	assert.Equal(t, IconNone, r.Devices[1].Icon)
	a.VideoSRTP = true
	r = eval(t, &Call{Devices: []Device{a, b}}, mixed)
	assert.Equal(t, IconLock, r.Devices[0].Icon)
	assert.Equal(t, IconLock, r.Devices[1].Icon)
	r = eval(t, &Call{Devices: []Device{{Name: "a", Mode: ModeEncrypted, AudioSRTP: true, Video: true}, enc("b")}}, &Options{MixedMode: true, OverrideBFCP: true})
	assert.Equal(t, IconLock, r.Devices[0].Icon, "I8 override")

	// R3: one untrusted device, no lock for anyone.
	u := enc("u")
	u.Untrusted = true
	r = eval(t, &Call{Devices: []Device{enc("a"), u}}, mixed)
	assert.Equal(t, NotAuthenticated, r.Level)
	assert.Equal(t, IconNone, r.Devices[0].Icon)

	// R4: a gateway's IP leg counts; it shows no icon.
	gw := enc("gw")
	gw.Gateway = true
	r = eval(t, &Call{Devices: []Device{enc("a"), gw}}, mixed)
	assert.Equal(t, Encrypted, r.Level)
	assert.Equal(t, IconLock, r.Devices[0].Icon)
	assert.Equal(t, IconNone, r.Devices[1].Icon)
	gw.AudioSRTP = false
	assert.Equal(t, Authenticated, eval(t, &Call{Devices: []Device{enc("a"), gw}}, mixed).Level)

	// R5: no shield across a trunk.
	auth := Level(Authenticated)
	tr := Trunk{Name: "t", TLS: true, SRTP: true, RemoteStatus: &auth}
	r = eval(t, &Call{Devices: []Device{enc("a")}, Trunks: []Trunk{tr}}, mixed)
	assert.Equal(t, Encrypted, r.Level, "the remote status is advisory by default")
	r = eval(t, &Call{Devices: []Device{enc("a")}, Trunks: []Trunk{tr}}, &Options{MixedMode: true, HonourRemoteStatus: true})
	assert.Equal(t, NotAuthenticated, r.Level, "authenticated across a trunk is nonsecure")
	assert.Equal(t, IconNone, r.Devices[0].Icon)
	e := Level(Encrypted)
	tr.RemoteStatus = &e
	assert.Equal(t, Encrypted, eval(t, &Call{Devices: []Device{enc("a")}, Trunks: []Trunk{tr}}, &Options{MixedMode: true, HonourRemoteStatus: true}).Level)

	// R5 again: an authenticated device across an encrypted trunk.
	r = eval(t, &Call{Devices: []Device{{Name: "a", Mode: ModeAuthenticated}}, Trunks: []Trunk{{TLS: true, SRTP: true}}}, mixed)
	assert.Equal(t, NotAuthenticated, r.Level)
	assert.Equal(t, IconNone, r.Devices[0].Icon)
	assert.Contains(t, r.Reason, "across a SIP trunk")

	// R6: legacy releases: any SIP trunk makes the call nonsecure.
	r = eval(t, &Call{Devices: []Device{enc("a")}, Trunks: []Trunk{{TLS: true, SRTP: true}}}, &Options{MixedMode: true, LegacySIPTrunks: true})
	assert.Equal(t, NotAuthenticated, r.Level)

	// R7: music on hold that is not encrypted: nonsecure while it plays,
	// back to the earlier level when it stops.
	call := &Call{Devices: []Device{enc("a"), enc("b")}}
	assert.Equal(t, Encrypted, eval(t, call, mixed).Level)
	call.Resources = []Resource{{Kind: MOH}}
	r = eval(t, call, mixed)
	assert.Equal(t, NotAuthenticated, r.Level)
	assert.Equal(t, IconNone, r.Devices[0].Icon)
	call.Resources = nil
	assert.Equal(t, Encrypted, eval(t, call, mixed).Level)

	// R8: transcoder and MTP: RTP, so a shield.
	for _, k := range []ResourceKind{Transcoder, MTP} {
		r = eval(t, &Call{Devices: []Device{enc("a"), enc("b")}, Resources: []Resource{{Kind: k}}}, mixed)
		assert.Equal(t, Authenticated, r.Level, k.String())
		assert.Equal(t, IconShield, r.Devices[0].Icon, k.String())
	}

	// R9: secure MOH (release 14): unicast, mixed mode, every device
	// encrypted, every trunk SRTP.
	sm := &Options{MixedMode: true, SecureMOH: true}
	moh := []Resource{{Kind: MOH}}
	assert.Equal(t, Encrypted, eval(t, &Call{Devices: []Device{enc("a"), enc("b")}, Resources: moh}, sm).Level)
	assert.Equal(t, NotAuthenticated, eval(t, &Call{Devices: []Device{enc("a"), enc("b")}, Resources: []Resource{{Kind: MOH, Multicast: true}}}, sm).Level)
	assert.Equal(t, NotAuthenticated, eval(t, &Call{Devices: []Device{enc("a"), {Mode: ModeAuthenticated}}, Resources: moh}, sm).Level)
	assert.Equal(t, NotAuthenticated, eval(t, &Call{Devices: []Device{enc("a")}, Trunks: []Trunk{{SRTP: false, TLS: true}}, Resources: moh}, sm).Level)
	assert.Equal(t, Encrypted, eval(t, &Call{Devices: []Device{enc("a")}, Trunks: []Trunk{{SRTP: true, TLS: true}}, Resources: moh}, sm).Level)

	// R10: hairpin back through a SIP trunk.
	assert.Equal(t, NotAuthenticated, eval(t, &Call{Devices: []Device{enc("a"), enc("b")}, Trunks: []Trunk{{TLS: true, SRTP: true}}, Hairpin: true}, mixed).Level)
}

// TestTrunkRules covers the SIP trunk rules, T1–T6.
func TestTrunkRules(t *testing.T) {
	for _, c := range []struct {
		rule string
		tr   Trunk
		want Level
	}{
		{"T1 TLS and SRTP", Trunk{TLS: true, SRTP: true}, Encrypted},
		{"T2 TLS without SRTP", Trunk{TLS: true}, NotAuthenticated},
		{"T4 no TLS", Trunk{}, NotAuthenticated},
		{"T4 SRTP without TLS", Trunk{SRTP: true}, NotAuthenticated},
		{"T5 SRTP only considered secure", Trunk{SRTP: true, SecureWhenSRTPOnly: true}, Encrypted},
		{"T5 needs SRTP", Trunk{SecureWhenSRTPOnly: true}, NotAuthenticated},
	} {
		r := eval(t, &Call{Devices: []Device{enc("a")}, Trunks: []Trunk{c.tr}}, mixed)
		assert.Equal(t, c.want, r.Level, c.rule)
	}
	// T3/T6: what CUCM sends across the trunk.
	tls := Trunk{TLS: true, SRTP: true}
	assert.Equal(t, Encrypted, tls.Transmit(Encrypted))
	assert.Equal(t, Authenticated, tls.Transmit(Authenticated), "T3: an authenticated party is reported as such")
	assert.Equal(t, NotAuthenticated, (&Trunk{TLS: true}).Transmit(Encrypted), "T2")
	assert.Equal(t, Unknown, (&Trunk{}).Transmit(Unknown))
}

// TestConference covers the conference rules, with worked examples.
func TestConference(t *testing.T) {
	authd := Device{Name: "c", Mode: ModeAuthenticated}
	for _, c := range []struct {
		name string
		conf Conference
		want Level
		icon Icon
	}{
		{"secure bridge, 2 encrypted + 1 authenticated", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b"), authd}}, Authenticated, IconShield},
		{"nonsecure bridge, 3 encrypted", Conference{Participants: []Device{enc("a"), enc("b"), enc("c")}}, NotAuthenticated, IconNone},
		{"secure bridge, 3 encrypted", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b"), enc("c")}}, Encrypted, IconLock},
		{"R11 packet capture", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b"), enc("c")}, PacketCapture: true}, NotAuthenticated, IconNone},
		{"R12 MLPP announcement", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b")}, Announcement: true}, NotAuthenticated, IconNone},
		{"software bridge never secure", Conference{Bridge: Bridge{Secure: true, Software: true}, Participants: []Device{enc("a"), enc("b")}}, NotAuthenticated, IconNone},
		{"F4 join of an unknown party", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b")}, JoinedUnknown: true}, Unknown, IconNone},
		{"F5 adding a party", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b")}, Adding: true}, Unknown, IconNone},
		{"F8 participant over a SIP trunk", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b")}, Trunks: []Trunk{{TLS: true, SRTP: true}}}, NotAuthenticated, IconNone},
		{"F1 chained conference", Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a")}, Chained: []Conference{{Bridge: Bridge{Secure: true}, Participants: []Device{authd}}}}, Authenticated, IconShield},
	} {
		r, err := c.conf.Evaluate(mixed)
		require.NoError(t, err, c.name)
		assert.Equal(t, c.want, r.Level, c.name)
		assert.Equal(t, c.icon, r.Devices[0].Icon, c.name)
	}
	// F3: the level rises again when the weaker party leaves.
	conf := Conference{Bridge: Bridge{Secure: true}, Participants: []Device{enc("a"), enc("b"), authd}}
	r, _ := conf.Evaluate(mixed)
	assert.Equal(t, Authenticated, r.Level)
	conf.Participants = conf.Participants[:2]
	r, _ = conf.Evaluate(mixed)
	assert.Equal(t, Encrypted, r.Level)

	_, err := (&Conference{}).Evaluate(mixed)
	assert.ErrorIs(t, err, ErrInvalid)
	deep := Conference{Participants: []Device{enc("a")}}
	for range maxChainDepth + 2 {
		deep = Conference{Participants: []Device{enc("a")}, Chained: []Conference{deep}}
	}
	_, err = deep.Evaluate(mixed)
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestAllocateBridge(t *testing.T) {
	for _, c := range []struct {
		initiator           Level
		secure, nonsecure   bool
		wantSecure, wantErr bool
	}{
		{Encrypted, true, true, true, false},
		{Authenticated, true, false, true, false},
		{Encrypted, false, true, false, false},
		{NotAuthenticated, true, true, false, false},
		{NotAuthenticated, true, false, true, false},
		{Encrypted, false, false, false, true},
		{NotAuthenticated, false, false, false, true},
	} {
		b, err := AllocateBridge(c.initiator, c.secure, c.nonsecure)
		if c.wantErr {
			assert.ErrorIs(t, err, ErrRefused)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, c.wantSecure, b.Secure, "%v", c)
	}
}

func TestMeetMe(t *testing.T) {
	secure := Bridge{Secure: true}
	assert.ErrorIs(t, MeetMe{Minimum: Encrypted}.Admit(Authenticated, secure), ErrRefused, "M1/M3")
	assert.NoError(t, MeetMe{Minimum: Encrypted}.Admit(Encrypted, secure))
	assert.ErrorIs(t, MeetMe{Minimum: Authenticated}.Admit(Encrypted, Bridge{}), ErrRefused, "M2")
	assert.NoError(t, MeetMe{Minimum: NotAuthenticated}.Admit(NotAuthenticated, Bridge{}), "M4")
	assert.NoError(t, MeetMe{}.Admit(Unknown, Bridge{}))
}

func TestBarge(t *testing.T) {
	for _, c := range [][3]Level{
		{NotAuthenticated, Encrypted, NotAuthenticated},
		{NotAuthenticated, Authenticated, NotAuthenticated},
		{Encrypted, Authenticated, Authenticated},
		{Authenticated, Encrypted, Authenticated},
		{Encrypted, Encrypted, Encrypted},
	} {
		assert.Equal(t, c[2], Barge(c[0], c[1], BargeOptions{}), "%v", c)
	}
	// R13: SIP target hears tone on hold: nonsecure while it plays; SCCP keeps it.
	assert.Equal(t, NotAuthenticated, Barge(Encrypted, Encrypted, BargeOptions{SIPTarget: true, TonePlaying: true}))
	assert.Equal(t, Encrypted, Barge(Encrypted, Encrypted, BargeOptions{SIPTarget: true}))
	assert.Equal(t, Encrypted, Barge(Encrypted, Encrypted, BargeOptions{TonePlaying: true}))
}

func TestEvaluateErrors(t *testing.T) {
	for name, c := range map[string]Call{
		"no devices":   {},
		"bad mode":     {Devices: []Device{{Mode: 7}}},
		"bad display":  {Devices: []Device{{Display: 7}}},
		"bad resource": {Devices: []Device{enc("a")}, Resources: []Resource{{Kind: 9}}},
		"bad remote":   {Devices: []Device{enc("a")}, Trunks: []Trunk{{RemoteStatus: new(Level(9))}}},
	} {
		_, err := Evaluate(&c, mixed)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
}

func TestJSON(t *testing.T) {
	var c Call
	require.NoError(t, json.Unmarshal([]byte(`{"devices":[{"name":"a","mode":"Encrypted","audio_srtp":true,"display":"lock-only"}],
		"trunks":[{"tls":true,"srtp":true,"remote_status":"encrypted"}],"resources":[{"kind":"MTP"}]}`), &c))
	assert.Equal(t, ModeEncrypted, c.Devices[0].Mode)
	assert.Equal(t, LockOnly, c.Devices[0].Display)
	assert.Equal(t, Encrypted, *c.Trunks[0].RemoteStatus)
	assert.Equal(t, MTP, c.Resources[0].Kind)
	r := eval(t, &c, mixed)
	out, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"level":"NotAuthenticated"`)
	assert.Contains(t, string(out), `"audio_secure":false`)
	assert.Contains(t, string(out), `"icon":"none"`)
	for _, bad := range []string{`{"devices":[{"mode":"secure"}]}`, `{"devices":[{"display":"x"}]}`, `{"resources":[{"kind":"bridge"}]}`, `{"trunks":[{"remote_status":"bogus"}]}`} {
		assert.ErrorIs(t, json.Unmarshal([]byte(bad), &c), ErrInvalid, bad)
	}
}

// randomDevice draws a device from every combination that matters.
func randomDevice(r *rand.Rand) Device {
	return Device{
		Mode: Mode(r.IntN(3)), Display: Display(r.IntN(2)),
		AudioSRTP: r.IntN(2) == 0, Video: r.IntN(3) == 0, VideoSRTP: r.IntN(2) == 0,
		Untrusted: r.IntN(8) == 0, NoSIS2: r.IntN(8) == 0, LegacyFirmware: r.IntN(8) == 0, Gateway: r.IntN(8) == 0,
	}
}

func randomCall(r *rand.Rand) *Call {
	c := &Call{Hairpin: r.IntN(10) == 0}
	for range 1 + r.IntN(4) {
		c.Devices = append(c.Devices, randomDevice(r))
	}
	for range r.IntN(3) {
		c.Trunks = append(c.Trunks, Trunk{TLS: r.IntN(2) == 0, SRTP: r.IntN(2) == 0, SecureWhenSRTPOnly: r.IntN(4) == 0})
	}
	for range r.IntN(2) {
		c.Resources = append(c.Resources, Resource{Kind: ResourceKind(r.IntN(3)), Multicast: r.IntN(2) == 0})
	}
	return c
}

func randomOptions(r *rand.Rand) *Options {
	return &Options{MixedMode: r.IntN(4) != 0, OverrideBFCP: r.IntN(2) == 0, SecureMOH: r.IntN(2) == 0,
		LegacySIPTrunks: r.IntN(6) == 0, HonourRemoteStatus: r.IntN(2) == 0}
}

// TestProperties: a call's level never exceeds any leg's, and adding a
// less secure participant never raises a level, for calls and conferences.
func TestProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		c, o := randomCall(r), randomOptions(r)
		res := eval(t, c, o)
		for _, d := range res.Devices {
			require.LessOrEqual(t, res.Level, d.Leg)
		}
		extra := randomDevice(r)
		c2 := *c
		c2.Devices = append(append([]Device(nil), c.Devices...), extra)
		res2 := eval(t, &c2, o)
		require.LessOrEqual(t, res2.Level, res.Level, "adding a device raised the level")
		if res2.Devices[len(res2.Devices)-1].Leg < res.Level {
			require.Less(t, res2.Level, res.Level)
		}
		// The icon never claims more than the level.
		for _, d := range res.Devices {
			if d.Icon == IconLock {
				require.Equal(t, Encrypted, res.Level)
			}
			if d.Icon == IconShield {
				require.GreaterOrEqual(t, res.Level, Authenticated)
			}
		}

		conf := Conference{Bridge: Bridge{Secure: r.IntN(2) == 0}, Participants: c.Devices}
		cr, err := conf.Evaluate(o)
		require.NoError(t, err)
		conf.Participants = c2.Devices
		cr2, err := conf.Evaluate(o)
		require.NoError(t, err)
		require.LessOrEqual(t, cr2.Level, cr.Level)
		for _, d := range cr.Devices {
			require.LessOrEqual(t, cr.Level, d.Leg)
		}
	}
}

// TestReviewFindings pins the cases a review found.
func TestReviewFindings(t *testing.T) {
	// R5: no shield across a trunk even when it comes from insecure video.
	a, b := enc("a"), enc("b")
	a.Video, a.VideoSRTP, b.Video = true, true, true
	r := eval(t, &Call{Devices: []Device{a, b}, Trunks: []Trunk{{TLS: true, SRTP: true}}}, mixed)
	assert.Equal(t, Encrypted, r.Level)
	for _, d := range r.Devices {
		assert.Equal(t, IconNone, d.Icon)
		assert.Contains(t, d.Reason, "no shield")
	}

	// M4: a Non Secure Meet-Me admits parties of unknown status; the zero
	// value agrees.
	assert.NoError(t, MeetMe{Minimum: NotAuthenticated}.Admit(Unknown, Bridge{}))
	assert.NoError(t, MeetMe{}.Admit(Unknown, Bridge{}))

	// Values out of range never count as more than Unknown.
	bad := Level(9)
	assert.Equal(t, Unknown, Min(bad, Encrypted))
	assert.Equal(t, IconNone, LevelIcon(bad, ShieldAndLock))
	assert.ErrorIs(t, MeetMe{Minimum: Encrypted}.Admit(bad, Bridge{Secure: true}), ErrRefused)
	assert.Equal(t, Unknown, Barge(bad, bad, BargeOptions{}))
	assert.Equal(t, Unknown, (&Trunk{TLS: true, SRTP: true}).Transmit(bad))
	_, err := AllocateBridge(bad, false, false)
	assert.ErrorIs(t, err, ErrRefused)

	// A secure bridge given to a nonsecure initiator keeps the conference
	// nonsecure after the initiator leaves.
	br, err := AllocateBridge(NotAuthenticated, true, false)
	require.NoError(t, err)
	assert.True(t, br.Secure && br.Capped)
	cr, err := (&Conference{Bridge: br, Participants: []Device{enc("a"), enc("b"), enc("c")}}).Evaluate(mixed)
	require.NoError(t, err)
	assert.Equal(t, NotAuthenticated, cr.Level)

	// T5 and Transmit agree.
	srtpOnly := Trunk{SRTP: true, SecureWhenSRTPOnly: true}
	assert.Equal(t, Encrypted, srtpOnly.Transmit(Encrypted))
}
