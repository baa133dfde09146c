package meter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/infra/local/emulators"
)

func TestPubSubCountsMessagesAndBytes(t *testing.T) {
	env := emulators.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := env.PubSub(t) // straight to the emulator: provisioning is not metered
	topic := fmt.Sprintf("projects/%s/topics/events", env.Project)
	sub := fmt.Sprintf("projects/%s/subscriptions/events-pull", env.Project)
	if _, err := admin.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 60}); err != nil {
		t.Fatal(err)
	}

	m := New()
	p, err := m.PubSub("", env.PubSubHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", p.Addr())
	c, err := pubsub.NewClient(ctx, env.Project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	// Three messages in one publish request: one small, one with attributes, one over 1 KB.
	msgs := []*pubsub.Message{
		{Data: []byte("hello")},
		{Data: []byte(`{"a":1}`), Attributes: map[string]string{"kind": "x", "v": "22"}},
		{Data: bytes.Repeat([]byte("z"), 1500)},
	}
	raw := int64(5 + 7 + (4 + 1 + 1 + 2) + 1500)
	pub := c.Publisher(topic)
	pub.PublishSettings.CountThreshold = len(msgs)
	pub.PublishSettings.DelayThreshold = time.Minute
	var results []*pubsub.PublishResult
	for _, msg := range msgs {
		results = append(results, pub.Publish(ctx, msg))
	}
	billed := raw
	for _, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		billed += 20 + int64(len(id))
	}
	pub.Stop()

	// One more through REST, as the Workflows emulator's connector publishes: below 1 KB.
	body := `{"messages":[{"data":"` + "aGVsbG8=" + `","attributes":{"k":"v"}}]}`
	resp, err := http.Post("http://"+p.Addr()+"/v1/"+topic+":publish", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var restOut struct {
		MessageIDs []string `json:"messageIds"`
	}
	json.NewDecoder(resp.Body).Decode(&restOut) //nolint:errcheck // checked below
	resp.Body.Close()
	if resp.StatusCode != 200 || len(restOut.MessageIDs) != 1 {
		t.Fatalf("REST publish through the proxy: %d %v", resp.StatusCode, restOut)
	}

	s, err := m.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"pubsub.publish.requests":           2,
		"pubsub.publish.messages":           4,
		"pubsub.publish.bytes":              raw + 5 + 2,
		"pubsub.publish.billed_bytes":       billed + 1000, // the REST request is under the minimum
		"pubsub.topics.events.messages":     4,
		"pubsub.topics.events.billed_bytes": billed + 1000,
		"pubsub.calls.Publish":              2,
	}
	for k, v := range want {
		if s.Get(k) != v {
			t.Errorf("%s = %d, want %d\n%s", k, s.Get(k), v, s)
		}
	}

	// Delivery by streaming pull, and the acks.
	var mu sync.Mutex
	got := 0
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		for rctx.Err() == nil {
			if snap, _ := m.Snapshot(rctx); snap.Get("pubsub.acks") >= 4 {
				rcancel()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err = c.Subscriber(sub).Receive(rctx, func(_ context.Context, msg *pubsub.Message) {
		mu.Lock()
		got++
		mu.Unlock()
		msg.Ack()
	})
	if err != nil && ctx.Err() != nil {
		t.Fatalf("receive: %v", err)
	}
	s, _ = m.Snapshot(ctx)
	if got != 4 || s.Get("pubsub.deliver.pulled") != 4 || s.Get("pubsub.acks") != 4 ||
		s.Get("pubsub.subscriptions.events-pull.messages") != 4 || s.Get("pubsub.deliver.billed_bytes") < billed {
		t.Fatalf("received %d; counters:\n%s", got, s)
	}
}
