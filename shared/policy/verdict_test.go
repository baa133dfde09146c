package policy_test

import (
	"strings"
	"testing"

	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/policytest"
)

func TestDecideAll(t *testing.T) {
	sink := &policytest.MemorySink{}
	att := policy.NewAttester(sink)
	e := newEngine(t, policy.WithAttester(att), policy.WithData(map[string]any{"engagements": map[string]any{"eng-1": map[string]any{"governor": "gov-1"}}}))
	for _, tc := range []struct {
		name        string
		bundles     []string
		input       map[string]any
		allow       bool
		decisions   int
		reasons     string
		obligations string
	}{
		{"viewer refused by rbac before governor is asked", []string{"rbac", "governor"},
			map[string]any{"subject": subject("u1", "viewer"), "action": "approve", "resource": map[string]any{"engagement_id": "eng-1"}},
			false, 1, "role viewer (level 7) may not approve: needs level <= 2", ""},
		{"another governor refused by governor", []string{"rbac", "governor"},
			map[string]any{"subject": subject("gov-2", "governor"), "action": "approve", "resource": map[string]any{"engagement_id": "eng-1"}},
			false, 2, "gov-2 is not the Governor of engagement eng-1", ""},
		{"the engagement's Governor approves", []string{"rbac", "governor"},
			map[string]any{"subject": subject("gov-1", "governor"), "action": "approve", "resource": map[string]any{"engagement_id": "eng-1"}},
			true, 2, "role governor (level 2) may approve: needs level <= 2|gov-1 is the Governor of engagement eng-1", "require_idempotency_key"},
		{"obligations of every bundle", []string{"rbac", "budget"},
			map[string]any{"subject": subject("u9", "admin"), "action": "deploy", "budget": map[string]any{"state": "alert"}},
			true, 2, "role admin (level 1) may deploy: needs level <= 3|budget alert: rate limited", "enforce_rate_limit,require_idempotency_key"},
		{"no bundle asked", nil, map[string]any{}, false, 0, "no policy bundle was asked: default deny", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := e.DecideAll(ctx, tc.bundles, tc.input, gw)
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allow || len(v.Decisions) != tc.decisions ||
				strings.Join(v.Reasons, "|") != tc.reasons || strings.Join(v.Obligations, ",") != tc.obligations {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
	if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.Attestations()); got != 7 {
		t.Fatalf("%d attestations, want one per decision made (7)", got)
	}
}
