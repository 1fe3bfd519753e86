//go:build cgo

package softhsmtest_test

import (
	"fmt"

	"github.com/ucsec/ucsec/pkcs11/softhsmtest"
)

// In a test, New makes a throw-away token and the key generators fill it:
//
//	tk := softhsmtest.New(t, "ucsec") // skips without SoftHSM2, fails where CI=true
//	pub := tk.GenerateRSA(t, "sast", []byte{1}, 2048, nil)
//	key, err := pkcs11.Open(tk.URI("sast"), nil) // a crypto.Signer in the token
//
// URI names a key of the token with the module and the PIN file, as the
// code under test is given it.
func ExampleToken_URI() {
	tk := &softhsmtest.Token{Module: "/usr/lib/softhsm/libsofthsm2.so", Label: "ucsec", PINFile: "/tmp/token/pin"}
	fmt.Println(tk.URI("sast"))
	fmt.Println(tk.URIWithoutPIN("sast", "id=%01"))
	// Output:
	// pkcs11:token=ucsec;object=sast?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/tmp/token/pin
	// pkcs11:token=ucsec;object=sast;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so
}
