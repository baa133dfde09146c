package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/workflowexec"
)

// CallbackTimeout bounds a health callback: a third of registry-health_events' 30 s ack
// deadline.
const CallbackTimeout = 10 * time.Second

// MaxPushBytes bounds a push body: Pub/Sub messages are at most 10 MB, health reports a
// few hundred bytes.
const MaxPushBytes = 1 << 20

// Health report statuses (shared/schema/avro/health_events.avsc).
const (
	HealthHealthy   = "healthy"
	HealthDegraded  = "degraded"
	HealthCritical  = "critical"
	HealthSuspended = "suspended"
)

// Push is the body Pub/Sub posts to a push endpoint (wrapped delivery).
type Push = events.Push

// A budget suspension: the budget guard's report of a live non-critical agent while the
// platform's budget is suspended (functions/budgetguard).
const (
	CheckTypeBudget   = "budget"
	BudgetGuardSource = "//waooaw/budgetguard"
)

// Report is a health_events payload.
type Report struct {
	AgentID      string `json:"agent_id"`
	EngagementID string `json:"engagement_id"`
	Status       string `json:"status"`
	CheckType    string `json:"check_type"`
	ObservedAt   string `json:"observed_at"`
}

// HealthCallback is the body of the workflow's health callback.
type HealthCallback struct {
	AgentID    string `json:"agent_id"`
	Status     string `json:"status"`
	ObservedAt string `json:"observed_at"`
}

// What a push did, as answered (Pub/Sub reads only the status; tests and operators the rest).
const (
	PushHealthy         = "healthy"            // the health callback was delivered
	PushCallbackGone    = "callback_gone"      // the health callback's execution had ended
	PushCritical        = "health_critical"    // a live agent's critical streak grew
	PushSuspended       = "suspended"          // ... to the agent_health table's threshold
	PushStreakReset     = "health_ok"          // a healthy or degraded report ended a streak
	PushDuplicate       = "duplicate"          // a redelivery: nothing changed
	PushNoChange        = "no_change"          // the report changes nothing for this agent
	PushUnknownAgent    = "unknown_agent"      // no such agent: nothing to do
	PushOtherEngagement = "engagement_differs" // the report names another engagement: ignored
)

// PushAnswer is the health push's answer.
type PushAnswer struct {
	Outcome string `json:"outcome"`
	AgentID string `json:"agent_id"`
	State   string `json:"state,omitempty"`
}

