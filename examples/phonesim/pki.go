package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The cluster's PKI: throw-away certificates in the shape CUCM gives its
// own (self-signed, one per service), made at start-up or loaded from the
// directory of -pki.

// pkiValidity is how long the cluster's certificates are valid. The CAPF
// CA must outlive the LSCs it issues (capf.DefaultValidity, a year), so
// it is much longer than that.
const pkiValidity = 10 * 365 * 24 * time.Hour

// pkiSubject is the part of every subject after the CN. capf.LocalCA
// copies the CAPF certificate's O, OU, L, ST and C into each LSC.
var pkiSubject = pkix.Name{
	Organization:       []string{"ucsec phonesim"},
	OrganizationalUnit: []string{"Lab"},
	Locality:           []string{"Loopback"},
	Province:           []string{"Localhost"},
	Country:            []string{"NZ"},
}

// pkiCert describes one certificate of the cluster: its file name in a
// -pki directory, how to make it, and where it lives in a clusterPKI.
type pkiCert struct {
	file string // base name: FILE.pem (certificate) and FILE.key (key)
	cn   string
	// ca makes a CA certificate (the CAPF); else an end-entity one.
	ca bool
	// eku are the extended key usages; server adds SAN 127.0.0.1.
	eku    []x509.ExtKeyUsage
	server bool
	cert   func(*clusterPKI) **x509.Certificate
	key    func(*clusterPKI) *crypto.Signer
}

// pkiCerts lists the certificates of a clusterPKI.
var pkiCerts = []pkiCert{
	{file: "itlrecovery", cn: "ITLRecovery_phonesim",
		cert: func(p *clusterPKI) **x509.Certificate { return &p.SAST },
		key:  func(p *clusterPKI) *crypto.Signer { return &p.SASTKey }},
	{file: "itlrecovery-next", cn: "ITLRecovery_phonesim_next",
		cert: func(p *clusterPKI) **x509.Certificate { return &p.NextSAST },
		key:  func(p *clusterPKI) *crypto.Signer { return &p.NextSASTKey }},
	{file: "callmanager", cn: "phonesim-cucm", server: true,
		eku:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		cert: func(p *clusterPKI) **x509.Certificate { return &p.CCM },
		key:  func(p *clusterPKI) *crypto.Signer { return &p.CCMKey }},
	{file: "capf", cn: "CAPF-phonesim", ca: true,
		eku:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		cert: func(p *clusterPKI) **x509.Certificate { return &p.CAPF },
		key:  func(p *clusterPKI) *crypto.Signer { return &p.CAPFKey }},
	{file: "tvs", cn: "phonesim-cucm-TVS", server: true,
		eku:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		cert: func(p *clusterPKI) **x509.Certificate { return &p.TVS },
		key:  func(p *clusterPKI) *crypto.Signer { return &p.TVSKey }},
}

