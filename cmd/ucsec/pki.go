package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"strings"
)

// keyPairFlags are the flags that name a certificate and its private key:
// --cert and --key, or with a prefix, such as --ca-cert and --ca-key.
type keyPairFlags struct {
	certFlag, keyFlag string // flag names, for messages
	certPath, keyPath string
}

// addKeyPairFlags defines the flags --<prefix>cert and --<prefix>key on fs;
// who says whose they are, such as "signer".
func addKeyPairFlags(fs *flag.FlagSet, prefix, who string) *keyPairFlags {
	p := &keyPairFlags{certFlag: "--" + prefix + "cert", keyFlag: "--" + prefix + "key"}
	fs.StringVar(&p.certPath, prefix+"cert", "", who+" certificate `FILE`, PEM or DER")
	fs.StringVar(&p.keyPath, prefix+"key", "", who+" private key `FILE`, PEM or DER (may be the certificate's file)")
	return p
}

// set reports whether either flag was given.
func (p *keyPairFlags) set() bool { return p.certPath != "" || p.keyPath != "" }

// load loads the certificate and the private key and checks that they
// belong together. Both flags are required.
func (p *keyPairFlags) load() (*x509.Certificate, crypto.Signer, error) {
	switch {
	case p.certPath == "":
		return nil, nil, usageError("missing " + p.certFlag)
	case p.keyPath == "":
		return nil, nil, usageError("missing " + p.keyFlag)
	}
	cert, err := loadCertificate(p.certPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := loadSigner(p.keyPath)
	if err != nil {
		return nil, nil, err
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, nil, fmt.Errorf("the key in %s does not match the certificate in %s", p.keyPath, p.certPath)
	}
	return cert, key, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// loadCertificate returns the first certificate in the file path.
func loadCertificate(path string) (*x509.Certificate, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	cert, err := parseCertificate(data)
	if err != nil {
		return nil, &fileError{path, err}
	}
	return cert, nil
}

// loadOptionalCertificate is loadCertificate for an optional flag: it
// returns nil if path is "".
func loadOptionalCertificate(path string) (*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	return loadCertificate(path)
}

// parseCertificate returns the first certificate ("CERTIFICATE" block) in
// PEM data, or the certificate that DER data holds.
func parseCertificate(data []byte) (*x509.Certificate, error) {
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
		return nil, fmt.Errorf("not a valid certificate: %v", strings.TrimPrefix(err.Error(), "x509: "))
	}
	return cert, nil
}

// loadSigner returns the first private key in the file path: PKCS#8,
// PKCS#1 (RSA) or SEC1 (EC), in PEM or DER. Encrypted keys are not
// supported. Error messages never include key material.
func loadSigner(path string) (crypto.Signer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	key, err := parseSigner(data)
	if err != nil {
		return nil, &fileError{path, err}
	}
	return key, nil
}

func parseSigner(data []byte) (crypto.Signer, error) {
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
func isPEM(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil
}
