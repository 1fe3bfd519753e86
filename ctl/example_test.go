package ctl_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/sgn"
)

func newCert(cn string, serial int64) (*x509.Certificate, crypto.Signer) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
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

// newCTL makes a CTL signed by a SAST with the given certificate and key.
func newCTL(sast *x509.Certificate, key crypto.Signer, callManager *x509.Certificate) []byte {
	var records []ctl.Record
	for _, r := range []struct {
		cert *x509.Certificate
		role ctl.Role
	}{{sast, ctl.RoleSAST}, {callManager, ctl.RoleCCMTFTP}} {
		rec, err := ctl.NewRecord(r.cert, r.role)
		if err != nil {
			log.Fatal(err)
		}
		records = append(records, rec)
	}
	data, err := ctl.Create(rand.Reader, &ctl.File{Header: sgn.Header{Hash: crypto.SHA512, Timestamp: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)},
		Records: records}, sast, key)
	if err != nil {
		log.Fatal(err)
	}
	return data
}

func ExampleCreate() {
	sast, key := newCert("SAST-token", 1)
	callManager, _ := newCert("cucm-pub", 2)
	data := newCTL(sast, key, callManager)

	f, err := ctl.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Filename, f.Version, f.Hash, "verify:", f.Verify())
	for _, r := range f.Records {
		fmt.Println(r.Role.ShortName(), r.SubjectName)
	}
	// Output:
	// CTLFile.tlv 1.2 SHA-512 verify: <nil>
	// SAST CN=SAST-token
	// CCM+TFTP CN=cucm-pub
}

// A phone that holds a CTL accepts a new one signed by a token it knows,
// and asks TVS (here: none) about any other.
func ExamplePhone_AcceptList() {
	sast, key := newCert("SAST-token", 1)
	callManager, _ := newCert("cucm-pub", 2)
	held, err := ctl.Parse(newCTL(sast, key, callManager))
	if err != nil {
		log.Fatal(err)
	}
	phone := &ctl.Phone{CTL: held}

	update, _ := ctl.Parse(newCTL(sast, key, callManager))
	rule, err := phone.AcceptList(context.Background(), update, ctl.CTLPolicy())
	fmt.Println(rule, err)

	rogue, rogueKey := newCert("rogue", 3)
	foreign, _ := ctl.Parse(newCTL(rogue, rogueKey, callManager))
	rule, err = phone.AcceptList(context.Background(), foreign, ctl.CTLPolicy())
	fmt.Println(rule, err)
	// Output:
	// P2 <nil>
	// P6 ctl: signer is not trusted: unknown signer and no TVS to ask
}
