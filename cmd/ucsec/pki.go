package main

import (
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"

	"github.com/ucsec/ucsec/internal/pemutil"
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
	cert, err := pemutil.ParseCertificate(data)
	if err != nil {
		return nil, &fileError{path, err}
	}
	return cert, nil
}

// loadCertificates returns every certificate in the file path: PEM
// certificates, or one in DER.
func loadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := pemutil.ParseCertificates(data)
	if err != nil {
		return nil, &fileError{path, err}
	}
	return certs, nil
}

// loadOptionalCertificate is loadCertificate for an optional flag: it
// returns nil if path is "".
func loadOptionalCertificate(path string) (*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	return loadCertificate(path)
}

// loadSigner returns the first private key in the file path: PKCS#8,
// PKCS#1 (RSA) or SEC1 (EC), in PEM or DER. Encrypted keys are not
// supported. Error messages never include key material.
func loadSigner(path string) (crypto.Signer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	key, err := pemutil.ParseSigner(data)
	if err != nil {
		return nil, &fileError{path, err}
	}
	return key, nil
}

// loadDecrypter returns the first private key in the file path, as
// loadSigner does, for decrypting: it must be a crypto.Decrypter, which
// of the keys loadSigner reads only RSA keys are.
func loadDecrypter(path string) (crypto.Decrypter, error) {
	key, err := loadSigner(path)
	if err != nil {
		return nil, err
	}
	d, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, &fileError{path, errors.New("the private key is not RSA and cannot decrypt")}
	}
	return d, nil
}
