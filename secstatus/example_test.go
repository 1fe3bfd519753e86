package secstatus_test

import (
	"fmt"
	"log"

	"github.com/ucsec/ucsec/secstatus"
)

// A two-party call between an encrypted phone and an authenticated one:
// the call is only authenticated, so both show the shield, except a phone
// that can show only the lock.
func ExampleEvaluate() {
	call := &secstatus.Call{Devices: []secstatus.Device{
		{Name: "SEP001122334455", Mode: secstatus.ModeEncrypted, AudioSRTP: true},
		{Name: "SEP665544332211", Mode: secstatus.ModeAuthenticated, Display: secstatus.LockOnly},
	}}
	res, err := secstatus.Evaluate(call, &secstatus.Options{MixedMode: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Level)
	for _, d := range res.Devices {
		fmt.Println(d.Name, d.Icon)
	}
	// Output:
	// Authenticated
	// SEP001122334455 shield
	// SEP665544332211 none
}

// An ad hoc conference on a secure bridge with two encrypted phones and an
// authenticated one: Authenticated, a shield for everyone; the lock comes
// back when the authenticated phone hangs up.
func ExampleConference_Evaluate() {
	opts := &secstatus.Options{MixedMode: true}
	bridge, err := secstatus.AllocateBridge(secstatus.Encrypted, true, true)
	if err != nil {
		log.Fatal(err)
	}
	conf := &secstatus.Conference{Bridge: bridge, Participants: []secstatus.Device{
		{Name: "A", Mode: secstatus.ModeEncrypted, AudioSRTP: true},
		{Name: "B", Mode: secstatus.ModeEncrypted, AudioSRTP: true},
		{Name: "C", Mode: secstatus.ModeAuthenticated},
	}}
	res, _ := conf.Evaluate(opts)
	fmt.Println(res.Level, res.Devices[0].Icon)
	conf.Participants = conf.Participants[:2]
	res, _ = conf.Evaluate(opts)
	fmt.Println(res.Level, res.Devices[0].Icon)
	// Output:
	// Authenticated shield
	// Encrypted lock
}

// A call across a SIP trunk: with TLS and SRTP it stays encrypted, and
// CUCM reports the status to the peer in a Call-Info header; without SRTP
// the trunk leg is nonsecure.
func ExampleTrunk_Transmit() {
	phone := secstatus.Device{Name: "SEP001122334455", Mode: secstatus.ModeEncrypted, AudioSRTP: true}
	trunk := secstatus.Trunk{Name: "to-cluster-2", TLS: true, SRTP: true}
	opts := &secstatus.Options{MixedMode: true}

	res, _ := secstatus.Evaluate(&secstatus.Call{Devices: []secstatus.Device{phone}, Trunks: []secstatus.Trunk{trunk}}, opts)
	fmt.Println(res.Level, res.Devices[0].Icon)
	info := secstatus.CallInfo{Security: trunk.Transmit(res.Level)}
	fmt.Println("Call-Info:", info.String())

	trunk.SRTP = false
	res, _ = secstatus.Evaluate(&secstatus.Call{Devices: []secstatus.Device{phone}, Trunks: []secstatus.Trunk{trunk}}, opts)
	fmt.Println(res.Level, res.Devices[0].Icon, "-", res.Reason)
	// Output:
	// Encrypted lock
	// Call-Info: <urn:x-cisco-remotecc:callinfo>; security= Encrypted
	// NotAuthenticated none - SIP trunk "to-cluster-2" with TLS but no SRTP
}
