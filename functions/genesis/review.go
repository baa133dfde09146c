package genesis

import (
	"context"
	"slices"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/aireview"
)

// What an escalation by the AI review does at each of Genesis's stages, as the prompt says
// it: stage 1 has no revision, so its escalation is a refusal.
var escalations = map[int]string{
	1: "an accepted specification is rejected, with the review's reasons as the refusal's",
	2: "a complete way of working goes back to the requester for revision (rejected in the last round)",
	3: "a certified blueprint goes back to the requester for revision (rejected in the last round)",
}

// reviewed asks the AI router for a review of a stage's decision (once per request, stage
// and round) and applies it: the table's decision is the floor, an escalation refuses (stage
// 1) or sends back for revision (stages 2 and 3) what the table passed, and adds its reasons
// to what the table stopped. The audit context says what the review was.
func (s *Server) reviewed(ctx context.Context, stage int, c agentreq.Call, d decision) (decision, map[string]string, error) {
	if !s.ai.Configured() {
		return d, nil, nil
	}
	fields := c.Spec
	if stage == 2 {
		fields = map[string]any{"way_of_working": c.WayOfWorking, "spec": c.Spec}
	}
	rv, err := s.ai.Review(ctx, aireview.Input{
		Stage: stage, RequestID: c.RequestID, EngagementID: c.EngagementID, Round: c.Round,
		Outcome: d.outcome, Reasons: d.reasons, Trace: d.trace, Request: fields, Escalation: escalations[stage],
	})
	if err != nil || !rv.Escalates() {
		return d, rv.AuditContext(), err
	}
	reasons := append(slices.Clone(d.reasons), rv.AddedReasons()...)
	switch d.outcome {
	case OutcomeAccepted:
		d = decision{outcome: OutcomeRejected, reasons: reasons, status: agentreq.StatusRejected, trace: d.trace}
	case OutcomeComplete, OutcomeCertified:
		if d, err = s.revise(c, reasons, d.trace); err != nil {
			return decision{}, nil, err
		}
	default:
		d.reasons = reasons
	}
	return d, rv.AuditContext(), nil
}
