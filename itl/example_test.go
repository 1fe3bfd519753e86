package itl_test

import (
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
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
)

// newCert makes a throw-away self-signed RSA certificate and key. A real
// cluster has its own: ITLRecovery, CallManager, TVS, CAPF.
func newCert(cn string, serial int64) (*x509.Certificate, crypto.Signer) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
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

// buildITL makes the ITL of a small cluster: signed by ITLRecovery, with
// the TFTP node's CallManager certificate and a TVS.
func buildITL() (data []byte, callManager *x509.Certificate, cmKey crypto.Signer) {
	recovery, recoveryKey := newCert("ITLRecovery_cucm-pub", 1)
	callManager, cmKey = newCert("cucm-pub.example.com", 2)
	var records []ctl.Record
	for _, r := range []struct {
		cert *x509.Certificate
		role ctl.Role
	}{{recovery, ctl.RoleSAST}, {callManager, ctl.RoleCCMTFTP}, {callManager, ctl.RoleTVS}} {
		rec, err := ctl.NewRecord(r.cert, r.role)
		if err != nil {
			log.Fatal(err)
		}
		records = append(records, rec)
	}
	data, err := itl.Create(rand.Reader, &itl.File{Header: sgn.Header{Hash: crypto.SHA1}, Records: records}, recovery, recoveryKey)
	if err != nil {
		log.Fatal(err)
	}
	return data, callManager, cmKey
}

func ExampleCreate() {
	data, _, _ := buildITL()
	fmt.Println("fits on phones:", len(data) < itl.WarnSize)
	// Output: fits on phones: true
}

func ExampleVerify() {
	data, _, _ := buildITL()

	f, err := itl.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	if err := itl.Verify(f); err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Filename, "signed by", f.SignerName)
	for _, r := range f.Records {
		fmt.Printf("%-36s %s\n", r.Role, r.SubjectName)
	}
	// Output:
	// ITLFile.tlv signed by CN=ITLRecovery_cucm-pub
	// System Administrator Security Token  CN=ITLRecovery_cucm-pub
	// CCM+TFTP                             CN=cucm-pub.example.com
	// TVS                                  CN=cucm-pub.example.com
}

// Check a signed configuration file against the ITL, as a phone does.
func Example_checkConfig() {
	data, callManager, cmKey := buildITL()
	f, err := itl.Parse(data)
	if err != nil {
		log.Fatal(err)
	}

	config := []byte("<device><fullConfig>true</fullConfig></device>")
	signed, err := sgn.Sign(rand.Reader, config, callManager, cmKey, sgn.SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: crypto.SHA1})
	if err != nil {
		log.Fatal(err)
	}
	sf, err := sgn.Parse(signed)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := f.VerifySignedFile(sf, "SEP001122334455.cnf.xml.sgn")
	fmt.Println("config:", err, "signed by the", rec.Role, "record", rec.SubjectName)

	other, otherKey := newCert("rogue", 3)
	signed, _ = sgn.Sign(rand.Reader, config, other, otherKey, sgn.SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: crypto.SHA1})
	sf, _ = sgn.Parse(signed)
	_, err = f.VerifySignedFile(sf, "SEP001122334455.cnf.xml.sgn")
	fmt.Println("rogue config:", err)
	// Output:
	// config: <nil> signed by the CCM+TFTP record CN=cucm-pub.example.com
	// rogue config: ctl: signer is not trusted: the signer is not in the trust list
}
