package eventsink_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
)

// schemaChecked validates each event against the topic's real Avro schema,
// as the Pub/Sub publisher does, and records it.
type schemaChecked struct {
	mu     sync.Mutex
	topics []string
	bodies [][]byte
	fail   int
}

func (p *schemaChecked) Publish(_ context.Context, topic string, e events.Envelope) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return "", errors.New("injected publish failure")
	}
	b, err := events.Encode(topic, e)
	if err != nil {
		return "", err
	}
	p.topics = append(p.topics, topic)
	p.bodies = append(p.bodies, b)
	return e.EventID, nil
}

// PublishAll publishes es one by one, in order, stopping at the first failure, as a
// failed ordering key stops the Pub/Sub publisher.
func (p *schemaChecked) PublishAll(ctx context.Context, topic string, es []events.Envelope) error {
	for _, e := range es {
		if _, err := p.Publish(ctx, topic, e); err != nil {
			return err
		}
	}
	return nil
}

func TestDecisionsArePublishedAsSchemaValidEvents(t *testing.T) {
	ctx := context.Background()
	pub := &schemaChecked{fail: 1}
	att := policy.NewAttester(eventsink.New(pub, "//waooaw/test"), policy.WithRetryBackoff(time.Millisecond), policy.WithErrorHandler(func(error) {}))
	eng, err := policy.New(policy.WithAttester(att))
	if err != nil {
		t.Fatal(err)
	}
	inputs := []map[string]any{
		{"subject": map[string]any{"id": "u1", "role": "viewer"}, "action": "approve"},
		{"subject": map[string]any{"id": "u2", "role": "admin"}, "action": "deploy"},
	}
	var decided []policy.Decision
	for i, in := range inputs {
		meta := policy.Meta{EnforcementPoint: "gateway"}
		if i == 0 {
			meta.CorrelationID = "corr-7"
		}
		d, err := eng.Decide(ctx, "rbac", policy.RuleDecision, in, meta)
		if err != nil {
			t.Fatal(err)
		}
		decided = append(decided, d)
	}
	if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// One send failed, so the Attester sent the batch again: an event may
	// appear twice, with the same event_id.
	byID := map[string]events.Envelope{}
	for i, b := range pub.bodies {
		var e events.Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if pub.topics[i] != events.TopicPolicyAttestations || e.Type != eventsink.EventType {
			t.Fatalf("event %s on %s", b, pub.topics[i])
		}
		byID[e.EventID] = e
	}
	if len(byID) != len(decided) || len(pub.bodies) > 2*len(decided) {
		t.Fatalf("published %d events, %d distinct, for %d decisions", len(pub.bodies), len(byID), len(decided))
	}
	for i, d := range decided {
		e, ok := byID[d.DecisionID]
		if !ok {
			t.Fatalf("decision %s was not published", d.DecisionID)
		}
		var data struct {
			DecisionID  string   `json:"decision_id"`
			Decision    string   `json:"decision"`
			Obligations []string `json:"obligations"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.DecisionID != d.DecisionID || data.Decision != d.Outcome || strings.Join(data.Obligations, ",") != strings.Join(d.Obligations, ",") {
			t.Errorf("event data %s for decision %+v", e.Data, d)
		}
		key, err := events.OrderingKey(events.TopicPolicyAttestations, e)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := events.OrderingKey(events.TopicPolicyAttestations, events.Envelope{CorrelationID: "corr-7"})
		if i == 0 && key != want {
			t.Errorf("ordering key %q, want %q, the one of the request's correlation id", key, want)
		}
		if i == 1 && key == "" {
			t.Error("a decision without a correlation id still needs an ordering key")
		}
	}
}

// The sink hands each correlation id's attestations over in batch order; that the Pub/Sub
// publisher keeps it is proven on the emulator (emulator_test.go).
func TestSameCorrelationIDIsPublishedInOrder(t *testing.T) {
	pub := &schemaChecked{}
	var batch []policy.Attestation
	for i := range 20 {
		batch = append(batch, policy.Attestation{
			DecisionID: "d-" + string(rune('a'+i)), Bundle: "rbac", Revision: "r", Decision: policy.Deny,
			InputSHA256: strings.Repeat("0", 64), EnforcementPoint: "gateway",
			CorrelationID: []string{"c1", "c2"}[i%2], Time: time.Unix(1, 0),
		})
	}
	if err := eventsink.New(pub, "//waooaw/test").SendAttestations(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	for _, b := range pub.bodies {
		var e events.Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		seen[e.CorrelationID] = append(seen[e.CorrelationID], e.EventID)
	}
	if strings.Join(seen["c1"], ",") != "d-a,d-c,d-e,d-g,d-i,d-k,d-m,d-o,d-q,d-s" || len(seen["c2"]) != 10 {
		t.Fatalf("per ordering key: %v", seen)
	}
}

func TestAttestationWithoutEnforcementPointIsStillValid(t *testing.T) {
	ctx := context.Background()
	pub := &schemaChecked{}
	att := policy.NewAttester(eventsink.New(pub, "//waooaw/test"))
	eng, err := policy.New(policy.WithAttester(att))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Decide(ctx, "ai", policy.RuleAllow, map[string]any{}, policy.Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pub.bodies) != 1 || !strings.Contains(string(pub.bodies[0]), `"enforcement_point":"unspecified"`) {
		t.Fatalf("published %q", pub.bodies)
	}
}
