package guardian_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/guardian"
	"waooaw.dev/governance/infra/local/emulators"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
)

// harness is the guardian on loopback against the real emulators, in a project of its own
// whose topics all have a tap.
type harness struct {
	url string
	fs  *firestore.Client
	tap *emulators.Tap
}

func newHarness(t *testing.T, with ...func(*guardian.Options)) *harness {
	t.Helper()
	env := emulators.ForTest(t)
	h := &harness{tap: env.Tap(t), fs: env.Firestore(t)} // Tap provisions every topic
	pub := guardian.NewPublisher(env.PubSub(t))
	t.Cleanup(pub.Close)
	set, err := rules.Load(tables.FS)
	if err != nil {
		t.Fatal(err)
	}
	o := guardian.Options{Firestore: h.fs, Publisher: pub, Rules: set}
	for _, w := range with {
		w(&o)
	}
	s, err := guardian.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// request creates the request's projection as the gateway would.
func (h *harness) request(t *testing.T, id, engagement, status string) {
	t.Helper()
	_, err := h.fs.Collection(agentreq.Requests).Doc(id).Set(context.Background(), agentreq.Request{
		RequestID: id, EngagementID: engagement, Status: status, Round: 1, RequestedBy: "user:alice",
		CreatedAt: "2026-12-01T09:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) get(t *testing.T, id string) agentreq.Request {
	t.Helper()
	r, err := agentreq.Get(context.Background(), h.fs, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// post sends body (JSON-encoded unless a string) and returns the status and the body.
func (h *harness) post(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(h.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("POST %s: Content-Type %q, body %s", path, ct, out)
	}
	return resp.StatusCode, out
}

// audit is an audit event as the guardian publishes it.
type audit struct {
	env     events.Envelope
	Stream  string            `json:"stream"`
	Type    string            `json:"event_type"`
	Actor   string            `json:"actor_id"`
	Action  string            `json:"action"`
	Target  string            `json:"target"`
	Context map[string]string `json:"context"`
	Result  string            `json:"result"`
}

// audits drains the tap and returns the audit events by event id, in arrival order.
func (h *harness) audits(t *testing.T) map[string][]audit {
	t.Helper()
	out := map[string][]audit{}
	for _, m := range h.tap.Drain(t, 2*time.Second)[events.TopicAuditEvents] {
		env, err := events.Decode(events.TopicAuditEvents, m.Data)
		if err != nil {
			t.Fatalf("undecodable audit event %s: %v", m.Data, err)
		}
		a := audit{env: env}
		if err := json.Unmarshal(env.Data, &a); err != nil {
			t.Fatal(err)
		}
		out[env.EventID] = append(out[env.EventID], a)
	}
	return out
}

// call is a stage call's body.
func call(req, engagement string, round int, spec map[string]any) map[string]any {
	return map[string]any{
		"request_id": req, "engagement_id": engagement, "round": round, "at": "2026-12-01T10:00:00Z",
		"spec": spec, "way_of_working": map[string]any{"identity": "x"},
		"revision_callback": "http://workflows.local/callbacks/" + req,
	}
}

// retailSpec is DOMAIN.md's low-risk request: no external systems, public data, a daily
// cost under the cap, no risk flags, an industry without special controls.
func retailSpec(engagement string) map[string]any {
	name := "Shop Helper"
	return map[string]any{
		"agent_name": name, "purpose": "answer shoppers' questions about products and orders",
		"scope_boundaries": []any{"product catalogue", "order status"}, "required_capabilities": []any{"chat"},
		"data_access_requirements": []any{"public"}, "external_systems": []any{}, "industry": "retail",
		"engagement_id": engagement, "estimated_cost_usd_per_day": 1.5,
	}
}

// healthcareSpec carries all three controls and no risk flags, with a catalogued connector.
func healthcareSpec(engagement string) map[string]any {
	s := retailSpec(engagement)
	s["industry"], s["purpose"] = "healthcare", "write patient education leaflets"
	s["external_systems"] = []any{"epic_fhir"}
	s["controls"] = map[string]any{"fact_check": true, "hipaa_check": true, "claims_verified": true}
	s["estimated_cost_usd_per_day"] = 4.0
	return s
}

// verdict is a stage-5 answer.
type verdict struct {
	Stage   int         `json:"stage"`
	Name    string      `json:"name"`
	Outcome string      `json:"outcome"`
	Reasons []string    `json:"reasons"`
	Status  string      `json:"status"`
	Trace   rules.Trace `json:"trace"`
}

func decodeVerdict(t *testing.T, b []byte) verdict {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v verdict
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return v
}

// checkReasons wants one reason per substring, each containing it, in order.
func checkReasons(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("reasons %q; want %d like %q", got, len(want), want)
		return
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("reason %d %q; want it to contain %q", i, got[i], want[i])
		}
	}
}
