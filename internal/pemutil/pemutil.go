// Package pemutil reads certificates and private keys in PEM or DER, the
// forms that lab tools, CUCM exports and the test vectors use.
package pemutil

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ParseCertificate returns the first certificate ("CERTIFICATE" block) in
// PEM data, or the certificate that DER data holds.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	der := data
	if isPEM(data) {
		der = nil
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type == "CERTIFICATE" {
				der = block.Bytes
				break
			}
		}
		if der == nil {
			return nil, errors.New("no CERTIFICATE in PEM file")
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not a valid certificate: %w", err)
	}
	return cert, nil
}

// ParseCertificates returns every certificate ("CERTIFICATE" block) in
// PEM data, in order, or the one certificate that DER data holds. A block
// that does not parse is an error, naming its position.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !isPEM(data) {
		cert, err := ParseCertificate(data)
		if err != nil {
			return nil, err
		}
		return []*x509.Certificate{cert}, nil
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: not a valid certificate: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE in PEM file")
	}
	return certs, nil
}

// ParseSigner returns the first private key in data: PKCS#8, PKCS#1 (RSA)
// or SEC1 (EC), in PEM or DER. Encrypted keys are not supported. Error
// messages never include key material.
func ParseSigner(data []byte) (crypto.Signer, error) {
	if !isPEM(data) {
		return parsePrivateKey(data)
	}
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		switch block.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
				return nil, errors.New("encrypted private keys are not supported")
			}
			return parsePrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		}
	}
	return nil, errors.New("no private key in PEM file")
}

// parsePrivateKey parses a DER private key in any of the supported forms.
func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := key.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("a %T private key cannot sign", key)
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key, nil
	}
	return nil, errors.New("no PKCS#8, PKCS#1 or SEC1 private key")
}

// isPEM reports whether data holds a PEM block.
// isPEM reports whether data is PEM text: it starts, after white space,
// with a "-----BEGIN" line. Searching for a PEM block anywhere would let a
// DER certificate carry another certificate in PEM form inside an
// extension and have that one read instead.
func isPEM(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN "))
}
