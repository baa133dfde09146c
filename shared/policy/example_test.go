package policy_test

import (
	"context"
	"fmt"

	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/policytest"
)

func ExampleEngine_Decide() {
	sink := &policytest.MemorySink{} // production: the Pub/Sub sink on policy_attestations
	att := policy.NewAttester(sink)
	eng, err := policy.New(policy.WithAttester(att))
	if err != nil {
		panic(err)
	}
	input := map[string]any{
		"subject":  map[string]any{"id": "u-17", "role": "viewer"},
		"action":   "approve",
		"resource": map[string]any{"type": "approval", "id": "ap-3", "engagement_id": "eng-1"},
	}
	d, err := eng.Decide(context.Background(), "rbac", policy.RuleDecision, input,
		policy.Meta{EnforcementPoint: "gateway", CorrelationID: "corr-42"})
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Allow, d.Outcome, d.Reasons, d.TTL)

	// On shutdown: every queued attestation is sent before Close returns.
	if err := att.Close(context.Background()); err != nil {
		panic(err)
	}
	a := sink.Attestations()[0]
	fmt.Println(a.DecisionID == d.DecisionID, a.Decision, a.EnforcementPoint, a.CorrelationID)
	// Output:
	// false deny [role viewer (level 7) may not approve: needs level <= 2] 5m0s
	// true deny gateway corr-42
}
