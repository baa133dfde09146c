package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

func health(t *testing.T) Envelope {
	t.Helper()
	e, err := New("waooaw.health.reported", "//test", "client:t", map[string]string{
		"agent_id": "agent-7", "engagement_id": "eng-1", "status": "critical", "check_type": "http", "observed_at": "2026-11-26T10:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.AgentID, e.EngagementID = "agent-7", "eng-1"
	return e
}

func TestOrderingKey(t *testing.T) {
	h := health(t)
	audit := h
	audit.Data = json.RawMessage(`{"stream":"eng-1","event_type":"x"}`)
	tests := []struct {
		topic string
		env   Envelope
		want  string
	}{
		{TopicHealthEvents, h, "agent-7"},
		{TopicPolicyAttestations, h, shardKey("correlation_id", h.CorrelationID, OrderingShards[TopicPolicyAttestations])},
		{TopicAuditEvents, audit, "eng-1"},
		{TopicApprovals, audit, ""}, // no approval_id in data
		{TopicBudgetAlerts, h, ""},
	}
	for _, tt := range tests {
		got, err := OrderingKey(tt.topic, tt.env)
		if err != nil || got != tt.want {
			t.Errorf("%s: key %q, %v; want %q", tt.topic, got, err, tt.want)
		}
	}
	if _, err := OrderingKey("nope", h); err == nil {
		t.Error("unknown topic accepted")
	}
}

func TestEncodeRefusesSchemaViolation(t *testing.T) {
	e := health(t)
	if _, err := Encode(TopicHealthEvents, e); err != nil {
		t.Fatalf("valid: %v", err)
	}
	e.Data = json.RawMessage(`{"agent_id":"a"}`)
	if _, err := Encode(TopicHealthEvents, e); err == nil || !strings.Contains(err.Error(), "data.engagement_id") {
		t.Fatalf("err = %v, want data.engagement_id named", err)
	}
}

func TestCausedBy(t *testing.T) {
	cause := health(t)
	next := health(t).CausedBy(cause)
	if next.CorrelationID != cause.CorrelationID || next.CausationID != cause.EventID || next.EventID == cause.EventID {
		t.Fatalf("caused-by = %+v", next)
	}
}

func pushEvent(t *testing.T, data []byte) event.Event {
	t.Helper()
	ce := event.New()
	ce.SetID("m1")
	ce.SetType("google.cloud.pubsub.topic.v1.messagePublished")
	ce.SetSource("//pubsub.googleapis.com/projects/p/topics/health_events")
	body, _ := json.Marshal(map[string]any{"message": map[string]any{"data": base64.StdEncoding.EncodeToString(data), "messageId": "m1"}})
	if err := ce.SetData("application/json", json.RawMessage(body)); err != nil {
		t.Fatal(err)
	}
	return ce
}

func TestFromCloudEvent(t *testing.T) {
	want := health(t)
	b, err := Encode(TopicHealthEvents, want)
	if err != nil {
		t.Fatal(err)
	}
	got, msg, err := FromCloudEvent(TopicHealthEvents, pushEvent(t, b))
	if err != nil || got.EventID != want.EventID || msg.MessageID != "m1" {
		t.Fatalf("got %+v %+v %v", got, msg, err)
	}
	for _, bad := range []string{`not json`, `{"event_id":"x"}`} {
		if _, _, err := FromCloudEvent(TopicHealthEvents, pushEvent(t, []byte(bad))); !errors.Is(err, ErrPoison) {
			t.Errorf("%s: err = %v, want ErrPoison", bad, err)
		}
	}
}

// A sharded key is a function of the value alone (one flow, one key, so its order holds),
// and many flows spread over every shard and no more.
func TestOrderingShards(t *testing.T) {
	n := OrderingShards[TopicPolicyAttestations]
	if n < 2 {
		t.Fatalf("policy_attestations has %d shards", n)
	}
	e := health(t)
	seen := map[string]int{}
	for i := range 2000 {
		e.CorrelationID = fmt.Sprintf("flow-%d", i)
		k1, err := OrderingKey(TopicPolicyAttestations, e)
		if err != nil {
			t.Fatal(err)
		}
		k2, _ := OrderingKey(TopicPolicyAttestations, e)
		if k1 != k2 || !strings.HasPrefix(k1, "correlation_id#") {
			t.Fatalf("flow %d: keys %q and %q", i, k1, k2)
		}
		seen[k1]++
	}
	if len(seen) != n {
		t.Fatalf("2000 flows used %d keys, want %d: %v", len(seen), n, seen)
	}
	for k, c := range seen {
		if c < 2000/n/2 {
			t.Errorf("shard %s took only %d of 2000 flows", k, c)
		}
	}
	e.CorrelationID = ""
	if k, err := OrderingKey(TopicPolicyAttestations, e); k != "" || err != nil {
		t.Errorf("no correlation id: key %q, %v; want unordered", k, err)
	}
}

// TestIDsLongerThanMaxIDLen: every id that becomes an ordering key or attribute is refused
// past MaxIDLen with an *IDError naming it, by Encode (so before anything is published)
// and by OrderingKey; at MaxIDLen it passes.
func TestIDsLongerThanMaxIDLen(t *testing.T) {
	long, limit := strings.Repeat("x", MaxIDLen+1), strings.Repeat("x", MaxIDLen)
	withData := func(data map[string]any) func(*Envelope, string) {
		return func(e *Envelope, v string) {
			e.Data, _ = json.Marshal(data)
			e.Data = json.RawMessage(strings.Replace(string(e.Data), "ID", v, 1))
		}
	}
	tests := []struct {
		field string
		topic string
		set   func(e *Envelope, v string)
	}{
		{"event_id", TopicHealthEvents, func(e *Envelope, v string) { e.EventID = v }},
		{"correlation_id", TopicPolicyAttestations, func(e *Envelope, v string) { e.CorrelationID = v }},
		{"causation_id", TopicHealthEvents, func(e *Envelope, v string) { e.CausationID = v }},
		{"agent_id", TopicHealthEvents, func(e *Envelope, v string) { e.AgentID = v }},
		{"engagement_id", TopicHealthEvents, func(e *Envelope, v string) { e.EngagementID = v }},
		{"data.stream", TopicAuditEvents, withData(map[string]any{
			"stream": "ID", "event_type": "t", "actor_id": "a", "actor_type": "client", "action": "x", "target": "y",
			"context": map[string]string{}, "approval_chain": []string{}, "result": "ok"})},
		{"data.approval_id", TopicApprovals, withData(map[string]any{"approval_id": "ID"})},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			e := health(t)
			tt.set(&e, long)
			_, err := Encode(tt.topic, e)
			var idErr *IDError
			if !errors.Is(err, ErrIDTooLong) || !errors.As(err, &idErr) || idErr.Field != tt.field || idErr.Len != MaxIDLen+1 {
				t.Fatalf("Encode: %v; want an IDError for %s", err, tt.field)
			}
			if _, err := OrderingKey(tt.topic, e); OrderingKeys[tt.topic] == tt.field && !errors.Is(err, ErrIDTooLong) {
				t.Fatalf("OrderingKey: %v; want ErrIDTooLong", err)
			}
			e = health(t)
			tt.set(&e, limit)
			if err := CheckIDs(tt.topic, e); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
		})
	}
}
