package loadtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/loadtest"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
)

// Through the Pub/Sub emulator: attestations published after Subscribe are counted against
// the ids asked for; others are told apart, and a missing one leaves Await at its deadline.
func TestAwaitCountsTheRunsAttestations(t *testing.T) {
	env := emulators.ForTest(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
	env.Provision(t, nil)
	client := env.PubSub(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		want     []string
		received int
		others   int
	}{
		{"every one", []string{"d-0", "d-1", "d-2", "d-3"}, 4, 1},
		{"one never published", []string{"d-0", "d-1", "d-2", "d-3", "d-9"}, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			atts, err := loadtest.Subscribe(ctx, client, env.Project, events.TopicPolicyAttestations, "count")
			if err != nil {
				t.Fatal(err)
			}
			defer atts.Close(ctx)
			ps := events.NewPubSub(client)
			var batch []policy.Attestation
			for i := range 5 { // d-4 is not asked for: another caller's decision
				batch = append(batch, policy.Attestation{
					DecisionID: fmt.Sprintf("d-%d", i), Bundle: "rbac", Rule: "decision", Revision: "r",
					Decision: policy.Deny, InputSHA256: strings.Repeat("0", 64), EnforcementPoint: "pdp",
					CorrelationID: "c-1", Time: time.Now(),
				})
			}
			if err := eventsink.New(ps, "//waooaw/test").SendAttestations(ctx, batch); err != nil {
				t.Fatal(err)
			}
			ps.Close()
			c, err := atts.Await(ctx, tc.want, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// Others may miss d-4 when the last wanted id arrives first; it is at most 1.
			if c.Want != len(tc.want) || c.Received != tc.received || c.Others > tc.others {
				t.Errorf("count %+v, want %d received of %d", c, tc.received, len(tc.want))
			}
		})
	}
}
