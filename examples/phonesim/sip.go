package main

// SIP: the cluster's registrar and call controller, and the phones' user
// agents, on emiago/sipgo. This file holds what both sides share: where
// phones register, the +sip.instance that names a device, and small SIP
// helpers. The registrar is in registrar.go (its connection tracking in
// conntrack.go), the phone's user agent in phoneua.go, calls in call.go
// and the simulated trunk in trunk.go.
//
// A phone opens one connection and keeps it; the controller sends the
// phone's incoming calls over that connection, as CUCM does with its TLS
// phones, so phones do not listen for SIP. That keeps the mutual
// authentication of the registration for every request either way: the
// phone checked the server's certificate, the server the phone's.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// sipTimeout bounds one SIP transaction that main.go or a test starts
// without a deadline of its own, and each leg the controller sets up.
const sipTimeout = 10 * time.Second

// registerExpires is the registration lifetime phones ask for, in seconds.
const registerExpires = 3600

// sipServer is where phones register: what a phone's configuration file
// tells it.
type sipServer struct {
	TLS, TCP netip.AddrPort // the registrar's TLS (secure phones) and TCP ports
	Realm    string
}

// sipInstancePrefix starts a Cisco phone's +sip.instance: a UUID whose
// last group is the device's MAC address.
const sipInstancePrefix = "urn:uuid:00000000-0000-0000-0000-"

// instanceOf returns the +sip.instance value of device (SEP + MAC).
func instanceOf(device string) string {
	return `"<` + sipInstancePrefix + strings.ToLower(strings.TrimPrefix(device, "SEP")) + `>"`
}

// contactDevice returns the device a REGISTER claims to be, from its
// Contact's +sip.instance, as Cisco phones send it.
func contactDevice(req *sip.Request) (string, error) {
	c := req.Contact()
	if c == nil {
		return "", errors.New("no Contact")
	}
	v, ok := c.Params.Get("+sip.instance")
	if !ok {
		return "", errors.New("no +sip.instance in the Contact")
	}
	v = strings.Trim(strings.TrimSpace(v), `"<>`)
	mac, ok := strings.CutPrefix(strings.ToLower(v), sipInstancePrefix)
	if !ok || len(mac) != 12 {
		return "", errors.New("+sip.instance is not a device's")
	}
	if _, err := hex.DecodeString(mac); err != nil {
		return "", errors.New("+sip.instance is not a device's")
	}
	return "SEP" + strings.ToUpper(mac), nil
}

// newUA makes a sipgo user agent logging to log. tlsConf, if not nil, is
// the configuration of the TLS connections it opens. Transactions end as
// soon as their connection closes, rather than when their timers run out.
func newUA(name string, log *slog.Logger, tlsConf *tls.Config) (*sipgo.UserAgent, error) {
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(name),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log),
			sip.WithTransactionLayerTerminateOnConnClose()),
	}
	if tlsConf != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(tlsConf))
	}
	return sipgo.NewUA(opts...)
}

// respond sends res, logging a failure.
func respond(log *slog.Logger, tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		log.Debug("sending a response", "status", res.StatusCode, "error", err)
	}
}

func reasonPhrase(status int) string {
	switch status {
	case sip.StatusBadRequest:
		return "Bad Request"
	case sip.StatusUnauthorized:
		return "Unauthorized"
	case sip.StatusForbidden:
		return "Forbidden"
	case sip.StatusNotFound:
		return "Not Found"
	case sip.StatusProxyAuthRequired:
		return "Proxy Authentication Required"
	case sip.StatusTemporarilyUnavailable:
		return "Temporarily Unavailable"
	case sip.StatusCallTransactionDoesNotExists:
		return "Call/Transaction Does Not Exist"
	case sip.StatusBusyHere:
		return "Busy Here"
	case sip.StatusNotAcceptableHere:
		return "Not Acceptable Here"
	case sip.StatusInternalServerError:
		return "Server Internal Error"
	}
	return "Error"
}

// headerValues returns the values of the headers with one of names
// (compared without regard to case), in order.
func headerValues(hs []sip.Header, names ...string) []string {
	var vs []string
	for _, h := range hs {
		for _, n := range names {
			if strings.EqualFold(h.Name(), n) {
				vs = append(vs, h.Value())
			}
		}
	}
	return vs
}

// withDefaultTimeout bounds ctx by d, or by its own deadline if that is
// earlier.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// newTag returns a random From/To tag.
func newTag() string { return randomHex(8) }

// newCallID returns a random Call-ID.
func newCallID() string { return randomHex(16) + "@phonesim" }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
