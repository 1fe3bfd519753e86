package capf

import (
	"context"
	"crypto"
	"crypto/x509"
)

// An Issuer signs the certificates (LSCs) that install operations hand to
// devices. [LocalCA] signs with a key the server holds; [ExternalCA] sends
// a PKCS#10 request to another CA and takes back its certificate.
type Issuer interface {
	// Issue returns a certificate for req.PublicKey naming req.Device.
	// Errors should wrap [ErrIssue].
	Issue(ctx context.Context, req *CertificateRequest) (*x509.Certificate, error)
}

// A CertificateRequest is what the server asks an [Issuer] for, after the
// device has authenticated and sent its new public key.
type CertificateRequest struct {
	// Device is the authenticated device name; it becomes the subject CN
	// and the SAN URI of the LSC.
	Device string
	// PublicKey is the device's new key (*rsa.PublicKey or
	// *ecdsa.PublicKey), already checked against the scheduled [KeySpec].
	PublicKey crypto.PublicKey
	// RawSubjectPublicKeyInfo is the DER the device sent.
	RawSubjectPublicKeyInfo []byte
}
