package budgetguard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/budget"
)

// Collections the guard keeps beside budget/platform.
const (
	// MonthsCollection holds each month's AI spend, in total and per agent.
	MonthsCollection = "budget_months"
	// SpendCollection holds one document per spend event counted: its id is the event's.
	SpendCollection = "budget_spend_events"
	// TransitionsCollection holds one document per transition ({month}_{state}: within a
	// month the state only moves up, so it enters each state at most once), written in the
	// transaction that made it; Done once its effects are out.
	TransitionsCollection = "budget_transitions"
)

// MonthSpend is budget_months/{YYYY-MM}: the platform's AI spend of a month.
type MonthSpend struct {
	Month      string             `firestore:"month" json:"month"`
	AISpendUSD float64            `firestore:"ai_spend_usd" json:"ai_spend_usd"`
	Events     int64              `firestore:"events" json:"events"`
	ByAgent    map[string]float64 `firestore:"by_agent" json:"by_agent"` // "{engagement_id}/{agent_id}" -> USD
}

// Transition is budget_transitions/{id}: one change of the state and what it did.
type Transition struct {
	ID             string  `firestore:"id" json:"id"`
	Seq            int64   `firestore:"seq" json:"seq"`
	Month          string  `firestore:"month" json:"month"`
	From           string  `firestore:"from" json:"from"`
	To             string  `firestore:"to" json:"to"`
	At             string  `firestore:"at" json:"at"`
	SpendUSD       float64 `firestore:"spend_usd" json:"spend_usd"`
	BillingCostUSD float64 `firestore:"billing_cost_usd" json:"billing_cost_usd"`
	AISpendUSD     float64 `firestore:"ai_spend_usd" json:"ai_spend_usd"`
	CapUSD         float64 `firestore:"cap_usd" json:"cap_usd"`
	RuleID         string  `firestore:"rule_id" json:"rule_id"`
	// Cause is what moved it: "billing:{messageId}" or "spend:{event_id}".
	Cause string `firestore:"cause" json:"cause"`
	Done  bool   `firestore:"done" json:"done"`
	// Effects, once done: the approval opened (alert), the agents suspended (suspended).
	ApprovalID string   `firestore:"approval_id" json:"approval_id,omitempty"`
	Suspended  []string `firestore:"suspended" json:"suspended,omitempty"`
}

// TransitionID is the id of the transition into state in month.
func TransitionID(month, state string) string { return month + "_" + state }

func sum(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) read(ctx context.Context) (budget.State, error) {
	return budget.Read(ctx, s.opt.Firestore)
}

func (s *Server) monthRef(month string) *firestore.DocumentRef {
	return s.opt.Firestore.Collection(MonthsCollection).Doc(month)
}

func readMonth(tx *firestore.Transaction, ref *firestore.DocumentRef) (MonthSpend, error) {
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return MonthSpend{Month: ref.ID, ByAgent: map[string]float64{}}, nil
	}
	if err != nil {
		return MonthSpend{}, fmt.Errorf("budgetguard: read %s: %w", ref.Path, err)
	}
	var m MonthSpend
	if err := snap.DataTo(&m); err != nil {
		return MonthSpend{}, fmt.Errorf("budgetguard: decode %s: %w", ref.Path, err)
	}
	if m.ByAgent == nil {
		m.ByAgent = map[string]float64{}
	}
	return m, nil
}

func readState(tx *firestore.Transaction, ref *firestore.DocumentRef) (budget.State, error) {
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return budget.State{}, nil
	}
	if err != nil {
		return budget.State{}, fmt.Errorf("budgetguard: read budget state: %w", err)
	}
	var st budget.State
	if err := snap.DataTo(&st); err != nil {
		return budget.State{}, fmt.Errorf("budgetguard: decode budget state: %w", err)
	}
	return st, nil
}

