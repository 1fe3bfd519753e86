package tvs_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/tvs"
)

// newCertificate makes a throw-away self-signed certificate for cn.
func newCertificate(cn string, serverAuth bool) (*x509.Certificate, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if serverAuth {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
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

// A TVS on loopback that vouches for one certificate, and a phone asking
// it about that certificate and another one.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tvsCert, tvsKey := newCertificate("TVS-example", true)
	capfCert, _ := newCertificate("CAPF-example", false)
	stranger, _ := newCertificate("stranger", false)

	// The service vouches for the CAPF certificate, in the CAPF role.
	store := tvs.NewMemoryStore() // tvs.OpenBoltStore for a durable one
	err := tvs.Put(ctx, store, &tvs.Entry{Certificate: capfCert, Roles: []ctl.Role{ctl.RoleCAPF}, TTL: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	srv := &tvs.Server{
		Store: store,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{
			Certificate: [][]byte{tvsCert.Raw}, PrivateKey: tvsKey,
		}}},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // ":2445" in production
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()

	// The phone trusts the TVS certificate because its ITL holds it with
	// the TVS role (ctl.File.Certificates(ctl.RoleTVS)), and only that
	// certificate: it is pinned.
	client := &tvs.Client{
		Servers:         []string{l.Addr().String()},
		TVSCertificates: []*x509.Certificate{tvsCert},
		DeviceName:      "CP-8845-SEP001122334455",
	}
	for _, cert := range []*x509.Certificate{capfCert, stranger, capfCert} {
		v, err := client.Verify(ctx, cert)
		if err != nil {
			log.Fatal(err) // no server answered
		}
		fmt.Printf("%s: valid %v, roles %v, TTL %v, cached %v\n", cert.Subject.CommonName, v.Valid, v.Roles, v.TTL, v.Cached)
	}

	cancel()
	if err := <-done; !errors.Is(err, tvs.ErrServerClosed) {
		log.Fatal(err)
	}
	// Output:
	// CAPF-example: valid true, roles [CAPF], TTL 1h0m0s, cached false
	// stranger: valid false, roles [], TTL 0s, cached false
	// CAPF-example: valid true, roles [CAPF], TTL 1h0m0s, cached true
}
