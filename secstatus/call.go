package secstatus

import (
	"fmt"
	"strings"
)

// Mode is a device's security mode, from its phone security profile.
type Mode uint8

// The device security modes.
const (
	ModeNonSecure     Mode = iota // TCP or UDP signalling
	ModeAuthenticated             // TLS with a NULL cipher: integrity, no confidentiality
	ModeEncrypted                 // TLS with AES, and SRTP where the media allows
)

var modeNames = [...]string{"non-secure", "authenticated", "encrypted"}

// String returns "non-secure", "authenticated" or "encrypted".
func (m Mode) String() string { return enumString(modeNames[:], uint8(m), "Mode") }

// MarshalText returns String.
func (m Mode) MarshalText() ([]byte, error) { return marshalEnum(modeNames[:], uint8(m), "mode") }

// UnmarshalText accepts the String forms, in any ASCII case.
func (m *Mode) UnmarshalText(b []byte) error {
	return unmarshalEnum(b, modeNames[:], (*uint8)(m), "mode")
}

// Options are the cluster settings and release differences that change
// the status. The zero value is the conservative reading: a non-secure
// cluster, every override off.
type Options struct {
	// MixedMode is the cluster security mode: false (non-secure, the
	// default) makes every device NotAuthenticated whatever its profile
	// says, as CUCM writes non-secure into every phone's configuration.
	MixedMode bool

	// OverrideBFCP is the service parameter "Override BFCP Application
	// Encryption Status When Designating Call Security Status" (default
	// False): secure audio shows the lock whatever the other channels are.
	OverrideBFCP bool

	// SecureMOH models releases 14 and later, whose unicast music on hold
	// is SRTP when the cluster is mixed mode, every device hearing it is
	// in encrypted mode and every SIP trunk on the path allows SRTP.
	// Earlier releases (false) never encrypt music on hold.
	SecureMOH bool

	// LegacySIPTrunks models the early releases in which any SIP trunk in
	// the path made a call nonsecure, before trunks reported Encrypted.
	LegacySIPTrunks bool

	// HonourRemoteStatus lets the security level a trunk peer sent in its
	// Call-Info header lower the trunk leg. Whether CUCM consumes that
	// value is not documented, so by default it is advisory only.
	HonourRemoteStatus bool
}

// Device is one endpoint of a call: a phone, or a gateway to the PSTN.
type Device struct {
	Name    string  `json:"name"`
	Mode    Mode    `json:"mode"`
	Display Display `json:"display"`

	// AudioSRTP and VideoSRTP say whether SRTP was negotiated on this
	// device's leg for each stream; Video whether it has video at all.
	AudioSRTP bool `json:"audio_srtp"`
	Video     bool `json:"video"`
	VideoSRTP bool `json:"video_srtp"`

	// Untrusted marks a device type CUCM does not trust (the fixed
	// "Device is not trusted" property): the whole call is nonsecure.
	Untrusted bool `json:"untrusted"`

	// NoSIS2 marks a SIP line endpoint that does not advertise
	// X-cisco-sis-2.0.0 or later: CUCM limits it to RTP.
	NoSIS2 bool `json:"no_sis2"`

	// LegacyFirmware marks an encrypted phone with firmware 8.2 or older,
	// which joins conferences and barges as authenticated at most.
	LegacyFirmware bool `json:"legacy_firmware"`

	// Gateway marks a gateway to the PSTN or another non-IP network: its
	// IP leg counts (the status covers only the IP part of a call) and it
	// shows no icon.
	Gateway bool `json:"gateway"`
}

