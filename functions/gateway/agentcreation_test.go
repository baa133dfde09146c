package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
)

// token signs a bearer token for subject with role in engagement.
func (h *harness) token(t testing.TB, subject, role, engagement string) string {
	t.Helper()
	tok, err := h.key.Sign(devauth.NewClaims(issuer, audience, subject, role, engagement, time.Now().Add(-time.Minute), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends body (a string is sent as it is, anything else as JSON) with tok.
func (h *harness) call(t testing.TB, method, path, tok string, body any, header ...string) answer {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	r, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return do(t, r)
}

func decode[T any](t testing.TB, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(a.raw), &v); err != nil {
		t.Fatalf("decode %s: %v", a.raw, err)
	}
	return v
}

// expect fails unless the answer has status and (for errors) a message containing msg.
func expect(t testing.TB, what string, a answer, status int, msg string) {
	t.Helper()
	if a.status != status || !strings.Contains(a.errMsg, msg) {
		t.Fatalf("%s: %d %s, want %d containing %q", what, a.status, a.raw, status, msg)
	}
}

// assignGovernor makes governor the Governor of eng and waits until the policy engine says
// so: the listener's bound is 5 s.
func (h *harness) assignGovernor(t testing.TB, eng, governor string) {
	t.Helper()
	a := h.call(t, "POST", "/v1/engagements", h.token(t, "root", auth.RoleAdmin, ""), map[string]string{"engagement_id": eng, "governor": governor})
	if a.status != 201 && a.status != 200 {
		t.Fatalf("assign governor: %d %s", a.status, a.raw)
	}
	h.waitGovernor(t, eng, governor)
}

func (h *harness) waitGovernor(t testing.TB, eng, governor string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := h.engine.Decide(context.Background(), "governor", "decision", map[string]any{
			"subject": map[string]any{"id": governor}, "action": "approve", "resource": map[string]any{"engagement_id": eng}}, policy.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the governor policy does not see %s as Governor of %s after 5 s: %v", governor, eng, d.Reasons)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEngagements(t *testing.T) {
	h := newHarness(t)
	admin := h.token(t, "root", auth.RoleAdmin, "")
	body := func(eng, gov string) map[string]string {
		return map[string]string{"engagement_id": eng, "governor": gov}
	}
	tests := []struct {
		name   string
		tok    string
		body   any
		status int
		msg    string
	}{
		{"governor may not assign", h.token(t, "gov-1", auth.RoleGovernor, "eng-e"), body("eng-e", "gov-1"), 403, "role governor (level 2) may not assign_governor"},
		{"malformed", admin, `{"engagement_id":`, 400, "malformed JSON"},
		{"wrong type", admin, `{"engagement_id":7,"governor":"g"}`, 400, "field engagement_id: must be a string"},
		{"no governor", admin, body("eng-e", ""), 400, "field governor"},
		{"not a stream name", admin, body("a/b", "g"), 400, "field engagement_id"},
		{"the platform's Governor", admin, body("platform", "gov-p"), 201, ""},
		{"new", admin, body("eng-e", "gov-1"), 201, ""},
		{"the same again", admin, body("eng-e", "gov-1"), 200, ""},
		{"another Governor replaces", admin, body("eng-e", "gov-2"), 201, ""},
	}
	for _, tt := range tests {
		expect(t, tt.name, h.call(t, "POST", "/v1/engagements", tt.tok, tt.body), tt.status, tt.msg)
	}
	h.waitGovernor(t, "eng-e", "gov-2")
	d, err := h.engine.Decide(context.Background(), "governor", "decision", map[string]any{
		"subject": map[string]any{"id": "gov-1"}, "action": "veto", "resource": map[string]any{"engagement_id": "eng-e"}}, policy.Meta{})
	if err != nil || d.Allow {
		t.Fatalf("the replaced Governor still decides: %+v %v", d, err)
	}

	// Each change is on the platform stream; the repeat publishes the same event again.
	var assigned []string
	ids := map[string]bool{}
	for _, env := range h.drain(t)[events.TopicAuditEvents] {
		var p struct {
			Stream  string            `json:"stream"`
			Context map[string]string `json:"context"`
		}
		json.Unmarshal(env.Data, &p)
		if p.Stream == gateway.PlatformStream {
			assigned = append(assigned, p.Context["governor"])
			ids[env.EventID] = true
		}
	}
	slices.Sort(assigned) // delivery order is not publish order
	if !reflect.DeepEqual(assigned, []string{"gov-1", "gov-1", "gov-2", "gov-p"}) || len(ids) != 3 {
		t.Fatalf("platform audit events name %v with %d ids, want gov-1 twice (one id), gov-2 and gov-p", assigned, len(ids))
	}
}

// executions lists the test workflow's executions labelled with request id.
func (h *harness) executions(t testing.TB, requestID string) []string {
	t.Helper()
	var list struct {
		Executions []struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"executions"`
	}
	if code := h.emu.Do("GET", "/v1/"+h.workflow+"/executions?pageSize=1000", nil, &list); code != 200 {
		t.Fatalf("list executions: %d", code)
	}
	var out []string
	for _, e := range list.Executions {
		if e.Labels["request_id"] == requestID {
			out = append(out, e.Name)
		}
	}
	return out
}

type createdAnswer struct {
	RequestID string `json:"request_id"`
	Execution string `json:"execution"`
	Status    string `json:"status"`
}

func spec(eng, name string) map[string]any {
	return map[string]any{"agent_name": name, "purpose": "answer tickets", "industry": "retail", "engagement_id": eng,
		"scope_boundaries": []string{"no refunds"}, "required_capabilities": []string{"email"}, "data_access_requirements": []string{},
		"external_systems": []string{"zendesk"}, "risk_flags": []string{}, "controls": map[string]bool{"human_review": true},
		"estimated_cost_usd_per_day": 2.5}
}

func (h *harness) create(t testing.TB, tok, key string, body any) createdAnswer {
	t.Helper()
	a := h.call(t, "POST", "/v1/agent-requests", tok, body, gateway.HeaderIdempotencyKey, key)
	expect(t, "create", a, 202, "")
	c := decode[createdAnswer](t, a)
	h.emu.Service.WaitIdle()
	return c
}

func TestCreateAgentRequest(t *testing.T) {
	h := newHarness(t, withWorkflows())
	const eng = "eng-c"
	mgr := h.token(t, "ann", auth.RoleManager, eng)
	good := map[string]any{"spec": spec(eng, "helper"), "way_of_working": map[string]any{"escalation": "email"}}
	key := func(k string) []string { return []string{gateway.HeaderIdempotencyKey, k} }

	refusals := []struct {
		name   string
		tok    string
		body   any
		header []string
		status int
		msg    string
	}{
		{"no idempotency key", mgr, good, nil, 400, "header Idempotency-Key is required"},
		{"malformed JSON", mgr, `{"spec":`, key("k-bad"), 400, "malformed JSON"},
		{"not an object", mgr, `[1]`, key("k-bad"), 400, "must be a JSON object"},
		{"spec not an object", mgr, `{"spec":"x"}`, key("k-bad"), 400, "field spec: must be an object"},
		{"way of working not an object", mgr, `{"spec":{},"way_of_working":[]}`, key("k-bad"), 400, "field way_of_working: must be an object"},
		{"agent_name a number", mgr, `{"spec":{"agent_name":5}}`, key("k-bad"), 400, "field spec.agent_name: must be a string"},
		{"engagement_id a list", mgr, `{"spec":{"engagement_id":["eng-c"]}}`, key("k-bad"), 400, "field spec.engagement_id: must be a string"},
		{"scope_boundaries a string", mgr, `{"spec":{"scope_boundaries":"all"}}`, key("k-bad"), 400, "field spec.scope_boundaries: must be a list of strings"},
		{"risk_flags of numbers", mgr, `{"spec":{"risk_flags":[1]}}`, key("k-bad"), 400, "field spec.risk_flags: must be a list of strings"},
		{"controls not booleans", mgr, `{"spec":{"controls":{"human_review":"yes"}}}`, key("k-bad"), 400, "field spec.controls.human_review: must be a boolean"},
		{"cost a string", mgr, `{"spec":{"estimated_cost_usd_per_day":"2"}}`, key("k-bad"), 400, "field spec.estimated_cost_usd_per_day: must be a number"},
		{"operator may not create", h.token(t, "op", auth.RoleOperator, eng), good, key("k-op"), 403, "role operator (level 4) may not create"},
		{"manager of another engagement", h.token(t, "bob", auth.RoleManager, "eng-other"), good, key("k-bob"), 403, "bob has no access to engagement eng-c"},
	}
	for _, tt := range refusals {
		expect(t, tt.name, h.call(t, "POST", "/v1/agent-requests", tt.tok, tt.body, tt.header...), tt.status, tt.msg)
	}

	first := h.create(t, mgr, "k-1", good)
	if !strings.HasPrefix(first.RequestID, "req-") || first.Status != "running" || !strings.HasPrefix(first.Execution, h.workflow+"/executions/") {
		t.Fatalf("created %+v", first)
	}
	// The execution's argument is the contract's, with the rules' limits.
	var ex struct {
		Argument string            `json:"argument"`
		Labels   map[string]string `json:"labels"`
	}
	h.emu.Do("GET", "/v1/"+first.Execution, nil, &ex)
	var arg map[string]any
	json.Unmarshal([]byte(ex.Argument), &arg)
	limits, err := gateway.StageLimits()
	if err != nil {
		t.Fatal(err)
	}
	var wantLimits map[string]any
	b, _ := json.Marshal(limits)
	json.Unmarshal(b, &wantLimits)
	if arg["request_id"] != first.RequestID || arg["engagement_id"] != eng || arg["requested_by"] != "user:ann" ||
		!reflect.DeepEqual(arg["limits"], wantLimits) || arg["spec"].(map[string]any)["agent_name"] != "helper" ||
		arg["way_of_working"].(map[string]any)["escalation"] != "email" {
		t.Fatalf("argument %s, limits want %v", ex.Argument, wantLimits)
	}
	if ex.Labels["engagement_id"] != eng || ex.Labels["request_id"] != first.RequestID {
		t.Fatalf("labels %v", ex.Labels)
	}

	// Same key, same body (keys in another order): the same answer, no second execution.
	reordered := `{"way_of_working":{"escalation":"email"},"spec":` + mustJSON(spec(eng, "helper")) + `}`
	again := h.call(t, "POST", "/v1/agent-requests", mgr, reordered, key("k-1")...)
	if again.status != 202 || decode[createdAnswer](t, again) != first {
		t.Fatalf("repeat: %d %s, want %+v", again.status, again.raw, first)
	}
	expect(t, "same key, other body", h.call(t, "POST", "/v1/agent-requests", mgr, map[string]any{"spec": spec(eng, "other")}, key("k-1")...), 422, "already used with another body")
	if n := len(h.executions(t, first.RequestID)); n != 1 {
		t.Fatalf("%d executions for %s, want 1", n, first.RequestID)
	}
	// Keys are the caller's own: another manager's k-1 is another request.
	other := h.create(t, h.token(t, "cy", auth.RoleManager, eng), "k-1", good)
	if other.RequestID == first.RequestID {
		t.Fatal("another caller's key answered the first caller's request")
	}

	// Concurrent duplicates: one request, one execution, every answer the same.
	var wg sync.WaitGroup
	answers := make([]answer, 6)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = h.call(t, "POST", "/v1/agent-requests", mgr, good, key("k-concurrent")...)
		}()
	}
	wg.Wait()
	var id string
	for _, a := range answers {
		if a.status != 202 {
			t.Fatalf("concurrent duplicate: %d %s", a.status, a.raw)
		}
		c := decode[createdAnswer](t, a)
		if id != "" && c.RequestID != id {
			t.Fatalf("concurrent duplicates answered %s and %s", id, c.RequestID)
		}
		id = c.RequestID
	}
	if n := len(h.executions(t, id)); n != 1 {
		t.Fatalf("%d executions for concurrent duplicates, want 1", n)
	}

	// Missing spec fields are stage 1's to name: accepted, the token's engagement used.
	bare := h.create(t, mgr, "k-bare", map[string]any{"spec": map[string]any{}})
	r := decode[map[string]any](t, h.call(t, "GET", "/v1/agent-requests/"+bare.RequestID, mgr, nil))
	if r["engagement_id"] != eng {
		t.Fatalf("a spec without engagement_id: %v", r)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestGetAgentRequest(t *testing.T) {
	h := newHarness(t, withWorkflows())
	const eng = "eng-g"
	mgr := h.token(t, "ann", auth.RoleManager, eng)
	c := h.create(t, mgr, "k-1", map[string]any{"spec": spec(eng, "helper")})
	crashed := h.create(t, mgr, "k-2", map[string]any{"spec": spec(eng, "crash")})

	tests := []struct {
		name   string
		tok    string
		id     string
		status int
		msg    string
		want   string // status field
	}{
		{"requester", mgr, c.RequestID, 200, "", agentreq.StatusAwaitingApproval},
		{"viewer of the engagement", h.token(t, "v", auth.RoleViewer, eng), c.RequestID, 200, "", agentreq.StatusAwaitingApproval},
		{"auditor", h.token(t, "au", auth.RoleAuditor, ""), c.RequestID, 200, "", agentreq.StatusAwaitingApproval},
		{"another engagement", h.token(t, "bob", auth.RoleManager, "eng-other"), c.RequestID, 403, "bob has no access to engagement eng-g", ""},
		{"unknown id", mgr, "req-nope", 404, `unknown agent request "req-nope"`, ""},
		{"failed execution", mgr, crashed.RequestID, 200, "", agentreq.StatusFailed},
	}
	for _, tt := range tests {
		a := h.call(t, "GET", "/v1/agent-requests/"+tt.id, tt.tok, nil)
		expect(t, tt.name, a, tt.status, tt.msg)
		if tt.status != 200 {
			continue
		}
		v := decode[map[string]any](t, a)
		if v["status"] != tt.want || v["request_id"] != tt.id || v["engagement_id"] != eng {
			t.Fatalf("%s: %s, want status %s", tt.name, a.raw, tt.want)
		}
		for _, f := range []string{"agent_id", "stages", "approval", "compensations"} {
			if _, ok := v[f]; !ok {
				t.Fatalf("%s: %s lacks %s", tt.name, a.raw, f)
			}
		}
		if tt.want == agentreq.StatusFailed && !strings.Contains(v["reason"].(string), "stage 4 could not be called") {
			t.Fatalf("failed request's reason: %s", a.raw)
		}
		if tt.want == agentreq.StatusAwaitingApproval && v["approval"].(map[string]any)["kind"] != agentreq.KindBlocking {
			t.Fatalf("approval on the request: %s", a.raw)
		}
	}
}

type pendingAnswer struct {
	Approvals []struct {
		ApprovalID string   `json:"approval_id"`
		RequestID  string   `json:"request_id"`
		Kind       string   `json:"kind"`
		Type       string   `json:"type"`
		Deadline   string   `json:"deadline"`
		SeedID     string   `json:"seed_id"`
		Stage      int      `json:"stage"`
		Reasons    []string `json:"reasons"`
		OpenedAt   string   `json:"opened_at"`
	} `json:"approvals"`
}

func TestApprovals(t *testing.T) {
	h := newHarness(t, withWorkflows())
	const eng = "eng-a"
	h.assignGovernor(t, eng, "gov-1")
	h.assignGovernor(t, "eng-b", "gov-2")
	mgr := h.token(t, "ann", auth.RoleManager, eng)
	gov := h.token(t, "gov-1", auth.RoleGovernor, eng)
	blocking := h.create(t, mgr, "k-1", map[string]any{"spec": spec(eng, "helper")})
	veto := h.create(t, mgr, "k-2", map[string]any{"spec": spec(eng, "seeded"), "way_of_working": map[string]any{"kind": "veto_window"}})

	list := func(tok, query string) answer { return h.call(t, "GET", "/v1/approvals"+query, tok, nil) }
	a := list(gov, "?state=pending")
	expect(t, "list", a, 200, "")
	pending := decode[pendingAnswer](t, a)
	kinds := map[string]string{}
	ids := map[string]string{}
	for _, p := range pending.Approvals {
		kinds[p.RequestID], ids[p.Kind] = p.Kind, p.ApprovalID
		// What is asked, for the console: the stage, its reasons, when it opened.
		if p.Type != "deployment" || p.Deadline == "" || p.Stage != 6 || len(p.Reasons) != 1 || p.OpenedAt == "" {
			t.Fatalf("listed %+v", p)
		}
	}
	if len(pending.Approvals) != 2 || kinds[blocking.RequestID] != agentreq.KindBlocking || kinds[veto.RequestID] != agentreq.KindVetoWindow {
		t.Fatalf("pending approvals %s", a.raw)
	}
	for _, tt := range []struct {
		name, tok, query string
		status, count    int
		msg              string
	}{
		{"another engagement's Governor sees none of them", h.token(t, "gov-2", auth.RoleGovernor, "eng-b"), "", 200, 0, ""},
		{"admin names the engagement", h.token(t, "root", auth.RoleAdmin, ""), "?engagement=" + eng, 200, 2, ""},
		{"auditor names the engagement", h.token(t, "au", auth.RoleAuditor, ""), "?state=pending&engagement=" + eng, 200, 2, ""},
		{"a manager may not name another engagement", h.token(t, "bob", auth.RoleManager, "eng-b"), "?engagement=" + eng, 403, 0, "bob has no access to engagement eng-a"},
		{"unknown state", gov, "?state=open", 400, 0, "query state"},
	} {
		a := list(tt.tok, tt.query)
		expect(t, tt.name, a, tt.status, tt.msg)
		if tt.status == 200 && len(decode[pendingAnswer](t, a).Approvals) != tt.count {
			t.Fatalf("%s: %s, want %d", tt.name, a.raw, tt.count)
		}
	}

	decide := func(tok, id, decision string) answer {
		return h.call(t, "POST", "/v1/approvals/"+id+":decide", tok, map[string]string{"decision": decision, "reason": "looked at it"})
	}
	for _, tt := range []struct {
		name, tok, id, decision string
		status                  int
		msg                     string
	}{
		{"another engagement's Governor", h.token(t, "gov-2", auth.RoleGovernor, eng), ids[agentreq.KindBlocking], "approve", 403, "gov-2 is not the Governor of engagement eng-a"},
		{"a manager", mgr, ids[agentreq.KindBlocking], "approve", 403, "role manager (level 3) may not approve"},
		{"veto on a blocking approval", gov, ids[agentreq.KindBlocking], "veto", 400, "a blocking approval takes approve or deny, not veto"},
		{"approve on a veto window", gov, ids[agentreq.KindVetoWindow], "approve", 400, "a veto_window approval takes veto, not approve"},
		{"not a decision", gov, ids[agentreq.KindBlocking], "maybe", 400, "field decision: must be approve, deny or veto"},
		{"unknown approval", gov, "apv-nope", "approve", 404, `unknown approval "apv-nope"`},
		{"not :decide", gov, ids[agentreq.KindBlocking] + ":undo", "approve", 404, "no route"},
	} {
		expect(t, tt.name, decide(tt.tok, tt.id, tt.decision), tt.status, tt.msg)
	}

	// Two decisions at once: one is delivered, the other refused.
	var wg sync.WaitGroup
	res := make([]answer, 2)
	for i, d := range []string{"approve", "deny"} {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = decide(gov, ids[agentreq.KindBlocking], d) }()
	}
	wg.Wait()
	codes := []int{res[0].status, res[1].status}
	if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
		t.Fatalf("concurrent decisions answered %d %s and %d %s, want one 200 and one 409", res[0].status, res[0].raw, res[1].status, res[1].raw)
	}
	won := res[0]
	if codes[1] == 200 {
		won = res[1]
	}
	d := decode[map[string]string](t, won)
	if d["approval_id"] != ids[agentreq.KindBlocking] || d["decided_by"] != "user:gov-1" || (d["decision"] != "approve" && d["decision"] != "deny") {
		t.Fatalf("decision answer %s", won.raw)
	}
	expect(t, "decided again", decide(gov, ids[agentreq.KindBlocking], "approve"), 409, "already decided")
	ap, err := agentreq.GetApproval(context.Background(), h.opts.Firestore, ids[agentreq.KindBlocking])
	if err != nil || ap.State != agentreq.ApprovalDecided || ap.DecidedBy != "user:gov-1" {
		t.Fatalf("approval after the decision: %+v %v", ap, err)
	}

	// The veto window closes at its timeout (the workflow's clock): a veto after it is 409.
	h.emu.Advance(2 * time.Hour)
	expect(t, "veto after the window", decide(gov, ids[agentreq.KindVetoWindow], "veto"), 409, "the window has closed")
	if a := list(gov, ""); len(decode[pendingAnswer](t, a).Approvals) != 0 {
		t.Fatalf("pending after every approval closed: %s", a.raw)
	}

	// A veto window whose execution is gone (cancelled) while the approval still reads
	// pending: the callback is refused, and so is the decision.
	gone := h.create(t, mgr, "k-3", map[string]any{"spec": spec(eng, "seeded"), "way_of_working": map[string]any{"kind": "veto_window"}})
	if code := h.emu.Do("POST", "/v1/"+gone.Execution+":cancel", map[string]any{}, nil); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	h.emu.Service.WaitIdle()
	expect(t, "veto on an ended execution", decide(gov, agentreq.ApprovalID(gone.RequestID, agentreq.KindVetoWindow, "deployment", 1), "veto"), 409, "the window has closed")

	// A veto in time is delivered and recorded.
	inTime := h.create(t, mgr, "k-4", map[string]any{"spec": spec(eng, "seeded"), "way_of_working": map[string]any{"kind": "veto_window"}})
	a = decide(gov, agentreq.ApprovalID(inTime.RequestID, agentreq.KindVetoWindow, "deployment", 1), "veto")
	expect(t, "veto in time", a, 200, "")
	if decode[map[string]string](t, a)["decision"] != "veto" {
		t.Fatalf("veto answer %s", a.raw)
	}
}

func TestRevisions(t *testing.T) {
	h := newHarness(t, withWorkflows())
	const eng = "eng-r"
	mgr := h.token(t, "ann", auth.RoleManager, eng)
	waiting := h.create(t, mgr, "k-1", map[string]any{"spec": spec(eng, "revise")})
	running := h.create(t, mgr, "k-2", map[string]any{"spec": spec(eng, "helper")})
	revision := map[string]any{"spec": spec(eng, "revise"), "way_of_working": map[string]any{"integrations": "zendesk"}}
	post := func(tok, id string, body any) answer {
		return h.call(t, "POST", "/v1/agent-requests/"+id+"/revisions", tok, body)
	}
	for _, tt := range []struct {
		name, tok, id string
		body          any
		status        int
		msg           string
	}{
		{"not waiting for a revision", mgr, running.RequestID, revision, 409, "is awaiting_approval; a revision is taken only while needs_revision"},
		{"viewer", h.token(t, "v", auth.RoleViewer, eng), waiting.RequestID, revision, 403, "role viewer (level 7) may not create"},
		{"another engagement", h.token(t, "bob", auth.RoleManager, "eng-x"), waiting.RequestID, revision, 403, "bob has no access to engagement eng-r"},
		{"unknown request", mgr, "req-nope", revision, 404, "unknown agent request"},
		{"wrong type", mgr, waiting.RequestID, `{"spec":{"purpose":1}}`, 400, "field spec.purpose: must be a string"},
	} {
		expect(t, tt.name, post(tt.tok, tt.id, tt.body), tt.status, tt.msg)
	}
	a := post(mgr, waiting.RequestID, revision)
	expect(t, "revision", a, 202, "")
	if v := decode[map[string]any](t, a); v["round"] != 2.0 || v["status"] != "running" {
		t.Fatalf("revision answer %s", a.raw)
	}
	h.emu.Service.WaitIdle()
	if got := h.genesis.revision(waiting.RequestID); got["way_of_working"].(map[string]any)["integrations"] != "zendesk" {
		t.Fatalf("the workflow got revision %v", got)
	}
	r, err := agentreq.Get(context.Background(), h.opts.Firestore, waiting.RequestID)
	if err != nil || r.Round != 2 || r.WayOfWorking["integrations"] != "zendesk" || r.Status != agentreq.StatusAwaitingApproval {
		t.Fatalf("request after the revision: %+v %v", r, err)
	}
	expect(t, "a second revision", post(mgr, waiting.RequestID, revision), 409, "a revision is taken only while needs_revision")
}

func TestAuditEntries(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const stream = "eng-log"
	app := audit.NewAppender(h.opts.Firestore)
	for i := range 5 {
		if _, err := app.AppendEntry(ctx, stream, audit.Entry{EventID: fmt.Sprintf("ev-%d", i), Time: "2026-11-26T10:00:00Z",
			EventType: "waooaw.test", ActorID: "system:test", ActorType: "system", Action: fmt.Sprintf("step-%d", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	auditor := h.token(t, "au", auth.RoleAuditor, "")
	type page struct {
		Stream    string        `json:"stream"`
		Entries   []audit.Entry `json:"entries"`
		NextAfter int64         `json:"next_after"`
	}
	// Paging through with limit 2 reads every entry once, in order.
	var seqs []int64
	after := int64(0)
	for range 4 {
		a := h.call(t, "GET", fmt.Sprintf("/v1/audit/streams/%s/entries?after=%d&limit=2", stream, after), auditor, nil)
		expect(t, "page", a, 200, "")
		p := decode[page](t, a)
		for _, e := range p.Entries {
			seqs = append(seqs, e.Seq)
			if e.Action != fmt.Sprintf("step-%d", e.Seq) || e.Hash == "" {
				t.Fatalf("entry %+v", e)
			}
		}
		if p.Stream != stream || (len(p.Entries) == 0 && p.NextAfter != after) {
			t.Fatalf("page %s", a.raw)
		}
		after = p.NextAfter
	}
	if !reflect.DeepEqual(seqs, []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("paged seqs %v", seqs)
	}

	path := "/v1/audit/streams/" + stream + "/entries"
	for _, tt := range []struct {
		name, tok, path string
		status, count   int
		msg             string
	}{
		{"auditor, default limit", auditor, path, 200, 5, ""},
		{"admin", h.token(t, "root", auth.RoleAdmin, ""), path + "?limit=3", 200, 3, ""},
		{"the engagement's governor", h.token(t, "gov", auth.RoleGovernor, stream), path + "?after=4", 200, 1, ""},
		{"another engagement's governor", h.token(t, "gov", auth.RoleGovernor, "eng-other"), path, 403, 0, "gov has no access to engagement eng-log"},
		{"a manager of the engagement", h.token(t, "m", auth.RoleManager, stream), path, 403, 0, "role manager may not read_audit: reserved to admin, governor, auditor"},
		{"limit 0", auditor, path + "?limit=0", 400, 0, "query limit: must be 1 to 1000"},
		{"limit over 1000", auditor, path + "?limit=1001", 400, 0, "query limit"},
		{"negative after", auditor, path + "?after=-1", 400, 0, "query after"},
		{"unknown stream", auditor, "/v1/audit/streams/eng-none/entries", 404, 0, `unknown audit stream "eng-none"`},
	} {
		a := h.call(t, "GET", tt.path, tt.tok, nil)
		expect(t, tt.name, a, tt.status, tt.msg)
		if tt.status == 200 && len(decode[page](t, a).Entries) != tt.count {
			t.Fatalf("%s: %s, want %d entries", tt.name, a.raw, tt.count)
		}
	}
}
