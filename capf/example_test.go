package capf_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"time"

	"github.com/ucsec/ucsec/capf"
)

// newCAPFCertificate makes a throw-away CAPF certificate: a CA, as phones
// require, that also signs the LSCs.
func newCAPFCertificate() (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "CAPF-example", Organization: []string{"Example"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// A CAPF server and a phone on loopback: the administrator schedules an
// install with an authentication string, the phone connects, types the
// string, makes an EC key and gets its LSC.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	capfCert, capfKey := newCAPFCertificate()

	store := capf.NewMemoryStore() // capf.OpenBoltStore for a durable one
	err := capf.ScheduleOperation(ctx, store, "SEP001122334455", capf.Schedule{
		Operation:  capf.OpInstall,
		Auth:       capf.AuthString,
		AuthString: "482913",
		Key:        capf.EC256,
		Deadline:   time.Now().Add(24 * time.Hour),
	}, time.Now())
	if err != nil {
		log.Fatal(err)
	}

	srv := &capf.Server{
		Store:  store,
		Issuer: &capf.LocalCA{Certificate: capfCert, Signer: capfKey},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{
			Certificate: [][]byte{capfCert.Raw}, PrivateKey: capfKey,
		}}},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()

	// The phone trusts the CAPF certificate of its trust list's CAPF
	// record (ctl.File.Certificates(ctl.RoleCAPF)), and only that one.
	phone := &capf.Client{
		Device:           "SEP001122334455",
		CAPFCertificates: []*x509.Certificate{capfCert},
		AuthString:       "482913",
	}
	out, err := phone.Enroll(ctx, l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("operation:", out.Operation)
	fmt.Println("LSC subject:", out.Certificate.Subject.CommonName)
	fmt.Println("LSC issuer:", out.Certificate.Issuer.CommonName)

	d, err := capf.LookupDevice(ctx, store, "SEP001122334455")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", d.Status())

	cancel()
	<-done
	// Output:
	// operation: install
	// LSC subject: SEP001122334455
	// LSC issuer: CAPF-example
	// status: Upgrade Success
}
