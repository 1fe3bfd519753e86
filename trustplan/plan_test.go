package trustplan_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/trustplan"
	"github.com/ucsec/ucsec/tvs"
)

const cfgName = "SEP001122334455.cnf.xml.sgn"

// realTVS runs a tvs.Server on loopback that answers from st and presents
// the fixture's TVS certificate, and returns the phone's TVS for an ITL:
// a tvs.Client pinned to the ITL's TVS records, as phones (and phonesim)
// make it. With no TVS record it has nothing to pin and gets no answer.
func realTVS(t *testing.T, fx *fixture, st tvs.Store) func(*ctl.File) ctl.Verifier {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &tvs.Server{Store: st, TLSConfig: &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{fx.tvs.cert.Raw}, PrivateKey: fx.tvs.key, Leaf: fx.tvs.cert}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return func(list *ctl.File) ctl.Verifier {
		var pins []*x509.Certificate
		if list != nil {
			pins, _ = list.Certificates(ctl.RoleTVS)
		}
		return &tvs.Client{Servers: []string{ln.Addr().String()}, TVSCertificates: pins, Timeout: 5 * time.Second, CacheSize: -1}
	}
}

// store returns a TVS store vouching for each certificate in its roles.
func store(t testing.TB, entries ...rec) *tvs.MemoryStore {
	t.Helper()
	st := tvs.NewMemoryStore()
	for _, e := range entries {
		require.NoError(t, tvs.Put(context.Background(), st, &tvs.Entry{Certificate: e.p.cert, Roles: []ctl.Role{e.role}}))
	}
	return st
}

func kinds(d trustplan.Decision) []trustplan.FixKind {
	var ks []trustplan.FixKind
	for _, f := range d.Fixes {
		ks = append(ks, f.Kind)
	}
	return ks
}