// Trunk is a SIP trunk the call crosses.
type Trunk struct {
	Name string `json:"name"`

	// TLS is the transport of the trunk's SIP trunk security profile;
	// SRTP says whether SRTP was negotiated on it (SRTP Allowed, and the
	// peer agreed).
	TLS  bool `json:"tls"`
	SRTP bool `json:"srtp"`

	// SecureWhenSRTPOnly is the trunk field "Consider Traffic on This
	// Trunk Secure" set to "When using sRTP Only" (the default is "When
	// using both sRTP and TLS"): SRTP alone makes the leg encrypted. Its
	// semantics are inferred from the field's name: Cisco documents none.
	// Without TLS the SRTP keys travel in clear in the SIP signalling, so
	// the lock this allows is only as good as the network the trunk
	// crosses; leave it off unless the administrator set the field.
	SecureWhenSRTPOnly bool `json:"secure_when_srtp_only"`

	// RemoteStatus is the security level the peer sent in its Call-Info
	// header, if any; it counts only with Options.HonourRemoteStatus.
	RemoteStatus *Level `json:"remote_status,omitempty"`
}

// Resource is a media resource inserted into a call.
type Resource struct {
	Kind ResourceKind `json:"kind"`
	// Multicast marks multicast music on hold, which is never encrypted.
	Multicast bool `json:"multicast"`
}

// ResourceKind is the kind of a media resource.
type ResourceKind uint8

// The media resources that change a call's security.
const (
	MOH        ResourceKind = iota // music on hold (hold, park, transfer)
	Transcoder                     // no SRTP through it
	MTP                            // media termination point; no SRTP through it
)

var resourceNames = [...]string{"moh", "transcoder", "mtp"}

// String returns "moh", "transcoder" or "mtp".
func (k ResourceKind) String() string { return enumString(resourceNames[:], uint8(k), "ResourceKind") }

// MarshalText returns String.
func (k ResourceKind) MarshalText() ([]byte, error) {
	return marshalEnum(resourceNames[:], uint8(k), "resource kind")
}

// UnmarshalText accepts the String forms, in any ASCII case.
func (k *ResourceKind) UnmarshalText(b []byte) error {
	return unmarshalEnum(b, resourceNames[:], (*uint8)(k), "resource")
}

// Call is a snapshot of one call: its endpoints, the SIP trunks it
// crosses and the media resources in it now. A feature that inserts a
// resource (hold with music, a transcoder) lowers the level while the
// resource is there; evaluating the call again without it gives the
// earlier level back, as CUCM does.
type Call struct {
	Devices   []Device   `json:"devices"`
	Trunks    []Trunk    `json:"trunks,omitempty"`
	Resources []Resource `json:"resources,omitempty"`

	// Hairpin marks an encrypted call that crossed a SIP trunk and was
	// transferred back into the originating cluster: it is not encrypted.
	Hairpin bool `json:"hairpin,omitempty"`
}

// Result is the security status of a call or conference.
type Result struct {
	// Level is the status of the whole call: the least of its parts.
	Level Level `json:"level"`
	// Media is what the icon decision sees.
	Media Media `json:"media"`
	// Reason says what set the level: the least secure part.
	Reason string `json:"reason"`
	// Devices holds, per device, its own leg level and what it shows.
	Devices []DeviceStatus `json:"devices"`
}

// DeviceStatus is what one device shows.
type DeviceStatus struct {
	Name   string `json:"name"`
	Leg    Level  `json:"leg"`    // the level of this device's own leg
	Icon   Icon   `json:"icon"`   // what it shows for the call
	Reason string `json:"reason"` // why
}

// part is one contributor to a call's level.
type part struct {
	level  Level
	reason string
}

// legLevel is a device's own level (the D rules of the package
// documentation).
func (d *Device) legLevel(o *Options) part {
	switch {
	case d.Untrusted:
		return part{NotAuthenticated, "device type is not trusted"}
	case !o.MixedMode:
		return part{NotAuthenticated, "cluster security mode is non-secure"}
	case d.Mode == ModeNonSecure:
		return part{NotAuthenticated, "device security mode is non-secure"}
	case d.Mode == ModeAuthenticated:
		return part{Authenticated, "device security mode is authenticated (no media encryption)"}
	case d.NoSIS2:
		return part{Authenticated, "SIP endpoint without X-cisco-sis-2.0.0 is limited to RTP"}
	case !d.AudioSRTP:
		return part{Authenticated, "audio fell back to RTP"}
	default:
		return part{Encrypted, "encrypted signalling and SRTP audio"}
	}
}

