package capfwire

import "strconv"

// ProtocolID is the first byte of every CAPF frame.
const ProtocolID = 0x55

// HeaderSize is the size of the frame header; the payload follows it.
const HeaderSize = 8

// MaxPayload is the largest payload the 2-byte length field can describe.
const MaxPayload = 0xFFFF

// MaxElements is the most elements a frame may hold. The largest frames
// of either protocol hold fewer than ten; the limit keeps a peer from
// making a reader allocate an [Element] for every three payload bytes.
const MaxElements = 64

// A Command is the second header byte: what the frame asks or answers.
type Command uint8

// Commands, numbered as in the reference implementation. The names are the
// project's. Codes 5–8, 16 and 18–23 are defined by both reference scripts
// but never used; their semantics are unknown and the comments only guess.
const (
	CmdAuthRequest               Command = 1  // server→phone, first frame: VERSION (+ AUTH_TYPE)
	CmdAuthResponse              Command = 2  // phone→server: identity and credentials
	CmdKeyGenerateRequest        Command = 3  // server→phone: KEY_SIZE, KEY_TYPE, CURVE
	CmdKeyGenerateResponse       Command = 4  // phone→server: PUBLIC_KEY (SPKI DER) or REASON
	CmdEncryptResponse           Command = 5  // unknown semantics (note: 5 is the response)
	CmdEncryptRequest            Command = 6  // unknown semantics
	CmdDecryptRequest            Command = 7  // unknown semantics
	CmdDecryptResponse           Command = 8  // unknown semantics
	CmdStoreCertificateRequest   Command = 9  // server→phone: CERTIFICATE_TYPE, CERTIFICATE (the LSC)
	CmdStoreCertificateResponse  Command = 10 // phone→server: REASON
	CmdFetchCertificateRequest   Command = 11 // server→phone: empty
	CmdFetchCertificateResponse  Command = 12 // phone→server: REASON (+ CERTIFICATE)
	CmdDeleteCertificateRequest  Command = 13 // server→phone: empty
	CmdDeleteCertificateResponse Command = 14 // phone→server: REASON
	CmdEndSession                Command = 15 // server→phone, last frame: REASON
	CmdRetryLater                Command = 16 // unknown semantics (server busy? with RETRY_DELAY?)
	CmdRequestInProgress         Command = 17 // phone→server: empty, while the key is generated
	CmdStatusRequest             Command = 18 // unknown semantics
	CmdStatusResponse            Command = 19 // unknown semantics
	CmdAbortRequest              Command = 20 // unknown semantics
	CmdAbortResponse             Command = 21 // unknown semantics
	CmdSignCertificateRequest    Command = 22 // unknown semantics (CSR signing?)
	CmdSignCertificateResponse   Command = 23 // unknown semantics
)

var commandNames = [...]string{
	CmdAuthRequest:               "AUTH_REQUEST",
	CmdAuthResponse:              "AUTH_RESPONSE",
	CmdKeyGenerateRequest:        "KEY_GENERATE_REQUEST",
	CmdKeyGenerateResponse:       "KEY_GENERATE_RESPONSE",
	CmdEncryptResponse:           "ENCRYPT_RESPONSE",
	CmdEncryptRequest:            "ENCRYPT_REQUEST",
	CmdDecryptRequest:            "DECRYPT_REQUEST",
	CmdDecryptResponse:           "DECRYPT_RESPONSE",
	CmdStoreCertificateRequest:   "STORE_CERTIFICATE_REQUEST",
	CmdStoreCertificateResponse:  "STORE_CERTIFICATE_RESPONSE",
	CmdFetchCertificateRequest:   "FETCH_CERTIFICATE_REQUEST",
	CmdFetchCertificateResponse:  "FETCH_CERTIFICATE_RESPONSE",
	CmdDeleteCertificateRequest:  "DELETE_CERTIFICATE_REQUEST",
	CmdDeleteCertificateResponse: "DELETE_CERTIFICATE_RESPONSE",
	CmdEndSession:                "END_SESSION",
	CmdRetryLater:                "RETRY_LATER",
	CmdRequestInProgress:         "REQUEST_IN_PROGRESS",
	CmdStatusRequest:             "STATUS_REQUEST",
	CmdStatusResponse:            "STATUS_RESPONSE",
	CmdAbortRequest:              "ABORT_REQUEST",
	CmdAbortResponse:             "ABORT_RESPONSE",
	CmdSignCertificateRequest:    "SIGN_CERTIFICATE_REQUEST",
	CmdSignCertificateResponse:   "SIGN_CERTIFICATE_RESPONSE",
}