// TestPlanRules runs every row of the phone's decision table through the
// planner, and the same inputs through ctl.Phone with a real TVS on
// loopback (a tvs.Server answering from the same store, asked by a
// tvs.Client pinned to the TVS records of the ITL the phone holds): the
// two must agree on every step, and on the lists held at the end.
func TestPlanRules(t *testing.T) {
	fx := newFixture(t)
	itlSAST := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	itlNoTVS := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP})
	itlDevice := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	itlDeviceTFTP2 := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	itlTFTP2 := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	ctlSAST := ctlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP})
	ctlBridge := ctlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP})
	ccmOnly := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCM}, rec{fx.tvs, ctl.RoleTVS})
	rollback := rollbackITL(t, fx.sast)
	broken := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP})
	broken.Signature[0] ^= 1 // in the parsed bytes: Signature aliases them
	cfg := config(t, fx.tftp, cfgName)
	cfg2 := config(t, fx.tftp2, cfgName)
	wrongName := config(t, fx.tftp, "SEPAAAAAAAAAAAA.cnf.xml.sgn")
	bad := tampered(t, cfg)
	file := func(f ctl.SignedFile) []trustplan.SignedFile { return []trustplan.SignedFile{{Name: cfgName, File: f}} }

	vouchDevice := func(t testing.TB) tvs.Store { return store(t, rec{fx.device, ctl.RoleSAST}) }
	vouchNothing := func(t testing.TB) tvs.Store { return store(t, rec{fx.tftp, ctl.RoleCCMTFTP}) }

	tests := []struct {
		name  string
		held  trustplan.Held
		store func(testing.TB) tvs.Store // nil: phones without TVS
		pub   trustplan.Publication
		want  []outcome
		fixes [][]trustplan.FixKind // per decision
		why   []string              // per decision: in Why
	}{
		{name: "P1 no lists: the first list, then a file it vouches for",
			pub:  trustplan.Publication{ITL: itlDevice, Files: file(cfg)},
			want: []outcome{{ctl.RuleFirstList, true}, {ctl.RuleSignedFile, true}}},
		{name: "P1 no lists: any file",
			pub:  trustplan.Publication{Files: file(bad)},
			want: []outcome{{ctl.RuleFirstList, true}}},
		{name: "P2 signer in the phone's CTL",
			held: trustplan.Held{CTL: ctlSAST, ITL: itlDevice},
			pub:  trustplan.Publication{ITL: itlSAST},
			want: []outcome{{ctl.RuleCTLSigner, true}}},
		{name: "P2 by the CTL just accepted: a phone fetches the CTL first",
			held: trustplan.Held{CTL: ctlSAST, ITL: itlSAST},
			pub:  trustplan.Publication{CTL: ctlBridge, ITL: itlDevice},
			want: []outcome{{ctl.RuleCTLSigner, true}, {ctl.RuleCTLSigner, true}}},
		{name: "P3 new TFTP certificate, same SAST: the ITL, then the configuration it vouches for",
			held: trustplan.Held{ITL: itlSAST},
			pub:  trustplan.Publication{ITL: itlTFTP2, Files: file(cfg2)},
			want: []outcome{{ctl.RuleKnownSigner, true}, {ctl.RuleSignedFile, true}}},
		{name: "P4 new SAST, TVS vouches",
			held: trustplan.Held{ITL: itlSAST}, store: vouchDevice,
			pub:  trustplan.Publication{ITL: itlDevice},
			want: []outcome{{ctl.RuleTVS, true}}},
		{name: "P5 new SAST, TVS does not vouch",
			held: trustplan.Held{ITL: itlSAST}, store: vouchNothing,
			pub:   trustplan.Publication{ITL: itlDevice},
			want:  []outcome{{ctl.RuleTVSRefused, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixTVS, trustplan.FixKeepSigner, trustplan.FixReset}},
			why:   []string{"TVS does not vouch for it as SAST"}},
		{name: "P5 TVS vouches, but the phones' ITL names no TVS to ask",
			held: trustplan.Held{ITL: itlNoTVS}, store: vouchDevice,
			pub:   trustplan.Publication{ITL: itlDevice},
			want:  []outcome{{ctl.RuleTVSRefused, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixKeepSigner, trustplan.FixReset}},
			why:   []string{"their ITL holds no TVS certificate"}},
		{name: "P6 new SAST, no TVS",
			held:  trustplan.Held{ITL: itlSAST},
			pub:   trustplan.Publication{ITL: itlDevice},
			want:  []outcome{{ctl.RuleNoTVS, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixTVS, trustplan.FixKeepSigner, trustplan.FixReset}},
			why:   []string{"they have no TVS to ask"}},
		{name: "P6 then P8: the configuration's signer is only in the rejected ITL",
			held:  trustplan.Held{ITL: itlSAST},
			pub:   trustplan.Publication{ITL: itlDeviceTFTP2, Files: file(cfg2)},
			want:  []outcome{{ctl.RuleNoTVS, false}, {ctl.RuleSignedFile, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixTVS, trustplan.FixKeepSigner, trustplan.FixReset}, {trustplan.FixList, trustplan.FixFileSigner, trustplan.FixReset}},
			why:   []string{"no TVS", "the new ITL, which holds it, was rejected"}},
		{name: "P7 rollback ITL: any list, then files by the new list",
			held: trustplan.Held{ITL: rollback},
			pub:  trustplan.Publication{ITL: itlDevice, Files: file(cfg)},
			want: []outcome{{ctl.RuleRollback, true}, {ctl.RuleSignedFile, true}}},
		{name: "P7 rollback ITL: any file",
			held: trustplan.Held{ITL: rollback},
			pub:  trustplan.Publication{Files: file(bad)},
			want: []outcome{{ctl.RuleRollback, true}}},
		{name: "P7 does not hold for a phone with a CTL",
			held:  trustplan.Held{CTL: ctlSAST, ITL: rollback},
			pub:   trustplan.Publication{ITL: itlDevice},
			want:  []outcome{{ctl.RuleNoTVS, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixKeepSigner, trustplan.FixReset}}},
		{name: "P8 signed by a TFTP record",
			held: trustplan.Held{ITL: itlSAST},
			pub:  trustplan.Publication{Files: file(cfg)},
			want: []outcome{{ctl.RuleSignedFile, true}}},
		{name: "P8 signer not held",
			held:  trustplan.Held{ITL: itlSAST},
			pub:   trustplan.Publication{Files: file(cfg2)},
			want:  []outcome{{ctl.RuleSignedFile, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixList, trustplan.FixFileSigner, trustplan.FixReset}},
			why:   []string{"is not in the lists these phones hold"}},
		{name: "P8 signer held only as CCM",
			held:  trustplan.Held{ITL: ccmOnly},
			pub:   trustplan.Publication{Files: file(cfg2)},
			want:  []outcome{{ctl.RuleSignedFile, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixList, trustplan.FixReset}},
			why:   []string{"only as CCM"}},
		{name: "P8 signed for another name",
			held:  trustplan.Held{ITL: itlSAST},
			pub:   trustplan.Publication{Files: file(wrongName)},
			want:  []outcome{{ctl.RuleSignedFile, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixResign}},
			why:   []string{"SEPAAAAAAAAAAAA"}},
		{name: "P8 tampered",
			held:  trustplan.Held{ITL: itlSAST},
			pub:   trustplan.Publication{Files: file(bad)},
			want:  []outcome{{ctl.RuleSignedFile, false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixResign}}},
		{name: "a list that fails on its own: no rule accepts it",
			pub:   trustplan.Publication{ITL: broken},
			want:  []outcome{{"", false}},
			fixes: [][]trustplan.FixKind{{trustplan.FixResign}},
			why:   []string{"not valid on its own"}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st tvs.Store
			tvsFor := func(*ctl.File) ctl.Verifier { return nil }
			if tt.store != nil {
				st = tt.store(t)
				tvsFor = realTVS(t, fx, st)
			}
			res, err := trustplan.Plan(ctx, tt.held, st, tt.pub)
			require.NoError(t, err)
			assert.Equal(t, tt.want, outcomes(res), "the planner")
			model, after := reference(t, tt.held, tvsFor, tt.pub)
			assert.Equal(t, model, outcomes(res), "the planner and ctl.Phone with a real TVS")
			assert.Equal(t, after, res.After, "the lists held at the end")
			assert.Equal(t, allTrue(model), res.Accepted())
			for i, d := range res.Decisions {
				if d.Accepted {
					assert.Empty(t, d.Fixes, d.File)
					assert.Empty(t, d.Why, d.File)
					assert.NoError(t, d.Err)
					continue
				}
				assert.Error(t, d.Err)
				assert.NotEmpty(t, d.Why)
				if i < len(tt.fixes) {
					assert.Equal(t, tt.fixes[i], kinds(d), "fixes of %s: %s", d.File, res)
				}
				if i < len(tt.why) {
					assert.Contains(t, d.Why, tt.why[i])
				}
				for _, f := range d.Fixes {
					assert.NotEmpty(t, f.Text)
					for _, c := range f.Certificates {
						assert.Contains(t, f.Text, c.SHA256, "a fix names its certificates by SHA-256")
						assert.Contains(t, f.Text, c.Subject)
					}
				}
			}
		})
	}
}

