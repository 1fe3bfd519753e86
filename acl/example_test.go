package acl_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ucsec/ucsec/acl"
	"github.com/ucsec/ucsec/digest"
)

// A trunk to a voice-mail system: it may send message-waiting NOTIFYs
// (unsolicited notifications) but not out-of-dialog REFERs, and must
// authenticate with digest.
func ExampleTrunk_Authorize() {
	users := &digest.MemoryStore{}
	users.AddPassword("unity", "cluster.example.com", "vm-secret")
	trunk := &acl.Trunk{
		Profile: &acl.TrunkProfile{
			Name:                 "Unity trunk",
			Accept:               acl.Accept{UnsolicitedNotification: true},
			DigestAuthentication: true,
		},
		Digest: &digest.Server{Realm: "cluster.example.com", Credentials: users},
	}
	ctx := context.Background()

	refer := &acl.Request{Method: "REFER", ReferTo: "<sip:1000@cluster.example.com>"}
	d, err := trunk.Authorize(ctx, refer, &digest.Request{Method: "REFER", URI: "sip:cluster.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Verdict, d.Status, d.Missing)

	notify := &acl.Request{Method: "NOTIFY", Event: "message-summary"}
	d, err = trunk.Authorize(ctx, notify, &digest.Request{Method: "NOTIFY", URI: "sip:1000@cluster.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Verdict, d.Status, d.Header)
	// Output:
	// forbid 403 out-of-dialog REFER
	// challenge 401 WWW-Authenticate
}

func ExampleCallingSearchSpace_Match() {
	internal, err := acl.NewPartition("Internal", "1XXX")
	if err != nil {
		log.Fatal(err)
	}
	pstn, err := acl.NewPartition("PSTN", "9.[2-9]XXXXXX", "9.1[2-9]XX[2-9]XXXXXX")
	if err != nil {
		log.Fatal(err)
	}
	lobby := &acl.CallingSearchSpace{Name: "Lobby", Partitions: []*acl.Partition{internal}}
	staff := &acl.CallingSearchSpace{Name: "Staff", Partitions: []*acl.Partition{internal, pstn}}

	for _, css := range []*acl.CallingSearchSpace{lobby, staff} {
		for _, number := range []string{"1234", "95551234"} {
			r, ok := css.Match(number)
			if ok {
				fmt.Printf("%s may call %s (%s in %s)\n", css.Name, number, r.Pattern, r.Partition.Name)
			} else {
				fmt.Printf("%s may not call %s\n", css.Name, number)
			}
		}
	}
	// Output:
	// Lobby may call 1234 (1XXX in Internal)
	// Lobby may not call 95551234
	// Staff may call 1234 (1XXX in Internal)
	// Staff may call 95551234 (9.[2-9]XXXXXX in PSTN)
}

func ExamplePresenceGroups() {
	groups := &acl.PresenceGroups{}
	groups.Set("Lobby", "Executives", false)
	fmt.Println(groups.Allowed("Lobby", "Executives"), groups.Allowed("Executives", "Lobby"))
	// Output: false true
}
