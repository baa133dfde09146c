package infraspec

import (
	"path"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/schema"
)

// The repository's spec must agree with the topics, schemas and ordering keys in code.
func TestRepoSpecMatchesCode(t *testing.T) {
	s, _, err := LoadRepo()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Topics) != len(events.OrderingKeys) {
		t.Fatalf("spec has %d topics, code %d", len(s.Topics), len(events.OrderingKeys))
	}
	for _, tp := range s.Topics {
		key, ok := events.OrderingKeys[tp.Name]
		if !ok {
			t.Errorf("topic %s unknown to events", tp.Name)
			continue
		}
		if key != tp.OrderingKey {
			t.Errorf("topic %s: ordering key spec %q, code %q", tp.Name, tp.OrderingKey, key)
		}
		if n := events.OrderingShards[tp.Name]; n != tp.OrderingShards {
			t.Errorf("topic %s: ordering shards spec %d, code %d", tp.Name, tp.OrderingShards, n)
		}
		if want := "shared/schema/avro/" + tp.Name + ".avsc"; tp.Schema != want {
			t.Errorf("topic %s: schema %s, want %s", tp.Name, tp.Schema, want)
		}
		if _, ok := schema.Default().Definition(strings.TrimSuffix(path.Base(tp.Schema), ".avsc")); !ok {
			t.Errorf("topic %s: schema not embedded", tp.Name)
		}
	}
	if s.DeadLetter.MaxDeliveryAttempts != 5 {
		t.Errorf("max delivery attempts = %d, want 5", s.DeadLetter.MaxDeliveryAttempts)
	}
}

func TestParseRefuses(t *testing.T) {
	base := "dead_letter: {max_delivery_attempts: 5}\ntopics: [{name: a}]\n"
	tests := []struct{ name, doc, want string }{
		{"unknown key", base + "topicz: []\n", "topicz"},
		{"unknown topic", base + "subscriptions: [{name: s, topic: b}]\n", "unknown topic b"},
		{"unknown function", base + "subscriptions: [{name: s, topic: a, push_function: f}]\n", "unknown function f"},
		{"bad trigger", base + "functions: [{name: f, trigger: {type: cron}}]\n", "unknown trigger"},
		{"attempts", "dead_letter: {max_delivery_attempts: 3}\n", "max_delivery_attempts"},
		{"twice", "dead_letter: {max_delivery_attempts: 5}\ntopics: [{name: a}, {name: a}]\n", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
