package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/trustplan"
)

// The planner before the ITL rollover: package trustplan predicts, from
// what each phone holds and what the TVS vouches for, what the phone will
// do with the new ITL, before it is published; once the phones have
// fetched it, the prediction must be what they did.

// A prediction is the planner's decision for one phone, and what the
// phone then did.
type prediction struct {
	device  string
	planned trustplan.Decision
	rule    ctl.Rule // what the phone did
	err     error    // its refusal, nil if it accepted
	did     bool     // the phone was offered the list
}

// predictRollover plans the rollover to next for each phone that ids
// marks as provisioned: what it holds, against the TVS store that the
// cluster has just loaded with next. It returns one prediction per
// phone, nil for the others.
func predictRollover(ctx context.Context, c *cluster, phones []*phone, ids []*sipIdentity, next *ctl.File) ([]*prediction, error) {
	out := make([]*prediction, len(phones))
	for i, p := range phones {
		if ids[i] == nil {
			continue
		}
		held := trustplan.Held{CTL: p.trust.CTL, ITL: p.trust.ITL}
		res, err := trustplan.Plan(ctx, held, c.tvsStore, trustplan.Publication{ITL: next})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Device, err)
		}
		out[i] = &prediction{device: p.Device, planned: res.Decisions[0]}
	}
	return out, nil
}

// rolloverCheck is the check that every phone did what the planner
// predicted: accepted or refused the new ITL, by the same rule.
func rolloverCheck(preds []*prediction) check {
	n := 0
	var wrong []string
	for _, pr := range preds {
		if pr == nil {
			continue
		}
		n++
		d := &pr.planned
		switch {
		case !pr.did:
			wrong = append(wrong, pr.device+": not offered the new ITL")
		case d.Accepted != (pr.err == nil) || d.Rule != pr.rule:
			wrong = append(wrong, fmt.Sprintf("%s: predicted %s by %s, did %s by %s", pr.device, verdict(d.Accepted), d.Rule, verdict(pr.err == nil), pr.rule))
		}
	}
	c := check{Name: fmt.Sprintf("rollover predicted by the planner for %d phones", n), Planner: true, OK: true}
	switch {
	case n == 0:
		c.OK, c.Err = false, "no provisioned phone to predict"
	case len(wrong) > 0:
		c.OK, c.Err = false, oneLine(errors.New(strings.Join(wrong, "; ")))
	}
	return c
}

func verdict(accepted bool) string {
	if accepted {
		return "accepted"
	}
	return "rejected"
}

// predictedRules summarises the predictions for the log: how many phones
// each rule accepts or rejects.
func predictedRules(preds []*prediction) string {
	counts := map[string]int{}
	var keys []string
	for _, pr := range preds {
		if pr == nil {
			continue
		}
		k := verdict(pr.planned.Accepted) + " by " + string(pr.planned.Rule)
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return strings.Join(parts, ", ")
}
