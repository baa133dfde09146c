package registry

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrUnknownAgent is returned for an agent the registry does not hold.
var ErrUnknownAgent = errors.New("registry: unknown agent")

// store keeps the agents: a change is one transaction that reads the projection (and,
// for a report, whether its cause was seen), then creates the new events and sets the
// projection they fold into.
type store struct{ fs *firestore.Client }

func (s store) agentRef(agentID string) *firestore.DocumentRef {
	return s.fs.Collection(Collection).Doc(agentID)
}

func (s store) eventRef(agentID string, seq int64) *firestore.DocumentRef {
	return s.agentRef(agentID).Collection(EventsCollection).Doc(fmt.Sprintf("%020d", seq))
}

// read reads an agent's projection in tx; found is false when the agent does not exist.
func (s store) read(tx *firestore.Transaction, agentID string) (a Agent, found bool, err error) {
	snap, err := tx.Get(s.agentRef(agentID))
	if status.Code(err) == codes.NotFound {
		return Agent{}, false, nil
	}
	if err != nil {
		return Agent{}, false, fmt.Errorf("registry: read agent %s: %w", agentID, err)
	}
	if err := snap.DataTo(&a); err != nil {
		return Agent{}, false, fmt.Errorf("registry: read agent %s: %w", agentID, err)
	}
	return a, true, nil
}

// caused reads, in tx, the events an earlier delivery of cause appended.
func (s store) caused(tx *firestore.Transaction, agentID, cause string) ([]Event, error) {
	q := s.agentRef(agentID).Collection(EventsCollection).Where("cause", "==", cause)
	snaps, err := tx.Documents(q).GetAll()
	if err != nil {
		return nil, fmt.Errorf("registry: events of agent %s caused by %s: %w", agentID, cause, err)
	}
	out := make([]Event, 0, len(snaps))
	for _, snap := range snaps {
		var e Event
		if err := snap.DataTo(&e); err != nil {
			return nil, fmt.Errorf("registry: read event %s: %w", snap.Ref.Path, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// append numbers evs after a's last event, folds them into a and writes both, in tx. It
// is the only writer of agents, so every projection is the fold of its events.
func (s store) append(tx *firestore.Transaction, a Agent, evs ...Event) (Agent, error) {
	agentID := a.AgentID
	for _, e := range evs {
		if agentID == "" {
			agentID = e.AgentID
		}
		e.AgentID, e.Seq = agentID, a.Seq+1
		next, err := Apply(a, e)
		if err != nil {
			return a, err
		}
		if err := tx.Create(s.eventRef(agentID, e.Seq), e); err != nil {
			return a, fmt.Errorf("registry: append %s to agent %s: %w", e.Type, agentID, err)
		}
		a = next
	}
	if err := tx.Set(s.agentRef(agentID), a); err != nil {
		return a, fmt.Errorf("registry: set agent %s: %w", agentID, err)
	}
	return a, nil
}

// change runs fn in a transaction over agentID's projection; fn returns the events to
// append (none: nothing is written).
func (s store) change(ctx context.Context, agentID string, fn func(tx *firestore.Transaction, a Agent, found bool) ([]Event, error)) (Agent, error) {
	var out Agent
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		a, found, err := s.read(tx, agentID)
		if err != nil {
			return err
		}
		evs, err := fn(tx, a, found)
		if err != nil {
			return err
		}
		out = a
		if len(evs) > 0 {
			out, err = s.append(tx, a, evs...)
		}
		return err
	})
	return out, err
}

// Get reads an agent's projection and its events in seq order, as of one moment.
func (s store) Get(ctx context.Context, agentID string) (Agent, []Event, error) {
	var a Agent
	var evs []Event
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var found bool
		var err error
		if a, found, err = s.read(tx, agentID); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrUnknownAgent, agentID)
		}
		snaps, err := tx.Documents(s.agentRef(agentID).Collection(EventsCollection).OrderBy("seq", firestore.Asc)).GetAll()
		if err != nil {
			return fmt.Errorf("registry: events of agent %s: %w", agentID, err)
		}
		evs = make([]Event, 0, len(snaps))
		for _, snap := range snaps {
			var e Event
			if err := snap.DataTo(&e); err != nil {
				return fmt.Errorf("registry: read event %s: %w", snap.Ref.Path, err)
			}
			evs = append(evs, e)
		}
		return nil
	}, firestore.ReadOnly)
	if err != nil {
		return Agent{}, nil, err
	}
	return a, evs, nil
}