// serveHealth takes one pushed health event. Pub/Sub acknowledges it on a 2xx answer and
// delivers it again on anything else:
//   - applied, a duplicate, or nothing to do (an unknown agent): 200;
//   - poison (not a push, not a health event, breaking the schema): logged at ERROR and
//     refused with 400, so the dead-letter policy takes it after the last attempt;
//   - Firestore or the callback failed: 503, so a redelivery tries again.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s; use POST", r.Method))
		return
	}
	var p Push
	env, rep, err := decodePush(r, &p)
	if err != nil {
		s.opt.Logger.ErrorContext(ctx, "registry: poison message", "message_id", p.Message.MessageID,
			"subscription", p.Subscription, "delivery_attempt", p.DeliveryAttempt, "event_id", env.EventID, "error", err.Error())
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, err := s.observe(ctx, env, rep)
	if err != nil {
		s.opt.Logger.WarnContext(ctx, "registry: health event not applied; Pub/Sub will redeliver",
			"event_id", env.EventID, "agent_id", rep.AgentID, "message_id", p.Message.MessageID, "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	switch ans.Outcome {
	case PushUnknownAgent, PushOtherEngagement:
		s.opt.Logger.InfoContext(ctx, "registry: health event for no agent of the registry",
			"event_id", env.EventID, "agent_id", rep.AgentID, "engagement_id", rep.EngagementID, "outcome", ans.Outcome)
	case PushDuplicate, PushNoChange:
	default:
		s.opt.Logger.InfoContext(ctx, "registry: health event applied", "event_id", env.EventID,
			"agent_id", rep.AgentID, "status", rep.Status, "outcome", ans.Outcome, "state", ans.State)
	}
	agentreq.WriteJSON(w, http.StatusOK, ans)
}

// decodePush reads the push body into p and its message into a health event. Every error
// wraps events.ErrPoison: no retry can fix it.
func decodePush(r *http.Request, p *Push) (events.Envelope, Report, error) {
	var err error
	if *p, err = events.ReadPush(r, MaxPushBytes); err != nil {
		return events.Envelope{}, Report{}, err
	}
	env, err := events.Decode(events.TopicHealthEvents, p.Message.Data)
	if err != nil {
		return events.Envelope{}, Report{}, fmt.Errorf("message %s: %w", p.Message.MessageID, err)
	}
	var rep Report
	if err := json.Unmarshal(env.Data, &rep); err != nil {
		return env, Report{}, fmt.Errorf("%w: event %s: data: %v", events.ErrPoison, env.EventID, err)
	}
	if env.AgentID != "" && env.AgentID != rep.AgentID {
		return env, Report{}, fmt.Errorf("%w: event %s: envelope agent_id %q, data agent_id %q", events.ErrPoison, env.EventID, env.AgentID, rep.AgentID)
	}
	return env, rep, nil
}

// observe applies one report to its agent, once: the report's event_id is the cause of
// whatever it appends, so a redelivery finds it and changes nothing.
func (s *Server) observe(ctx context.Context, env events.Envelope, rep Report) (PushAnswer, error) {
	ans := PushAnswer{AgentID: rep.AgentID}
	var suspended *Event // the suspension this report caused, now or on an earlier delivery
	a, err := s.store.change(ctx, rep.AgentID, func(tx *firestore.Transaction, a Agent, found bool) ([]Event, error) {
		ans.Outcome, suspended = PushNoChange, nil
		switch {
		case !found:
			ans.Outcome = PushUnknownAgent
			return nil, nil
		case a.EngagementID != rep.EngagementID:
			ans.Outcome = PushOtherEngagement
			return nil, nil
		case a.State == StateDeploying:
			if rep.Status != HealthHealthy || a.HealthyAt != "" {
				return nil, nil // a pending callback is retried below
			}
			ans.Outcome = PushHealthy
			return []Event{{Type: EventHealthy, At: rep.ObservedAt, Cause: env.EventID, Status: rep.Status, ObservedAt: rep.ObservedAt}}, nil
		case a.State != StateLive:
			return nil, nil
		}
		seen, err := s.store.caused(tx, a.AgentID, env.EventID)
		if err != nil {
			return nil, err
		}
		if len(seen) > 0 {
			ans.Outcome = PushDuplicate
			for i := range seen {
				if seen[i].Type == EventSuspended {
					suspended = &seen[i]
				}
			}
			return nil, nil
		}
		return s.streak(a, env, rep, &ans, &suspended), nil
	})
	if err != nil {
		return PushAnswer{}, fmt.Errorf("registry: health event %s: %w", env.EventID, err)
	}
	ans.State = a.State
	if a.State == StateDeploying && a.HealthyAt != "" && !a.CallbackDelivered && !a.CallbackGone {
		delivered, err := s.deliver(ctx, a, env, rep)
		if err != nil {
			return PushAnswer{}, err
		}
		ans.Outcome = PushHealthy
		if !delivered {
			ans.Outcome = PushCallbackGone
		}
	}
	if suspended != nil {
		if err := s.recordSuspension(ctx, a, *suspended); err != nil {
			return PushAnswer{}, err
		}
	}
	return ans, nil
}

// streak is what a report does to a live agent: a critical one lengthens the streak and,
// when rules/agent_health says so (3 in a row), suspends it; a healthy or degraded one ends
// it; the budget guard's suspended report suspends it at once.
func (s *Server) streak(a Agent, env events.Envelope, rep Report, ans *PushAnswer, suspended **Event) []Event {
	switch rep.Status {
	case HealthCritical:
		ans.Outcome = PushCritical
		evs := []Event{{Type: EventHealthCritical, At: rep.ObservedAt, Cause: env.EventID, Status: rep.Status, ObservedAt: rep.ObservedAt}}
		action, _, err := s.opt.Rules.HealthAction(a.CriticalStreak + 1)
		if err != nil {
			// The tables are embedded and tested: a failure here is a build defect.
			s.opt.Logger.Error("registry: agent_health table", "error", err.Error())
		}
		if action == "suspend" {
			ans.Outcome = PushSuspended
			evs = append(evs, Event{Type: EventSuspended, At: rep.ObservedAt, Cause: env.EventID,
				Reason: fmt.Sprintf("%d critical health reports in a row", a.CriticalStreak+1)})
			*suspended = &evs[1]
		}
		return evs
	case HealthSuspended:
		// Only the budget guard suspends through health_events: a client's own report of
		// "suspended" is no order to stop.
		if rep.CheckType != CheckTypeBudget || env.Source != BudgetGuardSource {
			return nil
		}
		ans.Outcome = PushSuspended
		evs := []Event{{Type: EventSuspended, At: rep.ObservedAt, Cause: env.EventID,
			Reason: "budget suspended: the platform's spend reached the suspend threshold (rules/budget_thresholds)"}}
		*suspended = &evs[0]
		return evs
	case HealthHealthy, HealthDegraded:
		if a.CriticalStreak > 0 {
			ans.Outcome = PushStreakReset
			return []Event{{Type: EventHealthOK, At: rep.ObservedAt, Cause: env.EventID, Status: rep.Status, ObservedAt: rep.ObservedAt}}
		}
	}
	return nil
}

// deliver posts the health callback of a deploying agent whose first healthy report is
// recorded, and records the delivery once the workflow accepted it. It reports false when
// the execution had ended (recorded too: nothing awaits the callback any more). Any other
// failure is returned, so the push is answered 5xx and delivered again.
//
// The subscription is ordered per agent_id, so Pub/Sub has one report of an agent in
// flight at a time and two deliveries race only when a push outlives the ack deadline;
// CallbackTimeout keeps the callback well inside it.
func (s *Server) deliver(ctx context.Context, a Agent, env events.Envelope, rep Report) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, CallbackTimeout)
	err := s.opt.Callbacks.Callback(cctx, a.HealthCallback, HealthCallback{AgentID: a.AgentID, Status: HealthHealthy, ObservedAt: a.HealthyAt})
	cancel()
	typ := EventCallbackDelivered
	switch {
	case errors.Is(err, workflowexec.ErrCallbackGone):
		s.opt.Logger.WarnContext(ctx, "registry: health callback gone; its execution has ended",
			"agent_id", a.AgentID, "request_id", a.RequestID, "error", err.Error())
		typ = EventCallbackGone
	case err != nil:
		return false, fmt.Errorf("registry: health callback of agent %s: %w", a.AgentID, err)
	}
	_, err = s.store.change(ctx, a.AgentID, func(_ *firestore.Transaction, cur Agent, _ bool) ([]Event, error) {
		if cur.CallbackDelivered || cur.CallbackGone {
			return nil, nil
		}
		return []Event{{Type: typ, At: rep.ObservedAt, Cause: env.EventID}}, nil
	})
	if err != nil {
		return false, fmt.Errorf("registry: record health callback of agent %s: %w", a.AgentID, err)
	}
	return typ == EventCallbackDelivered, nil
}

// recordSuspension puts a suspension on the request's audit stream, once: a redelivery of
// the report that caused it records it again (the same key) if a crash came in between.
func (s *Server) recordSuspension(ctx context.Context, a Agent, e Event) error {
	_, err := s.rec.Record(ctx, agentreq.Record{
		Key: a.RequestID + "_suspended", RequestID: a.RequestID, EngagementID: a.EngagementID, At: e.At,
		Event: "agent_suspended", Action: "health_events", Outcome: StateSuspended, Reasons: []string{e.Reason},
		AgentID: a.AgentID, Answer: PushAnswer{Outcome: PushSuspended, AgentID: a.AgentID, State: StateSuspended},
	})
	if errors.Is(err, agentreq.ErrUnknownRequest) {
		// The agent's request is gone: the registry's own events still hold the suspension.
		s.opt.Logger.ErrorContext(ctx, "registry: suspension not audited: no request", "agent_id", a.AgentID,
			"request_id", a.RequestID, "error", err.Error())
		return nil
	}
	return err
}
