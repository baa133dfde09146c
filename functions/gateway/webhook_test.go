package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
)

// TestWebhookRejections sends every kind of bad webhook and checks its status and JSON
// error, then that not one message reached any topic.
func TestWebhookRejections(t *testing.T) {
	h := newHarness(t, withClients(devClient, "listed-client", "short-key-client"))
	h.writeSecret(t, "unlisted-client", "s") // has a key but is not on the allow-list
	short := strings.Repeat("k", gateway.MinWebhookSecretBytes-1)
	h.writeSecret(t, "short-key-client", short)
	h.bind(t, devClient, "eng-1")

	good := healthBody("agent-1", "eng-1", "healthy")
	now := time.Now()
	url := func(kind string) string { return h.url + "/v1/webhooks/" + kind }
	without := func(header string) *http.Request {
		r := h.webhook("health", good)
		r.Header.Del(header)
		return r
	}
	big := bytes.Repeat([]byte("x"), gateway.MaxBodyBytes+1)
	chunked := func() *http.Request {
		r := h.webhook("health", big)
		r.Body = io.NopCloser(bytes.NewReader(big)) // no length: sent chunked, cut while read
		r.ContentLength = -1
		return r
	}()
	badCorr := h.webhook("health", good)
	badCorr.Header.Set(logging.HeaderCorrelationID, "has spaces")

	tests := []struct {
		name    string
		req     *http.Request
		status  int
		message string // a part of the error message
	}{
		{"malformed JSON", h.webhook("health", []byte(`{"agent_id":`)), 400, "malformed JSON"},
		{"not an object", h.webhook("health", []byte(`[1]`)), 400, "must be an object"},
		{"bad enum names the field", h.webhook("health", healthBody("a", "eng-1", "fine")), 400, "field status: must be one of healthy, degraded, critical, suspended"},
		{"missing field named", h.webhook("health", []byte(`{"agent_id":"a","engagement_id":"e","status":"healthy","observed_at":"2026-11-26T10:00:00Z"}`)), 400, "field check_type: is required"},
		{"unknown field named", h.webhook("health", []byte(`{"agent_id":"a","engagement_id":"e","status":"healthy","check_type":"http","observed_at":"2026-11-26T10:00:00Z","x":1}`)), 400, "field x: is not a field"},
		{"bad time named", h.webhook("health", []byte(`{"agent_id":"a","engagement_id":"e","status":"healthy","check_type":"http","observed_at":"noon"}`)), 400, "field observed_at: must be an RFC 3339 time"},
		{"empty id named", h.webhook("health", healthBody("", "eng-1", "healthy")), 400, "field agent_id: must not be empty"},
		{"engagement unusable as stream", h.webhook("health", healthBody("a", "eng/1", "healthy")), 400, "field engagement_id"},
		{"slo bad severity", h.webhook("slo", []byte(`{"service":"s","engagement_id":"e","slo":"p99","objective":1,"observed":2,"severity":"meh","observed_at":"2026-11-26T10:00:00Z"}`)), 400, "field severity"},
		{"approval fractional int", h.webhook("approval", []byte(`{"approval_id":"ap","engagement_id":"e","type":"financial","subject":"s","action":"pay","timeout_minutes":1.5}`)), 400, "field timeout_minutes"},
		{"health body on the slo route", h.webhook("slo", good), 400, "field service: is required"},
		{"no signature", without(auth.HeaderSignature), 401, "missing: X-Waooaw-Signature"},
		{"no timestamp", without(auth.HeaderTimestamp), 401, "missing: X-Waooaw-Timestamp"},
		{"no client", without(auth.HeaderClient), 401, "missing: X-Waooaw-Client"},
		{"no headers at all", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url("health"), bytes.NewReader(good))
			return r
		}(), 401, "missing: X-Waooaw-Client, X-Waooaw-Timestamp, X-Waooaw-Signature"},
		{"signed with another secret", signed(url("health"), good, devClient, []byte("wrong"), now), 401, "bad signature"},
		{"body changed after signing", func() *http.Request {
			r := h.webhook("health", good)
			r.Body = io.NopCloser(bytes.NewReader(healthBody("agent-2", "eng-1", "healthy")))
			return r
		}(), 401, "bad signature"},
		{"malformed signature", func() *http.Request {
			r := h.webhook("health", good)
			r.Header.Set(auth.HeaderSignature, "md5=abc")
			return r
		}(), 401, "must start with sha256="},
		{"unknown client", signed(url("health"), good, "listed-client", []byte("s"), now), 401, "unknown client"},
		{"a key under 32 bytes is the platform's fault", signed(url("health"), good, "short-key-client", []byte(short), now), 503, "this client's webhook key is misconfigured on the platform"},
		{"client not on the allow-list", signed(url("health"), good, "unlisted-client", []byte("s"), now), 401, "unknown client"},
		{"client id unusable as a secret name", signed(url("health"), good, "../etc", devSecret, now), 401, "unknown client"},
		{"stale timestamp", signed(url("health"), good, devClient, devSecret, now.Add(-6*time.Minute)), 401, "timestamp outside the 5 minute window"},
		{"future timestamp", signed(url("health"), good, devClient, devSecret, now.Add(6*time.Minute)), 401, "timestamp outside the 5 minute window"},
		{"unknown kind", h.webhook("budget", good), 404, `unknown webhook kind "budget"`},
		{"unknown route", signed(h.url+"/v1/nothing", good, devClient, devSecret, now), 404, "no route"},
		{"too large", h.webhook("health", big), 413, "body over 262144 bytes"},
		{"too large and unsigned: refused before reading", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url("health"), bytes.NewReader(big))
			return r
		}(), 401, "missing"},
		{"too large, chunked", chunked, 413, "body over 262144 bytes"},
		{"wrong method", func() *http.Request { r, _ := http.NewRequest(http.MethodGet, url("health"), nil); return r }(), 405, "method GET not allowed; use POST"},
		{"bad correlation id", badCorr, 400, "header X-Correlation-Id"},
		{"an agent id too long for a key", h.webhook("health", healthBody(strings.Repeat("a", 2048), "eng-1", "healthy")), 400, "agent_id is 2048 bytes, more than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.req)
			if a.status != tt.status || !strings.Contains(a.errMsg, tt.message) {
				t.Fatalf("got %d %q, want %d containing %q", a.status, a.errMsg, tt.status, tt.message)
			}
			if tt.status == 405 && a.header.Get("Allow") != "POST" {
				t.Fatalf("Allow = %q", a.header.Get("Allow"))
			}
		})
	}
	for topic, msgs := range h.drain(t) {
		t.Errorf("rejected requests published %d message(s) to %s", len(msgs), topic)
	}
}

