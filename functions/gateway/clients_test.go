package gateway_test

import (
	"context"
	"encoding/json"
	"testing"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/store"
)

// TestClientBindings drives the binding API and what it changes: a client posts for the
// engagements an admin bound it to, is refused everywhere else with the policy's reason,
// and nothing of a refused post is published or reaches another engagement's stream.
func TestClientBindings(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin := h.token(t, "root", auth.RoleAdmin, "")
	const engA, engB = "eng-a", "eng-b"
	path := func(eng string) string { return "/v1/engagements/" + eng + "/clients" }
	bindBody := map[string]string{"client_id": devClient}

	// B has a stream already: it must stay as it is.
	app := audit.NewAppender(h.opts.Firestore)
	headB, err := app.AppendEntry(ctx, engB, audit.Entry{EventID: "ev-b", Time: "2026-11-26T10:00:00Z", EventType: "waooaw.test",
		ActorID: "system:test", ActorType: "system", Action: "test.append"})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, method, path, tok string
		body                    any
		status                  int
		msg                     string
	}{
		{"unbound client is refused", "", "", "", nil, 403, "forbidden: dev-client has no access to engagement eng-a"},
		{"a governor may not bind", "POST", path(engA), h.token(t, "g", auth.RoleGovernor, engA), bindBody, 403, "role governor (level 2) may not manage_clients: needs level <= 1"},
		{"no token", "POST", path(engA), "", bindBody, 401, "a bearer token is required"},
		{"malformed body", "POST", path(engA), admin, `{"client_id":`, 400, "malformed JSON"},
		{"bad client id", "POST", path(engA), admin, map[string]string{"client_id": "a b"}, 400, "client_id: 1 to 64 of [A-Za-z0-9_-] is required"},
		{"platform is not bound through the API", "POST", path("platform"), admin, bindBody, 400, `engagement "platform": not usable as an engagement`},
		{"bind", "POST", path(engA), admin, bindBody, 201, ""},
		{"bind again", "POST", path(engA), admin, bindBody, 200, ""},
		{"unbind what is not bound", "DELETE", path(engB) + "/" + devClient, admin, nil, 404, "client dev-client is not bound to engagement eng-b"},
		{"wrong method", "GET", path(engA), admin, nil, 405, "method GET not allowed; use POST"},
	} {
		if tt.method == "" {
			a := do(t, h.webhook("health", healthBody("agent-a", engA, "healthy")))
			expect(t, tt.name, a, tt.status, tt.msg)
			continue
		}
		expect(t, tt.name, h.call(t, tt.method, tt.path, tt.tok, tt.body), tt.status, tt.msg)
	}

	// Bound to A: A is accepted at once; B and platform are refused with the reason.
	expect(t, "post for A", do(t, h.webhook("health", healthBody("agent-a", engA, "healthy"))), 202, "")
	for _, tt := range []struct{ eng, msg string }{
		{engB, "forbidden: dev-client has no access to engagement eng-b"},
		{"platform", "forbidden: dev-client has no access to engagement platform: reserved to platform clients and roles admin, auditor"},
	} {
		for _, kind := range []struct{ name, body string }{
			{"health", string(healthBody("agent-x", tt.eng, "critical"))},
			{"slo", `{"service":"genesis","engagement_id":"` + tt.eng + `","slo":"latency_p99","objective":0.5,"observed":0.9,"severity":"critical","observed_at":"2026-11-26T10:00:00Z"}`},
			{"approval", `{"approval_id":"ap-x","engagement_id":"` + tt.eng + `","type":"financial","subject":"s","action":"pay","timeout_minutes":5}`},
		} {
			expect(t, kind.name+" for "+tt.eng, do(t, h.webhook(kind.name, []byte(kind.body))), 403, tt.msg)
		}
	}

	// Unbinding takes effect without a redeploy; a second unbinding is 404.
	expect(t, "unbind", h.call(t, "DELETE", path(engA)+"/"+devClient, admin, nil), 204, "")
	expect(t, "unbind again", h.call(t, "DELETE", path(engA)+"/"+devClient, admin, nil), 404, "not bound")
	expect(t, "post for A once unbound", do(t, h.webhook("health", healthBody("agent-a", engA, "healthy"))), 403, "dev-client has no access to engagement eng-a")

	got := h.drain(t)
	if n := len(got[events.TopicHealthEvents]); n != 1 || got[events.TopicHealthEvents][0].EngagementID != engA {
		t.Fatalf("health events %v, want the one for %s", got[events.TopicHealthEvents], engA)
	}
	if n := len(got[events.TopicSLOBreach]) + len(got[events.TopicApprovals]); n != 0 {
		t.Fatalf("%d slo or approval events published for refused posts", n)
	}
	// Audit events: the post for A on A's stream, and the binding's on the platform stream
	// (bind, its repeat with the same id, unbind, its repeat).
	byType := map[string][]events.Envelope{}
	for _, e := range got[events.TopicAuditEvents] {
		var d struct {
			Stream    string `json:"stream"`
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		byType[d.Stream+" "+d.EventType] = append(byType[d.Stream+" "+d.EventType], e)
	}
	bound, unbound := byType["platform waooaw.engagement.client_bound"], byType["platform waooaw.engagement.client_unbound"]
	if len(bound) != 2 || bound[0].EventID != bound[1].EventID || len(unbound) != 2 || unbound[0].EventID != unbound[1].EventID ||
		len(byType["eng-a waooaw.health.reported"]) != 1 || len(byType) != 3 {
		t.Fatalf("audit events by stream and type: %v", byType)
	}

	// B's stream: the head is the one it had.
	snap, err := h.opts.Firestore.Collection(store.AuditStreams).Doc(engB).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hash, _ := snap.DataAt("hash"); hash != headB.Hash {
		t.Fatalf("stream %s head %v, want %s", engB, hash, headB.Hash)
	}
	entries, err := snap.Ref.Collection(store.AuditEntries).OrderBy(firestore.DocumentID, firestore.Asc).Documents(ctx).GetAll()
	if err != nil || len(entries) != 1 {
		t.Fatalf("stream %s holds %d entries (%v), want 1", engB, len(entries), err)
	}
}
