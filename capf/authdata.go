package capf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The signatures of the certificate authentication modes, as the reference
// implementation (usecallmanagernz capfc and capfd) makes and checks them.
//
// The phone signs AUTHDATA = device name || 0x00 || DER of the certificate
// it authenticates with, once over SHA-1 (element 6) and once over SHA-512
// (element 20). An RSA signature is PKCS #1 v1.5 over the bare digest, with
// no DigestInfo prefix; an ECDSA signature is ASN.1 DER (r, s). The SUDI
// signatures (element 16) cover the session id, uint32 little-endian,
// followed by the SUDI certificate DER.

// authMessage returns AUTHDATA for a device and certificate.
func authMessage(device string, certDER []byte) []byte {
	m := make([]byte, 0, len(device)+1+len(certDER))
	m = append(m, device...)
	m = append(m, 0)
	return append(m, certDER...)
}

// sudiMessage returns the message the SUDI signatures cover.
func sudiMessage(session uint32, certDER []byte) []byte {
	m := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(certDER)), session)
	return append(m, certDER...)
}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	}
	panic("capf: unexpected hash") // unreachable: callers pass SHA1 or SHA512
}

// errSignature is the deliberately vague failure of verifySignature.
var errSignature = errors.New("signature does not verify")

// signAuth signs msg the way a phone does. An RSA signer must accept
// crypto.Hash(0) (sign the bare digest), as *rsa.PrivateKey does.
func signAuth(rand io.Reader, key crypto.Signer, h crypto.Hash, msg []byte) ([]byte, error) {
	d := digest(h, msg)
	switch key.Public().(type) {
	case *rsa.PublicKey:
		return key.Sign(rand, d, crypto.Hash(0))
	case *ecdsa.PublicKey:
		return key.Sign(rand, d, h)
	}
	return nil, fmt.Errorf("%w: %T keys cannot sign CAPF authentication data", ErrInvalid, key.Public())
}

// verifySignature checks sig over msg. For RSA it accepts the bare-digest
// form phones use and, as a fallback, the standard DigestInfo form.
func verifySignature(pub crypto.PublicKey, h crypto.Hash, msg, sig []byte) error {
	d := digest(h, msg)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.Hash(0), d, sig) == nil || rsa.VerifyPKCS1v15(k, h, d, sig) == nil {
			return nil
		}
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, d, sig) {
			return nil
		}
	}
	return errSignature
}
