package registry_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/functions/registry"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
)

// budgetReport is a health event as the budget guard publishes it (or as a client would
// forge it, with another source or check type).
func budgetReport(agent, source, checkType, observedAt string) events.Envelope {
	env := report(agent, engagement, "suspended", observedAt)
	var rep map[string]any
	_ = json.Unmarshal(env.Data, &rep)
	rep["check_type"] = checkType
	env.Data, _ = json.Marshal(rep)
	env.Source = source
	return env
}

// TestBudgetSuspension suspends a live agent on the budget guard's report, once, and
// ignores a "suspended" report from anyone else.
func TestBudgetSuspension(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name     string
		source   string
		check    string
		outcomes []string
		state    string
	}{
		{"the guard's report suspends, its redelivery changes nothing", "//waooaw/budgetguard", "budget",
			[]string{"suspended", "no_change"}, "suspended"},
		{"a client's suspended report is no order", "//waooaw/gateway", "budget", []string{"no_change", "no_change"}, "live"},
		{"the guard's report of another check type", "//waooaw/budgetguard", "http", []string{"no_change", "no_change"}, "live"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, agent := h.live(t)
			r := budgetReport(agent, tc.source, tc.check, at(20))
			var outcomes []string
			for range 2 {
				outcomes = append(outcomes, h.pushOK(t, r))
			}
			if !reflect.DeepEqual(outcomes, tc.outcomes) {
				t.Errorf("outcomes %v, want %v", outcomes, tc.outcomes)
			}
			v := h.agent(t, agent)
			if v.Agent.State != tc.state {
				t.Errorf("agent %s, want %s", v.Agent.State, tc.state)
			}
			if tc.state == "suspended" && !strings.Contains(v.Agent.Reason, "budget suspended") {
				t.Errorf("reason %q does not name the budget", v.Agent.Reason)
			}
			if r := h.requestDoc(t, req); r.Status != "deployed" {
				t.Errorf("request status %s", r.Status)
			}
		})
	}
	audit, _ := h.auditEvents(t)
	n := 0
	for _, p := range audit {
		if p.EventType == "waooaw.agent_request.agent_suspended" && strings.Contains(p.Context["reasons"], "budget suspended") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d budget suspensions audited, want 1", n)
	}
}

// withBudget gives the registry a policy engine whose budget state a listener keeps equal
// to budget/platform, as open does.
func withBudget(t *testing.T, w **budget.Watch) harnessOption {
	return func(o *registry.Options, _ *bool) {
		engine, err := policy.New()
		if err != nil {
			t.Fatal(err)
		}
		watch, err := budget.StartWatch(context.Background(), o.Firestore, engine, func(err error) { t.Log(err) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(watch.Stop)
		o.Policy, *w = engine, watch
	}
}

// TestDeployRefusedWhileHalted: a request in flight reaching stage 7 while the platform is
// halted (or suspended) is refused, naming the budget, and deploys once the state is back
// to normal.
func TestDeployRefusedWhileHalted(t *testing.T) {
	var w *budget.Watch
	h := newHarness(t, withBudget(t, &w))
	ctx := context.Background()
	for _, tc := range []struct {
		state  string
		deploy bool
		reason string
	}{
		{budget.Halted, false, "budget halted: only governance agents and Governor escalations may run"},
		{budget.Suspended, false, "budget suspended: non-critical work is denied"},
		{budget.Alert, true, ""},
		{budget.Normal, true, ""},
	} {
		t.Run(tc.state, func(t *testing.T) {
			if _, err := budget.Ref(h.fs).Set(ctx, budget.State{State: tc.state}); err != nil {
				t.Fatal(err)
			}
			if err := w.Wait(ctx, tc.state); err != nil {
				t.Fatal(err)
			}
			req := h.request(t)
			ex := h.wf.Run(h.flow, map[string]any{"registry": h.url, "request_id": req, "engagement_id": engagement, "await": false})
			if tc.deploy {
				if ex.State != "SUCCEEDED" {
					t.Fatalf("deploy while %s: %s %+v", tc.state, ex.State, ex.Error)
				}
				return
			}
			if ex.State != "FAILED" || ex.Error == nil || !strings.Contains(ex.Error.Payload, "refused by the budget: "+tc.reason) {
				t.Fatalf("deploy while %s: %s %+v, want a failure naming the budget", tc.state, ex.State, ex.Error)
			}
			if _, err := h.fs.Collection(registry.Collection).Doc(agentreq.AgentID(req)).Get(ctx); status.Code(err) != codes.NotFound {
				t.Errorf("agent of a refused deploy exists (%v)", err)
			}
		})
	}
}
