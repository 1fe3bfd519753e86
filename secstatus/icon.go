package secstatus

// Icon is what a phone shows for a call's security.
type Icon uint8

// The icons.
const (
	IconNone   Icon = iota // no security icon (the call-state icon only)
	IconShield             // authenticated
	IconLock               // encrypted
)

var iconNames = [...]string{"none", "shield", "lock"}

// String returns "none", "shield" or "lock".
func (i Icon) String() string { return enumString(iconNames[:], uint8(i), "Icon") }

// MarshalText returns String.
func (i Icon) MarshalText() ([]byte, error) { return marshalEnum(iconNames[:], uint8(i), "icon") }

// UnmarshalText accepts "none", "shield" and "lock", in any ASCII case.
func (i *Icon) UnmarshalText(b []byte) error {
	return unmarshalEnum(b, iconNames[:], (*uint8)(i), "icon")
}

// Display is what security icons a phone model can show.
type Display uint8

// The display kinds. CUCM documentation publishes no list of the models
// that show only the lock, so this is a per-model capability the caller
// sets.
const (
	ShieldAndLock Display = iota // shows the shield and the lock (most models)
	LockOnly                     // shows only the lock
)

var displayNames = [...]string{"shield-and-lock", "lock-only"}

// String returns "shield-and-lock" or "lock-only".
func (d Display) String() string { return enumString(displayNames[:], uint8(d), "Display") }

// MarshalText returns String.
func (d Display) MarshalText() ([]byte, error) {
	return marshalEnum(displayNames[:], uint8(d), "display")
}

// UnmarshalText accepts "shield-and-lock" and "lock-only".
func (d *Display) UnmarshalText(b []byte) error {
	return unmarshalEnum(b, displayNames[:], (*uint8)(d), "display")
}

// Media is the input of the icon decision: how far a call is secured.
type Media struct {
	Authenticated bool `json:"authenticated"` // signalling authenticated (TLS) end to end
	AudioSecure   bool `json:"audio_secure"`  // audio encrypted (SRTP) end to end
	Video         bool `json:"video"`         // the call has video
	VideoSecure   bool `json:"video_secure"`  // the video is encrypted end to end
}

// IconFor decides the icon a phone shows for m, following the icon table
// of the security overview chapter of Cisco's "Security Guide for Cisco
// Unified Communications Manager" (Table 4 in the 9.x releases), row by
// row:
//
//	| authenticated | audio secure | video  | video secure | ShieldAndLock | LockOnly |
//	|---------------|--------------|--------|--------------|---------------|----------|
//	| any           | yes          | no     | –            | lock          | lock     |
//	| any           | yes          | yes    | no           | shield        | none     |
//	| any           | yes          | yes    | yes          | lock          | lock     |
//	| yes           | no           | no/yes | –            | shield        | none     |
//	| no            | no           | no/yes | –            | none          | none     |
//
// Secure audio implies authenticated signalling for Cisco devices, so the
// first three rows ignore Authenticated. With overrideBFCP (the service
// parameter "Override BFCP Application Encryption Status When Designating
// Call Security Status", default False) secure audio shows the lock
// whatever the other channels are.
func IconFor(m Media, d Display, overrideBFCP bool) Icon {
	switch {
	case m.AudioSecure && (!m.Video || m.VideoSecure || overrideBFCP):
		return IconLock
	case (m.AudioSecure || m.Authenticated) && d == ShieldAndLock:
		return IconShield
	default:
		return IconNone
	}
}

// LevelIcon returns the icon for a call at level l without video: lock
// for Encrypted, shield for Authenticated (none on a LockOnly phone),
// none otherwise.
func LevelIcon(l Level, d Display) Icon {
	l = l.norm()
	return IconFor(Media{Authenticated: l >= Authenticated, AudioSecure: l == Encrypted}, d, false)
}
