package capf_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"log"
	"math/big"
	"strings"
	"time"

	"github.com/ucsec/ucsec/capf"
)

// A LocalCA signs the phone's new key with the CAPF's CA certificate. Here
// the CA is made on the spot; a server loads its certificate and key (or a
// crypto.Signer from a token).
func ExampleLocalCA() {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "CAPF-example", Organization: []string{"Example Voice"}, Country: []string{"NZ"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		log.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	ca := &capf.LocalCA{Certificate: caCert, Signer: caKey, Validity: 2 * 365 * 24 * time.Hour}

	// The key the phone made and sent.
	phoneKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	lsc, err := ca.Issue(context.Background(), &capf.CertificateRequest{
		Device:    "SEP001122334455",
		PublicKey: phoneKey.Public(),
	})
	if err != nil {
		log.Fatal(err)
	}

	shortName := map[string]string{"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.7": "L", "2.5.4.8": "ST"}
	ekuName := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageServerAuth:     "serverAuth",
		x509.ExtKeyUsageClientAuth:     "clientAuth",
		x509.ExtKeyUsageIPSECEndSystem: "ipsecEndSystem",
	}
	// The subject in its encoded order: CN first, then the CA's O and C
	// in the CA's order (crypto/x509 writes C before O).
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(lsc.RawSubject, &rdns); err != nil {
		log.Fatal(err)
	}
	var subject []string
	for _, rdn := range rdns {
		for _, atv := range rdn {
			subject = append(subject, fmt.Sprintf("%s=%v", shortName[atv.Type.String()], atv.Value))
		}
	}
	fmt.Println("subject:", strings.Join(subject, ", "))
	fmt.Println("issuer: ", lsc.Issuer.CommonName)
	fmt.Println("SAN:    ", "URI:"+lsc.URIs[0].String())
	var ekus []string
	for _, u := range lsc.ExtKeyUsage {
		ekus = append(ekus, ekuName[u])
	}
	fmt.Println("EKU:    ", strings.Join(ekus, ", "))
	fmt.Println("valid:  ", lsc.NotAfter.Sub(lsc.NotBefore).Hours()/24, "days")
	fmt.Println("serial: ", len(capf.SerialHex(lsc.SerialNumber)) <= 32)
	// Output:
	// subject: CN=SEP001122334455, C=NZ, O=Example Voice
	// issuer:  CAPF-example
	// SAN:     URI:SEP001122334455
	// EKU:     serverAuth, clientAuth, ipsecEndSystem
	// valid:   730 days
	// serial:  true
}
