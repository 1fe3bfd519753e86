package trustplan_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/trustplan"
	"github.com/ucsec/ucsec/tvs"
)

// TestWorkedExamples follows the worked examples of the package
// documentation, paragraph by paragraph: each plan must answer as the
// documentation says, and as ctl.Phone does on the same inputs with a
// real TVS on loopback answering from the same store.
func TestWorkedExamples(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	// The cluster's ITL, as the phones hold it: ITLRecovery (sast), the
	// TFTP certificate and the TVS certificate.
	current := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
	held := trustplan.Held{ITL: current}
	cfg := config(t, fx.tftp, cfgName)   // signed by the TFTP certificate
	cfg2 := config(t, fx.tftp2, cfgName) // by a new TFTP certificate, or another cluster's CallManager
	file := func(f ctl.SignedFile) []trustplan.SignedFile { return []trustplan.SignedFile{{Name: cfgName, File: f}} }
	loaded := func(t *testing.T, lists ...*ctl.File) tvs.Store {
		st := tvs.NewMemoryStore()
		for _, l := range lists {
			_, err := tvs.LoadTrustList(ctx, st, l, 0)
			require.NoError(t, err)
		}
		return st
	}

	// plan plans, checks the planner against ctl.Phone and returns the
	// result.
	plan := func(t *testing.T, held trustplan.Held, st tvs.Store, pub trustplan.Publication, want ...outcome) *trustplan.Result {
		t.Helper()
		res, err := trustplan.Plan(ctx, held, st, pub)
		require.NoError(t, err)
		require.Equal(t, want, outcomes(res), "%s", res)
		tvsFor := func(*ctl.File) ctl.Verifier { return nil }
		if st != nil {
			tvsFor = realTVS(t, fx, st)
		}
		model, after := reference(t, held, tvsFor, pub)
		assert.Equal(t, model, outcomes(res), "the planner and ctl.Phone")
		assert.Equal(t, after, res.After, "the lists held at the end")
		return res
	}

	t.Run("a new TFTP certificate with the same SAST", func(t *testing.T) {
		next := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		res := plan(t, held, nil, trustplan.Publication{ITL: next, Files: file(cfg2)},
			outcome{ctl.RuleKnownSigner, true}, outcome{ctl.RuleSignedFile, true})
		assert.True(t, res.Accepted())
		assert.Same(t, next, res.After.ITL)
		// Published without the new ITL, the configuration is rejected.
		res = plan(t, held, nil, trustplan.Publication{Files: file(cfg2)}, outcome{ctl.RuleSignedFile, false})
		d := res.Decisions[0]
		require.NotEmpty(t, d.Fixes)
		assert.Equal(t, trustplan.FixList, d.Fixes[0].Kind)
		assert.Contains(t, d.Fixes[0].Text, "publish, before the file, an ITL")
	})

	t.Run("a new SAST key, with and without TVS", func(t *testing.T) {
		next := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		pub := trustplan.Publication{ITL: next, Files: file(cfg)}
		res := plan(t, held, nil, pub, outcome{ctl.RuleNoTVS, false}, outcome{ctl.RuleSignedFile, true})
		d := res.Decisions[0]
		assert.Equal(t, []trustplan.FixKind{trustplan.FixTVS, trustplan.FixKeepSigner, trustplan.FixReset}, kinds(d))
		assert.True(t, d.Fixes[0].Certificates[0].Certificate.Equal(fx.device.cert), "tvs: the new key")
		assert.True(t, d.Fixes[1].Certificates[0].Certificate.Equal(fx.sast.cert), "keep-signer: the old key")
		assert.Contains(t, d.Fixes[2].Text, "Prepare Cluster for Rollback")
		// A TVS loaded with the new ITL vouches for the new key as SAST.
		plan(t, held, loaded(t, next), pub, outcome{ctl.RuleTVS, true}, outcome{ctl.RuleSignedFile, true})
		// One that knows only the old ITL does not.
		plan(t, held, loaded(t, current), pub, outcome{ctl.RuleTVSRefused, false}, outcome{ctl.RuleSignedFile, true})
		// The keep-signer fix: the new list signed once more by the old
		// key, both keys SAST; then the new key alone, without TVS.
		bridge := itlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		res = plan(t, held, nil, trustplan.Publication{ITL: bridge}, outcome{ctl.RuleKnownSigner, true})
		plan(t, res.After, nil, pub, outcome{ctl.RuleKnownSigner, true}, outcome{ctl.RuleSignedFile, true})
	})

	t.Run("moving phones to another cluster through TVS", func(t *testing.T) {
		// The other cluster: its own ITLRecovery (device), its CallManager
		// (tftp2) signing its configurations.
		other := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		pub := trustplan.Publication{ITL: other, Files: file(cfg2)}
		// The phones' TVS knows only its own cluster: the ITL is rejected,
		// and the configuration, whose signer only that ITL holds, too.
		res := plan(t, held, loaded(t, current), pub, outcome{ctl.RuleTVSRefused, false}, outcome{ctl.RuleSignedFile, false})
		assert.Contains(t, res.Decisions[1].Why, "the new ITL, which holds it, was rejected")
		assert.Equal(t, trustplan.FixTVS, res.Decisions[0].Fixes[0].Kind)
		// The other cluster's ITL loaded into the store (its ITLRecovery
		// imported as Phone-SAST-trust): P4, then P8 by the new ITL.
		res = plan(t, held, loaded(t, current, other), pub, outcome{ctl.RuleTVS, true}, outcome{ctl.RuleSignedFile, true})
		assert.Same(t, other, res.After.ITL)
	})

	t.Run("a phone holding a mixed-mode CTL when the cluster goes non-secure", func(t *testing.T) {
		mixed := trustplan.Held{CTL: ctlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}), ITL: current}
		nonSecure := ctlOf(t, fx.sast, rec{fx.sast, ctl.RoleSAST})
		res := plan(t, mixed, nil, trustplan.Publication{CTL: nonSecure, Files: file(cfg)},
			outcome{ctl.RuleCTLSigner, true}, outcome{ctl.RuleSignedFile, true})
		assert.Same(t, nonSecure, res.After.CTL)
		// Phones without a CTL take it by P3.
		plan(t, held, nil, trustplan.Publication{CTL: nonSecure}, outcome{ctl.RuleKnownSigner, true})
		// A phone holding a CTL ignores the rollback ITL (P7 holds only
		// without a CTL): its reset fix does not offer it.
		withRollback := trustplan.Held{CTL: mixed.CTL, ITL: rollbackITL(t, fx.sast)}
		next := itlOf(t, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS})
		res = plan(t, withRollback, nil, trustplan.Publication{ITL: next}, outcome{ctl.RuleNoTVS, false})
		fixes := res.Decisions[0].Fixes
		assert.Equal(t, trustplan.FixReset, fixes[len(fixes)-1].Kind)
		assert.NotContains(t, fixes[len(fixes)-1].Text, "Rollback")
		// The non-secure CTL signed by a new key: without TVS both lists
		// are rejected, the new ITL checked against the mixed-mode CTL
		// the phones keep; with TVS vouching for the new key, the CTL by
		// P4, then the ITL by P2 from the CTL they now hold.
		newCTL := ctlOf(t, fx.device, rec{fx.device, ctl.RoleSAST})
		pub := trustplan.Publication{CTL: newCTL, ITL: next}
		res = plan(t, mixed, nil, pub, outcome{ctl.RuleNoTVS, false}, outcome{ctl.RuleNoTVS, false})
		assert.Same(t, mixed.CTL, res.After.CTL)
		assert.NotContains(t, res.Decisions[0].Fixes[len(res.Decisions[0].Fixes)-1].Text, "Rollback")
		res = plan(t, mixed, loaded(t, next), pub, outcome{ctl.RuleTVS, true}, outcome{ctl.RuleCTLSigner, true})
		assert.Equal(t, trustplan.Held{CTL: newCTL, ITL: next}, res.After)
	})
}
