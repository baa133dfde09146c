package emulators

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/shared/events"
)

func TestProvisionEnforcesSchemasAndDeadLetters(t *testing.T) {
	env := ForTest(t)
	// Every function pushed to gets the same unreachable URL: the auditor (a Pub/Sub function)
	// and the registry (an HTTP function that also takes health_events by push) alike.
	repo, _, lerr := infraspec.LoadRepo()
	if lerr != nil {
		t.Fatal(lerr)
	}
	urls := map[string]string{}
	for _, s := range repo.Subscriptions {
		urls[s.PushFunction] = "http://127.0.0.1:1"
	}
	spec := env.Provision(t, urls)
	c := env.PubSub(t)
	ctx := context.Background()

	tap := env.Tap(t, events.TopicHealthEvents)
	pub := events.NewPubSub(c)
	defer pub.Close()
	e, err := events.New("waooaw.health.reported", "//test", "client:t", map[string]string{
		"agent_id": "a1", "engagement_id": "eng1", "status": "healthy", "check_type": "http", "observed_at": "2026-11-26T10:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.AgentID, e.EngagementID = "a1", "eng1"
	if _, err := pub.Publish(ctx, events.TopicHealthEvents, e); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	// The emulator itself refuses what the schema does not allow, whatever the publisher.
	raw := c.Publisher(events.TopicHealthEvents)
	defer raw.Stop()
	if _, err := raw.Publish(ctx, &pubsub.Message{Data: []byte(`{"event_id":1}`)}).Get(ctx); err == nil {
		t.Fatal("emulator accepted a message that breaks the schema")
	}
	got := tap.Drain(t, 2*time.Second)[events.TopicHealthEvents]
	if len(got) != 1 {
		t.Fatalf("tap saw %d messages, want 1", len(got))
	}
	var back events.Envelope
	if err := json.Unmarshal(got[0].Data, &back); err != nil || back.EventID != e.EventID || got[0].OrderingKey != "a1" {
		t.Fatalf("message = %s key %q (%v)", got[0].Data, got[0].OrderingKey, err)
	}

	for _, s := range spec.Subscriptions {
		sub, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: subName(env.Project, s.Name)})
		if err != nil {
			t.Fatal(err)
		}
		if sub.GetDeadLetterPolicy().GetMaxDeliveryAttempts() != 5 || !strings.HasSuffix(sub.GetDeadLetterPolicy().GetDeadLetterTopic(), s.DeadLetterTopic()) {
			t.Errorf("%s: dead-letter policy %v", s.Name, sub.GetDeadLetterPolicy())
		}
		if want := PushEndpoint("http://127.0.0.1:1", env.Project, s.Topic); sub.GetPushConfig().GetPushEndpoint() != want {
			t.Errorf("%s: push endpoint %q, want %q", s.Name, sub.GetPushConfig().GetPushEndpoint(), want)
		}
		if sub.GetEnableMessageOrdering() != s.MessageOrdering {
			t.Errorf("%s: message ordering %v, want %v", s.Name, sub.GetEnableMessageOrdering(), s.MessageOrdering)
		}
	}
}
