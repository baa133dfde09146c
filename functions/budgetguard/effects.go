package budgetguard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/events"
)

// What the guard reads of the registry (functions/registry's collection and states).
const (
	RegistryCollection = "registry_agents"
	RegistryLive       = "live"
)

// PlatformEngagement is the engagement of the platform's own approvals and audit stream;
// its Governor decides the budget's approval requests.
const PlatformEngagement = "platform"

// Event types the guard publishes.
const (
	AuditEventType    = "waooaw.audit.recorded"
	ApprovalEventType = "waooaw.approval.requested"
	HealthEventType   = "waooaw.health.reported"
	// AuditTransition is the audit entry's event_type for a change of the budget state.
	AuditTransition = "waooaw.budget.transition"
	// CheckTypeBudget is the health report's check_type of a budget suspension.
	CheckTypeBudget = "budget"
	// ApprovalType is the approval type of the alert's request (rules/approval_timeouts).
	ApprovalType = "financial"
	// TopSpendersListed bounds the spenders the approval request names.
	TopSpendersListed = 5
)

// Plan is what a transition does, fixed once in its document before anything is
// published, so that every publication of it (after a crash, by a concurrent push) carries
// the same content and the same event ids.
type Plan struct {
	Planned    bool     `firestore:"planned"`
	ApprovalID string   `firestore:"approval_id"`
	Reasons    []string `firestore:"reasons"`
	Spenders   string   `firestore:"spenders"` // the top spenders, as JSON
	// Suspend are the live non-critical agents to suspend, "{engagement_id}/{agent_id}".
	Suspend []string `firestore:"suspend"`
}

type transitionDoc struct {
	Transition
	Plan
}

// Critical says whether a registry agent keeps running when the platform is suspended:
// the governance agents, and every agent of the platform's own engagement (what governs
// and audits the others). Everything a customer engagement runs is non-critical.
func (s *Server) Critical(engagementID, agentID string) bool {
	return s.governance[agentID] || engagementID == PlatformEngagement
}

