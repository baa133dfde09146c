package registry_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/registry"
	"waooaw.dev/governance/shared/agentreq"
)

func deployBody(req string) map[string]any {
	return map[string]any{"request_id": req, "engagement_id": engagement, "round": 1, "at": at(0),
		"spec": map[string]any{"agent_name": "ignored"}, "health_callback": "http://127.0.0.1:1/callbacks/x"}
}

func TestDeploy(t *testing.T) {
	h := newHarness(t)
	req := h.request(t)
	agent := agentreq.AgentID(req)

	first := h.post(t, "/v1/stages/deploy", deployBody(req))
	if first.status != http.StatusOK {
		t.Fatalf("deploy: %d %s", first.status, first.raw)
	}
	var v registry.Verdict
	first.decode(t, &v)
	want := registry.Verdict{Stage: 7, Name: "deploy", Outcome: "deploying", Reasons: []string{}, Status: "deploying", AgentID: agent, State: "deploying"}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("verdict %+v, want %+v", v, want)
	}
	// A retried call records nothing and answers the same.
	again := h.post(t, "/v1/stages/deploy", deployBody(req))
	if again.status != http.StatusOK || string(again.raw) != string(first.raw) {
		t.Errorf("retried deploy: %d %s, first %s", again.status, again.raw, first.raw)
	}

	r := h.requestDoc(t, req)
	if r.Status != "deploying" || r.AgentID != agent || len(r.Stages) != 1 {
		t.Fatalf("request %+v", r)
	}
	if s := r.Stages[0]; s.Stage != 7 || s.Name != "deploy" || s.Outcome != "deploying" || s.At != at(0) || s.Round != 1 {
		t.Errorf("stage entry %+v", s)
	}
	view := h.agent(t, agent)
	if got := types(view.Events); !reflect.DeepEqual(got, []string{"deploy_requested"}) {
		t.Errorf("events %v", got)
	}
	a := view.Agent
	if a.State != "deploying" || a.RequestID != req || a.EngagementID != engagement || a.AgentName != "Claims helper "+req || a.Seq != 1 {
		t.Errorf("agent %+v", a)
	}
	if strings.Contains(string(h.do(t, http.MethodGet, "/v1/agents/"+agent, nil).raw), "127.0.0.1:1") {
		t.Error("GET agent shows the health callback")
	}

	audit, count := h.auditEvents(t)
	id := agentreq.EventID(agentreq.StageKey(req, 7, 1))
	p, ok := audit[id]
	if !ok || len(audit) != 1 {
		t.Fatalf("audit events %v, want one with id %s", audit, id)
	}
	if count[id] != 2 {
		t.Errorf("audit event published %d times; want 2 (the retry publishes the same id again)", count[id])
	}
	if p.Stream != engagement || p.Action != "stage_7_deploy" || p.EventType != "waooaw.agent_request.stage" ||
		p.ActorID != "registry" || p.Result != "deploying" || p.Context["agent_id"] != agent || p.Context["request_id"] != req {
		t.Errorf("audit payload %+v", p)
	}
}

func TestDeployRefuses(t *testing.T) {
	h := newHarness(t)
	req := h.request(t)
	terminal := h.request(t)
	if _, err := h.fs.Collection(agentreq.Requests).Doc(terminal).Update(context.Background(),
		[]firestore.Update{{Path: "status", Value: agentreq.StatusFailed}}); err != nil {
		t.Fatal(err)
	}
	without := func(field string) map[string]any { b := deployBody(req); delete(b, field); return b }
	tests := []struct {
		name   string
		method string
		body   any
		code   int
		names  string // in the error message
	}{
		{"no request_id", "POST", without("request_id"), 400, "request_id"},
		{"no engagement_id", "POST", without("engagement_id"), 400, "engagement_id"},
		{"no round", "POST", without("round"), 400, "round"},
		{"no at", "POST", without("at"), 400, "at"},
		{"no health_callback", "POST", without("health_callback"), 400, "health_callback"},
		{"not JSON", "POST", "{", 400, "body"},
		{"wrong type", "POST", `{"request_id": 7}`, 400, "body"},
		{"GET", "GET", nil, 400, "POST"},
		{"unknown request", "POST", deployBody("req-none"), 400, "req-none"},
		{"another engagement's request", "POST", func() map[string]any {
			b := deployBody(req)
			b["engagement_id"] = "eng-2"
			return b
		}(), 400, "eng-2"},
		{"terminal request", "POST", deployBody(terminal), 400, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do(t, tt.method, "/v1/stages/deploy", tt.body)
			if a.status != tt.code || !strings.Contains(a.errMsg, tt.names) {
				t.Errorf("%d %q, want %d naming %q", a.status, a.errMsg, tt.code, tt.names)
			}
		})
	}
	// Nothing was recorded for either request.
	for _, id := range []string{req, terminal} {
		if r := h.requestDoc(t, id); len(r.Stages) != 0 || r.AgentID != "" {
			t.Errorf("request %s changed: %+v", id, r)
		}
		if a := h.do(t, http.MethodGet, "/v1/agents/"+agentreq.AgentID(id), nil); a.status != http.StatusNotFound {
			t.Errorf("agent of %s: %d %s", id, a.status, a.raw)
		}
	}
}
