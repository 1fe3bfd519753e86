package sgn_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"time"

	"github.com/ucsec/ucsec/sgn"
)

// tftpSigner makes a throw-away TFTP signing certificate and key. A real
// server loads its own (CUCM: the TFTP node's CallManager.pem); the key can
// be any crypto.Signer, such as a PKCS#11 token.
func tftpSigner() (*x509.Certificate, crypto.Signer) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1234),
		Subject:      pkix.Name{CommonName: "tftp.example.com", Organization: []string{"Example"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	return cert, key
}

var config = []byte(`<device><fullConfig>true</fullConfig></device>`)

func ExampleSign() {
	cert, key := tftpSigner()
	signed, err := sgn.Sign(rand.Reader, config, cert, key, sgn.SignOptions{
		Filename: "SEP001122334455.cnf.xml.sgn", // the name the phone asks for
		Hash:     crypto.SHA512,
		Time:     func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d header bytes + %d payload bytes\n", len(signed)-len(config), len(config))
	// Output: 400 header bytes + 46 payload bytes
}

func ExampleParse() {
	cert, key := tftpSigner()
	signed, err := sgn.Sign(rand.Reader, config, cert, key, sgn.SignOptions{
		Filename:      "SEP001122334455.cnf.xml.sgn",
		Hash:          crypto.SHA1,
		OmitTimestamp: true,
	})
	if err != nil {
		log.Fatal(err)
	}

	f, err := sgn.Parse(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version:", f.Version)
	fmt.Println("signer:", f.SignerName)
	fmt.Println("serial:", f.SerialNumber.Text(16))
	fmt.Println("hash:", f.Hash)
	fmt.Println("file name:", f.Filename)
	fmt.Println("timestamp:", f.Timestamp.IsZero())
	fmt.Printf("payload: %s\n", f.Payload)
	// Output:
	// version: 1.0
	// signer: O=Example;CN=tftp.example.com
	// serial: 1234
	// hash: SHA-1
	// file name: SEP001122334455.cnf.xml.sgn
	// timestamp: true
	// payload: <device><fullConfig>true</fullConfig></device>
}

func ExampleHeader_CheckSignatureFrom() {
	cert, key := tftpSigner()
	signed, err := sgn.Sign(rand.Reader, config, cert, key, sgn.SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: crypto.SHA512})
	if err != nil {
		log.Fatal(err)
	}

	f, err := sgn.Parse(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("trusted signer:", f.CheckSignatureFrom(cert))

	other, _ := tftpSigner()
	err = f.CheckSignatureFrom(other)
	fmt.Println("other certificate:", errors.Is(err, sgn.ErrVerification) || errors.Is(err, sgn.ErrWrongSigner))

	signed[len(signed)-3] ^= 0x20 // tamper with the payload
	f, err = sgn.Parse(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tampered:", f.CheckSignatureFrom(cert))
	// Output:
	// trusted signer: <nil>
	// other certificate: true
	// tampered: sgn: signature verification failed
}

func ExampleStrip() {
	cert, key := tftpSigner()
	signed, err := sgn.Sign(rand.Reader, config, cert, key, sgn.SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: crypto.SHA1})
	if err != nil {
		log.Fatal(err)
	}

	original, err := sgn.Strip(signed) // verifies nothing
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s -> %s\n", "SEP001122334455.cnf.xml.sgn", sgn.StrippedName("SEP001122334455.cnf.xml.sgn"))
	fmt.Printf("%s\n", original)

	_, err = sgn.Strip(original)
	fmt.Println(err)
	// Output:
	// SEP001122334455.cnf.xml.sgn -> SEP001122334455.cnf.xml
	// <device><fullConfig>true</fullConfig></device>
	// sgn: malformed signed file at offset 0 (tag 0x3C): file does not start with a version element
}
