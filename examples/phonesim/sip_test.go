package main

// Fixtures of the SIP tests: a throw-away PKI, phone identities, a
// started registrar and registered phones.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sipTestPKI is a throw-away PKI for the SIP tests: a CAPF CA that issues
// LSCs, and a self-signed CCM certificate for 127.0.0.1 that the phones'
// trust lists hold.
type sipTestPKI struct {
	capf    *x509.Certificate
	capfKey *ecdsa.PrivateKey
	ccm     *x509.Certificate
	ccmKey  *ecdsa.PrivateKey
	trust   *x509.CertPool
}

func newSIPTestPKI(t testing.TB) *sipTestPKI {
	t.Helper()
	k := &sipTestPKI{}
	k.capf, k.capfKey = testCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "CAPF-test", Organization: []string{"phonesim"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	k.ccm, k.ccmKey = testCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "CUCM-test", Organization: []string{"phonesim"}},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, nil, nil)
	k.trust = x509.NewCertPool()
	k.trust.AddCert(k.ccm)
	return k
}

// testCert makes a certificate from tmpl, signed by parent (self-signed
// when nil), with a fresh P-256 key.
func testCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	require.NoError(t, err)
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// lsc issues an LSC for device from the CAPF CA, in the CAPF profile
// (CN = device, serverAuth and clientAuth).
func (k *sipTestPKI) lsc(t testing.TB, device string) tls.Certificate {
	return testLSC(t, device, k.capf, k.capfKey)
}

func testLSC(t testing.TB, device string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	cert, key := testCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: device, Organization: []string{"phonesim"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func (k *sipTestPKI) clusterPKI() *clusterPKI {
	return &clusterPKI{CCM: k.ccm, CCMKey: k.ccmKey, CAPF: k.capf, CAPFKey: k.capfKey}
}

// identity makes the SIP identity of phone n (device SEP0000000000nn,
// extension 10nn).
func (k *sipTestPKI) identity(t testing.TB, n int, secure bool) sipIdentity {
	id := sipIdentity{
		Device:         fmt.Sprintf("SEP%012X", 0xA0000+n),
		Extension:      fmt.Sprintf("%d", 1000+n),
		Secure:         secure,
		Trust:          k.trust,
		DigestUser:     fmt.Sprintf("user%d", 1000+n),
		DigestPassword: "pw-" + randomHex(4),
	}
	if secure {
		id.LSC = k.lsc(t, id.Device)
	}
	return id
}

// startSIPTest starts a registrar configured for ids.
func startSIPTest(t testing.TB, k *sipTestPKI, ids ...sipIdentity) *registrar {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := startRegistrar(ctx, registrarConfigFor(k.clusterPKI(), ids, "phonesim.test", nil))
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		r.Close()
	})
	return r
}

// newRegisteredPhone makes id's phone and registers it.
func newRegisteredPhone(t testing.TB, r *registrar, id sipIdentity) *sipPhone {
	t.Helper()
	p, err := newSIPPhone(id, r.server(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.register(ctx))
	return p
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
