//go:build !pkcs11

package main

import "fmt"

// tokenKeys refuses keys in tokens: this ucsec was built without the
// build tag pkcs11, and so without cgo code.
var tokenKeys tokenOpener = noTokens{}

type noTokens struct{}

func (noTokens) open(uri string) (tokenKey, error) {
	return nil, fmt.Errorf("%s: this ucsec was built without token support: %s", redactTokenRef(uri), tokenHowTo)
}