func allTrue(os []outcome) bool {
	for _, o := range os {
		if !o.Accepted {
			return false
		}
	}
	return true
}

// TestPlanFixesWork applies each fix the planner offers and plans again:
// the phones must then accept the list.
func TestPlanFixesWork(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	held := trustplan.Held{ITL: itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})}
	newITL := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	st := tvs.NewMemoryStore()
	res, err := trustplan.Plan(ctx, held, st, trustplan.Publication{ITL: newITL})
	require.NoError(t, err)
	d := res.Decisions[0]
	require.Equal(t, ctl.RuleTVSRefused, d.Rule)
	require.NotNil(t, d.Signer)
	assert.True(t, d.Signer.Certificate.Equal(fx.device.cert))
	fixes := map[trustplan.FixKind]trustplan.Fix{}
	for _, f := range d.Fixes {
		fixes[f.Kind] = f
	}

	t.Run("tvs", func(t *testing.T) {
		f := fixes[trustplan.FixTVS]
		require.Len(t, f.Certificates, 1)
		assert.Contains(t, f.Text, "SAST role")
		require.NoError(t, tvs.Put(ctx, st, &tvs.Entry{Certificate: f.Certificates[0].Certificate, Roles: []ctl.Role{ctl.RoleSAST}}))
		res, err := trustplan.Plan(ctx, held, st, trustplan.Publication{ITL: newITL})
		require.NoError(t, err)
		assert.Equal(t, []outcome{{ctl.RuleTVS, true}}, outcomes(res))
	})
	t.Run("keep-signer", func(t *testing.T) {
		f := fixes[trustplan.FixKeepSigner]
		require.Len(t, f.Certificates, 1)
		require.True(t, f.Certificates[0].Certificate.Equal(fx.sast.cert), "the old ITLRecovery")
		// One more cycle: the new list signed by the old key, both SAST.
		bridge := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		res, err := trustplan.Plan(ctx, held, nil, trustplan.Publication{ITL: bridge})
		require.NoError(t, err)
		assert.Equal(t, []outcome{{ctl.RuleKnownSigner, true}}, outcomes(res))
		// The cycle after: the new key alone, without TVS.
		res, err = trustplan.Plan(ctx, res.After, nil, trustplan.Publication{ITL: newITL})
		require.NoError(t, err)
		assert.Equal(t, []outcome{{ctl.RuleKnownSigner, true}}, outcomes(res))
	})
	t.Run("reset", func(t *testing.T) {
		require.Contains(t, fixes, trustplan.FixReset)
		assert.Contains(t, fixes[trustplan.FixReset].Text, "Prepare Cluster for Rollback", "a phone without a CTL can take the rollback ITL")
		res, err := trustplan.Plan(ctx, trustplan.Held{}, nil, trustplan.Publication{ITL: newITL})
		require.NoError(t, err)
		assert.Equal(t, []outcome{{ctl.RuleFirstList, true}}, outcomes(res))
	})

	// Before CUCM 12.0 the ITL is signed by the CallManager (TFTP) key,
	// which is also a SAST record beside ITLRecovery; a regenerated
	// CallManager certificate signs the next ITL. The fixes: the old
	// CallManager key one more time, or the ITLRecovery key.
	t.Run("recovery-key", func(t *testing.T) {
		pre12 := itlOf(t, fx.tftp, rec{fx.tftp, ctl.RoleSAST}, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		next := itlOf(t, fx.tftp2, rec{fx.tftp2, ctl.RoleSAST}, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		res, err := trustplan.Plan(ctx, trustplan.Held{ITL: pre12}, nil, trustplan.Publication{ITL: next})
		require.NoError(t, err)
		d := res.Decisions[0]
		assert.Equal(t, []trustplan.FixKind{trustplan.FixTVS, trustplan.FixKeepSigner, trustplan.FixRecoveryKey, trustplan.FixReset}, kinds(d))
		assert.True(t, d.Fixes[1].Certificates[0].Certificate.Equal(fx.tftp.cert), "keep the old CallManager key")
		assert.True(t, d.Fixes[2].Certificates[0].Certificate.Equal(fx.sast.cert), "or the ITLRecovery key")
		// Signed by the ITLRecovery key, the same list is accepted.
		bySAST := itlOf(t, fx.sast, rec{fx.tftp2, ctl.RoleSAST}, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		res, err = trustplan.Plan(ctx, trustplan.Held{ITL: pre12}, nil, trustplan.Publication{ITL: bySAST})
		require.NoError(t, err)
		assert.Equal(t, []outcome{{ctl.RuleKnownSigner, true}}, outcomes(res))
	})

	t.Run("a phone with a CTL is not told about the rollback ITL", func(t *testing.T) {
		withCTL := trustplan.Held{CTL: ctlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}), ITL: held.ITL}
		res, err := trustplan.Plan(ctx, withCTL, nil, trustplan.Publication{ITL: newITL})
		require.NoError(t, err)
		f := res.Decisions[0].Fixes[len(res.Decisions[0].Fixes)-1]
		assert.Equal(t, trustplan.FixReset, f.Kind)
		assert.NotContains(t, f.Text, "Rollback")
	})
}

