package cnfenc_test

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

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/sgn"
)

// newCert makes a throw-away self-signed RSA certificate and key. A real
// TFTP server loads its own certificate (CUCM: CallManager.pem) and learns
// a phone's certificate from CAPF; either key can be any crypto.Signer or
// crypto.Decrypter, such as a key in a PKCS#11 token.
func newCert(cn string) (*x509.Certificate, *rsa.PrivateKey) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x5ca1ab1e),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Example"}},
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

var fullConfig = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<device>
<fullConfig>true</fullConfig>
<ipAddressMode>0</ipAddressMode>
<capfAuthMode>0</capfAuthMode>
<capfList><capf><phonePort>3804</phonePort></capf></capfList>
<sipProfile><sipLines><line button="1"><name>1001</name><authName>1001</authName><authPassword>secret</authPassword></line></sipLines></sipProfile>
</device>
`)

// The TFTP server encrypts a phone's configuration to the phone's
// certificate and signs it; the phone verifies the signature and decrypts
// with its private key.
func ExampleEncrypt() {
	tftpCert, tftpKey := newCert("tftp.example.com")
	phoneCert, phoneKey := newCert("CP-8841-SEP001122334455")

	encrypted, err := cnfenc.Encrypt(rand.Reader, fullConfig, phoneCert, tftpCert, tftpKey, cnfenc.EncryptOptions{
		DeviceName: "SEP001122334455",
		Hash:       crypto.SHA512,
	})
	if err != nil {
		log.Fatal(err)
	}

	// On the phone: the signer is the certificate of the trust-list record
	// that vouches for the file (ctl.File.VerifySignedFile returns it);
	// here it is known. Decrypt verifies the signature, then decrypts.
	f, err := cnfenc.Parse(encrypted)
	if err != nil {
		log.Fatal(err)
	}
	config, err := f.Decrypt(tftpCert, phoneKey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Filename)
	fmt.Println(string(config) == string(fullConfig))
	// Output:
	// SEP001122334455.cnf.xml.enc.sgn
	// true
}

// Decrypt does the signature check and the decryption in one call when the
// signer is known.
func ExampleDecrypt() {
	tftpCert, tftpKey := newCert("tftp.example.com")
	phoneCert, phoneKey := newCert("CP-8841-SEP001122334455")
	encrypted, err := cnfenc.Encrypt(nil, fullConfig, phoneCert, tftpCert, tftpKey, cnfenc.EncryptOptions{
		DeviceName: "SEP001122334455",
		Hash:       crypto.SHA1,
	})
	if err != nil {
		log.Fatal(err)
	}

	config, err := cnfenc.Decrypt(encrypted, tftpCert, phoneKey)
	fmt.Println(len(config) == len(fullConfig), err)

	_, otherKey := newCert("another phone")
	_, err = cnfenc.Decrypt(encrypted, tftpCert, otherKey)
	fmt.Println(errors.Is(err, cnfenc.ErrDecryption))
	// Output:
	// true <nil>
	// true
}

// The TFTP server also serves a short signed configuration that tells the
// phone to fetch the encrypted one, and names the certificate it is
// encrypted to. The phone checks that name against its own certificate.
func ExampleShortConfig() {
	tftpCert, tftpKey := newCert("tftp.example.com")
	phoneCert, _ := newCert("CP-8841-SEP001122334455")

	short, err := cnfenc.ShortConfig(fullConfig, phoneCert)
	if err != nil {
		log.Fatal(err)
	}
	signed, err := sgn.Sign(rand.Reader, short, tftpCert, tftpKey, sgn.SignOptions{
		Filename: cnfenc.ShortName("SEP001122334455"),
		Hash:     crypto.SHA512,
	})
	if err != nil {
		log.Fatal(err)
	}

	// On the phone, after verifying the .sgn through its trust list:
	f, err := sgn.Parse(signed)
	if err != nil {
		log.Fatal(err)
	}
	info, err := cnfenc.ParseShortConfig(f.Payload)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Filename)
	fmt.Println("encrypted config:", info.EncrConfig)
	fmt.Println("for my certificate:", info.CertHashMatches(phoneCert))
	// Output:
	// SEP001122334455.cnf.xml.sgn
	// encrypted config: true
	// for my certificate: true
}

func ExampleExcludeDigestCredentials() {
	config := []byte(`<line button="1"><name>1001</name><authName>1001</authName><authPassword>secret</authPassword></line>`)
	out, n, err := cnfenc.ExcludeDigestCredentials(config)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, string(out))
	// Output: 2 <line button="1"><name>1001</name></line>
}

// A key typed into the phone instead of one wrapped to its certificate.
// The layout of such files is inferred; see the package documentation.
func ExampleEncryptManualKey() {
	tftpCert, tftpKey := newCert("tftp.example.com")
	key, err := cnfenc.ParseManualKey("0123456789abcdef0123456789abcdef")
	if err != nil {
		log.Fatal(err)
	}
	encrypted, err := cnfenc.EncryptManualKey(nil, fullConfig, key, tftpCert, tftpKey, cnfenc.EncryptOptions{
		DeviceName: "SEP001122334455",
		Hash:       crypto.SHA1,
	})
	if err != nil {
		log.Fatal(err)
	}
	f, err := cnfenc.Parse(encrypted)
	if err != nil {
		log.Fatal(err)
	}
	config, err := f.DecryptManualKey(tftpCert, key)
	fmt.Println(len(config) == len(fullConfig), err)
	// Output: true <nil>
}
