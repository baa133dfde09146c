package registry_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"waooaw.dev/governance/functions/registry"
	"waooaw.dev/governance/shared/agentreq"
)

func TestComplete(t *testing.T) {
	h := newHarness(t)
	req, agent, execution := h.deploy(t, true)
	body := map[string]any{"request_id": req, "at": at(30)}

	// Not before the agent has reported healthy.
	if a := h.post(t, "/v1/deployments/"+agent+":complete", body); a.status != http.StatusBadRequest || !strings.Contains(a.errMsg, "no healthy") {
		t.Errorf("complete before healthy: %d %s", a.status, a.raw)
	}
	if got := h.pushOK(t, report(agent, engagement, "healthy", at(5))); got != "healthy" {
		t.Fatalf("healthy: %s", got)
	}
	h.finish(t, execution)

	first := h.post(t, "/v1/deployments/"+agent+":complete", body)
	if first.status != http.StatusOK {
		t.Fatalf("complete: %d %s", first.status, first.raw)
	}
	var v registry.Verdict
	first.decode(t, &v)
	want := registry.Verdict{Stage: 7, Name: "deploy", Outcome: "deployed", Reasons: []string{}, Status: "deployed", AgentID: agent, State: "live"}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("answer %+v, want %+v", v, want)
	}
	if again := h.post(t, "/v1/deployments/"+agent+":complete", body); again.status != http.StatusOK || string(again.raw) != string(first.raw) {
		t.Errorf("retried complete: %d %s", again.status, again.raw)
	}
	r := h.requestDoc(t, req)
	if r.Status != "deployed" || len(r.Stages) != 2 {
		t.Fatalf("request %+v", r)
	}
	if s := r.Stages[1]; s.Stage != 7 || s.Outcome != "deployed" || s.At != at(30) || s.Round != 1 {
		t.Errorf("stage entry %+v", s)
	}
	if got := types(h.agent(t, agent).Events); !reflect.DeepEqual(got, []string{"deploy_requested", "healthy", "callback_delivered", "live"}) {
		t.Errorf("events %v", got)
	}
	// A live agent is neither rolled back nor made live by another request's call.
	if a := h.post(t, "/v1/deployments/"+agent+":rollback", map[string]any{"request_id": req, "at": at(31), "reason": "late"}); a.status != http.StatusBadRequest || !strings.Contains(a.errMsg, "live") {
		t.Errorf("rollback of a live agent: %d %s", a.status, a.raw)
	}
	audit, _ := h.auditEvents(t)
	p := audit[agentreq.EventID(req+"_complete")]
	if p.Action != "complete_stage_7_deploy" || p.EventType != "waooaw.agent_request.deployed" || p.Result != "deployed" || p.Stream != engagement {
		t.Errorf("audit of complete %+v", p)
	}
}

func TestRollback(t *testing.T) {
	h := newHarness(t)
	req, agent, execution := h.deploy(t, true)
	body := map[string]any{"request_id": req, "at": at(30), "reason": "no healthy health event within 1800 s"}

	first := h.post(t, "/v1/deployments/"+agent+":rollback", body)
	if first.status != http.StatusOK {
		t.Fatalf("rollback: %d %s", first.status, first.raw)
	}
	var v registry.Verdict
	first.decode(t, &v)
	want := registry.Verdict{Stage: 7, Name: "deploy", Outcome: "rolled_back", Reasons: []string{"no healthy health event within 1800 s"},
		Status: "deploying", AgentID: agent, State: "rolled_back"}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("answer %+v, want %+v", v, want)
	}
	if again := h.post(t, "/v1/deployments/"+agent+":rollback", body); again.status != http.StatusOK || string(again.raw) != string(first.raw) {
		t.Errorf("retried rollback: %d %s", again.status, again.raw)
	}
	r := h.requestDoc(t, req)
	if len(r.Stages) != 2 {
		t.Fatalf("stages %+v", r.Stages)
	}
	if s := r.Stages[1]; s.Outcome != "rolled_back" || !reflect.DeepEqual(s.Reasons, want.Reasons) || s.At != at(30) {
		t.Errorf("stage entry %+v", s)
	}
	// A healthy report after the rollback delivers nothing, and the deploy cannot complete.
	if got := h.pushOK(t, report(agent, engagement, "healthy", at(31))); got != "no_change" {
		t.Errorf("healthy after rollback: %s", got)
	}
	if ex := h.wf.Get(execution); ex.State != "ACTIVE" {
		t.Errorf("the execution got a callback after the rollback: %s", ex.State)
	}
	if a := h.post(t, "/v1/deployments/"+agent+":complete", map[string]any{"request_id": req, "at": at(32)}); a.status != http.StatusBadRequest || !strings.Contains(a.errMsg, "rolled_back") {
		t.Errorf("complete after rollback: %d %s", a.status, a.raw)
	}
	v2 := h.agent(t, agent)
	if got := types(v2.Events); !reflect.DeepEqual(got, []string{"deploy_requested", "rolled_back"}) {
		t.Errorf("events %v", got)
	}
	if v2.Agent.Reason != want.Reasons[0] {
		t.Errorf("agent reason %q", v2.Agent.Reason)
	}
}

