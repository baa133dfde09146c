package events_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/events"
)

// health builds a valid health_events envelope for agent (its ordering key).
func health(t *testing.T, agent, status string) events.Envelope {
	t.Helper()
	e, err := events.New("waooaw.health.reported", "//test", "client:t", map[string]string{
		"agent_id": agent, "engagement_id": "eng-1", "status": status, "check_type": "http", "observed_at": "2026-11-26T10:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.AgentID, e.EngagementID = agent, "eng-1"
	return e
}

// Through the Pub/Sub emulator: a batch whose publish fails (the topic does not exist yet)
// reports it, and the same batch sent again once the topic exists is published, in order
// per ordering key: the failed keys were resumed rather than left refusing.
func TestPublishAllAfterFailureResumesOrderedKeys(t *testing.T) {
	env := emulators.ForTest(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
	client := env.PubSub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var batch []events.Envelope
	for i := range 30 {
		batch = append(batch, health(t, []string{"agent-1", "agent-2", "agent-3"}[i%3], []string{"healthy", "degraded", "critical"}[i%3]))
	}
	ps := events.NewPubSub(client)
	defer ps.Close()
	err := ps.PublishAll(ctx, events.TopicHealthEvents, batch)
	if err == nil || !strings.Contains(err.Error(), "30 of 30 events not published") {
		t.Fatalf("publish to a missing topic: %v", err)
	}

	env.Provision(t, nil)
	sub := "projects/" + env.Project + "/subscriptions/health-order"
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: sub, Topic: "projects/" + env.Project + "/topics/" + events.TopicHealthEvents, EnableMessageOrdering: true,
	}); err != nil {
		t.Fatal(err)
	}
	if err := ps.PublishAll(ctx, events.TopicHealthEvents, batch); err != nil {
		t.Fatalf("the batch again, topic created: %v", err)
	}

	want := map[string][]string{} // ordering key -> event ids in batch order
	for _, e := range batch {
		want[e.AgentID] = append(want[e.AgentID], e.EventID)
	}
	var mu sync.Mutex
	got := map[string][]string{}
	seen := map[string]bool{}
	rctx, stop := context.WithCancel(ctx)
	if err := client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var e events.Envelope
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Errorf("message %s: %v", m.Data, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[e.EventID] {
			seen[e.EventID] = true
			got[m.OrderingKey] = append(got[m.OrderingKey], e.EventID)
		}
		if len(seen) == len(batch) {
			stop()
		}
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for key, ids := range want {
		if strings.Join(got[key], ",") != strings.Join(ids, ",") {
			t.Errorf("key %s: received %v, published %v", key, got[key], ids)
		}
	}
}

// One invalid envelope refuses the whole batch before anything is published.
func TestPublishAllValidatesEveryEventFirst(t *testing.T) {
	bad := health(t, "agent-1", "healthy")
	bad.Data = json.RawMessage(`{"agent_id":"agent-1"}`)
	ps := events.NewPubSub(nil) // never reached: validation fails first
	err := ps.PublishAll(context.Background(), events.TopicHealthEvents, []events.Envelope{health(t, "agent-1", "healthy"), bad})
	if err == nil || !strings.Contains(err.Error(), bad.EventID) {
		t.Fatalf("got %v, want the invalid event named", err)
	}
}
