package genesis_test

import (
	"testing"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/genesis"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/aireview/aireviewtest"
	"waooaw.dev/governance/shared/events"
)

// TestAIReview: stages 1 and 3 with the real AI router over local providers: an escalation
// rejects an accepted specification (stage 1 has no revision) and sends a certified blueprint
// back for revision, never passes what the table stopped; an outage, a cap, the budget or no
// key leaves the table's verdict; a retried call asks and pays once.
func TestAIReview(t *testing.T) {
	for _, st := range []struct {
		number                     int
		path                       string
		passed, escalated, refused string
		refuse                     map[string]any // what makes the table stop the spec
	}{
		{1, "specification", "accepted", "rejected", "rejected", map[string]any{"purpose": ""}},
		{3, "certification", "certified", "revise", "revise", map[string]any{"scope_boundaries": []any{}}},
	} {
		t.Run(st.path, func(t *testing.T) {
			aireviewtest.Run(t, aireviewtest.Stage{
				Agent: genesis.Actor, Number: st.number, Passed: st.passed, Escalated: st.escalated, Refused: st.refused,
				Open: func(t *testing.T, asker func(*firestore.Client, events.Publisher) ai.Asker) aireviewtest.Target {
					h := newHarness(t, func(o *genesis.Options) {
						if asker != nil {
							o.AI = asker(o.Firestore, o.Publisher)
						}
					})
					return aireviewtest.Target{FS: h.fs, Tap: h.tap, Call: func(t *testing.T, req string, pass bool) (string, []string) {
						spec := retailSpec()
						if !pass {
							spec = with(spec, st.refuse)
						}
						h.request(t, req, spec)
						var v genesis.Verdict
						h.post(t, "/v1/stages/"+st.path, stageBody(req, 1, spec, wayOfWorking())).into(t, &v)
						return v.Outcome, v.Reasons
					}}
				},
			})
		})
	}
}
