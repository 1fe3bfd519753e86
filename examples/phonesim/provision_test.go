package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/digest"
)

// The provisioning tests run the cluster's services on loopback and
// phones through them. Their helpers start with prov.

// provPKI is one PKI for all the tests: making it is five RSA keys.
var provPKI = sync.OnceValues(func() (*clusterPKI, error) { return newClusterPKI(nil) })

// provCluster starts a cluster with the shared PKI in a temporary
// directory, closed when the test ends. Its configurations name a SIP
// server that is not there: these tests stop before SIP.
func provCluster(t *testing.T) *cluster {
	t.Helper()
	return provClusterWith(t, nil)
}

// provClusterWith is provCluster with opts.
func provClusterWith(t *testing.T, opts *clusterOptions) *cluster {
	t.Helper()
	pki, err := provPKI()
	require.NoError(t, err)
	c, err := startCluster(t.Context(), pki, t.TempDir(), opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.close()) })
	c.setSIP(0, "127.0.0.1:5061", "127.0.0.1:5060")
	return c
}

// provPhone returns phone i: SEP0000000000001i, extension 100i.
func provPhone(i int, secure bool) *phone {
	return &phone{Device: fmt.Sprintf("SEP%012X", 0x10+i), Extension: strconv.Itoa(1000 + i), Secure: secure}
}

// provProvision schedules (for a secure phone) and provisions p.
func provProvision(t *testing.T, c *cluster, p *phone) (*sipIdentity, *provisionReport) {
	t.Helper()
	ctx := t.Context()
	auth := ""
	if p.Secure {
		var err error
		auth, err = newAuthString()
		require.NoError(t, err)
		require.NoError(t, c.schedule(ctx, p.Device, auth))
	}
	id, r, err := p.provision(ctx, c, auth)
	require.NoError(t, err)
	require.NotNil(t, r)
	return id, r
}