// String returns the command's name, such as "AUTH_REQUEST", or its decimal
// value if it has none.
func (c Command) String() string {
	if int(c) < len(commandNames) && commandNames[c] != "" {
		return commandNames[c]
	}
	return strconv.Itoa(int(c))
}

// A Tag identifies an element of the payload.
type Tag uint8

// Element tags, numbered as in the reference implementation. Tags 14 and
// 15 are unassigned in every public source. CERTIFICATE_ID, RETRY_DELAY
// and DIGEST_TYPE are defined but never used; their formats are unknown.
const (
	TagReason          Tag = 1  // u8, see Reason*
	TagReasonInfo      Tag = 2  // bytes, probably text; never seen
	TagCertificateType Tag = 3  // u8, see CertificateType*
	TagCertificate     Tag = 4  // wrapped DER, see [WrapCertificate]
	TagCertificateID   Tag = 5  // unknown format
	TagSignedData      Tag = 6  // raw signature bytes (SHA-1 based)
	TagVersion         Tag = 7  // u8
	TagAuthType        Tag = 8  // u8, see Auth*
	TagPublicKey       Tag = 9  // DER SubjectPublicKeyInfo
	TagKeySize         Tag = 10 // u16 BE, RSA bits
	TagPassword        Tag = 11 // text + NUL
	TagRetryDelay      Tag = 12 // unknown format (seconds?)
	TagDeviceName      Tag = 13 // ASCII + NUL; 0x0D, but not padding here
	TagSUDIData        Tag = 16 // nested structure, see [SUDI]
	TagKeyType         Tag = 17 // u8, see KeyType*
	TagCurve           Tag = 18 // u8, see Curve*
	TagDigestType      Tag = 19 // unknown format
	TagSHA2SignedData  Tag = 20 // u8 hash id, u16 BE length, signature; see [WrapSHA2SignedData]
)

var tagNames = [...]string{
	TagReason:          "REASON",
	TagReasonInfo:      "REASON_INFO",
	TagCertificateType: "CERTIFICATE_TYPE",
	TagCertificate:     "CERTIFICATE",
	TagCertificateID:   "CERTIFICATE_ID",
	TagSignedData:      "SIGNED_DATA",
	TagVersion:         "VERSION",
	TagAuthType:        "AUTH_TYPE",
	TagPublicKey:       "PUBLIC_KEY",
	TagKeySize:         "KEY_SIZE",
	TagPassword:        "PASSWORD",
	TagRetryDelay:      "RETRY_DELAY",
	TagDeviceName:      "DEVICE_NAME",
	TagSUDIData:        "SUDI_DATA",
	TagKeyType:         "KEY_TYPE",
	TagCurve:           "CURVE",
	TagDigestType:      "DIGEST_TYPE",
	TagSHA2SignedData:  "SHA2_SIGNED_DATA",
}

// String returns the tag's name, such as "DEVICE_NAME", or its decimal value
// if it has none.
func (t Tag) String() string {
	if int(t) < len(tagNames) && tagNames[t] != "" {
		return tagNames[t]
	}
	return strconv.Itoa(int(t))
}

// REASON values, as the reference implementation and CUCM use them. Other
// values are unknown.
const (
	ReasonNoAction      uint8 = 0 // nothing scheduled; END_SESSION after "none" or a fetch
	ReasonOK            uint8 = 1 // success / update certificate
	ReasonFailure       uint8 = 7 // generic failure: invalid element, bad auth, no certificate…
	ReasonUnknownDevice uint8 = 9 // unknown device
)

// AUTH_TYPE values; they match the phone's capfAuthMode settings 1–4.
const (
	AuthNone       uint8 = 0 // what capfd sends in AUTH_REQUEST
	AuthPassword   uint8 = 1 // authentication string
	AuthNullString uint8 = 2 // null string / no password
	AuthLSC        uint8 = 3 // existing LSC
	AuthMIC        uint8 = 4 // manufacturer-installed certificate
)

// CERTIFICATE_TYPE values, also the last byte of the element 4 wrapper.
const (
	CertificateTypeLSC uint8 = 1
	CertificateTypeMIC uint8 = 2
)

