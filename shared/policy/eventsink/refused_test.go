package eventsink_test

import (
	"context"
	"encoding/json"
	"errors"
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

// Through the Pub/Sub emulator: an attestation that can never be published (its
// correlation id too long for an ordering key) is refused, dropped and reported, and the
// attestations queued with it and after it reach policy_attestations.
func TestRefusedAttestationDoesNotHoldBackTheOthers(t *testing.T) {
	env := emulators.ForTest(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
	env.Provision(t, nil)
	client := env.PubSub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := "projects/" + env.Project + "/subscriptions/refused-test"
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  sub,
		Topic: "projects/" + env.Project + "/topics/" + events.TopicPolicyAttestations,
	}); err != nil {
		t.Fatal(err)
	}
	ps := events.NewPubSub(client)
	defer ps.Close()
	var mu sync.Mutex
	var dropped []string
	att := policy.NewAttester(eventsink.New(ps, "//waooaw/test"), policy.WithRetryBackoff(time.Millisecond),
		policy.WithDropHandler(func(a policy.Attestation, err error) {
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, policy.ErrRefused) || !errors.Is(err, events.ErrIDTooLong) {
				t.Errorf("dropped %s for %v", a.DecisionID, err)
			}
			dropped = append(dropped, a.DecisionID)
		}))
	want := map[string]bool{}
	for i := range 6 {
		corr := "flow-1"
		if i == 2 {
			corr = strings.Repeat("c", 2048)
		}
		a := attestation(i, corr)
		if err := att.Submit(ctx, a); err != nil {
			t.Fatal(err)
		}
		if i != 2 {
			want[a.DecisionID] = true
		}
	}
	if err := att.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	if len(dropped) != 1 || dropped[0] != attestation(2, "").DecisionID || att.Dropped() != 1 {
		t.Fatalf("dropped %v (count %d), want only %s", dropped, att.Dropped(), attestation(2, "").DecisionID)
	}
	mu.Unlock()

	got := map[string]bool{}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var e struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Errorf("message %s: %v", m.Data, err)
		}
		mu.Lock()
		defer mu.Unlock()
		got[e.EventID] = true
		if len(got) >= len(want) {
			stop()
		}
	}); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if !got[id] {
			t.Errorf("%s not published (got %v)", id, got)
		}
	}
	for id := range got {
		if !want[id] {
			t.Errorf("%s published, want it dropped", id)
		}
	}
}
