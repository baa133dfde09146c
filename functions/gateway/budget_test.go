package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/budget"
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