// TestPlanCertutils plans with the lists and files that usecallmanagernz/
// certutils made (testdata/certutils), as held and as new files, against
// ctl.Phone.
func TestPlanCertutils(t *testing.T) {
	fx := newFixture(t)
	itlVector, err := ctl.Parse(testkeys.Vector(t, "ITLFile.tlv"))
	require.NoError(t, err)
	ctlVector, err := ctl.Parse(testkeys.Vector(t, "CTLFile-sha512-v1.1.tlv"))
	require.NoError(t, err)
	var files []trustplan.SignedFile
	for _, name := range []string{"sgn-sha1/SEP001122334455.cnf.xml.sgn", "sgn-sha512/SEP001122334455.cnf.xml.sgn", "enc/SEP001122334455.cnf.xml.sgn"} {
		f, err := sgn.Parse(testkeys.Vector(t, name))
		require.NoError(t, err)
		files = append(files, trustplan.SignedFile{Name: cfgName, File: f})
	}
	enc, err := cnfenc.Parse(testkeys.Vector(t, "enc/SEP001122334455.cnf.xml.enc.sgn"))
	require.NoError(t, err)
	files = append(files, trustplan.SignedFile{Name: "SEP001122334455.cnf.xml.enc.sgn", File: enc})
	// A new ITLRecovery: a list signed by "device".
	moved := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tftp, ctl.RoleTVS})
	vouch := &mapTVS{roles: map[string][]ctl.Role{string(fx.device.cert.Raw): {ctl.RoleSAST}}}

	sig := func(o ...outcome) []outcome {
		for range files {
			o = append(o, outcome{ctl.RuleSignedFile, true})
		}
		return o
	}
	tests := []struct {
		name string
		held trustplan.Held
		tvs  *mapTVS
		pub  trustplan.Publication
		want []outcome
	}{
		{"new phone: both lists by P1, the files by P8", trustplan.Held{}, nil,
			trustplan.Publication{CTL: ctlVector, ITL: itlVector, Files: files}, sig(outcome{ctl.RuleFirstList, true}, outcome{ctl.RuleCTLSigner, true})},
		{"held ITL: the CTL by P3", trustplan.Held{ITL: itlVector}, nil,
			trustplan.Publication{CTL: ctlVector, Files: files}, sig(outcome{ctl.RuleKnownSigner, true})},
		{"held CTL: the ITL by P2", trustplan.Held{CTL: ctlVector}, nil,
			trustplan.Publication{ITL: itlVector, Files: files}, sig(outcome{ctl.RuleCTLSigner, true})},
		{"held CTL only: the files by P8", trustplan.Held{CTL: ctlVector}, nil,
			trustplan.Publication{Files: files}, sig()},
		{"held ITL, new SAST, no TVS: P6, the files still by the held ITL", trustplan.Held{ITL: itlVector}, nil,
			trustplan.Publication{ITL: moved, Files: files}, sig(outcome{ctl.RuleNoTVS, false})},
		{"held ITL, new SAST, TVS vouches: P4", trustplan.Held{ITL: itlVector}, vouch,
			trustplan.Publication{ITL: moved, Files: files}, sig(outcome{ctl.RuleTVS, true})},
		{"held ITL, new SAST, TVS does not: P5", trustplan.Held{ITL: itlVector}, &mapTVS{},
			trustplan.Publication{ITL: moved}, []outcome{{ctl.RuleTVSRefused, false}}},
		{"the certutils ITL after a new SAST: P8 by its CCM+TFTP record", trustplan.Held{ITL: moved}, nil,
			trustplan.Publication{Files: files}, sig()},
		{"the certutils ITL, offered to phones holding the new one: P6", trustplan.Held{ITL: moved}, nil,
			trustplan.Publication{ITL: itlVector}, []outcome{{ctl.RuleNoTVS, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.tvs.store(t)
			res, err := trustplan.Plan(context.Background(), tt.held, st, tt.pub)
			require.NoError(t, err)
			assert.Equal(t, tt.want, outcomes(res), "%s", res)
			model, after := reference(t, tt.held, tt.tvs.forITL, tt.pub)
			assert.Equal(t, model, outcomes(res), "the planner and ctl.Phone")
			assert.Equal(t, after, res.After)
		})
	}
}

