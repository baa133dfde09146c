package guardian

import (
	"slices"

	"waooaw.dev/governance/shared/aireview"
)

// Agent is the Vision Guardian's id: whose AI keys and per-agent cap its reviews use.
const Agent = "vision_guardian"

// escalation is what the prompt says an escalation does at stage 5.
const escalation = "a cleared request goes to the Governor as a constitutional approval, as the table's own escalations do"

// escalate applies a review to the table's verdict: an escalation sends a cleared request to
// the Governor's constitutional approval and adds its reasons (to an escalation or a
// rejection too); an approval, or anything the review could not say, changes nothing.
func escalate(outcome string, reasons []string, rv aireview.Review) (string, []string) {
	if !rv.Escalates() {
		return outcome, reasons
	}
	if outcome == OutcomeCleared {
		outcome = OutcomeEscalate
	}
	return outcome, append(slices.Clone(reasons), rv.AddedReasons()...)
}