func TestDeploymentRefuses(t *testing.T) {
	h := newHarness(t)
	req, agent, _ := h.deploy(t, true)
	other := h.request(t)
	tests := []struct {
		name  string
		path  string
		body  any
		code  int
		names string
	}{
		{"no request_id", agent + ":complete", map[string]any{"at": at(1)}, 400, "request_id"},
		{"no at", agent + ":complete", map[string]any{"request_id": req}, 400, "at"},
		{"another request's agent", agent + ":complete", map[string]any{"request_id": other, "at": at(1)}, 400, other},
		{"an agent never deployed", agentreq.AgentID(other) + ":complete", map[string]any{"request_id": other, "at": at(1)}, 400, "unknown agent"},
		{"rollback without a reason", agent + ":rollback", map[string]any{"request_id": req, "at": at(1)}, 400, "reason"},
		{"unknown method", agent + ":restart", map[string]any{"request_id": req, "at": at(1)}, 404, "restart"},
		{"no method", agent, map[string]any{"request_id": req, "at": at(1)}, 404, "complete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.post(t, "/v1/deployments/"+tt.path, tt.body)
			if a.status != tt.code || !strings.Contains(a.errMsg, tt.names) {
				t.Errorf("%d %q, want %d naming %q", a.status, a.errMsg, tt.code, tt.names)
			}
		})
	}
	if got := types(h.agent(t, agent).Events); !reflect.DeepEqual(got, []string{"deploy_requested"}) {
		t.Errorf("events %v", got)
	}
	if a := h.do(t, http.MethodGet, "/v1/agents/agt-none", nil); a.status != http.StatusNotFound {
		t.Errorf("GET unknown agent: %d", a.status)
	}
	if a := h.do(t, http.MethodGet, "/v2/elsewhere", nil); a.status != http.StatusNotFound {
		t.Errorf("unknown route: %d", a.status)
	}
}

func TestUndo(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T) (req, agent string)
		outcome string
		state   string
		events  []string
	}{
		{"a deploying agent in its veto window", func(t *testing.T) (string, string) {
			req, agent, execution := h.deploy(t, true)
			h.pushOK(t, report(agent, engagement, "healthy", at(5)))
			h.finish(t, execution)
			return req, agent
		}, "undeployed", "undeployed", []string{"deploy_requested", "healthy", "callback_delivered", "undeployed"}},
		{"a live agent", func(t *testing.T) (string, string) { return h.live(t) },
			"undeployed", "undeployed", []string{"deploy_requested", "healthy", "callback_delivered", "live", "undeployed"}},
		{"an agent rolled back", func(t *testing.T) (string, string) {
			req, agent, _ := h.deploy(t, true)
			if a := h.post(t, "/v1/deployments/"+agent+":rollback", map[string]any{"request_id": req, "at": at(3), "reason": "timeout"}); a.status != 200 {
				t.Fatalf("rollback: %d %s", a.status, a.raw)
			}
			return req, agent
		}, "not_deployed", "rolled_back", []string{"deploy_requested", "rolled_back"}},
		{"no agent at all", func(t *testing.T) (string, string) { return h.request(t), "" }, "not_deployed", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, agent := tt.setup(t)
			before := len(h.requestDoc(t, req).Compensations)
			body := map[string]any{"request_id": req, "engagement_id": engagement, "at": at(40), "approval_id": "apv-1"}
			first := h.post(t, "/v1/undo/deploy", body)
			if first.status != http.StatusOK {
				t.Fatalf("undo: %d %s", first.status, first.raw)
			}
			var v registry.Verdict
			first.decode(t, &v)
			if v.Outcome != tt.outcome || v.State != tt.state || v.AgentID != agent || v.Stage != 7 {
				t.Errorf("answer %+v", v)
			}
			if again := h.post(t, "/v1/undo/deploy", body); again.status != http.StatusOK || string(again.raw) != string(first.raw) {
				t.Errorf("retried undo: %d %s", again.status, again.raw)
			}
			r := h.requestDoc(t, req)
			if len(r.Compensations) != before+1 || r.Compensations[before] != (agentreq.Compensation{Stage: 7, At: at(40)}) {
				t.Errorf("compensations %+v", r.Compensations)
			}
			if agent == "" {
				return
			}
			view := h.agent(t, agent)
			if got := types(view.Events); !reflect.DeepEqual(got, tt.events) {
				t.Errorf("events %v, want %v", got, tt.events)
			}
			if last := view.Events[len(view.Events)-1]; last.Type == "undeployed" && (last.ApprovalID != "apv-1" || last.Cause != agentreq.UndoKey(req, 7)) {
				t.Errorf("undeployed event %+v", last)
			}
		})
	}
	if a := h.post(t, "/v1/undo/deploy", map[string]any{"request_id": "req-x", "at": at(1)}); a.status != 400 || !strings.Contains(a.errMsg, "engagement_id") {
		t.Errorf("undo without engagement_id: %d %s", a.status, a.raw)
	}
	audit, _ := h.auditEvents(t)
	undos := 0
	for _, p := range audit {
		if p.EventType == "waooaw.agent_request.undo" {
			undos++
			if p.Action != "undo_stage_7_deploy" || p.Context["undone_stage"] != "7" || p.Stream != engagement {
				t.Errorf("undo audit %+v", p)
			}
		}
	}
	if undos != len(tests) {
		t.Errorf("%d undos audited, want %d", undos, len(tests))
	}
}
