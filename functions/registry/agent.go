package registry

import (
	"errors"
	"fmt"
)

// Collection holds one document per agent (the projection) and, under it, the agent's
// events: registry_agents/{agent_id}/events/{seq:%020d}.
const (
	Collection       = "registry_agents"
	EventsCollection = "events"
)

// Agent states.
const (
	StateDeploying  = "deploying"
	StateLive       = "live"
	StateRolledBack = "rolled_back"
	StateUndeployed = "undeployed"
	StateSuspended  = "suspended"
)

// Event types: every change to an agent is one of these, appended once and never changed.
const (
	EventDeployRequested   = "deploy_requested"   // stage 7 called: the agent exists, deploying
	EventHealthy           = "healthy"            // the first healthy report of a deploying agent
	EventCallbackDelivered = "callback_delivered" // the workflow accepted the health callback
	EventCallbackGone      = "callback_gone"      // the workflow's execution had ended (404)
	EventLive              = "live"               // the workflow completed the deploy
	EventRolledBack        = "rolled_back"        // no healthy report within the deploy timeout
	EventUndeployed        = "undeployed"         // undone by the compensation saga
	EventHealthCritical    = "health_critical"    // a critical report of a live agent
	EventHealthOK          = "health_ok"          // a healthy or degraded report ending a critical streak
	EventSuspended         = "suspended"          // critical reports in a row (rules/agent_health)
)

// Agent is the projection of an agent's events (registry_agents/{agent_id}): what Apply
// folds them into, written in the same transaction as each event.
type Agent struct {
	AgentID      string `firestore:"agent_id" json:"agent_id"`
	RequestID    string `firestore:"request_id" json:"request_id"`
	EngagementID string `firestore:"engagement_id" json:"engagement_id"`
	AgentName    string `firestore:"agent_name" json:"agent_name"`
	State        string `firestore:"state" json:"state"`
	Seq          int64  `firestore:"seq" json:"seq"`
	// HealthCallback is the workflow's callback awaiting the first healthy report; it
	// resumes an execution, so it is never shown.
	HealthCallback    string `firestore:"health_callback" json:"-"`
	HealthyAt         string `firestore:"healthy_at" json:"healthy_at,omitempty"`
	CallbackDelivered bool   `firestore:"callback_delivered" json:"callback_delivered"`
	CallbackGone      bool   `firestore:"callback_gone" json:"callback_gone"`
	CriticalStreak    int    `firestore:"critical_streak" json:"critical_streak"`
	Reason            string `firestore:"reason" json:"reason,omitempty"`
	UpdatedAt         string `firestore:"updated_at" json:"updated_at"`
}

// Event is one change to an agent (registry_agents/{agent_id}/events/{seq}). Fields an
// event type does not use stay empty.
type Event struct {
	AgentID string `firestore:"agent_id" json:"agent_id"`
	Seq     int64  `firestore:"seq" json:"seq"`
	Type    string `firestore:"type" json:"type"`
	At      string `firestore:"at" json:"at"` // the time of the change: the workflow's, or the report's observed_at
	// Cause is what made the change, once: a record key for the workflow's calls, the
	// health event's event_id for a report. A redelivered report finds its cause and
	// changes nothing.
	Cause string `firestore:"cause" json:"cause"`

	// deploy_requested
	RequestID      string `firestore:"request_id,omitempty" json:"request_id,omitempty"`
	EngagementID   string `firestore:"engagement_id,omitempty" json:"engagement_id,omitempty"`
	AgentName      string `firestore:"agent_name,omitempty" json:"agent_name,omitempty"`
	HealthCallback string `firestore:"health_callback,omitempty" json:"-"`
	// healthy, health_critical, health_ok: the report's status and time
	Status     string `firestore:"status,omitempty" json:"status,omitempty"`
	ObservedAt string `firestore:"observed_at,omitempty" json:"observed_at,omitempty"`
	// rolled_back, undeployed, suspended, callback_gone
	Reason     string `firestore:"reason,omitempty" json:"reason,omitempty"`
	ApprovalID string `firestore:"approval_id,omitempty" json:"approval_id,omitempty"`
}

// ErrTransition marks an event the agent's state does not take (complete after rollback):
// the call asking for it is refused.
var ErrTransition = errors.New("registry: transition not allowed")

// Apply folds one event into the agent: the projection is Apply over the events in seq
// order, from the zero Agent. It is pure, so replaying an agent's events reproduces its
// document.
func Apply(a Agent, e Event) (Agent, error) {
	if e.Seq != a.Seq+1 {
		return a, fmt.Errorf("registry: agent %s: event seq %d after %d", a.AgentID, e.Seq, a.Seq)
	}
	if !Allowed(a.State, e.Type) {
		return a, fmt.Errorf("%w: %s on a %q agent", ErrTransition, e.Type, a.State)
	}
	if e.Type != EventDeployRequested && a.AgentID != e.AgentID {
		return a, fmt.Errorf("registry: event %d of agent %s applied to agent %s", e.Seq, e.AgentID, a.AgentID)
	}
	switch e.Type {
	case EventDeployRequested:
		a = Agent{AgentID: e.AgentID, RequestID: e.RequestID, EngagementID: e.EngagementID, AgentName: e.AgentName,
			State: StateDeploying, HealthCallback: e.HealthCallback}
	case EventHealthy:
		a.HealthyAt = e.ObservedAt
	case EventCallbackDelivered:
		a.CallbackDelivered = true
	case EventCallbackGone:
		a.CallbackGone = true
	case EventLive:
		a.State = StateLive
	case EventRolledBack:
		a.State, a.Reason = StateRolledBack, e.Reason
	case EventUndeployed:
		a.State, a.Reason = StateUndeployed, e.Reason
	case EventHealthCritical:
		a.CriticalStreak++
	case EventHealthOK:
		a.CriticalStreak = 0
	case EventSuspended:
		a.State, a.Reason = StateSuspended, e.Reason
	}
	a.Seq, a.UpdatedAt = e.Seq, e.At
	return a, nil
}

// Allowed reports whether an agent in state takes an event of type typ ("" is an agent
// that does not exist yet).
func Allowed(state, typ string) bool {
	switch typ {
	case EventDeployRequested:
		return state == ""
	case EventHealthy, EventLive, EventRolledBack:
		return state == StateDeploying
	case EventCallbackDelivered, EventCallbackGone:
		// The workflow resumes as soon as it accepts the callback and may complete the
		// deploy before the delivery is recorded.
		return state != ""
	case EventUndeployed:
		return state == StateDeploying || state == StateLive || state == StateSuspended
	case EventHealthCritical, EventHealthOK, EventSuspended:
		return state == StateLive
	}
	return false
}

// Replay folds events (in seq order) into the agent they describe.
func Replay(events []Event) (Agent, error) {
	var a Agent
	for _, e := range events {
		var err error
		if a, err = Apply(a, e); err != nil {
			return Agent{}, err
		}
	}
	return a, nil
}
