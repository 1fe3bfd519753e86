package acl

import (
	"net/url"
	"strings"
)

// Class is a set of the request kinds that a SIP trunk security profile
// (and an application user) authorizes. A request may be of several kinds
// (an out-of-dialog REFER with a Replaces header) or of none.
type Class uint8

// The request kinds of a SIP trunk security profile.
const (
	// Presence is an out-of-dialog SUBSCRIBE for the presence event
	// package ("Accept Presence Subscription").
	Presence Class = 1 << iota
	// OutOfDialogRefer is a REFER outside a dialog ("Accept Out-of-Dialog
	// REFER").
	OutOfDialogRefer
	// UnsolicitedNotify is a NOTIFY outside a dialog or subscription, such
	// as a voice-mail system's message-waiting NOTIFY ("Accept Unsolicited
	// Notification").
	UnsolicitedNotify
	// Replaces is any request that would replace a dialog: one with a
	// Replaces header, or a REFER whose Refer-To carries one ("Accept
	// Replaces Header").
	Replaces
)

var classNames = []struct {
	c    Class
	name string
}{
	{Presence, "presence subscription"},
	{OutOfDialogRefer, "out-of-dialog REFER"},
	{UnsolicitedNotify, "unsolicited NOTIFY"},
	{Replaces, "Replaces header"},
}

// String lists the kinds in c, such as "out-of-dialog REFER+Replaces
// header", or "other" for none.
func (c Class) String() string {
	var parts []string
	for _, n := range classNames {
		if c&n.c != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "other"
	}
	return strings.Join(parts, "+")
}

// Request is what classification and authorization need from a SIP
// request. Any SIP stack can fill it from the message; see the package
// example for emiago/sipgo.
type Request struct {
	// Method is the request method, such as "REFER".
	Method string

	// InDialog reports whether the request belongs to a dialog. A peer
	// chooses the To tag, so a made-up tag would let an out-of-dialog
	// REFER, NOTIFY or SUBSCRIBE pass for an in-dialog one: set InDialog
	// only when the To tag (with the Call-ID and From tag) names a dialog
	// or subscription you hold, and treat other tagged requests as 481
	// Call/Transaction Does Not Exist, as examples/sip-trunk-acl does.
	InDialog bool

	// Event is the Event header value (RFC 6665, compact form "o"), such
	// as "presence" or "message-summary;id=1"; "" if absent. Join the
	// values of several Event headers with commas: a request that names
	// presence in any of them is a presence subscription.
	Event string

	// Replaces reports whether the request has a Replaces header
	// (RFC 3891).
	Replaces bool

	// ReferTo is the Refer-To header value of a REFER (also sent in its
	// compact form "r"); "" otherwise. RFC 3515 allows exactly one: refuse
	// (400) a REFER with several rather than choosing one. A Replaces embedded in its URI
	// (…?Replaces=…) makes the REFER a Replaces request too: it asks for
	// an INVITE that replaces a dialog.
	ReferTo string
}

// Classify returns the kinds of r that a trunk profile authorizes:
//
//   - Presence: a SUBSCRIBE outside a dialog whose event package is
//     "presence" (compared without regard to case, parameters ignored).
//     Other packages (dialog, message-summary, presence.winfo) are not
//     presence subscriptions here; CUCM's treatment of them is not
//     documented.
//   - OutOfDialogRefer: a REFER outside a dialog.
//   - UnsolicitedNotify: a NOTIFY outside a dialog.
//   - Replaces: any request with a Replaces header, or a REFER whose
//     Refer-To URI has a Replaces header parameter. The second is our
//     decision (CUCM does not document it): such a REFER asks this side
//     to replace a dialog, which is what the flag guards.
//
// ACK and CANCEL are never classified: they are not authorized
// separately (RFC 3261 §22.1).
func Classify(r *Request) Class {
	var c Class
	switch strings.ToUpper(r.Method) {
	case "ACK", "CANCEL":
		return 0
	case "SUBSCRIBE":
		if !r.InDialog && hasPresence(r.Event) {
			c |= Presence
		}
	case "REFER":
		if !r.InDialog {
			c |= OutOfDialogRefer
		}
		if referToReplaces(r.ReferTo) {
			c |= Replaces
		}
	case "NOTIFY":
		if !r.InDialog {
			c |= UnsolicitedNotify
		}
	}
	if r.Replaces {
		c |= Replaces
	}
	return c
}

// hasPresence reports whether an Event value names the presence package.
// Several Event values may be joined with commas (several headers, or a
// peer that lists them): any presence one counts.
func hasPresence(event string) bool {
	for v := range strings.SplitSeq(event, ",") {
		pkg, _, _ := strings.Cut(v, ";")
		if strings.EqualFold(strings.TrimSpace(pkg), "presence") {
			return true
		}
	}
	return false
}

// referToReplaces reports whether a Refer-To value's URI carries a
// Replaces header: the "?Replaces=…" or "&Replaces=…" part of a SIP URI,
// the name compared without regard to case.
func referToReplaces(referTo string) bool {
	uri := strings.TrimSpace(referTo)
	if strings.HasPrefix(uri, `"`) {
		// A quoted display name may hold '<' and '>': skip it.
		i := 1
		for i < len(uri) && uri[i] != '"' {
			if uri[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(uri) {
			return true // unterminated: refuse to guess, treat as Replaces
		}
		uri = uri[i+1:]
	}
	if i := strings.IndexByte(uri, '<'); i >= 0 {
		uri = uri[i+1:]
		if j := strings.IndexByte(uri, '>'); j >= 0 {
			uri = uri[:j]
		}
	} else if j := strings.IndexByte(uri, ';'); j >= 0 {
		uri = uri[:j] // without <>, what follows ';' are the header's parameters
	}
	_, headers, ok := strings.Cut(uri, "?")
	if !ok {
		return false
	}
	for _, h := range strings.Split(headers, "&") {
		name, _, _ := strings.Cut(h, "=")
		if n, err := url.PathUnescape(name); err == nil {
			name = n // header names may be %-escaped
		}
		if strings.EqualFold(strings.TrimSpace(name), "Replaces") {
			return true
		}
	}
	return false
}