// store returns a TVS store holding what m vouches for, or nil for nil.
func (m *mapTVS) store(t testing.TB) tvs.Store {
	if m == nil {
		return nil
	}
	st := tvs.NewMemoryStore()
	for der, roles := range m.roles {
		c, err := x509.ParseCertificate([]byte(der))
		require.NoError(t, err)
		require.NoError(t, tvs.Put(context.Background(), st, &tvs.Entry{Certificate: c, Roles: roles}))
	}
	return st
}

func TestPlanTVSStoreFails(t *testing.T) {
	fx := newFixture(t)
	held := trustplan.Held{ITL: itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tvs, ctl.RoleTVS})}
	newITL := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tvs, ctl.RoleTVS})
	res, err := trustplan.Plan(context.Background(), held, &failingStore{}, trustplan.Publication{ITL: newITL})
	require.NoError(t, err)
	d := res.Decisions[0]
	assert.Equal(t, ctl.RuleTVSRefused, d.Rule, "no answer: P5")
	assert.Contains(t, d.Why, "TVS gives no answer")
	assert.Contains(t, d.Why, "disk on fire")
}

type failingStore struct{ tvs.MemoryStore }

func (*failingStore) Get(context.Context, [32]byte) ([]byte, error) {
	return nil, errors.New("disk on fire")
}