// legLevel is a trunk's level (the T rules of the package documentation).
// A trunk leg is never Authenticated: a call across a trunk shows no
// shield.
func (t *Trunk) legLevel(o *Options) part {
	p := part{NotAuthenticated, "SIP trunk " + quote(t.Name) + " without TLS and SRTP"}
	switch {
	case o.LegacySIPTrunks:
		p.reason = "SIP trunk " + quote(t.Name) + " in the path (legacy release)"
	case t.TLS && t.SRTP:
		p = part{Encrypted, "SIP trunk " + quote(t.Name) + " with TLS and SRTP"}
	case t.SRTP && t.SecureWhenSRTPOnly:
		p = part{Encrypted, "SIP trunk " + quote(t.Name) + " with SRTP, considered secure with SRTP only"}
	case t.TLS:
		p.reason = "SIP trunk " + quote(t.Name) + " with TLS but no SRTP"
	}
	if o.HonourRemoteStatus && t.RemoteStatus != nil && *t.RemoteStatus < p.level {
		r := *t.RemoteStatus
		if r == Authenticated {
			r = NotAuthenticated // authenticated across a trunk counts as nonsecure
		}
		p = part{r, "SIP trunk " + quote(t.Name) + " peer reported " + t.RemoteStatus.String()}
	}
	return p
}

// Transmit returns the level CUCM sends across the trunk in Call-Info
// (with "Transmit Security Status" on) for a call whose local side is at
// level local: the local level when the trunk leg is secure (TLS and SRTP,
// or SRTP with SecureWhenSRTPOnly), so an authenticated local party, such
// as a Meet-Me, is reported as Authenticated; NotAuthenticated otherwise.
func (t *Trunk) Transmit(local Level) Level {
	if t.secure() {
		return local.norm()
	}
	return Min(local, NotAuthenticated)
}

func (t *Trunk) secure() bool { return t.SRTP && (t.TLS || t.SecureWhenSRTPOnly) }

func quote(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return fmt.Sprintf("%q", truncate(name))
}

func (c *Call) validate() error {
	if len(c.Devices) == 0 {
		return fmt.Errorf("%w: a call needs at least one device", ErrInvalid)
	}
	for i := range c.Devices {
		d := &c.Devices[i]
		if int(d.Mode) >= len(modeNames) || int(d.Display) >= len(displayNames) {
			return fmt.Errorf("%w: device %d has an unknown mode or display", ErrInvalid, i+1)
		}
	}
	for i := range c.Trunks {
		if r := c.Trunks[i].RemoteStatus; r != nil && !r.Valid() {
			return fmt.Errorf("%w: trunk %d has an unknown remote status", ErrInvalid, i+1)
		}
	}
	for i := range c.Resources {
		if int(c.Resources[i].Kind) >= len(resourceNames) {
			return fmt.Errorf("%w: resource %d has an unknown kind", ErrInvalid, i+1)
		}
	}
	return nil
}

