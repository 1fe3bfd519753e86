// Package trustplan tells, before a certificate change is published,
// which phones will accept the new trust lists and signed files, and
// what to do about those that will not.
//
// A certificate change is the moment a secure Cisco cluster strands
// phones: a regenerated TFTP (CallManager) certificate, a new ITLRecovery
// (SAST) key, phones moved to another cluster, a cluster switched out of
// mixed mode. A phone that cannot verify the new ITL or CTL against what
// it holds rejects it, and then every signed configuration, until its
// trust lists are deleted by hand. [Plan] runs the phone's own decision
// table (package ctl's [ctl.Phone]: rules P1 to P8) over what a group of
// phones holds ([Held]), what TVS would vouch for (a tvs.Store) and what
// is about to be published ([Publication]), in the order phones fetch
// it: the CTL, the ITL, then the signed files, each against the lists the
// phones hold after the step before. For each file it returns a
// [Decision]: accepted or rejected, the rule that decided and, for a
// rejection, why and the [Fix]es that would work, naming the certificates
// by subject and SHA-256.
//
// Plan is built on ctl.Phone and cannot disagree with it: every verdict is
// ctl.Phone's, on copies of the lists. TVS answers from its store without
// the network, as the service would, and only to phones whose ITL holds a
// TVS record, as a tvs.Client pinned to those records asks. The command
// "ucsec tlv plan" runs Plan for the lists in directories, one per group
// of phones.
//
// # Worked examples
//
// In each, the phones hold the cluster's ITL, signed by its ITLRecovery
// key and listing ITLRecovery (SAST), the TFTP certificate (CCM+TFTP) and
// the TVS certificate (TVS):
//
//	held := trustplan.Held{ITL: currentITL}
//	res, err := trustplan.Plan(ctx, held, tvsStore, trustplan.Publication{ITL: newITL,
//		Files: []trustplan.SignedFile{{Name: "SEP001122334455.cnf.xml.sgn", File: config}}})
//
// A new TFTP certificate with the same SAST: the new ITL, signed by the
// same ITLRecovery key, lists the new TFTP certificate. The phones accept
// the ITL by P3 (its signer is a SAST of their ITL) and then the
// configuration signed by the new TFTP key by P8, because they hold the
// new ITL by then. Published without the new ITL, the configuration is
// rejected (P8), with the fix "publish an ITL … that holds" the new
// certificate.
//
// A new SAST (ITLRecovery) key without TVS (store nil): the new ITL's
// signer is unknown to the phones, which reject it (P6). The fixes name
// the certificates: "tvs", if the phones could ask TVS; "keep-signer",
// sign the new ITL once more with the old ITLRecovery key, listing both
// the old and the new key as SAST, so that the phones accept it by P3 and
// the next ITL, signed by the new key alone, by P3 again; and "reset", the
// phones' lists deleted by hand. With a TVS store that vouches for the new
// key as SAST (tvs.LoadTrustList with the new ITL, as CUCM's TVS trusts
// its own certificates), the phones accept it by P4; with one that does
// not, they reject it by P5.
//
// Moving phones to another cluster through TVS: the phones still hold
// their old cluster's ITL, and the new cluster's ITL is signed by its own
// ITLRecovery key. They accept it only if the TVS of their old ITL
// vouches for that key (P4): load the other cluster's ITL into the store
// (on CUCM, import its ITLRecovery and CallManager certificates as
// Phone-SAST-trust before moving the phones). Its configurations then
// verify against the new ITL (P8).
//
// A phone that holds a CTL from mixed mode when the cluster goes
// non-secure: CUCM publishes a CTL without the CCM+TFTP records, signed
// by the same SAST, which the phones accept by P2 (the signer is a SAST
// of their CTL), and their configurations still verify against their ITL
// (P8). A phone that holds a CTL ignores the rollback ITL (P7 holds only
// without a CTL), so the reset fix for such phones is to delete the CTL
// by hand. If the non-secure CTL is signed by a new key, phones without
// TVS reject it and keep the mixed-mode CTL; the plan then also checks the
// new ITL against that old CTL.
//
// # Security
//
// Plan decides nothing for a phone: it predicts, with the phone model of
// package ctl, which rests on Cisco's published behaviour. A fix is
// offered only when the phone model accepts the file once the fix is
// applied, where that can be tried without keys (TVS vouching for a
// signer, phones with no lists); the signing fixes name keys the phones
// hold, which the model cannot try without them. The lists a phone holds
// are taken as they are, their signatures unchecked: the phone checked
// them when it took them.
//
// # Compatibility
//
// The decision table is package ctl's; see its documentation for what is
// not confirmed from Cisco-made files. Whether a real phone reaches TVS
// also depends on the network and the TVS servers of its CallManager
// group, which Plan does not model: it assumes that a phone whose ITL has
// a TVS record reaches the service that store describes.
package trustplan