// TestWebhookAccepted sends one webhook of each kind and a replay, then checks exactly what
// reached each topic.
func TestWebhookAccepted(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, withLog(&logs))
	h.bind(t, devClient, "eng-1", "eng-2", "eng-3")
	slo := []byte(`{"service":"genesis","engagement_id":"eng-2","slo":"latency_p99","objective":0.5,"observed":0.9,"severity":"critical","observed_at":"2026-11-26T10:00:00Z"}`)
	approval := []byte(`{"approval_id":"ap-1","engagement_id":"eng-3","agent_id":"agent-3","type":"financial","subject":"invoice 42","action":"pay","timeout_minutes":240}`)
	health := healthBody("agent-1", "eng-1", "degraded")

	healthReq := h.webhook("health", health)
	healthReq.Header.Set(logging.HeaderCorrelationID, "flow-42")
	healthReq.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1")
	replay := healthReq.Clone(context.Background())
	replay.Body = io.NopCloser(bytes.NewReader(health))

	cases := []struct {
		kind, topic, eventType, engagement, agent, target string
		req                                               *http.Request
	}{
		{"health", events.TopicHealthEvents, "waooaw.health.reported", "eng-1", "agent-1", "agent:agent-1", healthReq},
		{"slo", events.TopicSLOBreach, "waooaw.slo.breached", "eng-2", "", "service:genesis", h.webhook("slo", slo)},
		{"approval", events.TopicApprovals, "waooaw.approval.requested", "eng-3", "agent-3", "approval:ap-1", h.webhook("approval", approval)},
	}
	ids, corr := map[string]string{}, map[string]string{}
	for _, c := range cases {
		a := do(t, c.req)
		if a.status != http.StatusAccepted || len(a.eventID) != 32 {
			t.Fatalf("%s: %d %s", c.kind, a.status, a.raw)
		}
		ids[c.kind], corr[c.kind] = a.eventID, a.header.Get(logging.HeaderCorrelationID)
	}
	// The same signed request again: same event id, nothing published.
	a := do(t, replay)
	if a.status != http.StatusAccepted || a.eventID != ids["health"] || a.header.Get(gateway.HeaderReplay) != "true" {
		t.Fatalf("replay: %d %s (replay header %q), want 202 with %s", a.status, a.raw, a.header.Get(gateway.HeaderReplay), ids["health"])
	}

	got := h.drain(t)
	want := map[string]int{events.TopicHealthEvents: 1, events.TopicSLOBreach: 1, events.TopicApprovals: 1, events.TopicAuditEvents: 3}
	for topic := range got {
		if _, ok := want[topic]; !ok {
			want[topic] = 0
		}
	}
	for topic, n := range want {
		if len(got[topic]) != n {
			t.Errorf("%s: %d messages, want %d", topic, len(got[topic]), n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	audits := map[string]events.Envelope{} // by causation id
	for _, e := range got[events.TopicAuditEvents] {
		audits[e.CausationID] = e
	}
	for _, c := range cases {
		ev := got[c.topic][0]
		if ev.EventID != ids[c.kind] || ev.Type != c.eventType || ev.Source != "//waooaw/gateway" || ev.Actor != "client:dev-client" ||
			ev.EngagementID != c.engagement || ev.AgentID != c.agent {
			t.Errorf("%s event: %+v", c.kind, ev)
		}
		body, _ := io.ReadAll(bytes.NewReader(ev.Data))
		if !json.Valid(body) || !bytes.Contains(body, []byte(`"engagement_id":"`+c.engagement+`"`)) {
			t.Errorf("%s data: %s", c.kind, body)
		}
		au, ok := audits[ev.EventID]
		if !ok {
			t.Errorf("%s: no audit event caused by %s", c.kind, ev.EventID)
			continue
		}
		var d struct {
			Stream    string            `json:"stream"`
			EventType string            `json:"event_type"`
			ActorID   string            `json:"actor_id"`
			ActorType string            `json:"actor_type"`
			Action    string            `json:"action"`
			Target    string            `json:"target"`
			Context   map[string]string `json:"context"`
		}
		if err := json.Unmarshal(au.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Stream != c.engagement || d.ActorType != "client" || d.ActorID != "client:dev-client" || d.Action != "webhook."+c.kind ||
			d.EventType != c.eventType || d.Target != c.target || d.Context["topic"] != c.topic || d.Context["event_id"] != ev.EventID ||
			au.CorrelationID != ev.CorrelationID || au.Type != gateway.AuditEventType {
			t.Errorf("%s audit event: %+v data %+v", c.kind, au, d)
		}
	}
	if ev := got[events.TopicHealthEvents][0]; ev.CorrelationID != "flow-42" || corr["health"] != "flow-42" {
		t.Errorf("correlation id %q (answer %q), want the caller's flow-42", ev.CorrelationID, corr["health"])
	}
	// The access log line of the health webhook, in Cloud Logging's shape.
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, ids["health"]) && strings.Contains(l, `"status":202`) && !strings.Contains(l, `"takeover"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	labels, _ := line["logging.googleapis.com/labels"].(map[string]any)
	if line["severity"] != "INFO" || line["message"] != "gateway request" || labels["correlation_id"] != "flow-42" ||
		line["logging.googleapis.com/trace"] != "projects/"+h.env.Project+"/traces/105445aa7843bc8bf206b12000100000" || line["principal"] != "client:dev-client" {
		t.Errorf("access log line %v\nall logs:\n%s", line, logs.String())
	}
	if ev := got[events.TopicSLOBreach][0]; len(ev.CorrelationID) != 32 || ev.CorrelationID != corr["slo"] || ev.CorrelationID == corr["approval"] {
		t.Errorf("without a header a new flow starts, named on the answer: event %q, answer %q", ev.CorrelationID, corr["slo"])
	}
}

// TestWebhookReplayRace sends one signed request from many connections at once: exactly one
// event is published, and every answer is a 202 with its id (the twins wait for the winner).
func TestWebhookReplayRace(t *testing.T) {
	h := newHarness(t)
	h.bind(t, devClient, "eng-9")
	body := healthBody("agent-9", "eng-9", "critical")
	base := h.webhook("health", body)
	const n = 8
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		r := base.Clone(context.Background())
		r.Body = io.NopCloser(bytes.NewReader(body))
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = do(t, r)
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	replays := 0
	for _, a := range answers {
		if a.status != http.StatusAccepted {
			t.Fatalf("answer %d %s", a.status, a.raw)
		}
		ids[a.eventID] = true
		if a.header.Get(gateway.HeaderReplay) == "true" {
			replays++
		}
	}
	if replays != n-1 {
		t.Fatalf("%d answers marked as replays, want %d", replays, n-1)
	}
	if len(ids) != 1 {
		t.Fatalf("202 answers carry %d distinct event ids, want 1: %v", len(ids), ids)
	}
	// A late retry gets the winner's id too.
	late := base.Clone(context.Background())
	late.Body = io.NopCloser(bytes.NewReader(body))
	a := do(t, late)
	if a.status != http.StatusAccepted || !ids[a.eventID] {
		t.Fatalf("late retry: %d %s", a.status, a.raw)
	}
	got := h.drain(t)
	if len(got[events.TopicHealthEvents]) != 1 || len(got[events.TopicAuditEvents]) != 1 || !ids[got[events.TopicHealthEvents][0].EventID] {
		t.Fatalf("published %d health, %d audit events, want 1 each with the answered id", len(got[events.TopicHealthEvents]), len(got[events.TopicAuditEvents]))
	}
}

// TestWebhookPublishFailureIsRetried: when publishing fails nothing is answered as accepted,
// and the same signed request sent again publishes the events recorded the first time.
func TestWebhookPublishFailureIsRetried(t *testing.T) {
	h := newHarness(t, withoutTopics())
	h.bind(t, devClient, "eng-5")
	body := healthBody("agent-5", "eng-5", "healthy")
	first := h.webhook("health", body)
	retry := first.Clone(context.Background())
	retry.Body = io.NopCloser(bytes.NewReader(body))

	a := do(t, first)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.errMsg, "retry the same request") {
		t.Fatalf("publish to missing topics: %d %s, want 503", a.status, a.raw)
	}
	docs, err := h.opts.Firestore.Collection(gateway.ReplayCollection).Documents(context.Background()).GetAll()
	if err != nil || len(docs) != 1 || docs[0].Data()["state"] != "failed" {
		t.Fatalf("ledger after failure: %d docs, err %v", len(docs), err)
	}
	recorded := docs[0].Data()["event_id"]

	h.tap = h.env.Tap(t) // now the topics exist
	a = do(t, retry)
	if a.status != http.StatusAccepted || a.eventID != recorded {
		t.Fatalf("retry: %d %s, want 202 with the recorded id %v", a.status, a.raw, recorded)
	}
	got := h.drain(t)
	if len(got[events.TopicHealthEvents]) != 1 || got[events.TopicHealthEvents][0].EventID != recorded || len(got[events.TopicAuditEvents]) != 1 {
		t.Fatalf("after retry: %v", got)
	}
	snap, err := docs[0].Ref.Get(context.Background())
	if err != nil || snap.Data()["state"] != "done" {
		t.Fatalf("ledger after retry: %v %v", snap.Data(), err)
	}
	if _, ok := snap.Data()["messages"]; ok {
		t.Fatal("done record still stores the events")
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