// Evaluate returns the security status of c and what each device shows.
// opts may be nil for the zero Options (a non-secure cluster).
//
// The call level is the least of every device leg and trunk leg, lowered
// further by the resources in the call: music on hold that is not
// encrypted makes it NotAuthenticated; a transcoder or MTP, through which
// no SRTP flows, caps it at Authenticated; a hairpin back through a SIP
// trunk makes it NotAuthenticated. A call across a SIP trunk is never
// Authenticated: that counts as nonsecure, so no shield is shown. Each device then shows the icon of the
// call level (not its own leg's, as CUCM dictates to SIP phones with
// sis 2.0.0) per [IconFor], video included.
func Evaluate(c *Call, opts *Options) (*Result, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no call", ErrInvalid)
	}
	if opts == nil {
		opts = &Options{}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	parts := make([]part, 0, len(c.Devices)+len(c.Trunks)+len(c.Resources)+1)
	legs := make([]part, len(c.Devices))
	for i := range c.Devices {
		legs[i] = c.Devices[i].legLevel(opts)
		parts = append(parts, withName(legs[i], c.Devices[i].Name))
	}
	for i := range c.Trunks {
		parts = append(parts, c.Trunks[i].legLevel(opts))
	}
	for _, r := range c.Resources {
		parts = append(parts, c.resourcePart(r, opts))
	}
	if c.Hairpin {
		parts = append(parts, part{NotAuthenticated, "transferred back into the cluster across a SIP trunk"})
	}
	low := lowest(parts)
	if low.level == Authenticated && len(c.Trunks) > 0 {
		// R5: no shield across a trunk.
		low = part{NotAuthenticated, "an authenticated call across a SIP trunk counts as nonsecure (" + low.reason + ")"}
	}
	res := &Result{Level: low.level, Reason: low.reason}
	res.Media = c.media(low.level)
	for i := range c.Devices {
		d := &c.Devices[i]
		st := deviceStatus(d, legs[i], low, "call", res.Media, opts)
		if st.Icon == IconShield && len(c.Trunks) > 0 {
			// R5: no shield across a trunk, whatever gave it (video, I2).
			st.Icon = IconNone
			st.Reason += "; no shield is shown across a SIP trunk"
		}
		res.Devices = append(res.Devices, st)
	}
	return res, nil
}

func withName(p part, name string) part {
	if name != "" {
		p.reason = quote(name) + ": " + p.reason
	}
	return p
}

// lowest returns the least secure part (the first one, on a tie).
func lowest(parts []part) part {
	low := parts[0]
	for _, p := range parts[1:] {
		if p.level < low.level {
			low = p
		}
	}
	return low
}

func (c *Call) resourcePart(r Resource, o *Options) part {
	switch r.Kind {
	case MOH:
		if o.SecureMOH && o.MixedMode && !r.Multicast && c.allEncryptedDevices() && c.allTrunksSRTP() {
			return part{Encrypted, "music on hold over SRTP"}
		}
		why := "music on hold is not encrypted"
		if r.Multicast {
			why = "multicast music on hold is never encrypted"
		}
		return part{NotAuthenticated, why}
	case Transcoder:
		return part{Authenticated, "a transcoder carries no SRTP"}
	default:
		return part{Authenticated, "an MTP carries no SRTP"}
	}
}

func (c *Call) allEncryptedDevices() bool {
	for i := range c.Devices {
		if d := &c.Devices[i]; !d.Gateway && d.Mode != ModeEncrypted {
			return false
		}
	}
	return true
}

func (c *Call) allTrunksSRTP() bool {
	for i := range c.Trunks {
		if !c.Trunks[i].SRTP {
			return false
		}
	}
	return true
}

// media derives the icon inputs from the call level and the devices'
// video: video is secure only if every device with video has SRTP video
// and the call itself is encrypted.
func (c *Call) media(l Level) Media {
	m := Media{Authenticated: l >= Authenticated, AudioSecure: l == Encrypted}
	videoSecure := true
	for i := range c.Devices {
		if d := &c.Devices[i]; d.Video {
			m.Video = true
			videoSecure = videoSecure && d.VideoSRTP
		}
	}
	m.VideoSecure = m.Video && videoSecure && l == Encrypted
	return m
}

// deviceStatus is what device d, whose own leg is leg, shows in a call or
// conference (what) whose least secure part is low.
func deviceStatus(d *Device, leg, low part, what string, m Media, o *Options) DeviceStatus {
	st := DeviceStatus{Name: d.Name, Leg: leg.level, Reason: leg.reason}
	if low.level < leg.level {
		st.Reason = what + " is " + low.level.String() + ": " + low.reason
	}
	if d.Gateway {
		st.Reason = "gateway, shows no icon; " + st.Reason
	} else {
		st.Icon = IconFor(m, d.Display, o.OverrideBFCP)
	}
	return st
}

// String summarises r in one line per device, for logs and the CLI.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "level %s (%s)", r.Level, r.Reason)
	for _, d := range r.Devices {
		fmt.Fprintf(&b, "\n%s: %s (%s)", quote(d.Name), d.Icon, d.Reason)
	}
	return b.String()
}
