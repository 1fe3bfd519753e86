package tvs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
)

// The phone tests run rows P4 and P5 of the phone's decision table
// (ctl.RuleTVS and ctl.RuleTVSRefused) end to end: a ctl.Phone holding an ITL gets a
// new ITL signed by a signer it does not hold, and asks a real TVS on
// loopback through a Client. Their helpers start with ph.

// phITL returns an ITL signed by the test key signer (its SAST record,
// the ITLRecovery), with the TFTP node's certificate and the TVS
// certificate of the tests.
func phITL(t *testing.T, signer string) *ctl.File {
	t.Helper()
	return phITLAs(t, signer, ctl.RoleSAST)
}

// phITLAs is phITL with the signer's record in role.
func phITLAs(t *testing.T, signer string, role ctl.Role) *ctl.File {
	t.Helper()
	cert, key := testkeys.Load(t, signer)
	tftp, _ := testkeys.Load(t, "tftp")
	var records []ctl.Record
	for _, r := range []struct {
		cert *x509.Certificate
		role ctl.Role
	}{{cert, role}, {tftp, ctl.RoleCCMTFTP}, {svTVS(t).cert, ctl.RoleTVS}} {
		rec, err := ctl.NewRecord(r.cert, r.role)
		require.NoError(t, err)
		records = append(records, rec)
	}
	data, err := itl.Create(nil, &ctl.File{Header: sgn.Header{Hash: crypto.SHA1, Timestamp: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, Records: records}, cert, key)
	require.NoError(t, err)
	f, err := itl.Parse(data)
	require.NoError(t, err)
	return f
}

// phPhone is a phone that holds list and asks the TVS at addr.
func phPhone(t *testing.T, list *ctl.File, addr string) (*ctl.Phone, *Client) {
	t.Helper()
	pins, err := list.Certificates(ctl.RoleTVS)
	require.NoError(t, err)
	c := &Client{
		Servers:         []string{addr},
		TVSCertificates: pins,
		DeviceName:      svDevice,
		Timeout:         2 * time.Second,
	}
	return &ctl.Phone{ITL: list, TVS: c}, c
}

// phOffer offers the phone a new ITL, as its TFTP download does, and
// replaces the one it holds if it accepts.
func phOffer(p *ctl.Phone, candidate *ctl.File) (ctl.Rule, error) {
	rule, err := p.AcceptList(context.Background(), candidate, itl.ITLPolicy())
	if err == nil {
		p.ITL = candidate
	}
	return rule, err
}

func TestPhoneTVS(t *testing.T) {
	old := phITL(t, "sast")  // the phone's ITL: ITLRecovery "sast"
	next := phITL(t, "sast") // signed again by the same key
	moved := phITL(t, "device")
	newSigner, _ := testkeys.Load(t, "device") // the new ITLRecovery, after a migration

	t.Run("P3 known signer: TVS is not asked", func(t *testing.T) {
		s := svStart(t, nil)
		p, _ := phPhone(t, old, s.addr)
		rule, err := phOffer(p, next)
		require.NoError(t, err)
		assert.Equal(t, ctl.RuleKnownSigner, rule)
		assert.Same(t, next, p.ITL)
		assert.Zero(t, s.store.lookups.Load())
	})

	t.Run("P4 unknown signer, TVS vouches: accepted, then cached", func(t *testing.T) {
		s := svStart(t, nil)
		s.put(t, newSigner, time.Hour, ctl.RoleSAST) // Phone-SAST-trust
		p, c := phPhone(t, old, s.addr)
		rule, err := phOffer(p, moved)
		require.NoError(t, err)
		assert.Equal(t, ctl.RuleTVS, rule)
		assert.Same(t, moved, p.ITL, "the new list replaces the old")
		assert.EqualValues(t, 1, s.store.lookups.Load())

		// A second phone with the same client, TVS gone: the verdict is
		// cached for its TTL.
		require.ErrorIs(t, s.stop(), ErrServerClosed)
		p2 := &ctl.Phone{ITL: old, TVS: c}
		rule, err = phOffer(p2, moved)
		require.NoError(t, err)
		assert.Equal(t, ctl.RuleTVS, rule)
	})

	t.Run("P4 vouched as several roles, SAST among them", func(t *testing.T) {
		s := svStart(t, nil)
		s.put(t, newSigner, 0, ctl.RoleCCM, ctl.RoleSAST, ctl.RoleTVS)
		p, _ := phPhone(t, old, s.addr)
		rule, err := phOffer(p, moved)
		require.NoError(t, err)
		assert.Equal(t, ctl.RuleTVS, rule)
	})

	refused := []struct {
		name  string
		setup func(t *testing.T) string // returns the TVS address
		msg   string                    // in the error
		offer *ctl.File                 // the candidate; nil means moved
	}{
		{"P5 TVS does not know the signer", func(t *testing.T) string {
			return svStart(t, nil).addr
		}, "does not vouch", nil},
		{"P5 TVS knows the signer in another role", func(t *testing.T) string {
			s := svStart(t, nil)
			s.put(t, newSigner, 0, ctl.RoleCCM, ctl.RoleTFTP)
			return s.addr
		}, "does not vouch", nil},
		{"P5 signer in a TFTP record, vouched for as TFTP only", func(t *testing.T) string {
			// The candidate names its own signer's role; the phone still
			// asks for SAST.
			s := svStart(t, nil)
			s.put(t, newSigner, 0, ctl.RoleCCM, ctl.RoleTFTP)
			return s.addr
		}, "does not vouch", phITLAs(t, "device", ctl.RoleTFTP)},
		{"P5 TVS unreachable", func(t *testing.T) string {
			return closedPort(t)
		}, "did not answer", nil},
		{"P5 TVS fails (store error): no answer", func(t *testing.T) string {
			s := svStart(t, nil)
			s.put(t, newSigner, 0, ctl.RoleSAST)
			s.store.fail.Store(true)
			return s.addr
		}, "did not answer", nil},
		{"P5 a TVS whose certificate is not in the ITL vouches: not believed", func(t *testing.T) string {
			s := svStart(t, func(srv *Server) {
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{svImpostor(t).tls()}}
			})
			s.put(t, newSigner, 0, ctl.RoleSAST)
			return s.addr
		}, "not one of the trusted certificates", nil},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := phPhone(t, old, tt.setup(t))
			offer := moved
			if tt.offer != nil {
				offer = tt.offer
			}
			rule, err := phOffer(p, offer)
			assert.Equal(t, ctl.RuleTVSRefused, rule)
			assert.ErrorIs(t, err, ctl.ErrUntrusted)
			assert.ErrorContains(t, err, tt.msg)
			assert.Same(t, old, p.ITL, "the old list is kept")
		})
	}

	// A refusal is not cached: once TVS knows the signer, the phone
	// accepts.
	t.Run("P5 then P4", func(t *testing.T) {
		s := svStart(t, nil)
		p, _ := phPhone(t, old, s.addr)
		rule, err := phOffer(p, moved)
		assert.Equal(t, ctl.RuleTVSRefused, rule)
		assert.Error(t, err)
		s.put(t, newSigner, 0, ctl.RoleSAST)
		rule, err = phOffer(p, moved)
		require.NoError(t, err)
		assert.Equal(t, ctl.RuleTVS, rule)
	})

	// The TVS trust is loaded from the other cluster's ITL, as CUCM's
	// Phone-SAST-trust holds the other cluster's ITLRecovery.
	t.Run("P4 with the store loaded from a trust list", func(t *testing.T) {
		s := svStart(t, nil)
		n, err := LoadTrustList(context.Background(), s.store, moved, 10*time.Minute)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		p, _ := phPhone(t, old, s.addr)
		rule, err := phOffer(p, moved)
		require.NoError(t, err)
		assert.Equal(t, ctl.RuleTVS, rule)
	})
}
