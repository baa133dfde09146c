package budgetguard

import (
	"fmt"
	"time"

	"waooaw.dev/governance/shared/budget"
)

// Observation is what one notification says about the month's spend: billing's cost of
// its interval, or the AI spend of the interval's month after one spend event.
type Observation struct {
	// IntervalStart is billing's costIntervalStart; for AI spend, the start of the month
	// the spend was observed in.
	IntervalStart time.Time
	BillingCost   float64 // costAmount; 0 for AI spend
	AISpend       float64 // the month's AI spend as summed so far
	At            time.Time
}

// Level maps a spend ratio to a state and the rule that decided it (rules/budget_thresholds
// through shared/rules BudgetLevel in production).
type Level func(ratio float64) (state, ruleID string, err error)

// Month is the calendar month an interval belongs to: billing starts intervals at
// midnight Pacific time (08:00 UTC), the AI spend at midnight UTC, and both name the same
// month in UTC.
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// Next is the budget state after an observation, and whether the state changed (a
// transition). Notifications arrive repeated and out of order, so:
//   - an observation of an older month than the current one changes nothing;
//   - a newer month starts afresh: billing's cost and the month's AI spend alone decide the
//     state, which may go down (a new month resets a halt);
//   - within the month, billing's cost is the largest reported and the state only moves
//     up, so a late, lower notification and a duplicate change nothing.
func Next(cur budget.State, o Observation, capUSD float64, level Level) (budget.State, bool, error) {
	if capUSD <= 0 {
		return cur, false, fmt.Errorf("budgetguard: cap %v: must be positive", capUSD)
	}
	month := Month(o.IntervalStart)
	next := cur
	fresh := cur.Month == "" || month > cur.Month
	switch {
	case month < cur.Month:
		return cur, false, nil
	case fresh:
		next.Month, next.IntervalStart = month, o.IntervalStart.UTC().Format(time.RFC3339)
		next.BillingCostUSD, next.AISpendUSD = o.BillingCost, o.AISpend
	default:
		next.BillingCostUSD = max(cur.BillingCostUSD, o.BillingCost)
		next.AISpendUSD = max(cur.AISpendUSD, o.AISpend)
		if o.BillingCost > 0 && cur.BillingCostUSD == 0 {
			// The month's first bill names the interval as billing counts it.
			next.IntervalStart = o.IntervalStart.UTC().Format(time.RFC3339)
		}
	}
	next.CapUSD = capUSD
	next.SpendUSD = next.BillingCostUSD + next.AISpendUSD
	next.SpendRatio = next.SpendUSD / capUSD
	state, rule, err := level(next.SpendRatio)
	if err != nil {
		return cur, false, fmt.Errorf("budgetguard: level of %v: %w", next.SpendRatio, err)
	}
	next.RuleID = rule
	if fresh || budget.Rank(state) > budget.Rank(cur.Current()) {
		next.State = state
	} else {
		next.State = cur.Current()
	}
	changed := next.State != cur.Current()
	if changed {
		next.Transitions++
		next.Since = o.At.UTC().Format(time.RFC3339Nano)
	}
	return next, changed, nil
}

// Same reports whether two states say the same about the spend (what a write would change).
func Same(a, b budget.State) bool {
	return a.Current() == b.Current() && a.Month == b.Month && a.IntervalStart == b.IntervalStart &&
		a.BillingCostUSD == b.BillingCostUSD && a.AISpendUSD == b.AISpendUSD && a.CapUSD == b.CapUSD && a.RuleID == b.RuleID
}
