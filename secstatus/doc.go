// Package secstatus models the security status of calls the way Cisco
// Unified Communications Manager (CUCM) shows it: the level of each leg,
// of a call, of a conference, the shield and lock icons a phone displays,
// and the Call-Info header that carries the status across SIP lines and
// trunks.
//
// # Where to start
//
//   - Describe a call as a [Call] (its [Device]s, the [Trunk]s it crosses,
//     the [Resource]s in it now) and call [Evaluate] with the cluster's
//     [Options]; the [Result] gives the call level and, per device, the
//     icon and the reason.
//   - Conferences: [Conference.Evaluate], [AllocateBridge], [MeetMe.Admit],
//     and [Barge].
//   - Single decisions: [IconFor] (Table 4) and [Min].
//   - SIP: [ParseCallInfo] reads the status a peer sent (treat an error
//     as Unknown), and [CallInfo.String] writes one; [CallInfo.MarshalText]
//     is the strict writer, refusing rather than leaving out anything
//     that could break the header, for values from untrusted input.
//
// # Rules
//
// Levels are ordered Unknown < NotAuthenticated < Authenticated <
// Encrypted, and a call is as secure as its least secure part. The rule
// column names each rule as this package's tests and comments cite it: D
// for a device, R for a call, T for a SIP trunk, F and M for ad hoc and
// Meet-Me conferences, B for barge. The rules are those of Cisco's
// "Security Guide for Cisco Unified Communications Manager" (its overview
// chapter, with the icon table, and its chapters on SIP trunk security
// profiles and secure conference resources), and of the barge and
// conference tables of the Cisco IP phone administration guides:
//
//	| part                                         | level                           | rule     |
//	|----------------------------------------------|---------------------------------|----------|
//	| any device while the cluster is non-secure   | NotAuthenticated                | D1       |
//	| device in non-secure mode                    | NotAuthenticated                | D2       |
//	| device in authenticated mode                 | Authenticated                   | D3       |
//	| device in encrypted mode with SRTP audio     | Encrypted                       | D4       |
//	| encrypted mode, audio fell back to RTP       | Authenticated                   | D5       |
//	| device type not trusted                      | NotAuthenticated                | D6, R3   |
//	| old-firmware phone in a conference or barge  | Authenticated at most           | D7       |
//	| SIP endpoint without sis 2.0.0               | Authenticated at most           | D9       |
//	| gateway (PSTN): its IP leg                   | as a device; shows no icon      | R4       |
//	| SIP trunk with TLS and SRTP                  | Encrypted                       | T1       |
//	| SIP trunk with SRTP, "secure with sRTP only" | Encrypted                       | T5       |
//	| SIP trunk otherwise                          | NotAuthenticated                | T2, T4   |
//	| authenticated call across a SIP trunk        | NotAuthenticated (no shield)    | R5       |
//	| unencrypted music on hold                    | NotAuthenticated while it plays | R7       |
//	| transcoder or MTP                            | Authenticated at most           | R8       |
//	| hairpin back through a SIP trunk             | NotAuthenticated                | R10      |
//	| conference bridge: secure / other            | Encrypted / NotAuthenticated    | F1       |
//	| packet capture, MLPP tone in a conference    | NotAuthenticated                | R11, R12 |
//	| party being added, unknown party joined      | Unknown                         | F4, F5   |
//	| participant over a SIP trunk                 | NotAuthenticated                | F8       |
//	| barge                                        | lower of barger and call        | B1       |
//	| barge tone on a SIP target                   | NotAuthenticated while it plays | R13      |
//
// Every device then shows the icon for the call's level (CUCM dictates it,
// R14) by [IconFor]: a lock needs secure audio and, if there is video,
// secure video; a shield needs authenticated signalling and a phone that
// can show one ([ShieldAndLock]) and a call that crosses no SIP trunk
// (R5); [LockOnly] phones show a lock or nothing.
//
// # Versions
//
// Release differences are explicit [Options], never hidden behaviour:
// [Options.SecureMOH] (release 14 encrypts unicast music on hold),
// [Options.LegacySIPTrunks] (early releases: any SIP trunk made a call
// nonsecure), [Options.OverrideBFCP] (the service parameter that lets
// secure audio show the lock whatever the video) and
// [Options.HonourRemoteStatus] (whether a trunk peer's Call-Info lowers the
// trunk leg, which Cisco does not document).
//
// # Compatibility
//
// These parts of the CUCM behaviour are not modelled, or only partly:
//
//   - The list of phone models that show only the lock is not public:
//     [Display] is set per device by the caller.
//   - "Consider Traffic on This Trunk Secure = When using sRTP Only"
//     ([Trunk.SecureWhenSRTPOnly]) is modelled from the field's name; Cisco
//     documents no semantics.
//   - Meet-Me rules M5–M7 (linking ad hoc and Meet-Me conferences, barge
//     into a Meet-Me participant, shared-line resume) follow from
//     [MeetMe.Admit] applied to each party and are not separate functions.
//   - Per-model barge restrictions (encrypted 7940/7960/7942/7962 refusing a
//     barge of an encrypted call), protected-phone secure tones, recording
//     and monitoring (which never change the call's status), conference
//     DSP capacity (F10), hold inside a secure conference (F6: no music,
//     status unchanged: leave the conference as it is), and a held
//     off-cluster participant (F7: treat as a party of unknown status)
//     are left to the caller.
//   - Extension Mobility and shared lines keep a device's mode (D8):
//     nothing to model.
//   - Music on hold into a secure conference bridge, which older releases
//     encrypt as an exception, is covered by F6 rather than a resource.
//   - The JTAPI numeric CallSecurityStatus values are not exposed; the
//     value for Unknown is not documented.
//   - The conference list's per-participant icons (F9) are the Devices of
//     a [Result]; its "held" icon is not modelled.
//   - Which SIP message carries Call-Info (the 200 OK to the originating
//     phone, a re-INVITE or UPDATE to the terminating one, since an ACK
//     cannot) is the SIP stack's job; this package reads and writes the
//     header only.
package secstatus
