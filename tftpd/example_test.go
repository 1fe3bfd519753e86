package tftpd_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/tftpd"
)

// tftpSigner makes a throw-away RSA certificate, standing for the TFTP
// node's CallManager certificate.
func tftpSigner() (*x509.Certificate, *rsa.PrivateKey) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "CUCM-TFTP-example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
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

// A directory served over TFTP and HTTP on loopback: a request for
// RingList.xml.sgn gets RingList.xml signed on the fly.
func Example() {
	dir, err := os.MkdirTemp("", "tftproot")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "RingList.xml"), []byte("<CiscoIPPhoneRingList/>\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	cert, key := tftpSigner()
	srv := &tftpd.Server{Root: root, Certificate: cert, Key: key}

	ctx, cancel := context.WithCancel(context.Background())
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}) // ":69" in production
	if err != nil {
		log.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0") // ":6970" in production
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.ServeTFTP(ctx, udp) }()
	go func() { done <- srv.ServeHTTPListener(ctx, tcp) }()

	// A phone fetching over HTTP (TFTP clients see the same bytes).
	resp, err := http.Get("http://" + tcp.Addr().String() + "/RingList.xml.sgn")
	if err != nil {
		log.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	f, err := sgn.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	if err := f.CheckSignatureFrom(cert); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %q\n", resp.Status, f.Payload)

	cancel()
	for range 2 {
		if err := <-done; err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// 200 OK "<CiscoIPPhoneRingList/>\n"
}

// Server.Open returns what a request for a name gets, and how it was
// made.
func ExampleServer_Open() {
	dir, err := os.MkdirTemp("", "tftproot")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "default.cnf.xml"), []byte("<device/>\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	cert, key := tftpSigner()
	srv := &tftpd.Server{Root: root, Certificate: cert, Key: key}

	for range 2 {
		f, err := srv.Open(context.Background(), "default.cnf.xml.sgn")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(f.Name, "from", f.Source, "signed:", f.Signed, "cached:", f.Cached)
	}
	_, err = srv.Open(context.Background(), "../etc/passwd")
	fmt.Println(err)
	// Output:
	// default.cnf.xml.sgn from default.cnf.xml signed: true cached: false
	// default.cnf.xml.sgn from default.cnf.xml signed: true cached: true
	// tftpd: access violation: name is not a relative path inside the root
}
