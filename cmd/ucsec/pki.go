package main

import (
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"

	"github.com/ucsec/ucsec/internal/pemutil"
)

// keyPairFlags are the flags that name a certificate and its private key:
// --cert and --key, or with a prefix, such as --ca-cert and --ca-key. The
// key may be in a token, named by a pkcs11: URI (see keyFlag); its
// certificate then defaults to the token's.
type keyPairFlags struct {
	certFlag, keyFlag string // flag names, for messages
	certPath, keyPath string
	key               *keyFlag
}

// addKeyPairFlags defines the flags --<prefix>cert and --<prefix>key on fs;
// who says whose they are, such as "signer".
func addKeyPairFlags(fs *flag.FlagSet, prefix, who string) *keyPairFlags {
	p := &keyPairFlags{certFlag: "--" + prefix + "cert", keyFlag: "--" + prefix + "key"}
	fs.StringVar(&p.certPath, prefix+"cert", "", who+" certificate `FILE`, PEM or DER (for a key in a token, default: the token's certificate of the key)")
	p.key = addKeyFlag(fs, prefix+"key", who+" private key `FILE`, PEM or DER (may be the certificate's file), or a pkcs11: URI of a key in a token (PIN from its pin-source or $UCSEC_PKCS11_PIN)", &p.keyPath)
	return p
}

// set reports whether either flag was given.
func (p *keyPairFlags) set() bool { return p.certPath != "" || p.keyPath != "" }

// load loads the certificate and the private key and checks that they
// belong together. Both flags are required, except that a key in a token
// may come without --cert: the certificate is then the token's
// certificate object of the key's id, and certPath becomes the key's URI,
// which names the certificate in messages.
func (p *keyPairFlags) load() (*x509.Certificate, crypto.Signer, error) {
	switch {
	case p.certPath == "" && !isTokenRef(p.keyPath):
		return nil, nil, usageError("missing " + p.certFlag)
	case p.keyPath == "":
		return nil, nil, usageError("missing " + p.keyFlag)
	}
	var cert *x509.Certificate
	if p.certPath != "" {
		var err error
		if cert, err = loadCertificate(p.certPath); err != nil {
			return nil, nil, err
		}
	}
	key, tk, err := p.key.open()
	if err != nil {
		return nil, nil, err
	}
	if cert == nil {
		if cert, err = tk.Certificate(); err != nil {
			return nil, nil, fmt.Errorf("missing %s, and the token has no certificate for the key: %w", p.certFlag, err)
		}
		p.certPath = p.key.display()
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, nil, fmt.Errorf("the key in %s does not match the certificate in %s", p.key.display(), p.certPath)
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

// keyFlag is the value of a flag that names a private key (--key,
// --ca-key, --phone-key ...): a key file, as loadSigner reads it, or a key
// in a security token or HSM named by a PKCS #11 URI (RFC 7512), which
// needs a ucsec built with token support (see tokenKeys). The PIN of a
// token comes from the URI's pin-source or the environment variable
// UCSEC_PKCS11_PIN, never from the command line. A token key that the
// flag opens stays open, logged in, until the command ends: execute
// closes it (closeKeys).
type keyFlag struct {
	path   *string
	mu     sync.Mutex
	opened []io.Closer
}

// addKeyFlag defines the key flag name on fs, with its value in *p.
func addKeyFlag(fs *flag.FlagSet, name, usage string, p *string) *keyFlag {
	k := &keyFlag{path: p}
	fs.Var(k, name, usage)
	return k
}

func (k *keyFlag) String() string {
	if k == nil || k.path == nil {
		return ""
	}
	return *k.path
}

func (k *keyFlag) Set(s string) error { *k.path = s; return nil }

// display is how messages name the key: its file, or its URI without
// the query, where a PIN could be.
func (k *keyFlag) display() string {
	if isTokenRef(*k.path) {
		return redactTokenRef(*k.path)
	}
	return *k.path
}

// open opens the key; for a key in a token it also returns the token key,
// whose certificate load may need, and nil for a file.
func (k *keyFlag) open() (crypto.Signer, tokenKey, error) {
	ref := *k.path
	if !isTokenRef(ref) {
		key, err := loadSigner(ref)
		return key, nil, err
	}
	tk, err := tokenKeys.open(ref)
	if err != nil {
		return nil, nil, err
	}
	k.mu.Lock()
	k.opened = append(k.opened, tk)
	k.mu.Unlock()
	return tk, tk, nil
}

// decrypter opens the key for decrypting: it must be a crypto.Decrypter,
// which of the keys loadSigner reads and tokens hold only RSA keys are.
func (k *keyFlag) decrypter() (crypto.Decrypter, error) {
	key, _, err := k.open()
	if err != nil {
		return nil, err
	}
	d, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, &fileError{k.display(), errors.New("the private key is not RSA and cannot decrypt")}
	}
	return d, nil
}

// closeKeys closes the token keys the flag opened.
func (k *keyFlag) closeKeys() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.opened {
		c.Close()
	}
	k.opened = nil
}

// closeKeys closes the token keys that the key flags of fs opened.
func closeKeys(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if k, ok := f.Value.(*keyFlag); ok {
			k.closeKeys()
		}
	})
}
