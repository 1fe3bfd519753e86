package main

// Tests of calls through the controller: security icons, media, refusals
// and many calls at once.

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/secstatus"
)

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