// apply moves the state by o in tx, writing it and its transition only when something
// changed. It returns the answer and the transition, if one was made.
func (s *Server) apply(tx *firestore.Transaction, cur budget.State, o Observation, cause string) (Answer, *Transition, error) {
	next, moved, err := Next(cur, o, s.cap, s.level)
	if err != nil {
		return Answer{}, nil, err
	}
	ans := Answer{Outcome: OutcomeUnchanged, State: next.Current(), Spend: next.SpendUSD}
	if Same(cur, next) {
		return ans, nil, nil
	}
	next.UpdatedAt = o.At.UTC().Format(time.RFC3339Nano)
	if err := tx.Set(budget.Ref(s.opt.Firestore), next); err != nil {
		return Answer{}, nil, fmt.Errorf("budgetguard: write budget state: %w", err)
	}
	ans.Outcome = OutcomeApplied
	if !moved {
		return ans, nil, nil
	}
	ans.Outcome, ans.From = OutcomeTransition, cur.Current()
	tr := &Transition{ID: TransitionID(next.Month, next.State), Seq: next.Transitions, Month: next.Month,
		From: cur.Current(), To: next.State, At: next.Since, SpendUSD: next.SpendUSD, BillingCostUSD: next.BillingCostUSD,
		AISpendUSD: next.AISpendUSD, CapUSD: next.CapUSD, RuleID: next.RuleID, Cause: cause}
	if err := tx.Create(s.opt.Firestore.Collection(TransitionsCollection).Doc(tr.ID), tr); err != nil {
		return Answer{}, nil, fmt.Errorf("budgetguard: record transition %s: %w", tr.ID, err)
	}
	return ans, tr, nil
}

// observeBilling applies one budget notification. Billing sends no event id: the state
// machine makes a repeated notification change nothing by itself.
func (s *Server) observeBilling(ctx context.Context, n Notification, messageID string) (Answer, error) {
	var ans Answer
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		cur, err := readState(tx, budget.Ref(s.opt.Firestore))
		if err != nil {
			return err
		}
		m, err := readMonth(tx, s.monthRef(Month(n.Interval)))
		if err != nil {
			return err
		}
		ans, _, err = s.apply(tx, cur, Observation{IntervalStart: n.Interval, BillingCost: n.CostAmount, AISpend: m.AISpendUSD, At: s.opt.Now()}, "billing:"+messageID)
		return err
	})
	if err != nil {
		return Answer{}, fmt.Errorf("budgetguard: budget notification %s: %w", messageID, err)
	}
	return ans, s.settle(ctx)
}

// observeSpend counts one spend event once (its event_id is its document) into its month
// and moves the state by the month's new total.
func (s *Server) observeSpend(ctx context.Context, sp SpendEvent) (Answer, error) {
	var ans Answer
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		seenRef := s.opt.Firestore.Collection(SpendCollection).Doc(sp.EventID)
		_, err := tx.Get(seenRef)
		switch {
		case err == nil:
			ans = Answer{Outcome: OutcomeDuplicate}
			return nil
		case status.Code(err) != codes.NotFound:
			return fmt.Errorf("budgetguard: read %s: %w", seenRef.Path, err)
		}
		cur, err := readState(tx, budget.Ref(s.opt.Firestore))
		if err != nil {
			return err
		}
		mref := s.monthRef(sp.Month)
		m, err := readMonth(tx, mref)
		if err != nil {
			return err
		}
		m.Month = sp.Month
		m.AISpendUSD += sp.CostUSD
		m.Events++
		m.ByAgent[sp.EngagementID+"/"+sp.AgentID] += sp.CostUSD
		ans, _, err = s.apply(tx, cur, Observation{IntervalStart: sp.MonthStart, AISpend: m.AISpendUSD, At: s.opt.Now()}, "spend:"+sp.EventID)
		if err != nil {
			return err
		}
		if ans.Outcome == OutcomeUnchanged {
			ans.Outcome = OutcomeApplied // counted in its month, even an older one
		}
		if err := tx.Set(mref, m); err != nil {
			return fmt.Errorf("budgetguard: write %s: %w", mref.Path, err)
		}
		return tx.Create(seenRef, map[string]any{"event_id": sp.EventID, "month": sp.Month, "cost_usd": sp.CostUSD,
			"engagement_id": sp.EngagementID, "agent_id": sp.AgentID, "at": s.opt.Now().UTC().Format(time.RFC3339Nano)})
	})
	if err != nil {
		return Answer{}, fmt.Errorf("budgetguard: spend event %s: %w", sp.EventID, err)
	}
	if ans.Outcome == OutcomeDuplicate {
		st, err := s.read(ctx)
		if err != nil {
			return Answer{}, err
		}
		ans.State, ans.Spend = st.Current(), st.SpendUSD
	}
	return ans, s.settle(ctx)
}
