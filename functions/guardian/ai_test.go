package guardian_test

import (
	"testing"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/guardian"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/aireview/aireviewtest"
	"waooaw.dev/governance/shared/events"
)

// TestAIReview: stage 5 with the real AI router over local providers: an escalation sends
// what the table cleared to the Governor, never clears what it rejected; an outage, a cap,
// the budget or no key leaves the table's verdict; a retried call asks and pays once.
func TestAIReview(t *testing.T) {
	aireviewtest.Run(t, aireviewtest.Stage{
		Agent: guardian.Agent, Number: 5, Passed: "cleared", Escalated: "escalate", Refused: "rejected",
		Open: func(t *testing.T, asker func(*firestore.Client, events.Publisher) ai.Asker) aireviewtest.Target {
			h := newHarness(t, func(o *guardian.Options) {
				if asker != nil {
					o.AI = asker(o.Firestore, o.Publisher)
				}
			})
			return aireviewtest.Target{FS: h.fs, Tap: h.tap, Call: func(t *testing.T, req string, pass bool) (string, []string) {
				h.request(t, req, "eng-1", agentreq.StatusRunning)
				spec := retailSpec("eng-1")
				if !pass {
					spec["purpose"] = "Tracking employees across their social media"
				}
				code, b := h.post(t, "/v1/stages/ethics_review", call(req, "eng-1", 1, spec))
				if code != 200 {
					t.Fatalf("stage 5: %d %s", code, b)
				}
				v := decodeVerdict(t, b)
				return v.Outcome, v.Reasons
			}}
		},
	})
}
