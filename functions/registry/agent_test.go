package registry

import (
	"errors"
	"testing"
)

// history numbers a sequence of events of one agent.
func history(types ...string) []Event {
	evs := make([]Event, len(types))
	for i, typ := range types {
		evs[i] = Event{AgentID: "agt-1", Seq: int64(i + 1), Type: typ, At: "2026-12-01T10:00:00Z"}
		switch typ {
		case EventDeployRequested:
			evs[i].RequestID, evs[i].EngagementID, evs[i].AgentName, evs[i].HealthCallback = "req-1", "eng-1", "Claims helper", "http://wf/cb"
		case EventHealthy:
			evs[i].ObservedAt = "2026-12-01T10:05:00Z"
		case EventRolledBack, EventUndeployed, EventSuspended:
			evs[i].Reason = typ + " because"
		}
	}
	return evs
}

func TestReplay(t *testing.T) {
	base := Agent{AgentID: "agt-1", RequestID: "req-1", EngagementID: "eng-1", AgentName: "Claims helper",
		HealthCallback: "http://wf/cb", UpdatedAt: "2026-12-01T10:00:00Z"}
	with := func(f func(*Agent)) Agent { a := base; f(&a); return a }
	tests := []struct {
		name   string
		events []Event
		want   Agent
	}{
		{"deploy requested", history(EventDeployRequested),
			with(func(a *Agent) { a.State, a.Seq = StateDeploying, 1 })},
		{"healthy, callback delivered, live", history(EventDeployRequested, EventHealthy, EventCallbackDelivered, EventLive),
			with(func(a *Agent) {
				a.State, a.Seq, a.HealthyAt, a.CallbackDelivered = StateLive, 4, "2026-12-01T10:05:00Z", true
			})},
		{"callback gone, then rolled back", history(EventDeployRequested, EventHealthy, EventCallbackGone, EventRolledBack),
			with(func(a *Agent) {
				a.State, a.Seq, a.HealthyAt, a.CallbackGone, a.Reason = StateRolledBack, 4, "2026-12-01T10:05:00Z", true, "rolled_back because"
			})},
		{"delivery recorded after the workflow made it live",
			history(EventDeployRequested, EventHealthy, EventLive, EventCallbackDelivered),
			with(func(a *Agent) {
				a.State, a.Seq, a.HealthyAt, a.CallbackDelivered = StateLive, 4, "2026-12-01T10:05:00Z", true
			})},
		{"a streak ended by a healthy report starts again",
			history(EventDeployRequested, EventHealthy, EventLive, EventHealthCritical, EventHealthCritical, EventHealthOK, EventHealthCritical),
			with(func(a *Agent) {
				a.State, a.Seq, a.HealthyAt, a.CriticalStreak = StateLive, 7, "2026-12-01T10:05:00Z", 1
			})},
		{"three critical in a row suspend",
			history(EventDeployRequested, EventHealthy, EventLive, EventHealthCritical, EventHealthCritical, EventHealthCritical, EventSuspended),
			with(func(a *Agent) {
				a.State, a.Seq, a.HealthyAt, a.CriticalStreak, a.Reason = StateSuspended, 7, "2026-12-01T10:05:00Z", 3, "suspended because"
			})},
		{"undeployed by the saga", history(EventDeployRequested, EventHealthy, EventCallbackDelivered, EventUndeployed),
			with(func(a *Agent) {
				a.State, a.Seq, a.HealthyAt, a.CallbackDelivered, a.Reason = StateUndeployed, 4, "2026-12-01T10:05:00Z", true, "undeployed because"
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Replay(tt.events)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Replay =\n%+v\nwant\n%+v", got, tt.want)
			}
			// Folding one event at a time, as the store does, gives the same agent.
			var step Agent
			for _, e := range tt.events {
				if step, err = Apply(step, e); err != nil {
					t.Fatal(err)
				}
			}
			if step != got {
				t.Errorf("step by step %+v, replay %+v", step, got)
			}
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	tests := []struct {
		name       string
		events     []Event
		transition bool // the error is ErrTransition
	}{
		{"healthy before deploy", history(EventHealthy), true},
		{"deploy twice", history(EventDeployRequested, EventDeployRequested), true},
		{"live after rollback", history(EventDeployRequested, EventRolledBack, EventLive), true},
		{"critical while deploying", history(EventDeployRequested, EventHealthCritical), true},
		{"suspend a suspended agent", history(EventDeployRequested, EventLive, EventSuspended, EventSuspended), true},
		{"undeploy twice", history(EventDeployRequested, EventUndeployed, EventUndeployed), true},
		{"unknown type", history(EventDeployRequested, "renamed"), true},
		{"a gap in seq", append(history(EventDeployRequested), Event{AgentID: "agt-1", Seq: 3, Type: EventLive}), false},
		{"another agent's event", append(history(EventDeployRequested), Event{AgentID: "agt-2", Seq: 2, Type: EventLive}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Replay(tt.events)
			if err == nil {
				t.Fatal("Replay accepted the history")
			}
			if errors.Is(err, ErrTransition) != tt.transition {
				t.Errorf("error %v: ErrTransition %v, want %v", err, errors.Is(err, ErrTransition), tt.transition)
			}
		})
	}
}
