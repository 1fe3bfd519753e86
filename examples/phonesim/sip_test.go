package main

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
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/secstatus"
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

func TestSIPSecureCall(t *testing.T) {
	k := newSIPTestPKI(t)
	a, b := k.identity(t, 1, true), k.identity(t, 2, true)
	r := startSIPTest(t, k, a, b)
	pa, pb := newRegisteredPhone(t, r, a), newRegisteredPhone(t, r, b)

	reg, ok := r.registered(a.Device)
	require.True(t, ok)
	assert.True(t, reg.Secure)
	assert.Equal(t, "TLS", reg.Transport)
	assert.NotEmpty(t, reg.LSCSerial)

	ctx := testContext(t)
	rep, err := placeCall(ctx, pa, pb)
	require.NoError(t, err)
	assert.Equal(t, secstatus.Encrypted, rep.Level)
	assert.Equal(t, secstatus.IconLock, rep.CallerIcon)
	assert.Equal(t, secstatus.IconLock, rep.CalleeIcon)
	assert.True(t, rep.SRTP)
	assert.Equal(t, "AEAD_AES_256_GCM", rep.Suite)
	assert.Equal(t, streamResult{Sent: callPackets, Received: callPackets}, rep.AtoB)
	assert.Equal(t, streamResult{Sent: callPackets, Received: callPackets}, rep.BtoA)
	assert.Empty(t, rep.Err)
	assert.Zero(t, r.activeCalls())

	// And back, on the same registrations: the phones are idle again.
	rep, err = placeCall(ctx, pb, pa)
	require.NoError(t, err)
	assert.Equal(t, secstatus.IconLock, rep.CallerIcon)
	assert.Equal(t, secstatus.IconLock, rep.CalleeIcon)
	assert.True(t, rep.mediaOK())
}

func TestSIPNonSecureCall(t *testing.T) {
	k := newSIPTestPKI(t)
	a, c := k.identity(t, 1, true), k.identity(t, 3, false)
	r := startSIPTest(t, k, a, c)
	pa, pc := newRegisteredPhone(t, r, a), newRegisteredPhone(t, r, c)

	reg, ok := r.registered(c.Device)
	require.True(t, ok)
	assert.False(t, reg.Secure)
	assert.Equal(t, "TCP", reg.Transport)

	ctx := testContext(t)
	for _, call := range [][2]*sipPhone{{pa, pc}, {pc, pa}} {
		rep, err := placeCall(ctx, call[0], call[1])
		require.NoError(t, err)
		assert.Equal(t, secstatus.NotAuthenticated, rep.Level)
		assert.Equal(t, secstatus.IconNone, rep.CallerIcon)
		assert.Equal(t, secstatus.IconNone, rep.CalleeIcon)
		assert.False(t, rep.SRTP, "RTP: no keys ever reach the non-secure phone")
		assert.True(t, rep.mediaOK(), "%+v", rep)
	}
}

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
	cfg.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
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

func TestSIPTrunkACL(t *testing.T) {
	k := newSIPTestPKI(t)
	r := startSIPTest(t, k, k.identity(t, 1, true))
	require.NoError(t, r.trunkCheck(testContext(t)))
	require.NoError(t, r.trunkCheck(testContext(t)), "again, with a fresh peer")
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

func TestCallRefused(t *testing.T) {
	k := newSIPTestPKI(t)
	a, b, c := k.identity(t, 1, true), k.identity(t, 2, true), k.identity(t, 3, true)
	r := startSIPTest(t, k, a, b, c)
	pa := newRegisteredPhone(t, r, a)
	ctx := testContext(t)

	_, err := pa.invite(ctx, "1999") // not in the calling search space
	require.ErrorContains(t, err, "404")
	_, err = pa.invite(ctx, c.Extension) // configured, not registered
	require.ErrorContains(t, err, "480")

	// The callee busy in another call.
	pb := newRegisteredPhone(t, r, b)
	pc := newRegisteredPhone(t, r, c)
	call, err := pb.invite(ctx, c.Extension)
	require.NoError(t, err)
	_, err = pa.invite(ctx, b.Extension)
	require.ErrorContains(t, err, "486")
	require.NoError(t, pb.hangup(ctx, call))
	<-pc.ringing
	rep, err := placeCall(ctx, pa, pb)
	require.NoError(t, err)
	assert.Equal(t, secstatus.IconLock, rep.CalleeIcon)

	// An INVITE from an unregistered phone over a connection of its own.
	stranger, err := newSIPPhone(a, r.server(), nil)
	require.NoError(t, err)
	defer stranger.Close()
	stranger.registered = true // it claims to be
	_, err = stranger.invite(ctx, b.Extension)
	require.ErrorContains(t, err, "403")
}

func TestCallsConcurrent(t *testing.T) {
	n := 40
	if testing.Short() {
		n = 10
	}
	k := newSIPTestPKI(t)
	ids := make([]sipIdentity, n)
	for i := range ids {
		ids[i] = k.identity(t, i+1, i%10 != 9) // one in ten non-secure
	}
	r := startSIPTest(t, k, ids...)
	phones := make([]*sipPhone, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i := range ids {
		p, err := newSIPPhone(ids[i], r.server(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
		phones[i] = p
		wg.Go(func() { errs[i] = p.register(testContext(t)) })
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, ids[i].Device)
	}
	registered := time.Since(start)
	reps := make([]*callReport, n/2)
	for i := 0; i < n; i += 2 {
		wg.Go(func() { reps[i/2], errs[i] = placeCall(testContext(t), phones[i], phones[i+1]) })
	}
	wg.Wait()
	for i := 0; i < n; i += 2 {
		require.NoError(t, errs[i], ids[i].Device)
		secure := ids[i].Secure && ids[i+1].Secure
		want := secstatus.IconNone
		if secure {
			want = secstatus.IconLock
		}
		assert.Equal(t, want, reps[i/2].CallerIcon, ids[i].Device)
		assert.Equal(t, want, reps[i/2].CalleeIcon, ids[i+1].Device)
		assert.Equal(t, secure, reps[i/2].SRTP)
		assert.True(t, reps[i/2].mediaOK())
	}
	t.Logf("%d phones registered in %v, %d calls in %v", n, registered, n/2, time.Since(start)-registered)
	assert.Zero(t, r.activeCalls())
}

func TestCallSDP(t *testing.T) {
	m := sdpMedia{Addr: netip.MustParseAddrPort("127.0.0.1:40000"), Profile: profileSRTP,
		Crypto: []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"}}
	got, err := parseSDP(m.marshal(42))
	require.NoError(t, err)
	assert.Equal(t, &m, got)

	for _, bad := range []string{"", "v=0\r\n", "v=0\r\nm=audio 1 RTP/AVP 0\r\n", "c=IN IP6 ::1\r\nm=audio 1 RTP/AVP 0\r\n",
		"c=IN IP4 127.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n"} {
		_, err := parseSDP([]byte(bad))
		assert.ErrorIs(t, err, errSDP, "%q", bad)
	}
	// Media-level c= wins; a video stream and later audio are ignored.
	got, err = parseSDP([]byte("v=0\nc=IN IP4 10.0.0.1\nm=video 5 RTP/AVP 96\na=crypto:9 x\nm=audio 6 RTP/AVP 0\nc=IN IP4 127.0.0.2\nm=audio 7 RTP/AVP 0\nc=IN IP4 127.0.0.3\n"))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2:6", got.Addr.String())
	assert.Empty(t, got.Crypto)
	assert.False(t, got.secure())
}
