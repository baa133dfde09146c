package architect_test

import (
	"testing"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/architect"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/aireview/aireviewtest"
	"waooaw.dev/governance/shared/events"
)

// TestAIReview: stage 4 with the real AI router over local providers: an escalation sends
// back for revision what the table approved, never approves what it sent back; an outage,
// a cap, the budget or no key leaves the table's verdict; a retried call asks and pays once.
func TestAIReview(t *testing.T) {
	aireviewtest.Run(t, aireviewtest.Stage{
		Agent: architect.Agent, Number: 4, Passed: "approved", Escalated: "revise", Refused: "revise",
		Open: func(t *testing.T, asker func(*firestore.Client, events.Publisher) ai.Asker) aireviewtest.Target {
			h := newHarness(t, func(o *architect.Options) {
				if asker != nil {
					o.AI = asker(o.Firestore, o.Publisher)
				}
			})
			return aireviewtest.Target{FS: h.fs, Tap: h.tap, Call: func(t *testing.T, req string, pass bool) (string, []string) {
				h.request(t, req, "eng-1", agentreq.StatusRunning)
				spec := retailSpec("eng-1", "Shop Helper")
				if !pass {
					spec = withSystems("acme")("eng-1")
				}
				code, b := h.post(t, "/v1/stages/architecture_review", call(req, "eng-1", 1, spec))
				if code != 200 {
					t.Fatalf("stage 4: %d %s", code, b)
				}
				v := decodeVerdict(t, b)
				return v.Outcome, v.Reasons
			}}
		},
	})
}
