//go:build pkcs11

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ucsec/ucsec/pkcs11"
)

// tokenKeys opens keys in tokens through package pkcs11: this ucsec was
// built with the build tag pkcs11.
var tokenKeys tokenOpener = pkcs11Opener{}

// Environment variables of the token keys: the PIN, when the URI has no
// pin-source (never a flag, which ps shows), and the module, when the URI
// has no module-path or module-name.
const (
	tokenPINEnv    = "UCSEC_PKCS11_PIN"
	tokenModuleEnv = "UCSEC_PKCS11_MODULE"
)

type pkcs11Opener struct{}

func (pkcs11Opener) open(uri string) (tokenKey, error) {
	k, err := pkcs11.Open(uri, &pkcs11.Options{
		PIN:    os.Getenv(tokenPINEnv),
		Module: os.Getenv(tokenModuleEnv),
	})
	switch {
	case errors.Is(err, pkcs11.ErrNoPIN):
		return nil, fmt.Errorf("%w: add pin-source=FILE to the URI, or set %s", err, tokenPINEnv)
	case errors.Is(err, pkcs11.ErrNoModule):
		return nil, fmt.Errorf("%w, or set %s", err, tokenModuleEnv)
	case errors.Is(err, pkcs11.ErrNoTokenSupport):
		return nil, fmt.Errorf("%w: %s", err, tokenHowTo)
	case err != nil:
		return nil, err
	}
	return k, nil
}
