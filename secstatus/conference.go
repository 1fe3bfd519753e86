package secstatus

import "fmt"

// Bridge is a conference bridge.
type Bridge struct {
	// Secure marks a secure (hardware DSP) bridge. A software bridge is
	// never secure, so Software overrides Secure.
	Secure   bool `json:"secure"`
	Software bool `json:"software,omitempty"`

	// Capped marks a secure bridge given to a nonsecure initiator because
	// no other was free: the conference stays NotAuthenticated even after
	// the initiator leaves ([AllocateBridge] sets it).
	Capped bool `json:"capped,omitempty"`
}

func (b Bridge) part() part {
	switch {
	case b.Software:
		return part{NotAuthenticated, "software conference bridge (never secure)"}
	case b.Capped:
		return part{NotAuthenticated, "secure bridge allocated for a nonsecure initiator"}
	case b.Secure:
		return part{Encrypted, "secure conference bridge"}
	default:
		return part{NotAuthenticated, "nonsecure conference bridge"}
	}
}

// AllocateBridge chooses the bridge CUCM uses for an ad hoc conference
// started by a device at level initiator, given what the initiator's media
// resource group list offers: a secure or authenticated initiator gets a
// secure bridge if there is one; a nonsecure initiator gets a nonsecure
// one if there is one, else a secure one whose conference stays
// NotAuthenticated (Capped). With neither, the conference fails
// (ErrRefused).
func AllocateBridge(initiator Level, secureAvailable, nonsecureAvailable bool) (Bridge, error) {
	initiator = initiator.norm()
	switch {
	case initiator >= Authenticated && secureAvailable:
		return Bridge{Secure: true}, nil
	case nonsecureAvailable:
		return Bridge{}, nil
	case secureAvailable:
		return Bridge{Secure: true, Capped: true}, nil
	default:
		return Bridge{}, fmt.Errorf("%w: no conference bridge available", ErrRefused)
	}
}

// Conference is a snapshot of an ad hoc or Meet-Me conference.
type Conference struct {
	Bridge       Bridge   `json:"bridge"`
	Participants []Device `json:"participants"`

	// Trunks are SIP trunks participants are reached through: any makes
	// the conference nonsecure.
	Trunks []Trunk `json:"trunks,omitempty"`

	// Chained are conferences linked into this one; the least secure
	// counts.
	Chained []Conference `json:"chained,omitempty"`

	// PacketCapture on the bridge, or an MLPP announcement or tone played
	// into the conference, make it nonsecure although media stays SRTP.
	PacketCapture bool `json:"packet_capture,omitempty"`
	Announcement  bool `json:"announcement,omitempty"`

	// Adding marks an initiator holding the conference to add a party, and
	// JoinedUnknown a party of unknown status joined (SCCP Join): both make
	// the status Unknown until the party answers or is known.
	Adding        bool `json:"adding,omitempty"`
	JoinedUnknown bool `json:"joined_unknown,omitempty"`
}

// maxChainDepth bounds the recursion through chained conferences.
const maxChainDepth = 16

// Evaluate returns the conference's status and what each participant
// shows: the least of the bridge, every participant and every chained
// conference (rules F1–F8). The icon follows: lock iff the bridge is
// secure and every participant is encrypted, shield iff the bridge is
// secure and every participant is at least authenticated (on a phone
// that can show it), none otherwise. A participant's hold does not change
// it (no music is played into a secure conference).
func (c *Conference) Evaluate(opts *Options) (*Result, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no conference", ErrInvalid)
	}
	if opts == nil {
		opts = &Options{}
	}
	low, err := c.level(opts, 0)
	if err != nil {
		return nil, err
	}
	call := Call{Devices: c.Participants}
	res := &Result{Level: low.level, Reason: low.reason, Media: call.media(low.level)}
	for i := range c.Participants {
		d := &c.Participants[i]
		res.Devices = append(res.Devices, deviceStatus(d, d.conferenceLeg(opts), low, "conference", res.Media, opts))
	}
	return res, nil
}

