package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/trustplan"
)

// The planner predicts the rollover before it is published: P4 for a
// phone of the cluster, whose TVS vouches for the new signer, and P5 for
// a phone whose TVS (another cluster's) does not; each phone then does
// what was predicted.
func TestPlannerPredictsRollover(t *testing.T) {
	ctx := t.Context()
	c, other := provCluster(t), provCluster(t)
	mine, stranger := provPhone(1, true), provPhone(2, false)
	provProvision(t, c, mine)
	provProvision(t, other, stranger)

	data, next, err := c.prepareRollover(ctx)
	require.NoError(t, err)
	ids := []*sipIdentity{{}}
	predMine, err := predictRollover(ctx, c, []*phone{mine}, ids, next)
	require.NoError(t, err)
	predStranger, err := predictRollover(ctx, other, []*phone{stranger}, ids, next)
	require.NoError(t, err)
	assert.Equal(t, ctl.RuleTVS, predMine[0].planned.Rule)
	assert.True(t, predMine[0].planned.Accepted)
	assert.Equal(t, ctl.RuleTVSRefused, predStranger[0].planned.Rule)
	assert.False(t, predStranger[0].planned.Accepted)
	assert.Contains(t, predStranger[0].planned.Why, "TVS does not vouch")
	assert.Equal(t, "1 accepted by P4", predictedRules(predMine))

	require.NoError(t, c.publishITL(data))
	preds := []*prediction{predMine[0], predStranger[0]}
	for i, p := range []*phone{mine, stranger} {
		rule, err := p.acceptRolledITL(ctx, c) // the stranger asks its own cluster's TVS
		preds[i].rule, preds[i].err, preds[i].did = rule, err, true
	}
	chk := rolloverCheck(preds)
	assert.True(t, chk.OK, chk.Err)
	assert.Equal(t, "rollover predicted by the planner for 2 phones", chk.Name)
	assert.True(t, chk.Planner)
}

func TestRolloverCheckFails(t *testing.T) {
	accepted := trustplan.Decision{Accepted: true, Rule: ctl.RuleTVS}
	for _, tt := range []struct {
		name  string
		preds []*prediction
		want  string
	}{
		{"another rule", []*prediction{{device: "SEP1", planned: accepted, rule: ctl.RuleKnownSigner, did: true}}, "SEP1: predicted accepted by P4, did accepted by P3"},
		{"refused", []*prediction{nil, {device: "SEP2", planned: accepted, rule: ctl.RuleTVS, err: errors.New("no"), did: true}}, "SEP2: predicted accepted by P4, did rejected by P4"},
		{"not offered", []*prediction{{device: "SEP3", planned: accepted}}, "SEP3: not offered"},
		{"no phone", []*prediction{nil}, "no provisioned phone"},
	} {
		chk := rolloverCheck(tt.preds)
		assert.False(t, chk.OK, tt.name)
		assert.Contains(t, chk.Err, tt.want, tt.name)
	}
}