// settle carries out every transition whose effects are not yet out, oldest first: the
// one this push made and any a crashed push left. Its publications have fixed ids, so a
// repeat is absorbed downstream (the auditor, the registry and the approval store are
// idempotent on them).
func (s *Server) settle(ctx context.Context) error {
	docs, err := s.opt.Firestore.Collection(TransitionsCollection).Where("done", "==", false).Documents(ctx).GetAll()
	if err != nil {
		return fmt.Errorf("budgetguard: pending transitions: %w", err)
	}
	var pending []Transition
	for _, d := range docs {
		var tr Transition
		if err := d.DataTo(&tr); err != nil {
			return fmt.Errorf("budgetguard: decode %s: %w", d.Ref.Path, err)
		}
		pending = append(pending, tr)
	}
	slices.SortFunc(pending, func(a, b Transition) int { return int(a.Seq - b.Seq) })
	for _, tr := range pending {
		if err := s.effects(ctx, tr); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) effects(ctx context.Context, tr Transition) error {
	p, err := s.plan(ctx, tr)
	if err != nil {
		return err
	}
	switch tr.To {
	case budget.Alert:
		if err := s.openApproval(ctx, tr, p); err != nil {
			return err
		}
	case budget.Suspended:
		if err := s.suspend(ctx, tr, p); err != nil {
			return err
		}
	}
	if err := s.audit(ctx, tr, p); err != nil {
		return err
	}
	ref := s.opt.Firestore.Collection(TransitionsCollection).Doc(tr.ID)
	if _, err := ref.Update(ctx, []firestore.Update{{Path: "done", Value: true}}); err != nil {
		return fmt.Errorf("budgetguard: mark transition %s done: %w", tr.ID, err)
	}
	return nil
}

// plan fixes a transition's effects in its document, once.
func (s *Server) plan(ctx context.Context, tr Transition) (Plan, error) {
	var p Plan
	ref := s.opt.Firestore.Collection(TransitionsCollection).Doc(tr.ID)
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return fmt.Errorf("budgetguard: read %s: %w", ref.Path, err)
		}
		var d transitionDoc
		if err := snap.DataTo(&d); err != nil {
			return fmt.Errorf("budgetguard: decode %s: %w", ref.Path, err)
		}
		if d.Planned {
			p = d.Plan
			return nil
		}
		p = Plan{Planned: true}
		switch tr.To {
		case budget.Alert:
			m, err := readMonth(tx, s.monthRef(tr.Month))
			if err != nil {
				return err
			}
			top := TopSpenders(m, TopSpendersListed)
			raw, err := json.Marshal(top)
			if err != nil {
				return fmt.Errorf("budgetguard: spenders: %w", err)
			}
			p.ApprovalID, p.Spenders = "apv-budget-"+tr.Month, string(raw)
			p.Reasons = []string{fmt.Sprintf("platform spend $%.2f of the $%.2f cap (%.0f%%) in %s: billing $%.2f, AI $%.2f",
				tr.SpendUSD, tr.CapUSD, 100*tr.SpendUSD/tr.CapUSD, tr.Month, tr.BillingCostUSD, tr.AISpendUSD)}
			for _, sp := range top {
				p.Reasons = append(p.Reasons, fmt.Sprintf("top AI spender: agent %s (engagement %s) $%.2f", sp.AgentID, sp.EngagementID, sp.USD))
			}
			p.Reasons = append(p.Reasons, Propose(Spend{SpendUSD: tr.SpendUSD, CapUSD: tr.CapUSD, AISpendUSD: tr.AISpendUSD, BillingCostUSD: tr.BillingCostUSD, Top: top})...)
		case budget.Suspended:
			snaps, err := tx.Documents(s.opt.Firestore.Collection(RegistryCollection).Where("state", "==", RegistryLive)).GetAll()
			if err != nil {
				return fmt.Errorf("budgetguard: live agents: %w", err)
			}
			for _, a := range snaps {
				eng, _ := a.Data()["engagement_id"].(string)
				if eng == "" || s.Critical(eng, a.Ref.ID) {
					continue
				}
				p.Suspend = append(p.Suspend, eng+"/"+a.Ref.ID)
			}
			slices.Sort(p.Suspend)
		}
		return tx.Update(ref, []firestore.Update{{Path: "planned", Value: true}, {Path: "approval_id", Value: p.ApprovalID},
			{Path: "reasons", Value: p.Reasons}, {Path: "spenders", Value: p.Spenders}, {Path: "suspend", Value: p.Suspend}})
	})
	if err != nil {
		return Plan{}, fmt.Errorf("budgetguard: plan transition %s: %w", tr.ID, err)
	}
	return p, nil
}

// event builds an envelope with a fixed id and time, so its publications are one event.
func event(typ, key, at string, data any) (events.Envelope, error) {
	e, err := events.New(typ, Source, Actor, data)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("budgetguard: %w", err)
	}
	e.EventID, e.Time = "bg-"+sum(typ, key)[:32], at
	e.CorrelationID = "budget-" + sum(key)[:24]
	return e, nil
}

