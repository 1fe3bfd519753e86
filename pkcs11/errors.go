package pkcs11

import (
	"errors"
	"fmt"
	"strings"
)

// Errors that the errors of this package wrap, to be tested with
// errors.Is. Their text is what follows the URI in a message.
var (
	ErrMalformedURI   = errors.New("pkcs11: malformed PKCS #11 URI")
	ErrNoModule       = errors.New("pkcs11: no module: give module-path or module-name in the URI")
	ErrModule         = errors.New("pkcs11: cannot load the PKCS #11 module")
	ErrTokenNotFound  = errors.New("pkcs11: no token matches")
	ErrAmbiguous      = errors.New("pkcs11: more than one matches")
	ErrNoPIN          = errors.New("pkcs11: the token needs a PIN and none was given")
	ErrPINValue       = errors.New("pkcs11: pin-value is refused: it puts the PIN where others may read it; use pin-source")
	ErrPINSource      = errors.New("pkcs11: cannot read the pin-source")
	ErrPINIncorrect   = errors.New("pkcs11: wrong PIN")
	ErrPINLocked      = errors.New("pkcs11: the PIN is locked")
	ErrLogin          = errors.New("pkcs11: cannot log in to the token")
	ErrKeyNotFound    = errors.New("pkcs11: no private key matches")
	ErrKeyType        = errors.New("pkcs11: not a usable private key")
	ErrNoCertificate  = errors.New("pkcs11: the token holds no certificate for the key")
	ErrRefused        = errors.New("pkcs11: the token refused the operation")
	ErrUnsupported    = errors.New("pkcs11: unsupported operation")
	ErrToken          = errors.New("pkcs11: token error")
	ErrClosed         = errors.New("pkcs11: the key is closed")
	ErrNoTokenSupport = errors.New("pkcs11: this program was built without cgo, which PKCS #11 modules need")
)

// An Error is an error about the key a URI names. URI is the URI as
// Redacted writes it (without a pin-value); Err wraps one of the errors
// above and, for an error the token returned, a Code.
type Error struct {
	URI string
	Op  string // what failed: "open", "sign", "decrypt", "certificate"
	Err error
}

