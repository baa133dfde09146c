package budgetguard_test

import (
	"testing"
	"time"

	"waooaw.dev/governance/functions/budgetguard"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/rules"
)

func level(t *testing.T) budgetguard.Level {
	t.Helper()
	set, err := rules.Load(tables.FS)
	if err != nil {
		t.Fatal(err)
	}
	return budgetguard.RulesLevel(set)
}

var (
	dec = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC) // billing's interval: midnight Pacific
	jan = time.Date(2027, 1, 1, 8, 0, 0, 0, time.UTC)
	nov = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
)

func bill(interval time.Time, cost float64) budgetguard.Observation {
	return budgetguard.Observation{IntervalStart: interval, BillingCost: cost, At: interval.Add(time.Hour)}
}

func ai(interval time.Time, monthTotal float64) budgetguard.Observation {
	month := time.Date(interval.Year(), interval.Month(), 1, 0, 0, 0, 0, time.UTC)
	return budgetguard.Observation{IntervalStart: month, AISpend: monthTotal, At: interval.Add(time.Hour)}
}

// TestNext feeds sequences of notifications, as billing and the AI router send them
// (repeated, out of order, across months), and checks the state after each and which ones
// were transitions.
func TestNext(t *testing.T) {
	lv := level(t)
	type step struct {
		o     budgetguard.Observation
		state string
		moved bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"the sequence of the month", []step{
			{bill(dec, 50), budget.Normal, false},
			{bill(dec, 80), budget.Alert, true},
			{bill(dec, 80), budget.Alert, false},
			{bill(dec, 95), budget.Suspended, true},
			{bill(dec, 70), budget.Suspended, false},
			{bill(dec, 100), budget.Halted, true},
			{bill(jan, 3), budget.Normal, true},
		}},
		{"duplicates change nothing", []step{
			{bill(dec, 96), budget.Suspended, true},
			{bill(dec, 96), budget.Suspended, false},
			{bill(dec, 96), budget.Suspended, false},
		}},
		{"a late lower notification keeps the larger cost", []step{
			{bill(dec, 85), budget.Alert, true},
			{bill(dec, 10), budget.Alert, false},
			{ai(dec, 10), budget.Suspended, true}, // 85 + 10, not 10 + 10
		}},
		{"an older month changes nothing", []step{
			{bill(dec, 20), budget.Normal, false},
			{bill(nov, 120), budget.Normal, false},
			{ai(nov, 500), budget.Normal, false},
		}},
		{"a new month resets a halt, an old one does not bring it back", []step{
			{bill(dec, 120), budget.Halted, true},
			{bill(jan, 1), budget.Normal, true},
			{bill(dec, 130), budget.Normal, false},
		}},
		{"AI spend adds to the bill of its month", []step{
			{bill(dec, 70), budget.Normal, false},
			{ai(dec, 9.99), budget.Normal, false},
			{ai(dec, 10), budget.Alert, true},
			{ai(jan, 81), budget.Alert, false}, // a new month entered at alert: no change of state
			{bill(jan, 15), budget.Suspended, true},
		}},
		{"AI spend first, billing's interval later in the same month", []step{
			{ai(dec, 85), budget.Alert, true},
			{bill(dec, 12), budget.Suspended, true},
		}},
		{"straight to halted", []step{
			{bill(dec, 250), budget.Halted, true},
			{bill(dec, 95), budget.Halted, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur budget.State
			transitions := int64(0)
			for i, s := range tc.steps {
				next, moved, err := budgetguard.Next(cur, s.o, 100, lv)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if next.Current() != s.state || moved != s.moved {
					t.Fatalf("step %d (%s bill %v ai %v): state %s moved %v, want %s %v",
						i, budgetguard.Month(s.o.IntervalStart), s.o.BillingCost, s.o.AISpend, next.Current(), moved, s.state, s.moved)
				}
				if moved {
					transitions++
				}
				if next.Transitions != transitions {
					t.Errorf("step %d: transitions %d, want %d", i, next.Transitions, transitions)
				}
				if !moved && s.o == tc.steps[max(i-1, 0)].o && i > 0 && !budgetguard.Same(cur, next) {
					t.Errorf("step %d: a duplicate changed the state: %+v -> %+v", i, cur, next)
				}
				cur = next
			}
		})
	}
}

// TestNextEveryOrder plays one month's notifications in every order: whatever the order,
// the month ends at the level of its largest cost, with one transition per state passed.
func TestNextEveryOrder(t *testing.T) {
	lv := level(t)
	costs := []float64{50, 80, 80, 95, 70, 100}
	var permute func([]float64, int)
	n := 0
	permute = func(a []float64, k int) {
		if k == len(a) {
			n++
			var cur budget.State
			seen := map[string]int{}
			for _, c := range a {
				next, moved, err := budgetguard.Next(cur, bill(dec, c), 100, lv)
				if err != nil {
					t.Fatal(err)
				}
				if moved {
					seen[next.State]++
				}
				cur = next
			}
			if cur.State != budget.Halted || cur.BillingCostUSD != 100 {
				t.Fatalf("order %v: ended %s at %v, want halted at 100", a, cur.State, cur.BillingCostUSD)
			}
			for s, k := range seen {
				if k != 1 {
					t.Fatalf("order %v: %d transitions to %s", a, k, s)
				}
			}
			return
		}
		for i := k; i < len(a); i++ {
			a[k], a[i] = a[i], a[k]
			permute(a, k+1)
			a[k], a[i] = a[i], a[k]
		}
	}
	permute(costs, 0)
	if n != 720 {
		t.Fatalf("%d orders played, want 720", n)
	}
}

func TestNextRefusesNoCap(t *testing.T) {
	if _, _, err := budgetguard.Next(budget.State{}, bill(dec, 1), 0, level(t)); err == nil {
		t.Fatal("a zero cap was accepted")
	}
}
