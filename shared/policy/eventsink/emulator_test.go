package eventsink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
)

// Through the Pub/Sub emulator, with the topic's Avro schema enforced: every
// decision, allow and deny, arrives on policy_attestations with its
// decision_id and the request's correlation id as ordering key.
func TestAttestationsReachPolicyAttestationsTopic(t *testing.T) {
	env := emulators.ForTest(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
	env.Provision(t, nil)
	client := env.PubSub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := "projects/" + env.Project + "/subscriptions/attestations-test"
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                  sub,
		Topic:                 "projects/" + env.Project + "/topics/" + events.TopicPolicyAttestations,
		EnableMessageOrdering: true,
	}); err != nil {
		t.Fatal(err)
	}

	ps := events.NewPubSub(client)
	att := policy.NewAttester(eventsink.New(ps, "//waooaw/test"))
	eng, err := policy.New(policy.WithAttester(att))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // decision_id -> outcome
	for _, in := range []map[string]any{
		{"subject": map[string]any{"id": "u1", "role": "viewer"}, "action": "approve"},
		{"subject": map[string]any{"id": "u1", "role": "viewer"}, "action": "read"},
	} {
		d, err := eng.Decide(ctx, "rbac", policy.RuleDecision, in, policy.Meta{EnforcementPoint: "gateway", CorrelationID: "corr-e2e"})
		if err != nil {
			t.Fatal(err)
		}
		want[d.DecisionID] = d.Outcome
	}
	if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ps.Close()

	got := map[string]string{}
	var mu sync.Mutex
	rctx, stop := context.WithCancel(ctx)
	err = client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var e struct {
			EventID string `json:"event_id"`
			Data    struct {
				DecisionID string `json:"decision_id"`
				Decision   string `json:"decision"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Errorf("message %s: %v", m.Data, err)
			return
		}
		if want, _ := events.OrderingKey(events.TopicPolicyAttestations, events.Envelope{CorrelationID: "corr-e2e"}); m.OrderingKey != want || e.EventID != e.Data.DecisionID {
			t.Errorf("ordering key %q, event %s", m.OrderingKey, m.Data)
		}
		mu.Lock()
		got[e.Data.DecisionID] = e.Data.Decision
		if len(got) == len(want) {
			stop()
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, outcome := range want {
		if got[id] != outcome {
			t.Errorf("decision %s: published %q, want %q (got %v)", id, got[id], outcome, got)
		}
	}
}

// Close returns only once every queued attestation is on the topic, and each correlation id's
// attestations arrive in the order they were decided, however the ids spread over the batch:
// one id for all (one ordering key), one per decision, or a mix.
func TestCloseDeliversEveryAttestationInOrderPerCorrelationID(t *testing.T) {
	const n = 1500
	for _, tc := range []struct {
		name string
		corr func(i int) string
	}{
		{"one correlation id", func(int) string { return "flow-1" }},
		{"one per decision", func(i int) string { return fmt.Sprintf("req-%d", i) }},
		{"seven flows and singletons", func(i int) string {
			if i%3 == 0 {
				return fmt.Sprintf("req-%d", i)
			}
			return fmt.Sprintf("flow-%d", i%7)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := emulators.ForTest(t)
			t.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
			env.Provision(t, nil)
			client := env.PubSub(t)
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			sub := "projects/" + env.Project + "/subscriptions/attestations-order"
			if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
				Name:                  sub,
				Topic:                 "projects/" + env.Project + "/topics/" + events.TopicPolicyAttestations,
				EnableMessageOrdering: true,
				AckDeadlineSeconds:    60,
			}); err != nil {
				t.Fatal(err)
			}

			ps := events.NewPubSub(client)
			att := policy.NewAttester(eventsink.New(ps, "//waooaw/test"))
			base := time.Now()
			for i := range n {
				if err := att.Submit(ctx, policy.Attestation{
					DecisionID: fmt.Sprintf("d-%05d", i), Bundle: "rbac", Rule: "decision", Revision: "r1",
					Decision: policy.Deny, InputSHA256: strings.Repeat("0", 64), EnforcementPoint: "pdp",
					CorrelationID: tc.corr(i), Time: base.Add(time.Duration(i)),
				}); err != nil {
					t.Fatal(err)
				}
			}
			// Straight to Close: whatever is still queued must be flushed by it.
			if err := att.Close(ctx); err != nil {
				t.Fatal(err)
			}
			ps.Close()

			var mu sync.Mutex
			first := map[string]bool{}  // decision ids seen
			last := map[string]string{} // correlation id -> last new decision id
			rctx, stop := context.WithCancel(ctx)
			err := client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
				m.Ack()
				var e struct {
					Data struct {
						DecisionID    string `json:"decision_id"`
						CorrelationID string `json:"correlation_id"`
					} `json:"data"`
				}
				if err := json.Unmarshal(m.Data, &e); err != nil {
					t.Errorf("message %s: %v", m.Data, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				id := e.Data.DecisionID
				if first[id] { // a redelivery
					return
				}
				first[id] = true
				if want, _ := events.OrderingKey(events.TopicPolicyAttestations, events.Envelope{CorrelationID: e.Data.CorrelationID}); m.OrderingKey != want {
					t.Errorf("%s: ordering key %q, want %q for correlation id %q", id, m.OrderingKey, want, e.Data.CorrelationID)
				}
				// The promise is order within a business flow; its shard keeps it.
				if prev := last[e.Data.CorrelationID]; prev > id {
					t.Errorf("correlation id %s: %s arrived after %s", e.Data.CorrelationID, id, prev)
				}
				last[e.Data.CorrelationID] = id
				if len(first) == n {
					stop()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(first) != n {
				t.Fatalf("%d of %d attestations arrived", len(first), n)
			}
		})
	}
}
