package architect

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/aireview"
)

// Agent is the Systems Architect's id: whose AI keys and per-agent cap its reviews use.
const Agent = "systems_architect"

// aiReview asks the AI router for a review of the table's verdict, once per (request, round).
// The verdict shown to it is read outside the recording transaction; the one recorded is
// decided again inside it, and the review's escalation applies to that.
func (s *Server) aiReview(ctx context.Context, c reviewCall) (aireview.Review, error) {
	if !s.ai.Configured() {
		return aireview.Review{}, nil
	}
	var held bool
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var err error
		held, err = s.heldByAnother(tx, c.nameRef, c.RequestID)
		return err
	}, firestore.ReadOnly)
	if err != nil {
		return aireview.Review{}, fmt.Errorf("architect: ai review: %w", err)
	}
	facts := maps.Clone(c.facts)
	facts["duplicate_name"] = held
	v, res, err := s.rules.ArchitectureReview(facts)
	if err != nil {
		return aireview.Review{}, fmt.Errorf("architect: review: %w", err)
	}
	t := c.trace
	t.ArchitectureReview = res.Trace
	traceJSON, err := json.Marshal(t)
	if err != nil {
		return aireview.Review{}, fmt.Errorf("architect: trace: %w", err)
	}
	return s.ai.Review(ctx, aireview.Input{
		Stage: Stage, RequestID: c.RequestID, EngagementID: c.EngagementID, Round: c.Round,
		Outcome: v.Outcome, Reasons: v.Reasons, Trace: traceJSON, Request: c.Spec,
		Escalation: "an approved request goes back to its requester for revision (rejected in the last round), as the table's own findings do",
	})
}

// escalate applies a review to the table's verdict: an escalation turns an approval into a
// revision and adds its reasons; an approval, or anything the review could not say, changes
// nothing.
func escalate(outcome string, reasons []string, rv aireview.Review) (string, []string) {
	if !rv.Escalates() {
		return outcome, reasons
	}
	if outcome == OutcomeApproved {
		outcome = OutcomeRevise
	}
	return outcome, append(slices.Clone(reasons), rv.AddedReasons()...)
}

// reviewCall is what a review of a stage call needs besides the call.
type reviewCall struct {
	agentreq.Call
	facts   map[string]any
	trace   trace
	nameRef *firestore.DocumentRef
}
