// Package budget is the platform's budget state as the budget guard keeps it in Firestore
// (budget/platform) and as every enforcement point reads it: Watch keeps it in a policy
// engine's data (data.platform.budget_state), where the budget policy finds it when a
// caller sends no input.budget. See docs/budget.md.
package budget

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Where the state lives, and the data key it is put under in the policy engine.
const (
	Collection = "budget"
	Platform   = "platform"
	DataKey    = "budget_state"
)

// States, in the order the platform moves up through them within a billing interval
// (rules/budget_thresholds names them).
const (
	Normal    = "normal"
	Alert     = "alert"
	Suspended = "suspended"
	Halted    = "halted"
)

var ranks = map[string]int{Normal: 0, Alert: 1, Suspended: 2, Halted: 3}

// Rank orders states: a higher rank is a more restricted platform. An unknown state ranks
// -1, below every state, so it never holds a state down.
func Rank(state string) int {
	if r, ok := ranks[state]; ok {
		return r
	}
	return -1
}

// State is the document budget/platform. A missing document is the zero State, which
// reads as Normal.
type State struct {
	State string `firestore:"state" json:"state"`
	// IntervalStart is the billing interval (costIntervalStart, RFC 3339, UTC) the spend
	// belongs to; Month is its calendar month (YYYY-MM), which AI spend is summed by.
	IntervalStart string `firestore:"interval_start" json:"interval_start"`
	Month         string `firestore:"month" json:"month"`
	// BillingCostUSD is the largest costAmount billing reported for the interval; AISpendUSD
	// the platform's own AI spend of the month; SpendUSD their sum, over CapUSD.
	BillingCostUSD float64 `firestore:"billing_cost_usd" json:"billing_cost_usd"`
	AISpendUSD     float64 `firestore:"ai_spend_usd" json:"ai_spend_usd"`
	SpendUSD       float64 `firestore:"spend_usd" json:"spend_usd"`
	CapUSD         float64 `firestore:"cap_usd" json:"cap_usd"`
	SpendRatio     float64 `firestore:"spend_ratio" json:"spend_ratio"`
	// RuleID is the budget_thresholds rule the spend last matched.
	RuleID string `firestore:"rule_id" json:"rule_id"`
	// Transitions counts the state's changes; Since is when the current state was entered.
	Transitions int64  `firestore:"transitions" json:"transitions"`
	Since       string `firestore:"since" json:"since"`
	UpdatedAt   string `firestore:"updated_at" json:"updated_at"`
}

// Current is the state's name, Normal for the zero State.
func (s State) Current() string {
	if s.State == "" {
		return Normal
	}
	return s.State
}

// PolicyData is the state as data.platform.budget_state holds it.
func (s State) PolicyData() map[string]any {
	return map[string]any{
		"state": s.Current(), "spend_usd": s.SpendUSD, "cap_usd": s.CapUSD, "spend_ratio": s.SpendRatio,
		"interval_start": s.IntervalStart, "since": s.Since,
	}
}

// Ref is the state's document.
func Ref(fs *firestore.Client) *firestore.DocumentRef {
	return fs.Collection(Collection).Doc(Platform)
}

// Read reads the state; a platform that never had one is Normal.
func Read(ctx context.Context, fs *firestore.Client) (State, error) {
	snap, err := Ref(fs).Get(ctx)
	return decode(snap, err)
}

func decode(snap *firestore.DocumentSnapshot, err error) (State, error) {
	if status.Code(err) == codes.NotFound || (err == nil && !snap.Exists()) {
		return State{State: Normal}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("budget: read %s/%s: %w", Collection, Platform, err)
	}
	var s State
	if err := snap.DataTo(&s); err != nil {
		return State{}, fmt.Errorf("budget: decode %s/%s: %w", Collection, Platform, err)
	}
	s.State = s.Current()
	return s, nil
}

// ErrStopped is returned by a Watch's waits once it is stopped.
var ErrStopped = errors.New("budget: watch stopped")