// KEY_TYPE values. A KEY_GENERATE_REQUEST without KEY_TYPE means RSA.
const (
	KeyTypeRSA uint8 = 0
	KeyTypeEC  uint8 = 1
)

// CURVE values, sent with KEY_TYPE = [KeyTypeEC].
const (
	CurveP256 uint8 = 0 // secp256r1
	CurveP384 uint8 = 1 // secp384r1
	CurveP521 uint8 = 2 // secp521r1
)

// Hash ids inside SHA2_SIGNED_DATA (element 20) and SUDI_DATA (element 16).
const (
	HashSHA1   uint8 = 1
	HashSHA256 uint8 = 2
	HashSHA512 uint8 = 3 // the only one the reference server accepts in element 20
)

// TVS (Trust Verification Service), framed and numbered as in the reference
// implementation (usecallmanagernz tvsd and tvsc).

// TVSProtocolID is the first byte of every TVS frame.
const TVSProtocolID = 0x57

// TVSVersion is the protocol version, the second byte of a TVS frame.
const TVSVersion = 1

// TVSHeaderSize is the size of the TVS frame header; the payload follows it.
const TVSHeaderSize = 10

// A TVSCommand is the third byte of a TVS frame header.
type TVSCommand uint8

// TVS commands. QUERY_REQUEST and QUERY_RESPONSE are defined by the
// reference scripts but not implemented; their semantics are unknown.
const (
	TVSCmdNone           TVSCommand = 0 // defined, unused
	TVSCmdVerifyRequest  TVSCommand = 1 // phone→server: DEVICE_NAME, CERTIFICATE
	TVSCmdVerifyResponse TVSCommand = 2 // server→phone: STATUS (+ ROLES, TTL)
	TVSCmdQueryRequest   TVSCommand = 3 // unknown semantics
	TVSCmdQueryResponse  TVSCommand = 4 // unknown semantics
)

var tvsCommandNames = [...]string{
	TVSCmdNone:           "NONE",
	TVSCmdVerifyRequest:  "VERIFY_REQUEST",
	TVSCmdVerifyResponse: "VERIFY_RESPONSE",
	TVSCmdQueryRequest:   "QUERY_REQUEST",
	TVSCmdQueryResponse:  "QUERY_RESPONSE",
}

// String returns the command's name, such as "VERIFY_REQUEST", or its
// decimal value if it has none.
func (c TVSCommand) String() string {
	if int(c) < len(tvsCommandNames) {
		return tvsCommandNames[c]
	}
	return strconv.Itoa(int(c))
}

// TVS element tags. They share the [Tag] type, and so the [Elements]
// methods, with the CAPF tags, but not their meaning: TVS tag 1 is
// DEVICE_NAME, CAPF tag 1 is REASON. [TVSTagName] names them.
const (
	TVSTagDeviceName  Tag = 1 // 0x01, then ASCII without NUL; see [WrapTVSDeviceName]
	TVSTagCertificate Tag = 2 // raw X.509 DER (no wrapper, unlike CAPF tag 4)
	TVSTagStatus      Tag = 7 // u8, see TVSStatus*
	TVSTagRoles       Tag = 8 // one byte per role, the role numbers of ITL files
	TVSTagTTL         Tag = 9 // u32 BE, seconds the phone may cache the verdict
)

var tvsTagNames = [...]string{
	TVSTagDeviceName:  "DEVICE_NAME",
	TVSTagCertificate: "CERTIFICATE",
	TVSTagStatus:      "STATUS",
	TVSTagRoles:       "ROLES",
	TVSTagTTL:         "TTL",
}

// TVSTagName returns the TVS name of a tag, such as "STATUS", or its decimal
// value if it has none. ([Tag.String] gives the CAPF names.)
func TVSTagName(t Tag) string {
	if int(t) < len(tvsTagNames) && tvsTagNames[t] != "" {
		return tvsTagNames[t]
	}
	return strconv.Itoa(int(t))
}

// tvsTag prints a tag with its TVS name, for error messages.
type tvsTag Tag

func (t tvsTag) String() string { return TVSTagName(Tag(t)) }

// STATUS values of a VERIFY_RESPONSE.
const (
	TVSStatusValid   uint8 = 0 // known certificate; ROLES and TTL follow
	TVSStatusInvalid uint8 = 1 // invalid or unknown certificate; STATUS only
)