func (e *Error) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "pkcs11: ")
	if e.Op == "open" || e.Op == "" {
		return fmt.Sprintf("pkcs11: key %s: %s", e.URI, msg)
	}
	return fmt.Sprintf("pkcs11: key %s: %s: %s", e.URI, e.Op, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// A Code is a return value of a PKCS #11 function (CK_RV), such as
// CKR_PIN_INCORRECT (0xA0). Its text is the name of the value.
type Code uint

func (c Code) Error() string {
	if name, ok := codeNames[c]; ok {
		return name
	}
	return fmt.Sprintf("CKR_0x%X", uint(c))
}

// The return values that this package tells apart.
const (
	ckrOK                        Code = 0x000
	ckrGeneralError              Code = 0x005
	ckrFunctionFailed            Code = 0x006
	ckrArgumentsBad              Code = 0x007
	ckrAttributeSensitive        Code = 0x011
	ckrAttributeTypeInvalid      Code = 0x012
	ckrDataInvalid               Code = 0x020
	ckrDataLenRange              Code = 0x021
	ckrDeviceError               Code = 0x030
	ckrDeviceMemory              Code = 0x031
	ckrDeviceRemoved             Code = 0x032
	ckrEncryptedDataInvalid      Code = 0x040
	ckrEncryptedDataLenRange     Code = 0x041
	ckrFunctionNotSupported      Code = 0x054
	ckrKeyHandleInvalid          Code = 0x060
	ckrKeySizeRange              Code = 0x062
	ckrKeyTypeInconsistent       Code = 0x063
	ckrKeyFunctionNotPermitted   Code = 0x068
	ckrMechanismInvalid          Code = 0x070
	ckrMechanismParamInvalid     Code = 0x071
	ckrObjectHandleInvalid       Code = 0x082
	ckrOperationActive           Code = 0x090
	ckrPINIncorrect              Code = 0x0A0
	ckrPINInvalid                Code = 0x0A1
	ckrPINLenRange               Code = 0x0A2
	ckrPINExpired                Code = 0x0A3
	ckrPINLocked                 Code = 0x0A4
	ckrSessionClosed             Code = 0x0B0
	ckrSessionCount              Code = 0x0B1
	ckrSessionHandleInvalid      Code = 0x0B3
	ckrTokenNotPresent           Code = 0x0E0
	ckrTokenNotRecognized        Code = 0x0E1
	ckrUserAlreadyLoggedIn       Code = 0x100
	ckrUserNotLoggedIn           Code = 0x101
	ckrUserPINNotInitialized     Code = 0x102
	ckrUserTypeInvalid           Code = 0x103
	ckrUserAnotherAlreadyLoggedI Code = 0x104
	ckrBufferTooSmall            Code = 0x150
	ckrCryptokiNotInitialized    Code = 0x190
	ckrCryptokiAlreadyInit       Code = 0x191
)

var codeNames = map[Code]string{
	ckrOK:                        "CKR_OK",
	ckrGeneralError:              "CKR_GENERAL_ERROR",
	ckrFunctionFailed:            "CKR_FUNCTION_FAILED",
	ckrArgumentsBad:              "CKR_ARGUMENTS_BAD",
	ckrAttributeSensitive:        "CKR_ATTRIBUTE_SENSITIVE",
	ckrAttributeTypeInvalid:      "CKR_ATTRIBUTE_TYPE_INVALID",
	ckrDataInvalid:               "CKR_DATA_INVALID",
	ckrDataLenRange:              "CKR_DATA_LEN_RANGE",
	ckrDeviceError:               "CKR_DEVICE_ERROR",
	ckrDeviceMemory:              "CKR_DEVICE_MEMORY",
	ckrDeviceRemoved:             "CKR_DEVICE_REMOVED",
	ckrEncryptedDataInvalid:      "CKR_ENCRYPTED_DATA_INVALID",
	ckrEncryptedDataLenRange:     "CKR_ENCRYPTED_DATA_LEN_RANGE",
	ckrFunctionNotSupported:      "CKR_FUNCTION_NOT_SUPPORTED",
	ckrKeyHandleInvalid:          "CKR_KEY_HANDLE_INVALID",
	ckrKeySizeRange:              "CKR_KEY_SIZE_RANGE",
	ckrKeyTypeInconsistent:       "CKR_KEY_TYPE_INCONSISTENT",
	ckrKeyFunctionNotPermitted:   "CKR_KEY_FUNCTION_NOT_PERMITTED",
	ckrMechanismInvalid:          "CKR_MECHANISM_INVALID",
	ckrMechanismParamInvalid:     "CKR_MECHANISM_PARAM_INVALID",
	ckrObjectHandleInvalid:       "CKR_OBJECT_HANDLE_INVALID",
	ckrOperationActive:           "CKR_OPERATION_ACTIVE",
	ckrPINIncorrect:              "CKR_PIN_INCORRECT",
	ckrPINInvalid:                "CKR_PIN_INVALID",
	ckrPINLenRange:               "CKR_PIN_LEN_RANGE",
	ckrPINExpired:                "CKR_PIN_EXPIRED",
	ckrPINLocked:                 "CKR_PIN_LOCKED",
	ckrSessionClosed:             "CKR_SESSION_CLOSED",
	ckrSessionCount:              "CKR_SESSION_COUNT",
	ckrSessionHandleInvalid:      "CKR_SESSION_HANDLE_INVALID",
	ckrTokenNotPresent:           "CKR_TOKEN_NOT_PRESENT",
	ckrTokenNotRecognized:        "CKR_TOKEN_NOT_RECOGNIZED",
	ckrUserAlreadyLoggedIn:       "CKR_USER_ALREADY_LOGGED_IN",
	ckrUserNotLoggedIn:           "CKR_USER_NOT_LOGGED_IN",
	ckrUserPINNotInitialized:     "CKR_USER_PIN_NOT_INITIALIZED",
	ckrUserTypeInvalid:           "CKR_USER_TYPE_INVALID",
	ckrUserAnotherAlreadyLoggedI: "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
	ckrBufferTooSmall:            "CKR_BUFFER_TOO_SMALL",
	ckrCryptokiNotInitialized:    "CKR_CRYPTOKI_NOT_INITIALIZED",
	ckrCryptokiAlreadyInit:       "CKR_CRYPTOKI_ALREADY_INITIALIZED",
}

// sessionLost reports whether c says that the session, or the login, is
// gone: the token was reset or removed, or another application closed
// every session of the slot. A key then logs in again on its next use.
func sessionLost(c Code) bool {
	switch c {
	case ckrSessionHandleInvalid, ckrSessionClosed, ckrUserNotLoggedIn,
		ckrDeviceRemoved, ckrTokenNotPresent, ckrCryptokiNotInitialized, ckrKeyHandleInvalid, ckrObjectHandleInvalid:
		return true
	}
	return false
}
