package pkcs11_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log"
	"os"

	"github.com/ucsec/ucsec/pkcs11"
)

// Open a key in a SoftHSM2 token and sign with it. (The example needs a
// token, so it is compiled but not run; see the package's tests.)
func ExampleOpen() {
	key, err := pkcs11.Open("pkcs11:token=ucsec;object=sast?module-path=/usr/lib/softhsm/libsofthsm2.so",
		&pkcs11.Options{PIN: os.Getenv("UCSEC_PKCS11_PIN")})
	if err != nil {
		log.Fatal(err) // pkcs11: key pkcs11:token=ucsec;object=sast?...: wrong PIN (CKR_PIN_INCORRECT), ...
	}
	defer key.Close()
	digest := sha256.Sum256([]byte("signed bytes"))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(sig))
}

func ExampleParseURI() {
	u, err := pkcs11.ParseURI("pkcs11:token=Site%20Administrator;id=%01?module-name=softhsm2&pin-value=1234")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Token)
	fmt.Printf("%x\n", u.ID)
	fmt.Println(u.Redacted())
	// Output:
	// Site Administrator
	// 01
	// pkcs11:token=Site%20Administrator;id=%01?module-name=softhsm2&pin-value=xxxxx
}