// newClusterPKI makes the cluster's throw-away PKI: self-signed RSA-2048
// certificates, valid for ten years from an hour ago, with random serial
// numbers from rnd (nil means crypto/rand; since Go 1.26 the key
// generation itself always uses crypto/rand).
//
//   - SAST and NextSAST: the ITLRecovery key that signs the ITL and CTL,
//     and the one the ITL rolls over to (digitalSignature).
//   - CCM: the CallManager certificate, which signs the TFTP files (role
//     CCM+TFTP) and is the SIP-TLS server's: digitalSignature and
//     keyEncipherment, EKU serverAuth and clientAuth, SAN DNS localhost
//     and IP 127.0.0.1.
//   - CAPF: a CA (BasicConstraints CA:TRUE pathlen:0, KeyUsage certSign
//     and digitalSignature, EKU serverAuth and clientAuth), as capf.Server
//     and phones from CUCM 14SU2 on require; it issues the LSCs.
//   - TVS: the Trust Verification Service's TLS certificate (EKU
//     serverAuth, SAN 127.0.0.1).
//
// The five keys are made concurrently.
func newClusterPKI(rnd io.Reader) (*clusterPKI, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	p := new(clusterPKI)
	errs := make([]error, len(pkiCerts))
	var wg sync.WaitGroup
	var randMu sync.Mutex // rnd need not be safe for concurrent use
	for i, pc := range pkiCerts {
		wg.Go(func() {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				errs[i] = fmt.Errorf("%s key: %w", pc.file, err)
				return
			}
			randMu.Lock()
			cert, err := pc.create(rnd, key)
			randMu.Unlock()
			if err != nil {
				errs[i] = fmt.Errorf("%s certificate: %w", pc.file, err)
				return
			}
			*pc.cert(p), *pc.key(p) = cert, key
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// create makes the self-signed certificate pc describes for key.
func (pc pkiCert) create(rnd io.Reader, key *rsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rnd, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	serial.Add(serial, big.NewInt(1)) // never zero
	subject := pkiSubject
	subject.CommonName = pc.cn
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(pkiValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           pc.eku,
		BasicConstraintsValid: true,
	}
	if pc.ca {
		tmpl.IsCA = true
		tmpl.MaxPathLenZero = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if pc.server {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// savePKI writes p into dir, which it creates (mode 0700) if needed: for
// each certificate FILE.pem (PEM CERTIFICATE, mode 0644) and FILE.key
// (PEM PKCS #8 PRIVATE KEY, mode 0600), where FILE is itlrecovery,
// itlrecovery-next, callmanager, capf or tvs. Existing files are
// replaced.
func savePKI(dir string, p *clusterPKI) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, pc := range pkiCerts {
		cert, key := *pc.cert(p), *pc.key(p)
		if cert == nil || key == nil {
			return fmt.Errorf("pki: no %s certificate or key", pc.file)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("pki: %s key: %w", pc.file, err)
		}
		if err := writeFileAtomic(filepath.Join(dir, pc.file+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, pc.file+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loadPKI reads the PKI that savePKI wrote into dir, checking that each
// key is that of its certificate. A directory without the files gives an
// error that matches fs.ErrNotExist.
func loadPKI(dir string) (*clusterPKI, error) {
	p := new(clusterPKI)
	for _, pc := range pkiCerts {
		cert, err := readPEM(filepath.Join(dir, pc.file+".pem"), "CERTIFICATE", func(der []byte) (*x509.Certificate, error) {
			return x509.ParseCertificate(der)
		})
		if err != nil {
			return nil, err
		}
		key, err := readPEM(filepath.Join(dir, pc.file+".key"), "PRIVATE KEY", func(der []byte) (crypto.Signer, error) {
			k, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("a %T is not a signing key", k)
			}
			return s, nil
		})
		if err != nil {
			return nil, err
		}
		if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
			return nil, fmt.Errorf("pki: %s: the key is not the certificate's", filepath.Join(dir, pc.file+".key"))
		}
		*pc.cert(p), *pc.key(p) = cert, key
	}
	return p, nil
}

// loadOrCreatePKI loads the PKI in dir if it holds one, else, if dir is
// empty or does not exist, makes a new one with newClusterPKI and saves it
// there; a directory with only part of a PKI is an error, so that no key
// is overwritten. It reports whether it made the PKI.
func loadOrCreatePKI(dir string, rnd io.Reader) (p *clusterPKI, created bool, err error) {
	p, err = loadPKI(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, false, err
	}
	// Some file is missing: make a PKI only in an empty (or new)
	// directory, never over keys that are there.
	if entries, rerr := os.ReadDir(dir); rerr == nil && len(entries) > 0 {
		return nil, false, fmt.Errorf("pki: %s holds an incomplete PKI (%w); empty the directory to make a new one", dir, err)
	}
	if p, err = newClusterPKI(rnd); err != nil {
		return nil, false, err
	}
	if err := savePKI(dir, p); err != nil {
		return nil, false, err
	}
	return p, true, nil
}

// readPEM reads the first PEM block of type typ in the file path and
// parses it.
func readPEM[T any](path, typ string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("pki: %w", err)
	}
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return zero, fmt.Errorf("pki: %s: no %s block", path, typ)
		}
		if b.Type == typ {
			v, err := parse(b.Bytes)
			if err != nil {
				return zero, fmt.Errorf("pki: %s: %w", path, err)
			}
			return v, nil
		}
	}
}

// writeFileAtomic writes data to path with mode perm through a temporary
// file in the same directory and a rename, so that a reader (the file
// server, another run) sees the old file or the new one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
