package trustplan_test

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
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/trustplan"
	"github.com/ucsec/ucsec/tvs"
)

// newCert returns a self-signed certificate and its key.
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

// newITL returns an ITL signed by the first certificate, with the records
// given as certificate and role, one after the other.
func newITL(key crypto.Signer, records ...any) *ctl.File {
	var recs []ctl.Record
	for i := 0; i < len(records); i += 2 {
		r, err := ctl.NewRecord(records[i].(*x509.Certificate), records[i+1].(ctl.Role))
		if err != nil {
			log.Fatal(err)
		}
		recs = append(recs, r)
	}
	data, err := itl.Create(rand.Reader, &ctl.File{Header: sgn.Header{Hash: crypto.SHA1}, Records: recs}, records[0].(*x509.Certificate), key)
	if err != nil {
		log.Fatal(err)
	}
	f, err := itl.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	return f
}

// A new ITLRecovery (SAST) key: the phones hold an ITL signed by the old
// one. Without TVS they would reject the new ITL (P6); the plan says
// which fixes work. With a TVS that vouches for the new key, they accept
// it (P4).
func Example() {
	ctx := context.Background()
	oldSAST, oldKey := newCert("ITLRecovery", 1)
	newSAST, newKey := newCert("ITLRecovery", 2)
	tftp, _ := newCert("cucm-pub", 3)
	tvsCert, _ := newCert("TVS", 4)
	held := trustplan.Held{ITL: newITL(oldKey, oldSAST, ctl.RoleSAST, tftp, ctl.RoleCCMTFTP, tvsCert, ctl.RoleTVS)}
	next := newITL(newKey, newSAST, ctl.RoleSAST, tftp, ctl.RoleCCMTFTP, tvsCert, ctl.RoleTVS)

	res, err := trustplan.Plan(ctx, held, nil, trustplan.Publication{ITL: next})
	if err != nil {
		log.Fatal(err)
	}
	d := res.Decisions[0]
	fmt.Println(d.File, d.Accepted, d.Rule)
	for _, f := range d.Fixes {
		fmt.Print(f.Kind)
		for _, c := range f.Certificates {
			fmt.Print(" ", c.Subject)
			if c.Certificate.Equal(oldSAST) {
				fmt.Print(" (old)")
			}
		}
		fmt.Println()
	}

	// What the TVS vouches for: the new ITL's certificates, in their roles.
	st := tvs.NewMemoryStore()
	if _, err := tvs.LoadTrustList(ctx, st, next, 0); err != nil {
		log.Fatal(err)
	}
	res, err = trustplan.Plan(ctx, held, st, trustplan.Publication{ITL: next})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Decisions[0].Accepted, res.Decisions[0].Rule, res.Accepted())
	// Output:
	// ITLFile.tlv false P6
	// tvs CN=ITLRecovery
	// keep-signer CN=ITLRecovery (old)
	// reset
	// true P4 true
}

// A new TFTP certificate with the same SAST: the ITL, signed by the same
// ITLRecovery key, lists the new certificate, and the configurations it
// signs are checked against that ITL, which the phones hold by then.
func ExamplePlan() {
	ctx := context.Background()
	sast, sastKey := newCert("ITLRecovery", 1)
	oldTFTP, _ := newCert("cucm-pub", 2)
	newTFTP, newTFTPKey := newCert("cucm-pub", 3)
	held := trustplan.Held{ITL: newITL(sastKey, sast, ctl.RoleSAST, oldTFTP, ctl.RoleCCMTFTP)}
	next := newITL(sastKey, sast, ctl.RoleSAST, newTFTP, ctl.RoleCCMTFTP)
	data, err := sgn.Sign(rand.Reader, []byte("<device/>"), newTFTP, newTFTPKey, sgn.SignOptions{Filename: "SEP001122334455.cnf.xml.sgn", Hash: crypto.SHA1})
	if err != nil {
		log.Fatal(err)
	}
	config, err := sgn.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	files := []trustplan.SignedFile{{Name: "SEP001122334455.cnf.xml.sgn", File: config}}

	for _, pub := range []trustplan.Publication{{ITL: next, Files: files}, {Files: files}} {
		res, err := trustplan.Plan(ctx, held, nil, pub)
		if err != nil {
			log.Fatal(err)
		}
		for _, d := range res.Decisions {
			signer := "(not in any list)"
			if d.Signer != nil {
				signer = d.Signer.Subject
			}
			fmt.Println(d.File, d.Accepted, d.Rule, signer)
			for _, f := range d.Fixes {
				fmt.Println("  fix:", f.Kind)
			}
		}
	}
	// Output:
	// ITLFile.tlv true P3 CN=ITLRecovery
	// SEP001122334455.cnf.xml.sgn true P8 CN=cucm-pub
	// SEP001122334455.cnf.xml.sgn false P8 (not in any list)
	//   fix: list
	//   fix: tftp-signer
	//   fix: reset
}
