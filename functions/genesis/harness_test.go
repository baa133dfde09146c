package genesis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/genesis"
	"waooaw.dev/governance/infra/local/emulators"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/rules"
)

const engagement = "eng-1"

// at is the workflow's clock in these tests; the function never reads its own.
var at = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func atPlus(d time.Duration) string { return at.Add(d).Format(time.RFC3339Nano) }

// harness is Genesis on loopback against the real emulators, in a fresh project whose topics
// all have a tap.
type harness struct {
	url string
	fs  *firestore.Client
	tap *emulators.Tap
}

func newHarness(t testing.TB, with ...func(*genesis.Options)) *harness {
	t.Helper()
	env := emulators.ForTest(t)
	h := &harness{fs: env.Firestore(t), tap: env.Tap(t)}
	pub := genesis.NewPublisher(env.PubSub(t))
	t.Cleanup(pub.Close)
	set, err := rules.Load(tables.FS)
	if err != nil {
		t.Fatal(err)
	}
	logTo := io.Discard
	if testing.Verbose() {
		logTo = os.Stderr
	}
	o := genesis.Options{Firestore: h.fs, Publisher: pub, Rules: set, Logger: logging.New(logTo, nil)}
	for _, w := range with {
		w(&o)
	}
	s, err := genesis.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// request creates a request's projection as the gateway does when it starts the workflow.
func (h *harness) request(t testing.TB, id string, spec map[string]any) {
	t.Helper()
	_, err := h.fs.Collection(agentreq.Requests).Doc(id).Set(context.Background(), agentreq.Request{
		RequestID: id, EngagementID: engagement, Status: agentreq.StatusRunning, Round: 1,
		CreatedAt: atPlus(0), UpdatedAt: atPlus(0), Spec: spec, WayOfWorking: wayOfWorking(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) projection(t testing.TB, id string) agentreq.Request {
	t.Helper()
	r, err := agentreq.Get(context.Background(), h.fs, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *harness) approval(t testing.TB, id string) agentreq.Approval {
	t.Helper()
	a, err := agentreq.GetApproval(context.Background(), h.fs, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// records counts Genesis's records of a request.
func (h *harness) records(t testing.TB, requestID string) int {
	t.Helper()
	docs, err := h.fs.Collection(genesis.Collection).Where("request_id", "==", requestID).Documents(context.Background()).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

type answer struct {
	status int
	body   []byte
	errMsg string
}

// post sends body as JSON and reads the answer, which is always JSON.
func (h *harness) post(t testing.TB, path string, body any) answer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(h.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return readAnswer(t, resp)
}

func (h *harness) get(t testing.TB, path string) answer {
	t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return readAnswer(t, resp)
}

func readAnswer(t testing.TB, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, body: b}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, body %s", resp.Request.URL.Path, ct, b)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != resp.StatusCode || e.Error.Message == "" {
			t.Fatalf("error answer %s is not {\"error\":{code,message}} for %d", b, resp.StatusCode)
		}
		a.errMsg = e.Error.Message
	}
	return a
}

// into decodes a 200 answer.
func (a answer) into(t testing.TB, v any) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %s: %v", a.body, err)
	}
}

// published is an event as it reached a topic.
type published struct {
	events.Envelope
	orderingKey string
}

// drain returns what reached each topic since the last drain, checking every ordering key.
func (h *harness) drain(t testing.TB) map[string][]published {
	t.Helper()
	out := map[string][]published{}
	for topic, msgs := range h.tap.Drain(t, 2*time.Second) {
		for _, m := range msgs {
			var env events.Envelope
			if err := json.Unmarshal(m.Data, &env); err != nil {
				t.Fatalf("%s: %v", topic, err)
			}
			if want, err := events.OrderingKey(topic, env); err != nil || m.OrderingKey != want {
				t.Errorf("%s: ordering key %q, want %q (%v)", topic, m.OrderingKey, want, err)
			}
			out[topic] = append(out[topic], published{Envelope: env, orderingKey: m.OrderingKey})
		}
	}
	return out
}

// auditEntry is the data of an audit_events envelope.
type auditEntry struct {
	Stream    string            `json:"stream"`
	EventType string            `json:"event_type"`
	ActorID   string            `json:"actor_id"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Context   map[string]string `json:"context"`
	Result    string            `json:"result"`
}

// audits indexes audit entries by event id; an id published more than once must carry the
// same entry each time.
func audits(t testing.TB, got map[string][]published) map[string]auditEntry {
	t.Helper()
	out := map[string]auditEntry{}
	for _, p := range got[events.TopicAuditEvents] {
		var e auditEntry
		if err := json.Unmarshal(p.Data, &e); err != nil {
			t.Fatal(err)
		}
		if prev, ok := out[p.EventID]; ok && prev.Action != e.Action {
			t.Errorf("event %s published as %s and %s", p.EventID, prev.Action, e.Action)
		}
		out[p.EventID] = e
	}
	return out
}

// checkAudit asserts the audit entry of a record: on the engagement's stream, the workflow
// step as its action, the outcome as its result, and the trace in its context when wantTrace.
func checkAudit(t testing.TB, got map[string]auditEntry, key, action, result string, wantTrace bool) {
	t.Helper()
	e, ok := got[agentreq.EventID(key)]
	if !ok {
		t.Errorf("no audit event for record %s", key)
		return
	}
	if e.Stream != engagement || e.Action != action || e.Result != result || e.ActorID != genesis.Actor {
		t.Errorf("audit of %s: stream %q action %q result %q actor %q; want %q %q %q %q", key, e.Stream, e.Action, e.Result, e.ActorID, engagement, action, result, genesis.Actor)
	}
	if wantTrace && !json.Valid([]byte(e.Context["trace"])) || wantTrace && e.Context["trace"] == "" {
		t.Errorf("audit of %s: context has no trace: %v", key, e.Context)
	}
}

func retailSpec() map[string]any {
	return map[string]any{
		"agent_name": "shelf-helper", "purpose": "answers shoppers' questions about the catalogue",
		"scope_boundaries": []any{"catalogue questions only"}, "required_capabilities": []any{"catalogue_search"},
		"data_access_requirements": []any{"public catalogue"}, "external_systems": []any{},
		"industry": "retail", "engagement_id": engagement,
	}
}

// healthcareSpec matches GEN-004: healthcare, all three controls, no risk flags.
func healthcareSpec() map[string]any {
	s := retailSpec()
	s["agent_name"], s["industry"] = "care-writer", "healthcare"
	s["controls"] = map[string]any{"fact_check": true, "hipaa_check": true, "claims_verified": true}
	s["risk_flags"] = []any{}
	return s
}

func with(spec map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range spec {
		out[k] = v
	}
	for k, v := range changes {
		if v == deleted {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// deleted, as a value in with's changes, removes the field.
var deleted = &struct{}{}

func wayOfWorking() map[string]any {
	out := map[string]any{}
	for _, s := range []string{"identity", "scope_and_boundaries", "capabilities", "data_access_and_privacy", "integrations",
		"approvals_and_escalation", "quality_and_slos", "failure_modes_and_fallbacks", "cost_and_limits", "audit_and_reporting"} {
		out[s] = "the " + s + " of this agent"
	}
	return out
}

// stageBody is a stage call.
func stageBody(id string, round int, spec, wow map[string]any) map[string]any {
	return map[string]any{
		"request_id": id, "engagement_id": engagement, "round": round, "at": atPlus(time.Duration(round) * time.Minute),
		"spec": spec, "way_of_working": wow,
		"revision_callback": "http://workflows.local/callbacks/revision-" + id,
		"approval_callback": "http://workflows.local/callbacks/approval-" + id,
	}
}

// brief shows a stage 6 verdict without its trace.
func brief(v genesis.ApprovalVerdict) string {
	v.Trace = nil
	return fmt.Sprintf("%+v", v)
}