// conferenceLeg is a participant's level in a conference or barge: an
// encrypted phone with old firmware takes part as authenticated at most.
func (d *Device) conferenceLeg(o *Options) part {
	p := d.legLevel(o)
	if d.LegacyFirmware && p.level == Encrypted {
		return part{Authenticated, "encrypted phone with firmware 8.2 or older joins as authenticated"}
	}
	return p
}

func (c *Conference) level(o *Options, depth int) (part, error) {
	if depth > maxChainDepth {
		return part{}, fmt.Errorf("%w: conferences chained more than %d deep", ErrInvalid, maxChainDepth)
	}
	if len(c.Participants) == 0 {
		return part{}, fmt.Errorf("%w: a conference needs participants", ErrInvalid)
	}
	if err := (&Call{Devices: c.Participants, Trunks: c.Trunks}).validate(); err != nil {
		return part{}, err
	}
	parts := []part{c.Bridge.part()}
	for i := range c.Participants {
		parts = append(parts, withName(c.Participants[i].conferenceLeg(o), c.Participants[i].Name))
	}
	for i := range c.Trunks {
		parts = append(parts, part{NotAuthenticated, "participant across SIP trunk " + quote(c.Trunks[i].Name)})
	}
	for i := range c.Chained {
		p, err := c.Chained[i].level(o, depth+1)
		if err != nil {
			return part{}, err
		}
		parts = append(parts, part{p.level, "chained conference: " + p.reason})
	}
	if c.PacketCapture {
		parts = append(parts, part{NotAuthenticated, "packet capture on the bridge"})
	}
	if c.Announcement {
		parts = append(parts, part{NotAuthenticated, "MLPP announcement played into the conference"})
	}
	if c.Adding {
		parts = append(parts, part{Unknown, "initiator is adding a party"})
	}
	if c.JoinedUnknown {
		parts = append(parts, part{Unknown, "a party of unknown status joined"})
	}
	return lowest(parts), nil
}

// MeetMe is a Meet-Me conference number with its minimum security level:
// Non Secure (the default; Unknown and NotAuthenticated both stand for
// it), Authenticated or Encrypted.
type MeetMe struct {
	Minimum Level `json:"minimum"`
}

// Admit checks a party at level party joining through a bridge
// (rules M1–M4): a Non Secure minimum admits everyone, a party of unknown
// status too; otherwise a party below the minimum is refused (the
// initiator with "Device Not Authorized", later parties dropped), and the
// minimum needs a secure bridge. Errors wrap ErrRefused.
func (m MeetMe) Admit(party Level, bridge Bridge) error {
	party = party.norm()
	if m.Minimum.norm() <= NotAuthenticated {
		return nil
	}
	if m.Minimum >= Authenticated && bridge.part().level != Encrypted {
		return fmt.Errorf("%w: Meet-Me minimum %s needs a secure bridge", ErrRefused, m.Minimum)
	}
	if party < m.Minimum {
		return fmt.Errorf("%w: party is %s, below the Meet-Me minimum %s", ErrRefused, party, m.Minimum)
	}
	return nil
}

// BargeOptions describe a barge beyond the two levels.
type BargeOptions struct {
	// SIPTarget marks a barge into a SIP phone's call, which hears a tone
	// (tone on hold) while the barge sets up; TonePlaying says the tone
	// is playing now. A barged SCCP call hears an internal tone and keeps
	// its status.
	SIPTarget   bool
	TonePlaying bool
}

// Barge returns the level of a barged call: the lower of the barger's and
// the call's (rule B1), and NotAuthenticated while a SIP target hears the
// barge tone.
func Barge(barger, call Level, o BargeOptions) Level {
	// Min maps values out of range to Unknown.
	if o.SIPTarget && o.TonePlaying {
		return Min(barger, call, NotAuthenticated)
	}
	return Min(barger, call)
}
