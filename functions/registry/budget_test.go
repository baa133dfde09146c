package registry_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/events"
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
