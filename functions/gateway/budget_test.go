package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/events"
)

// TestBudgetOnEveryRoute: with budget/platform halted, as the budget guard writes it, the
// gateway refuses every non-governance request with a 403 naming the budget and still
// lets the Governor read and decide; back at normal, the same requests pass the budget.
func TestBudgetOnEveryRoute(t *testing.T) {
	h := newHarness(t, withWorkflows())
	h.bind(t, devClient, "eng-b")
	h.assignGovernor(t, "eng-b", "gov-b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	manager := h.token(t, "mgr-b", auth.RoleManager, "eng-b")
	governor := h.token(t, "gov-b", auth.RoleGovernor, "eng-b")
	const refusal = "budget halted: only governance agents and Governor escalations may run"
	type req struct {
		name   string
		send   func() answer
		halted int // the status while halted; 0: anything but a budget refusal
	}
	reqs := []req{
		{"a manager's agent request", func() answer {
			return h.call(t, "POST", "/v1/agent-requests", manager, map[string]any{"engagement_id": "eng-b", "spec": spec("eng-b", "Budget probe")},
				gateway.HeaderIdempotencyKey, "budget-"+time.Now().Format(time.RFC3339Nano))
		}, http.StatusForbidden},
		{"a client's health webhook", func() answer { return do(t, h.webhook("health", healthBody("agent-b", "eng-b", "healthy"))) }, http.StatusForbidden},
		{"the Governor lists pending approvals", func() answer { return h.call(t, "GET", "/v1/approvals?state=pending", governor, nil) }, http.StatusOK},
		{"the Governor reads the audit stream", func() answer { return h.call(t, "GET", "/v1/audit/streams/eng-b/entries", governor, nil) }, 0},
		{"the Governor verifies the audit stream", func() answer { return h.call(t, "GET", "/v1/audit/streams/eng-b/verify", governor, nil) }, 0},
	}
	for _, state := range []string{budget.Halted, budget.Normal} {
		start := time.Now()
		if _, err := budget.Ref(h.opts.Firestore).Set(ctx, budget.State{State: state, SpendUSD: 100, CapUSD: 100}); err != nil {
			t.Fatal(err)
		}
		if err := h.opts.Watch.Budget.Wait(ctx, state); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s enforced %v after the write", state, time.Since(start))
		for _, r := range reqs {
			a := r.send()
			refused := a.status == http.StatusForbidden && strings.Contains(a.errMsg, refusal)
			want := r.halted
			if state == budget.Normal && want == http.StatusForbidden {
				want = 0 // allowed past the budget; what the route answers then is its own
			}
			switch {
			case want == http.StatusForbidden:
				if !refused {
					t.Errorf("%s while halted: %d %q, want 403 naming the budget", r.name, a.status, a.errMsg)
				}
			case refused || strings.Contains(a.errMsg, "budget"):
				t.Errorf("%s while %s: %d %q, want no budget refusal", r.name, state, a.status, a.errMsg)
			case want != 0 && a.status != want:
				t.Errorf("%s while %s: %d %q, want %d", r.name, state, a.status, a.errMsg, want)
			}
		}
	}
}

// TestPlatformApprovalDecidedWhileHalted: the platform's Governor, assigned like any,
// lists the budget guard's financial request and decides it while the platform is halted;
// no workflow waits on it, so the decision closes it in place, once.
func TestPlatformApprovalDecidedWhileHalted(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.assignGovernor(t, gateway.PlatformStream, "gov-p")
	if _, err := budget.Ref(h.opts.Firestore).Set(ctx, budget.State{State: budget.Halted}); err != nil {
		t.Fatal(err)
	}
	if err := h.opts.Watch.Budget.Wait(ctx, budget.Halted); err != nil {
		t.Fatal(err)
	}
	ap := agentreq.Approval{ApprovalID: "apv-budget-2026-12", EngagementID: gateway.PlatformStream, Kind: agentreq.KindBlocking,
		Type: "financial", State: agentreq.ApprovalPending, Reasons: []string{"platform spend $81.50 of the $100.00 cap"},
		Deadline: "2026-12-10T00:00:00Z"}
	if _, err := h.opts.Firestore.Collection(agentreq.Approvals).Doc(ap.ApprovalID).Set(ctx, ap); err != nil {
		t.Fatal(err)
	}
	gov := h.token(t, "gov-p", auth.RoleGovernor, gateway.PlatformStream)
	list := h.call(t, "GET", "/v1/approvals?state=pending", gov, nil)
	expect(t, "list", list, http.StatusOK, "")
	if !strings.Contains(list.raw, ap.ApprovalID) {
		t.Fatalf("pending approvals %s lack %s", list.raw, ap.ApprovalID)
	}
	other := h.token(t, "gov-x", auth.RoleGovernor, gateway.PlatformStream)
	expect(t, "another Governor", h.call(t, "POST", "/v1/approvals/"+ap.ApprovalID+":decide", other, map[string]string{"decision": "approve"}),
		http.StatusForbidden, "not the Governor of engagement platform")
	expect(t, "decide", h.call(t, "POST", "/v1/approvals/"+ap.ApprovalID+":decide", gov, map[string]string{"decision": "approve", "reason": "cut the AI routes"}),
		http.StatusOK, "")
	expect(t, "decide again", h.call(t, "POST", "/v1/approvals/"+ap.ApprovalID+":decide", gov, map[string]string{"decision": "deny"}),
		http.StatusConflict, "already decided")
	got, err := agentreq.GetApproval(ctx, h.opts.Firestore, ap.ApprovalID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != agentreq.ApprovalDecided || got.Decision != "approve" || got.DecidedBy != "user:gov-p" {
		t.Errorf("approval after the decision %+v", got)
	}
	n := 0
	for _, env := range h.drain(t)[events.TopicAuditEvents] {
		var p struct {
			Stream    string `json:"stream"`
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal(env.Data, &p); err != nil {
			t.Fatal(err)
		}
		if p.Stream == gateway.PlatformStream && p.EventType == "waooaw.approval.decided" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d decisions on the platform stream, want 1", n)
	}
}
