package policy

import (
	"context"
	"sort"
)

// Verdict is the answer of several bundles about one request, as an
// enforcement point needs it: allowed only if every bundle allowed.
type Verdict struct {
	Allow bool
	// Obligations are the union of the allowed decisions' obligations, sorted.
	Obligations []string
	// Reasons are the refusing decision's reasons, or every decision's on allow.
	Reasons []string
	// Decisions are the decisions made, in order, each attested.
	Decisions []Decision
}

// DecideAll asks each bundle's decision rule in order about one input
// (hashed and converted once) and stops at the first refusal. Asking no
// bundle is a refusal: default deny.
func (e *Engine) DecideAll(ctx context.Context, bundles []string, input any, meta Meta) (Verdict, error) {
	in, ok := input.(*Input)
	if !ok {
		var local Input
		if err := local.set(input); err != nil {
			return Verdict{}, err
		}
		in = &local
	}
	if len(bundles) == 0 {
		return Verdict{Reasons: []string{"no policy bundle was asked: default deny"}}, nil
	}
	v := Verdict{Allow: true}
	obligations := map[string]bool{}
	for _, b := range bundles {
		d, err := e.decideInput(ctx, b, RuleDecision, in, meta)
		if err != nil {
			return Verdict{}, err
		}
		v.Decisions = append(v.Decisions, d)
		if !d.Allow {
			v.Allow, v.Reasons, v.Obligations = false, d.Reasons, nil
			return v, nil
		}
		v.Reasons = append(v.Reasons, d.Reasons...)
		for _, o := range d.Obligations {
			obligations[o] = true
		}
	}
	for o := range obligations {
		v.Obligations = append(v.Obligations, o)
	}
	sort.Strings(v.Obligations)
	return v, nil
}