func TestPlanInput(t *testing.T) {
	ctx := context.Background()
	_, err := trustplan.Plan(ctx, trustplan.Held{}, nil, trustplan.Publication{Files: []trustplan.SignedFile{{Name: "x.sgn"}}})
	assert.Error(t, err)
	_, err = trustplan.Plan(ctx, trustplan.Held{}, nil, trustplan.Publication{Files: []trustplan.SignedFile{{File: &sgn.File{}}}})
	assert.Error(t, err)
	res, err := trustplan.Plan(ctx, trustplan.Held{}, nil, trustplan.Publication{})
	require.NoError(t, err)
	assert.Empty(t, res.Decisions)
	assert.True(t, res.Accepted(), "nothing to publish, nothing rejected")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = trustplan.Plan(cancelled, trustplan.Held{}, nil, trustplan.Publication{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestResultForms(t *testing.T) {
	fx := newFixture(t)
	held := trustplan.Held{ITL: itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})}
	newITL := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	res, err := trustplan.Plan(context.Background(), held, nil, trustplan.Publication{ITL: newITL,
		Files: []trustplan.SignedFile{{Name: cfgName, File: config(t, fx.tftp, cfgName)}}})
	require.NoError(t, err)
	text := res.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	require.Len(t, lines, 2+3, "%s", text)
	assert.True(t, strings.HasPrefix(lines[0], "ITLFile.tlv: rejected by P6: its signer, CN=Device"), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "  fix (tvs): "), lines[1])
	assert.True(t, strings.HasPrefix(lines[4], cfgName+": accepted by P8, signed by CN=Asterisk"), lines[4])

	data, err := json.Marshal(res)
	require.NoError(t, err)
	var back struct {
		Decisions []struct {
			File     string `json:"file"`
			Accepted bool   `json:"accepted"`
			Rule     string `json:"rule"`
			Signer   struct {
				Subject string `json:"subject"`
				SHA256  string `json:"sha256"`
			} `json:"signer"`
			Why   string `json:"why"`
			Fixes []struct {
				Kind         string `json:"kind"`
				Text         string `json:"text"`
				Certificates []struct {
					Subject string `json:"subject"`
					SHA256  string `json:"sha256"`
				} `json:"certificates"`
			} `json:"fixes"`
		} `json:"decisions"`
	}
	require.NoError(t, json.Unmarshal(data, &back), "%s", data)
	require.Len(t, back.Decisions, 2)
	d := back.Decisions[0]
	assert.Equal(t, "ITLFile.tlv", d.File)
	assert.False(t, d.Accepted)
	assert.Equal(t, "P6", d.Rule)
	assert.Equal(t, res.Decisions[0].Signer.SHA256, d.Signer.SHA256)
	assert.Len(t, d.Signer.SHA256, 64)
	assert.Equal(t, "tvs", d.Fixes[0].Kind)
	assert.Equal(t, d.Signer.SHA256, d.Fixes[0].Certificates[0].SHA256)
	assert.True(t, back.Decisions[1].Accepted)
	assert.Empty(t, back.Decisions[1].Fixes)
	assert.NotContains(t, string(data), `"Err"`)
	assert.True(t, slices.ContainsFunc(res.Decisions[0].Fixes, func(f trustplan.Fix) bool { return f.String() == f.Text }))
}

// BenchmarkPlan plans a new ITLRecovery key for a group of phones: the
// new ITL accepted through TVS (P4), rejected without it (P6, the fixes
// tried), each followed by a configuration (P8).
func BenchmarkPlan(b *testing.B) {
	fx := newFixture(b)
	held := trustplan.Held{ITL: itlOf(b, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})}
	next := itlOf(b, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	pub := trustplan.Publication{ITL: next, Files: []trustplan.SignedFile{{Name: cfgName, File: config(b, fx.tftp, cfgName)}}}
	st := tvs.NewMemoryStore()
	if _, err := tvs.LoadTrustList(context.Background(), st, next, 0); err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name  string
		store tvs.Store
		rule  ctl.Rule
	}{{"accepted-P4", st, ctl.RuleTVS}, {"rejected-P6", nil, ctl.RuleNoTVS}} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				res, err := trustplan.Plan(context.Background(), held, bb.store, pub)
				if err != nil || res.Decisions[0].Rule != bb.rule {
					b.Fatal(err, res)
				}
			}
		})
	}
}
