package sgn

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/ucsec/ucsec/internal/signedfile"
)

// signatureSize returns the signature length for pub and its modulus code.
// Only RSA keys of 512, 1024, 2048 and 4096 bits have a code.
func signatureSize(pub crypto.PublicKey) (size int, code uint8, err error) {
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return 0, 0, fmt.Errorf("%w: signer key must be RSA, got %T", ErrUnsupportedAlgorithm, pub)
	}
	size = rsaPub.Size()
	for i, s := range sigSizes {
		if s == size {
			return size, uint8(i), nil
		}
	}
	return 0, 0, fmt.Errorf("%w: RSA key of %d bits has no signature modulus code (512, 1024, 2048 or 4096 bits)", ErrUnsupportedAlgorithm, rsaPub.N.BitLen())
}

// setSigner fills the signer fields of h from cert: subject and issuer as
// Cisco DN strings and the serial number as its unsigned magnitude.
func (h *rawHeader) setSigner(cert *x509.Certificate) error {
	if cert == nil {
		return errors.New("sgn: no signer certificate")
	}
	if cert.SerialNumber == nil || cert.SerialNumber.Sign() < 0 {
		return errors.New("sgn: signer certificate has a negative or missing serial number")
	}
	var err error
	if h.SignerName, err = signedfile.FormatName(cert.RawSubject); err != nil {
		return fmt.Errorf("sgn: signer subject: %w", err)
	}
	if h.IssuerName, err = signedfile.FormatName(cert.RawIssuer); err != nil {
		return fmt.Errorf("sgn: signer issuer: %w", err)
	}
	h.SerialNumber = cert.SerialNumber.Bytes()
	if len(h.SerialNumber) == 0 {
		h.SerialNumber = []byte{0}
	}
	return nil
}

// signRaw lays out h for a signature by priv, pads it to a multiple of 4,
// signs the header and payload with RSA PKCS#1 v1.5 and h.hash(), and
// returns the whole file: header followed by payload. The signature fields
// and Padding of h are set by Sign; everything else is written as given.
//
// If priv implements crypto.MessageSigner it is given the signed bytes;
// otherwise it is given their digest.
func signRaw(rand io.Reader, h *rawHeader, payload []byte, priv crypto.Signer) ([]byte, error) {
	hash := h.hash()
	if hash == 0 {
		return nil, fmt.Errorf("%w: hash code %d", ErrUnsupportedAlgorithm, h.HashCode)
	}
	if !hash.Available() {
		return nil, fmt.Errorf("%w: %v is not linked into the binary", ErrUnsupportedAlgorithm, hash)
	}
	size, code, err := signatureSize(priv.Public())
	if err != nil {
		return nil, err
	}
	h.SignatureAlgorithm, h.ModulusCode = signatureRSA, code
	h.Signature = make([]byte, size)
	h.Padding = 0
	raw, _, err := h.marshal()
	if err != nil {
		return nil, err
	}
	h.Padding = (4 - len(raw)%4) % 4
	raw, sigOff, err := h.marshal()
	if err != nil {
		return nil, err
	}
	if sigOff < 0 {
		return nil, errors.New("sgn: layout has no signature element")
	}

	file := make([]byte, 0, len(raw)+len(payload))
	file = append(file, raw...)
	file = append(file, payload...)
	sigStart, sigEnd := sigOff+3, sigOff+3+size

	var sig []byte
	if _, ok := priv.(crypto.MessageSigner); ok {
		tbs := make([]byte, 0, len(file)-3-size)
		tbs = append(append(tbs, file[:sigOff]...), file[sigEnd:]...)
		sig, err = crypto.SignMessage(priv, rand, tbs, hash)
	} else {
		d := hash.New()
		d.Write(file[:sigOff])
		d.Write(file[sigEnd:])
		sig, err = priv.Sign(rand, d.Sum(nil), hash)
	}
	if err != nil {
		return nil, fmt.Errorf("sgn: signing failed: %w", err)
	}
	if len(sig) != size {
		return nil, fmt.Errorf("sgn: signer returned %d signature bytes, want %d", len(sig), size)
	}
	copy(file[sigStart:sigEnd], sig)
	h.Signature = file[sigStart:sigEnd:sigEnd]
	return file, nil
}

// verify checks the header's RSA PKCS#1 v1.5 signature with pub over the
// signed bytes: h.TBS followed by payload. Any failure of the signature
// itself is ErrVerification.
func (h *rawHeader) verify(payload []byte, pub crypto.PublicKey) error {
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signatures are RSA, the key is %T", ErrUnsupportedAlgorithm, pub)
	}
	hash := h.hash()
	if hash == 0 || !hash.Available() {
		return fmt.Errorf("%w: hash code %d", ErrUnsupportedAlgorithm, h.HashCode)
	}
	if h.TBS == nil {
		return errors.New("sgn: header was not parsed")
	}
	if len(h.Signature) != rsaPub.Size() {
		return ErrVerification
	}
	d := hash.New()
	d.Write(h.TBS)
	d.Write(payload)
	if rsa.VerifyPKCS1v15(rsaPub, hash, d.Sum(nil), h.Signature) != nil {
		return ErrVerification
	}
	return nil
}

// checkSigner reports whether cert is the signer the header names: the same
// serial number (leading zero bytes ignored) and the same subject and issuer
// names (see signedfile.NamesEqual).
func (h *rawHeader) checkSigner(cert *x509.Certificate) error {
	if cert == nil || cert.SerialNumber == nil {
		return fmt.Errorf("%w: no certificate", ErrWrongSigner)
	}
	if new(big.Int).SetBytes(h.SerialNumber).Cmp(cert.SerialNumber) != 0 {
		return fmt.Errorf("%w: serial number differs", ErrWrongSigner)
	}
	if !signedfile.NamesEqual(h.SignerName, cert.RawSubject) {
		return fmt.Errorf("%w: subject name differs", ErrWrongSigner)
	}
	if !signedfile.NamesEqual(h.IssuerName, cert.RawIssuer) {
		return fmt.Errorf("%w: issuer name differs", ErrWrongSigner)
	}
	return nil
}
