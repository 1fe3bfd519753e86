// Package capfwire reads and writes the frames of the two Cisco protocols a
// phone speaks to its call controller's certificate services: CAPF
// (Certificate Authority Proxy Function) and TVS (Trust Verification
// Service). It is the wire codec only: it knows the framing, the command and
// element codes and the layout of a few element values, and nothing about
// which frame may follow which. That belongs to the protocol layer (the capf
// package for CAPF).
//
// Both protocols carry the same payload, a sequence of elements: tag u8,
// length u16 BE, value, with no padding and no end marker. [Elements] holds
// them, with the getters and adders, once for both; [Frame] (CAPF) and
// [TVSFrame] (TVS) embed it and differ only in their headers, which both
// start with the protocol id and end with the u16 BE payload length (so a
// payload is at most 65535 bytes).
//
// CAPF runs over TCP port 3804 with TLS from the first byte; the phone is the
// TLS client, but the server sends the first frame (AUTH_REQUEST) and the last
// (END_SESSION), one operation per connection. A frame is an 8-byte header
// followed by the elements:
//
//	offset 0  u8      protocol id, always 0x55 ([ProtocolID])
//	offset 1  u8      command ([Command])
//	offset 2  u32 BE  session id (chosen by the server, echoed by the client)
//	offset 6  u16 BE  payload length, header not included (so at most 65535)
//	offset 8          elements: tag u8, length u16 BE, value ([Tag])
//
// TVS runs over TCP port 2445, TLS from the first byte; the phone sends a
// VERIFY_REQUEST with a certificate it does not find in its ITL and the
// server answers whether, and in which roles, to trust it. A frame is a
// 10-byte header, protocol id 0x57 ([TVSProtocolID]), version, command
// ([TVSCommand]), a reserved byte, a u32 BE request id chosen by the
// client, the payload length, then the elements; see [TVSFrame]. The TVS
// tags ([TVSTagDeviceName] …) are [Tag] values with their own meaning
// (TVS tag 1 is DEVICE_NAME, CAPF tag 1 is REASON); [TVSTagName] names them.
//
// Unlike the signed-file elements of internal/tlv, tag 0x0D has no special
// meaning here: it is the CAPF DEVICE_NAME, an ordinary element with a
// length. Payloads are therefore split into elements with
// [tlv.ReadPlainElement] (no padding rule), and built with [tlv.AddBytes].
//
// Start with [ReadFrame] and [WriteFrame], or [ReadTVSFrame] and
// [WriteTVSFrame]. A frame keeps its elements in wire order, duplicates and
// unknown tags included; [Elements.Get] and the typed getters return the
// first element with a tag. Rejecting duplicates, unknown tags (both Python
// reference peers abort on an unknown tag) or an unexpected TVS version is
// left to the protocol layer. Decoding is exact: a frame that decodes
// marshals back to the same bytes.
//
// # Security
//
// [ReadFrame] and [ReadTVSFrame] read exactly one frame and never more: the
// header, then the payload length it announces, which is at most 65535
// bytes, so a peer cannot make them allocate more than one bounded buffer
// (plus at most [MaxElements] [Element] values: a payload of more elements is
// refused before they are allocated). Element values alias that buffer. Nothing here is secret-dependent; the PASSWORD element is
// returned as is and must be compared by the caller in constant time.
//
// # Compatibility
//
// Cisco publishes no specification of either protocol. The codes, the
// certificate wrapper of CAPF element 4, the SHA2_SIGNED_DATA layout of CAPF
// element 20 and the 0x01 prefix of the TVS DEVICE_NAME follow the public
// reference implementation, usecallmanagernz/daemons (capfd, capfc, tvsd,
// tvsc), and were checked against the frames observed between its peers,
// which are the test fixtures. Real Cisco peers differ in content, not in
// framing: CUCM sends no AUTH_TYPE or KEY_TYPE, Jabber sends VERSION 2 and
// no PASSWORD ([Elements.Password] reads an absent PASSWORD as empty). The
// TVS frames were observed between the reference peers only; QUERY_REQUEST
// and QUERY_RESPONSE are named but their content is unknown.
//
// [Frame.Marshal] and [TVSFrame.Marshal] build the whole frame in one buffer
// and [WriteFrame] and [WriteTVSFrame] hand it to a single Write call: the
// reference server notes that a phone's CAPF client stalls when a header and
// its payload arrive in separate writes.
package capfwire