// openApproval puts the alert's financial approval request before the platform's Governor:
// the approval document GET /v1/approvals lists (created once) and its event on approvals.
func (s *Server) openApproval(ctx context.Context, tr Transition, p Plan) error {
	to, _, err := s.opt.Rules.ApprovalTimeout(ApprovalType)
	if err != nil {
		return fmt.Errorf("budgetguard: approval timeout: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, tr.At)
	if err != nil {
		return fmt.Errorf("budgetguard: transition %s time: %w", tr.ID, err)
	}
	a := agentreq.Approval{ApprovalID: p.ApprovalID, EngagementID: PlatformEngagement, Kind: agentreq.KindBlocking,
		Type: ApprovalType, State: agentreq.ApprovalPending, Reasons: p.Reasons,
		Deadline: at.Add(time.Duration(to.Minutes) * time.Minute).UTC().Format(time.RFC3339), TimeoutSeconds: to.Minutes * 60,
		OnTimeout: to.OnTimeout, OpenedAt: tr.At}
	if _, err := s.opt.Firestore.Collection(agentreq.Approvals).Doc(a.ApprovalID).Create(ctx, a); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("budgetguard: open approval %s: %w", a.ApprovalID, err)
	}
	evidence := map[string]string{"spend_usd": money(tr.SpendUSD), "cap_usd": money(tr.CapUSD), "month": tr.Month,
		"billing_cost_usd": money(tr.BillingCostUSD), "ai_spend_usd": money(tr.AISpendUSD), "top_spenders": p.Spenders}
	for i, r := range p.Reasons {
		evidence["reason_"+strconv.Itoa(i+1)] = r
	}
	e, err := event(ApprovalEventType, tr.ID, tr.At, map[string]any{
		"approval_id": a.ApprovalID, "engagement_id": PlatformEngagement, "agent_id": "", "type": ApprovalType,
		"subject": "budget:" + budget.Platform, "action": "approve_budget_optimisations",
		"rationale": p.Reasons[0], "evidence": evidence, "timeout_minutes": to.Minutes,
	})
	if err != nil {
		return err
	}
	e.EngagementID = PlatformEngagement
	if _, err := s.opt.Publisher.Publish(ctx, events.TopicApprovals, e); err != nil {
		return fmt.Errorf("budgetguard: publish approval %s: %w", a.ApprovalID, err)
	}
	return nil
}

// suspend reports each planned agent suspended for the budget on health_events, which the
// registry applies to a live agent.
func (s *Server) suspend(ctx context.Context, tr Transition, p Plan) error {
	for _, k := range p.Suspend {
		eng, agent := splitKey(k)
		e, err := event(HealthEventType, tr.ID+"/"+k, tr.At, map[string]any{
			"agent_id": agent, "engagement_id": eng, "status": "suspended", "check_type": CheckTypeBudget, "observed_at": tr.At,
		})
		if err != nil {
			return err
		}
		e.AgentID, e.EngagementID = agent, eng
		if _, err := s.opt.Publisher.Publish(ctx, events.TopicHealthEvents, e); err != nil {
			return fmt.Errorf("budgetguard: suspend agent %s: %w", agent, err)
		}
	}
	return nil
}

// audit records the transition on the platform's audit stream.
func (s *Server) audit(ctx context.Context, tr Transition, p Plan) error {
	c := map[string]string{"from": tr.From, "to": tr.To, "month": tr.Month, "spend_usd": money(tr.SpendUSD),
		"cap_usd": money(tr.CapUSD), "billing_cost_usd": money(tr.BillingCostUSD), "ai_spend_usd": money(tr.AISpendUSD),
		"rule_id": tr.RuleID, "cause": tr.Cause, "seq": strconv.FormatInt(tr.Seq, 10)}
	if p.ApprovalID != "" {
		c["approval_id"] = p.ApprovalID
	}
	if len(p.Suspend) > 0 {
		raw, _ := json.Marshal(p.Suspend)
		c["suspended"] = string(raw)
	}
	e, err := event(AuditEventType, tr.ID, tr.At, map[string]any{
		"stream": PlatformEngagement, "event_type": AuditTransition, "actor_id": Actor, "actor_type": "system",
		"action": "budget_" + tr.To, "target": "budget:" + budget.Platform, "context": c, "result": tr.To,
	})
	if err != nil {
		return err
	}
	e.EngagementID = PlatformEngagement
	if _, err := s.opt.Publisher.Publish(ctx, events.TopicAuditEvents, e); err != nil {
		return fmt.Errorf("budgetguard: audit transition %s: %w", tr.ID, err)
	}
	return nil
}

func money(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func splitKey(k string) (engagement, agent string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return "", k
}
