// Package acl authorizes SIP requests the way CUCM does for SIP trunks
// and phones, independent of any SIP stack.
//
// A [Trunk] applies a SIP trunk security profile ([TrunkProfile]): the
// four request kinds a trunk may send ([Classify]: presence subscriptions,
// out-of-dialog REFER, unsolicited NOTIFY, requests with Replaces), digest
// authentication through package digest, and application level
// authorization of the authenticated application user
// ([ApplicationUser]). [Trunk.Authorize] follows CUCM's decision table
// row by row and returns a [Decision]: allow, challenge (with the
// challenge headers), forbid (403) or reject (400).
//
// INVITEs and in-dialog requests are authorized by calling search spaces
// and partitions ([CallingSearchSpace], [Partition], [Pattern]), and
// phones' presence subscriptions by presence groups ([PresenceGroups]).
//
// # Wiring it into emiago/sipgo
//
// Fill a [Request] and a digest.Request from the sipgo request and answer
// as the Decision says. examples/sip-trunk-acl is a complete, tested
// program; its aclRequest and digestRequest read headers in full and
// compact form ("r" for Refer-To, "o" for Event), take the Request-URI
// that the digest uri must equal, and its answers treat a To tag that
// names no dialog as 481:
//
//	srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
//		ar, dr := aclRequest(req), digestRequest(req)
//		d, err := trunk.Authorize(ctx, &ar, &dr)
//		switch {
//		case err != nil:
//			tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
//		case d.Verdict == acl.Allow && ar.InDialog && !dialogs.Holds(req):
//			// A To tag is the peer's claim (see Request.InDialog).
//			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
//		case d.Verdict == acl.Allow:
//			tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
//		default:
//			res := sip.NewResponseFromRequest(req, d.Status, reasonPhrase(d.Status), nil)
//			for _, v := range d.Challenges {
//				res.AppendHeader(sip.NewHeader(d.Header, v)) // one header per challenge
//			}
//			tx.Respond(res) // log d.Reason; never send it to the peer
//		}
//	})
//
// # Decision table
//
// [Trunk.Authorize] takes the first row that applies and reports its
// number in [Decision.Row]. The four kinds are those of [Classify]; a
// request of several kinds needs all of them accepted.
//
//	| row | request                                    | result                                   |
//	|-----|--------------------------------------------|------------------------------------------|
//	|   1 | ACK, CANCEL                                | allow: never challenged (RFC 3261 §22.1) |
//	|   2 | a kind the trunk profile does not accept   | forbid (403), no challenge               |
//	|   3 | digest authentication off                  | allow                                    |
//	|   4 | no credentials for the realm               | challenge (401 or 407)                   |
//	|   5 | malformed credentials                      | reject (400)                             |
//	|   6 | unknown user, wrong response, bad nonce    | challenge with a fresh nonce             |
//	|   7 | right response, nonce expired              | challenge, stale=true                    |
//	|   8 | right response, nonce or count replayed    | challenge, stale=true                    |
//	|   9 | authenticated, none of the four kinds      | allow                                    |
//	|  10 | authenticated, application level authz off | allow                                    |
//	|  11 | authenticated user is no application user  | forbid (403)                             |
//	|  12 | application user does not accept the kind  | forbid (403)                             |
//	|  13 | application user accepts the kind          | allow                                    |
//
// # Compatibility
//
// The decision table follows the SIP trunk security profile and
// application user settings of Cisco's "Security Guide for Cisco Unified
// Communications Manager": the four "Accept …" settings of a trunk refuse
// the kinds they leave out with 403, before any challenge; "Enable Digest
// Authentication" challenges every other request; "Enable Application
// Level Authorization" needs digest authentication and applies the same
// four settings of the authenticated application user after the trunk's.
// Where CUCM is not documented, this package decides, and says so: only
// the "presence" event package is a presence subscription; a REFER
// whose Refer-To URI carries a Replaces header is a Replaces request; a
// request that is not one of the four kinds passes application level
// authorization. [CallingSearchSpace.Match] takes the first partition in
// order that matches, while CUCM routes to the closest match; as this
// package has no blocking patterns, both agree on whether a number may be
// called at all.
package acl
