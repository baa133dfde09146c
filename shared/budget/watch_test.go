package budget_test

import (
	"context"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/policy"
)

// TestWatchPutsStateInPolicyData writes each state to budget/platform and checks that the
// budget policy, asked with no input.budget, decides on it once the listener has seen it:
// the enforcement points' path from the guard's commit to a refusal.
func TestWatchPutsStateInPolicyData(t *testing.T) {
	env := emulators.ForTest(t)
	fs := env.Firestore(t)
	engine, err := policy.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := budget.StartWatch(ctx, fs, engine, func(err error) { t.Log(err) })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if got := w.State().Current(); got != budget.Normal {
		t.Fatalf("no document: state %q, want normal", got)
	}
	worker := map[string]any{"subject": map[string]any{"id": "agt-1", "type": "agent", "role": "operator"}, "action": "execute"}
	governor := map[string]any{"subject": map[string]any{"id": "gov-1", "role": "governor"}, "action": "escalate"}
	for _, tc := range []struct {
		state          string
		worker, escal8 bool
		reason         string
	}{
		{budget.Alert, true, true, "budget alert: rate limited"},
		{budget.Halted, false, true, "budget halted: only governance agents and Governor escalations may run"},
		{budget.Suspended, false, true, "budget suspended: non-critical work is denied"},
		{budget.Normal, true, true, "budget normal"},
	} {
		t.Run(tc.state, func(t *testing.T) {
			start := time.Now()
			if _, err := budget.Ref(fs).Set(ctx, budget.State{State: tc.state, SpendUSD: 42, CapUSD: 100}); err != nil {
				t.Fatal(err)
			}
			if err := w.Wait(ctx, tc.state); err != nil {
				t.Fatal(err)
			}
			t.Logf("state %s seen by the listener %v after the write", tc.state, time.Since(start))
			d, err := engine.Decide(ctx, "budget", "decision", worker, policy.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tc.worker || len(d.Reasons) != 1 || d.Reasons[0] != tc.reason {
				t.Errorf("worker: allow %v %q, want %v %q", d.Allow, d.Reasons, tc.worker, tc.reason)
			}
			g, err := engine.Decide(ctx, "budget", "decision", governor, policy.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if g.Allow != tc.escal8 {
				t.Errorf("Governor escalation: allow %v, want %v (%q)", g.Allow, tc.escal8, g.Reasons)
			}
			if cur, _ := w.Current(ctx); cur != tc.state {
				t.Errorf("Current = %q, want %q", cur, tc.state)
			}
		})
	}
}

func TestRank(t *testing.T) {
	order := []string{budget.Normal, budget.Alert, budget.Suspended, budget.Halted}
	for i := 1; i < len(order); i++ {
		if budget.Rank(order[i-1]) >= budget.Rank(order[i]) {
			t.Errorf("Rank(%s) >= Rank(%s)", order[i-1], order[i])
		}
	}
	if budget.Rank("panic") >= budget.Rank(budget.Normal) {
		t.Error("an unknown state ranks at or above normal")
	}
}
