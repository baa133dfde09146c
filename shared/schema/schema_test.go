package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEveryTopicHasASchema(t *testing.T) {
	want := []string{"approvals", "audit_events", "budget_alerts", "decisions", "health_events", "policy_attestations", "slo_breach", "spend_events"}
	got := Default().Topics()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("topics = %v, want %v", got, want)
	}
}

const envelope = `"event_id":"e1","type":"waooaw.health.reported","source":"//waooaw/gateway","time":"2026-11-26T10:00:00Z","correlation_id":"c1","actor":"client:dev-client"`

func TestNormalizeHealth(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		wantField string // "" = valid
	}{
		{"valid", `{` + envelope + `,"data":{"agent_id":"a1","engagement_id":"e1","status":"healthy","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}}`, ""},
		{"bad enum", `{` + envelope + `,"data":{"agent_id":"a1","engagement_id":"e1","status":"fine","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}}`, "data.status"},
		{"missing field", `{` + envelope + `,"data":{"engagement_id":"e1","status":"healthy","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}}`, "data.agent_id"},
		{"empty id", `{` + envelope + `,"data":{"agent_id":"","engagement_id":"e1","status":"healthy","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}}`, "data.agent_id"},
		{"bad time", `{` + envelope + `,"data":{"agent_id":"a","engagement_id":"e1","status":"healthy","check_type":"http","observed_at":"yesterday"}}`, "data.observed_at"},
		{"wrong type", `{` + envelope + `,"data":{"agent_id":7,"engagement_id":"e1","status":"healthy","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}}`, "data.agent_id"},
		{"unknown field", `{` + envelope + `,"data":{"agent_id":"a","engagement_id":"e1","status":"healthy","check_type":"http","observed_at":"2026-11-26T10:00:00Z","extra":1}}`, "data.extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Default().Normalize("health_events", []byte(tt.doc))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				var m map[string]any
				if err := json.Unmarshal(out, &m); err != nil {
					t.Fatal(err)
				}
				if m["agent_id"] != "" || m["causation_id"] != "" {
					t.Fatalf("defaults not filled: %s", out)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError on %s", err, tt.wantField)
			}
		})
	}
}

func TestNormalizeFillsDefaultsInSchemaOrder(t *testing.T) {
	body := `{"approval_id":"ap1","engagement_id":"eng","type":"financial","subject":"s","action":"pay","timeout_minutes":5}`
	s, err := Default().Record("approvals", "data")
	if err != nil {
		t.Fatal(err)
	}
	out, err := NormalizeTo(s, []byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"approval_id":"ap1","engagement_id":"eng","agent_id":"","type":"financial","subject":"s","action":"pay","rationale":"","evidence":{},"timeout_minutes":5}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if _, err := NormalizeTo(s, []byte(`{"approval_id":"ap1","engagement_id":"eng","type":"financial","subject":"s","action":"pay","timeout_minutes":1.5}`), "data"); err == nil || !strings.Contains(err.Error(), "data.timeout_minutes") {
		t.Fatalf("fractional int accepted or badly named: %v", err)
	}
	if _, err := NormalizeTo(s, []byte(`{"approval_id":`), ""); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Fatalf("malformed JSON: %v", err)
	}
}

// TestNormalizeKeepsHTMLCharacters: <, > and & are written as they are, whether the sender
// wrote them plain or escaped; what JSON requires is still escaped.
func TestNormalizeKeepsHTMLCharacters(t *testing.T) {
	health := func(agent string) string {
		return `{` + envelope + `,"data":{"agent_id":"` + agent + `","engagement_id":"e1","status":"healthy","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}}`
	}
	tests := []struct{ name, agent, want string }{
		{"plain", `a<b>&c`, `"agent_id":"a<b>&c"`},
		{"escaped", `a\u003cb\u003e\u0026c`, `"agent_id":"a<b>&c"`},
		{"script", `</script><script>x&amp;</script>`, `"agent_id":"</script><script>x&amp;</script>"`},
		{"still escaped", `q\"\\\n\u2028`, `"agent_id":"q\"\\\n\u2028"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Default().Normalize("health_events", []byte(health(tt.agent)))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), tt.want) || strings.Contains(string(out), `\u003c`) || strings.Contains(string(out), `\u0026`) {
				t.Fatalf("Normalize = %s\nwant it to hold %s", out, tt.want)
			}
		})
	}
}
