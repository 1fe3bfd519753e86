package main

// Tests of the registrar: what a REGISTER must show to be accepted, and
// its digest nonce expiry and replay checks.

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/secstatus"
)

func TestSIPReplayedRegister(t *testing.T) {
	k := newSIPTestPKI(t)
	a, c := k.identity(t, 1, true), k.identity(t, 3, false)
	r := startSIPTest(t, k, a, c)
	for _, id := range []sipIdentity{a, c} {
		p := newRegisteredPhone(t, r, id)
		require.NoError(t, negReplayedRegister(testContext(t), r, p), id.Device)
		// The refusal does not unregister the phone, and it can still
		// register afresh.
		_, ok := r.registered(id.Device)
		assert.True(t, ok)
		require.NoError(t, p.register(testContext(t)))
	}
	assert.EqualValues(t, 2, r.refusals().Replay)

	unregistered, err := newSIPPhone(k.identity(t, 9, false), r.server(), nil)
	require.NoError(t, err)
	defer unregistered.Close()
	assert.Error(t, negReplayedRegister(testContext(t), r, unregistered))
}

func TestSIPNonceExpiry(t *testing.T) {
	k := newSIPTestPKI(t)
	a, b := k.identity(t, 1, true), k.identity(t, 2, true)
	cfg := registrarConfigFor(k.clusterPKI(), []sipIdentity{a, b}, "phonesim.test", nil)
	cfg.NonceValidity = time.Minute
	var mu sync.Mutex
	now := time.Now()
	cfg.Time = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r, err := startRegistrar(testContext(t), cfg)
	require.NoError(t, err)
	defer r.Close()
	pa, pb := newRegisteredPhone(t, r, a), newRegisteredPhone(t, r, b)

	// The INVITE carries credentials on the nonce of the registration,
	// expired by now: the controller challenges again (stale) and the
	// phone answers the fresh nonce.
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	rep, err := placeCall(testContext(t), pa, pb)
	require.NoError(t, err)
	assert.Equal(t, secstatus.IconLock, rep.CallerIcon)
	assert.EqualValues(t, 1, r.refusals().Stale)
	assert.Zero(t, r.refusals().Replay)
}

func TestSIPRegisterRefused(t *testing.T) {
	k := newSIPTestPKI(t)
	good := k.identity(t, 1, true)
	other := k.identity(t, 2, true)
	plain := k.identity(t, 3, false)
	r := startSIPTest(t, k, good, other, plain)

	register := func(id sipIdentity) error {
		p, err := newSIPPhone(id, r.server(), nil)
		require.NoError(t, err)
		defer p.Close()
		err = p.register(testContext(t))
		if err == nil {
			assert.True(t, p.isRegistered())
		}
		return err
	}

	t.Run("LSC not from the CAPF CA", func(t *testing.T) {
		// The rogue CA has the CAPF's very subject, so that the phone's TLS
		// stack sends the certificate and the registrar has to refuse it.
		rogueCA, rogueKey := testCert(t, &x509.Certificate{Subject: k.capf.Subject,
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
		id := good
		id.LSC = testLSC(t, good.Device, rogueCA, rogueKey)
		before := r.refusals().TLS
		start := time.Now()
		err := register(id)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "tls")
		assert.Less(t, time.Since(start), 5*time.Second, "refused at the handshake, not by a timeout")
		// The registrar counts the refusal once its handshake returns,
		// which may be just after the phone's.
		assert.Eventually(t, func() bool { return r.refusals().TLS == before+1 }, 5*time.Second, time.Millisecond)
		_, ok := r.registered(good.Device)
		assert.False(t, ok)
	})
	t.Run("server not in the trust list", func(t *testing.T) {
		id := good
		id.Trust = x509.NewCertPool()
		id.Trust.AddCert(k.capf) // another certificate, not the CCM's
		err := register(id)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "trust list")
	})
	t.Run("trust list holding only the server's issuer", func(t *testing.T) {
		// A CCM certificate issued by a CA: a phone whose trust list has
		// only the CA does not accept it.
		ca, caKey := testCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "ccm-ca"},
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
		ccm, ccmKey := testCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "CUCM-issued"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
		k2 := *k
		k2.ccm, k2.ccmKey = ccm, ccmKey
		r2 := startSIPTest(t, &k2, good)
		id := good
		id.Trust = x509.NewCertPool()
		id.Trust.AddCert(ca)
		p, err := newSIPPhone(id, r2.server(), nil)
		require.NoError(t, err)
		defer p.Close()
		err = p.register(testContext(t))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "only its issuer")
		id.Trust.AddCert(ccm)
		require.NoError(t, newRegisteredPhoneErr(r2, id))
	})
	t.Run("LSC of another device", func(t *testing.T) {
		id := good
		id.LSC = other.LSC
		err := register(id)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "403")
	})
	t.Run("wrong digest password", func(t *testing.T) {
		id := good
		id.DigestPassword = "wrong"
		err := register(id)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "401")
	})
	t.Run("another line's digest user", func(t *testing.T) {
		id := good
		id.DigestUser, id.DigestPassword = other.DigestUser, other.DigestPassword
		err := register(id)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "403")
	})
	t.Run("secure device over TCP", func(t *testing.T) {
		id := good
		id.Secure = false
		err := register(id)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "403")
	})
	t.Run("unknown device", func(t *testing.T) {
		err := register(k.identity(t, 7, false))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "404")
	})
	t.Run("good ones", func(t *testing.T) {
		require.NoError(t, register(good))
		require.NoError(t, register(plain))
	})
}

func newRegisteredPhoneErr(r *registrar, id sipIdentity) error {
	p, err := newSIPPhone(id, r.server(), nil)
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.register(ctx)
}
