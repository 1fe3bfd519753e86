// Package capfwire reads and writes the frames of the Cisco CAPF (Certificate
// Authority Proxy Function) protocol. It is the wire codec only: it knows the
// framing, the command and element codes and the layout of a few element
// values, and nothing about which frame may follow which. That belongs to the
// capf package.
//
// CAPF runs over TCP port 3804 with TLS from the first byte; the phone is the
// TLS client, but the server sends the first frame (AUTH_REQUEST) and the last
// (END_SESSION), one operation per connection. A frame is an 8-byte header
// followed by a payload of elements (../shared/spec/capf-tvs.md §1.1):
//
//	offset 0  u8      protocol id, always 0x55 ([ProtocolID])
//	offset 1  u8      command ([Command], §2.1)
//	offset 2  u32 BE  session id (chosen by the server, echoed by the client)
//	offset 6  u16 BE  payload length, header not included (so at most 65535)
//	offset 8          elements: tag u8, length u16 BE, value (§2.2)
//
// There is no padding and no end marker. Unlike the signed-file elements of
// internal/tlv, tag 0x0D has no special meaning here: it is DEVICE_NAME, an
// ordinary element with a length. Frames are therefore split into elements
// with [tlv.ReadPlainElement] (no padding rule), and built with
// [tlv.AddBytes].
//
// Start with [ReadFrame] and [WriteFrame]. A [Frame] keeps its elements in
// wire order, duplicates and unknown tags included; [Frame.Get] and the typed
// getters return the first element with a tag. Rejecting duplicates or unknown
// tags (both Python reference peers abort on an unknown tag) is left to the
// protocol layer. Decoding is exact: a frame that decodes marshals back to
// the same bytes.
//
// # Security
//
// [ReadFrame] reads exactly one frame and never more: the 8-byte header, then
// the payload length it announces, which is at most 65535 bytes, so a peer
// cannot make it allocate more than one bounded buffer (plus one [Element]
// per three payload bytes at most). Element values alias that buffer. Nothing
// here is secret-dependent; the PASSWORD element is returned as is and must be
// compared by the caller in constant time.
//
// # Compatibility
//
// The codes, the certificate wrapper of element 4 and the SHA2_SIGNED_DATA
// layout of element 20 follow capf-tvs.md §2 and were checked against the
// frames observed between the reference peers (§9.2), which are the test
// fixtures. Real Cisco peers differ in content, not in framing (§8): CUCM
// sends no AUTH_TYPE or KEY_TYPE, Jabber sends VERSION 2 and no PASSWORD
// ([Frame.Password] reads an absent PASSWORD as empty).
//
// [Frame.Marshal] builds the whole frame in one buffer and [WriteFrame] hands
// it to a single Write call: the reference server notes that a phone's CAPF
// client stalls when a header and its payload arrive in separate writes.
//
// The TVS protocol (protocol id 0x57, 10-byte header, the same elements) is
// not covered yet.
package capfwire