func TestProvisionPhones(t *testing.T) {
	c := provCluster(t)
	phones := []*phone{provPhone(1, true), provPhone(2, true), provPhone(3, true), provPhone(4, false)}
	ids := make([]*sipIdentity, len(phones))
	reports := make([]*provisionReport, len(phones))
	auth := map[string]string{}
	for i, p := range phones {
		if p.Secure {
			auth[p.Device] = fmt.Sprintf("%06d", 123450+i)
		}
	}
	require.NoError(t, c.scheduleAll(t.Context(), auth))
	var wg sync.WaitGroup
	for i, p := range phones {
		wg.Go(func() {
			var err error
			ids[i], reports[i], err = p.provision(t.Context(), c, auth[p.Device])
			assert.NoError(t, err, p.Device)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	serials := map[string]bool{}
	for i, p := range phones {
		id, r := ids[i], reports[i]
		t.Run(p.Device, func(t *testing.T) {
			assert.Equal(t, p.Device, id.Device)
			assert.Equal(t, p.Extension, id.Extension)
			assert.Equal(t, p.Extension, r.Extension)
			assert.Equal(t, p.Secure, id.Secure)
			assert.Equal(t, []ctl.Rule{ctl.RuleFirstList}, r.ITL)
			assert.Equal(t, "P1", r.itlRules())
			assert.Equal(t, ctl.RuleKnownSigner, r.CTL)
			assert.Equal(t, ctl.RuleSignedFile, r.ConfigRule)
			assert.Empty(t, r.Step)
			assert.Empty(t, r.Err)
			assert.Positive(t, r.Took)

			// The SIP side's inputs.
			assert.Equal(t, p.Extension, id.DigestUser)
			pw, ok := c.credentials(id.DigestUser)
			assert.True(t, ok)
			assert.Equal(t, pw, id.DigestPassword)
			assert.Len(t, pw, 16)
			_, err := c.PKI.CCM.Verify(x509.VerifyOptions{Roots: id.Trust, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			assert.NoError(t, err, "the phone trusts the CallManager certificate")
			assert.Same(t, p.trust, id.Phone)
			assert.NotNil(t, id.Phone.ITL)
			assert.NotNil(t, id.Phone.CTL)
			assert.NotNil(t, id.Phone.TVS)

			if !p.Secure {
				assert.Equal(t, "signed", r.Config)
				assert.Empty(t, r.LSCSerial)
				assert.Nil(t, id.LSC.Leaf)
				assert.Equal(t, "127.0.0.1:5060", id.SIPServer)
				_, err := os.Stat(filepath.Join(c.tftpDir, cnfenc.EncryptedName(p.Device)))
				assert.ErrorIs(t, err, fs.ErrNotExist)
				return
			}
			assert.Equal(t, "encrypted", r.Config)
			assert.Equal(t, "127.0.0.1:5061", id.SIPServer)
			lsc := id.LSC.Leaf
			require.NotNil(t, lsc)
			assert.Equal(t, capf.SerialHex(lsc.SerialNumber), r.LSCSerial)
			assert.False(t, serials[r.LSCSerial], "serials differ")
			serials[r.LSCSerial] = true
			assert.Equal(t, p.Device, lsc.Subject.CommonName)
			roots := x509.NewCertPool()
			roots.AddCert(c.PKI.CAPF)
			_, err = lsc.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			assert.NoError(t, err, "the LSC chains to the CAPF CA as a client certificate")
			// The key is the LSC's.
			key, ok := id.LSC.PrivateKey.(crypto.Signer)
			require.True(t, ok)
			assert.True(t, key.Public().(*rsa.PublicKey).Equal(lsc.PublicKey))
			assert.Equal(t, [][]byte{lsc.Raw}, id.LSC.Certificate)

			d, err := c.capfDevice(t.Context(), p.Device)
			require.NoError(t, err)
			assert.Nil(t, d.Pending)
			assert.Equal(t, lsc.Raw, d.Certificate)
			assert.Equal(t, "Upgrade Success", d.Status())

			// The encrypted configuration holds the credentials; the short
			// one does not.
			short, err := os.ReadFile(filepath.Join(c.tftpDir, cnfenc.ShortName(p.Device)))
			require.NoError(t, err)
			assert.NotContains(t, string(short), id.DigestPassword)
			assert.Contains(t, string(short), cnfenc.CertHash(lsc))
			assert.Contains(t, string(short), "<capfAuthMode>1</capfAuthMode>")
		})
	}
}

func TestProvisionITLRollover(t *testing.T) {
	c := provCluster(t)
	secure, plain := provPhone(1, true), provPhone(2, false)
	provProvision(t, c, secure)
	provProvision(t, c, plain)
	ctx := t.Context()

	// Before the rollover the same list comes again: its signer is the
	// SAST of the phone's CTL (P2).
	rule, err := secure.acceptRolledITL(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, ctl.RuleCTLSigner, rule)
	assert.Equal(t, "P1 P2", secure.report.itlRules())
	secure.report.ITL = secure.report.ITL[:1] // for the checks below

	require.NoError(t, c.rollITL(ctx))
	for _, p := range []*phone{secure, plain} {
		old := p.trust.ITL
		rule, err := p.acceptRolledITL(ctx, c)
		require.NoError(t, err, p.Device)
		assert.Equal(t, ctl.RuleTVS, rule, p.Device)
		assert.Equal(t, "P1 P4", p.report.itlRules())
		assert.NotSame(t, old, p.trust.ITL)
		assert.Zero(t, p.trust.ITL.SerialNumber.Cmp(c.PKI.NextSAST.SerialNumber), "the new ITL is NextSAST's")

		// The configuration still verifies with the new list.
		_, state, err := p.loadConfig(ctx, p.fetch(c))
		require.NoError(t, err, p.Device)
		assert.NotEmpty(t, state)
	}

	// A phone whose TVS does not know the new signer keeps its old ITL
	// (P5): a second cluster with the same PKI that never rolled over
	// vouches only for the old lists.
	t.Run("P5 without TVS trust", func(t *testing.T) {
		other := provCluster(t)
		p := provPhone(3, false)
		provProvision(t, other, p)
		old := p.trust.ITL
		rule, err := p.acceptRolledITL(ctx, c) // c's rolled ITL, other's TVS
		assert.Equal(t, ctl.RuleTVSRefused, rule)
		assert.ErrorIs(t, err, ctl.ErrUntrusted)
		assert.Same(t, old, p.trust.ITL)
		assert.Equal(t, "P1 P5", p.report.itlRules())
	})
}

func TestProvisionTamperedConfig(t *testing.T) {
	c := provCluster(t)
	secure, plain := provPhone(1, true), provPhone(2, false)
	provProvision(t, c, secure)
	provProvision(t, c, plain)
	for _, p := range []*phone{secure, plain} {
		assert.NoError(t, negTamperedConfig(t.Context(), c, p), p.Device)
	}
}

// With EC keys (-keys ec) a secure phone's LSC is on a P-256 key, and
// its full configuration comes signed, with its secure settings, since it
// cannot be encrypted to an EC key; tampering with it is still refused.
func TestProvisionECKeys(t *testing.T) {
	c := provClusterWith(t, &clusterOptions{Keys: capf.EC256})
	p, other := provPhone(1, true), provPhone(2, true)
	id, r := provProvision(t, c, p)
	provProvision(t, c, other)

	assert.Equal(t, "signed", r.Config)
	assert.Equal(t, "ec256", r.Key)
	assert.Equal(t, ctl.RuleSignedFile, r.ConfigRule)
	assert.Equal(t, "127.0.0.1:5061", id.SIPServer, "the secure settings: SIP over TLS")
	lsc := id.LSC.Leaf
	require.NotNil(t, lsc)
	pub, ok := lsc.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "LSC key %T", lsc.PublicKey)
	assert.Equal(t, elliptic.P256(), pub.Curve)
	assert.True(t, p.key.Public().(*ecdsa.PublicKey).Equal(pub))
	_, err := os.Stat(filepath.Join(c.tftpDir, cnfenc.EncryptedName(p.Device)))
	assert.ErrorIs(t, err, fs.ErrNotExist, "no encrypted configuration")
	full, err := os.ReadFile(filepath.Join(c.tftpDir, cnfenc.ShortName(p.Device)))
	require.NoError(t, err)
	assert.Contains(t, string(full), "<fullConfig>true</fullConfig>")
	assert.Contains(t, string(full), "<deviceSecurityMode>3</deviceSecurityMode>")

	assert.Equal(t, "tampered signed configuration refused by the EC phone", tamperedConfigCheck(p))
	assert.NoError(t, negTamperedConfig(t.Context(), c, p))
	assert.NoError(t, negRogueCAPF(t.Context(), p))
}

// A secure phone with an RSA LSC refuses its full configuration signed in
// place of the encrypted one (as the cluster publishes it when the device
// is made non-secure): only an EC phone takes a signed one.
func TestProvisionRSAPhoneRefusesSignedFull(t *testing.T) {
	c := provCluster(t)
	p := provPhone(1, true)
	provProvision(t, c, p)
	assert.Equal(t, "tampered configuration refused by the phone", tamperedConfigCheck(p))
	require.NoError(t, c.publish(p.Device, p.Extension, nil, false))
	_, _, err := p.loadConfig(t.Context(), p.fetch(c))
	assert.ErrorContains(t, err, "not a short configuration of an encrypted one")
}

func TestProvisionWrongAuthString(t *testing.T) {
	c := provCluster(t)
	require.NoError(t, negWrongAuthString(t.Context(), c))

	// provision itself fails at the CAPF step with a wrong string, and
	// the report says so.
	p := provPhone(5, true)
	require.NoError(t, c.schedule(t.Context(), p.Device, "111111"))
	id, r, err := p.provision(t.Context(), c, "222222")
	assert.Nil(t, id)
	var end *capf.EndError
	require.ErrorAs(t, err, &end)
	assert.EqualValues(t, 7, end.Reason)
	assert.Equal(t, "capf", r.Step)
	assert.Equal(t, "P1", r.itlRules())
	assert.Empty(t, r.LSCSerial)
}

func TestProvisionUnscheduled(t *testing.T) {
	c := provCluster(t)
	_, r, err := provPhone(6, true).provision(t.Context(), c, "123456")
	assert.ErrorIs(t, err, capf.ErrUnknownDevice)
	assert.Equal(t, "capf", r.Step)
}

func TestProvisionPKISaveLoad(t *testing.T) {
	pki, err := provPKI()
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "pki")

	_, err = loadPKI(dir)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	require.NoError(t, savePKI(dir, pki))
	got, err := loadPKI(dir)
	require.NoError(t, err)
	for _, pc := range pkiCerts {
		assert.True(t, (*pc.cert(got)).Equal(*pc.cert(pki)), pc.file)
		assert.True(t, (*pc.key(got)).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal((*pc.key(pki)).Public()), pc.file)
		fi, err := os.Stat(filepath.Join(dir, pc.file+".key"))
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), pc.file)
	}

	again, created, err := loadOrCreatePKI(dir, nil)
	require.NoError(t, err)
	assert.False(t, created)
	assert.True(t, again.CCM.Equal(pki.CCM))

	// A key that is not its certificate's is refused.
	capfKey, err := os.ReadFile(filepath.Join(dir, "capf.key"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tvs.key"), capfKey, 0o600))
	_, err = loadPKI(dir)
	assert.ErrorContains(t, err, "not the certificate's")
}

func TestProvisionPKIProfile(t *testing.T) {
	pki, err := provPKI()
	require.NoError(t, err)
	assert.True(t, pki.CAPF.IsCA)
	assert.True(t, pki.CAPF.MaxPathLenZero)
	assert.NotZero(t, pki.CAPF.KeyUsage&x509.KeyUsageCertSign)
	assert.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, pki.CCM.ExtKeyUsage)
	assert.NoError(t, pki.CCM.VerifyHostname("127.0.0.1"))
	assert.False(t, pki.SAST.Equal(pki.NextSAST))
	for _, pc := range pkiCerts {
		cert := *pc.cert(pki)
		assert.Equal(t, 2048, cert.PublicKey.(interface{ Size() int }).Size()*8, pc.file)
		assert.True(t, cert.NotAfter.After(time.Now().Add(capf.DefaultValidity)), "outlives an LSC")
	}
}

// TestProvisionMany provisions PHONESIM_PROVISION_PHONES phones at once,
// for timing: PHONESIM_PROVISION_PHONES=50 go test -run ProvisionMany -v.
func TestProvisionMany(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PHONESIM_PROVISION_PHONES"))
	if n <= 0 {
		t.Skip("set PHONESIM_PROVISION_PHONES")
	}
	c := provCluster(t)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	phones := make([]*phone, n)
	for i := range n {
		wg.Go(func() {
			p := provPhone(i, i%10 != 9)
			phones[i] = p
			auth := ""
			if p.Secure {
				auth = fmt.Sprintf("%06d", i)
				if errs[i] = c.schedule(t.Context(), p.Device, auth); errs[i] != nil {
					return
				}
			}
			_, _, errs[i] = p.provision(t.Context(), c, auth)
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	t.Logf("%d phones provisioned in %v", n, time.Since(start))
	start = time.Now()
	require.NoError(t, c.rollITL(t.Context()))
	for i, p := range phones {
		wg.Go(func() {
			rule, err := p.acceptRolledITL(t.Context(), c)
			if err == nil && rule != ctl.RuleTVS {
				err = fmt.Errorf("%s: rule %s", p.Device, rule)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	t.Logf("ITL rolled over and accepted through TVS by %d phones in %v", n, time.Since(start))
}

func TestProvisionCredentialStore(t *testing.T) {
	c := provCluster(t)
	id, _ := provProvision(t, c, provPhone(7, false))
	store := c.credentialStore()
	for _, alg := range []digest.Algorithm{digest.MD5, digest.MD5Sess, digest.SHA256} {
		ha1, err := store.HA1(t.Context(), id.DigestUser, "ccmsipline", alg)
		require.NoError(t, err)
		assert.Equal(t, digest.HA1(alg, id.DigestUser, "ccmsipline", id.DigestPassword), ha1)
	}
	_, err := store.HA1(t.Context(), "9999", "ccmsipline", digest.MD5)
	assert.ErrorIs(t, err, digest.ErrUnknownUser)
	_, ok := c.credentials("9999")
	assert.False(t, ok)
}
