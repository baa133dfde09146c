package genesis_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/functions/genesis"
	"waooaw.dev/governance/shared/agentreq"
)

// TestStages runs every outcome of stages 1–3 and checks the answer, the projection and the
// audit entry of each.
func TestStages(t *testing.T) {
	h := newHarness(t)
	wowWithout := func(names ...string) map[string]any {
		w := wayOfWorking()
		for i, n := range names {
			if i%2 == 0 {
				delete(w, n)
			} else {
				w[n] = []any{} // present but empty is a gap too
			}
		}
		return w
	}
	cases := []struct {
		name, path string
		stage      int
		round      int
		spec, wow  map[string]any
		outcome    string
		reasons    []string
		status     string
		callback   bool // the revision callback is kept on the request
	}{
		{name: "spec complete", path: "specification", stage: 1, round: 1, spec: retailSpec(),
			outcome: "accepted", reasons: []string{}, status: "running"},
		{name: "spec empty lists count as present", path: "specification", stage: 1, round: 1,
			spec:    with(retailSpec(), map[string]any{"scope_boundaries": []any{}, "required_capabilities": []any{}}),
			outcome: "accepted", reasons: []string{}, status: "running"},
		{name: "spec missing fields named each", path: "specification", stage: 1, round: 1,
			spec:    with(retailSpec(), map[string]any{"agent_name": deleted, "purpose": "", "external_systems": nil, "engagement_id": deleted}),
			outcome: "rejected", reasons: []string{"agent_name is missing", "purpose is missing", "external_systems is missing", "engagement_id is missing"}, status: "rejected"},
		{name: "spec absent", path: "specification", stage: 1, round: 1, spec: nil, outcome: "rejected",
			reasons: []string{"agent_name is missing", "purpose is missing", "scope_boundaries is missing", "required_capabilities is missing",
				"data_access_requirements is missing", "external_systems is missing", "industry is missing", "engagement_id is missing"},
			status: "rejected"},
		{name: "way of working complete", path: "way_of_working", stage: 2, round: 1, spec: retailSpec(), wow: wayOfWorking(),
			outcome: "complete", reasons: []string{}, status: "running"},
		{name: "way of working gaps", path: "way_of_working", stage: 2, round: 1, spec: retailSpec(),
			wow:     with(wowWithout("integrations", "quality_and_slos"), map[string]any{"identity": "   "}),
			outcome: "revise", reasons: []string{"section identity is missing or empty", "section integrations is missing or empty", "section quality_and_slos is missing or empty"},
			status: "needs_revision", callback: true},
		{name: "way of working gaps in round 2", path: "way_of_working", stage: 2, round: 2, spec: retailSpec(), wow: wowWithout("cost_and_limits"),
			outcome: "revise", reasons: []string{"section cost_and_limits is missing or empty"}, status: "needs_revision", callback: true},
		{name: "way of working gaps in the last round", path: "way_of_working", stage: 2, round: 3, spec: retailSpec(), wow: wowWithout("cost_and_limits"),
			outcome: "rejected", reasons: []string{"section cost_and_limits is missing or empty"}, status: "rejected"},
		{name: "certified", path: "certification", stage: 3, round: 1, spec: retailSpec(), wow: wayOfWorking(),
			outcome: "certified", reasons: []string{}, status: "running"},
		{name: "certified healthcare", path: "certification", stage: 3, round: 1, spec: healthcareSpec(), wow: wayOfWorking(),
			outcome: "certified", reasons: []string{}, status: "running"},
		{name: "certification revise", path: "certification", stage: 3, round: 1,
			spec: with(retailSpec(), map[string]any{"scope_boundaries": []any{}}), wow: wayOfWorking(), outcome: "revise",
			reasons: []string{"scope_boundaries is empty; an agent is certified only with the boundaries it must keep"}, status: "needs_revision", callback: true},
		{name: "certification revise in the last round", path: "certification", stage: 3, round: 3,
			spec: with(retailSpec(), map[string]any{"data_access_requirements": []any{}}), wow: wayOfWorking(), outcome: "rejected",
			reasons: []string{"data_access_requirements is empty; an agent is certified only for the data it declares"}, status: "rejected"},
		{name: "certification revise beats reclassify", path: "certification", stage: 3, round: 1,
			spec: with(retailSpec(), map[string]any{"industry": "astrology", "required_capabilities": []any{}}), wow: wayOfWorking(), outcome: "revise",
			reasons: []string{"required_capabilities is empty; an agent is certified only for the capabilities it names"}, status: "needs_revision", callback: true},
		{name: "reclassify", path: "certification", stage: 3, round: 1,
			spec: with(retailSpec(), map[string]any{"industry": "astrology"}), wow: wayOfWorking(), outcome: "reclassify",
			reasons: []string{"industry astrology is not one the platform knows; the Governor classifies it"}, status: "running"},
	}
	keys := map[string]string{} // record key -> case
	for i, tc := range cases {
		id := fmt.Sprintf("req-stage-%d", i)
		t.Run(tc.name, func(t *testing.T) {
			h.request(t, id, tc.spec)
			var v genesis.Verdict
			h.post(t, "/v1/stages/"+tc.path, stageBody(id, tc.round, tc.spec, tc.wow)).into(t, &v)
			if v.Stage != tc.stage || v.Name != agentreq.StageNames[tc.stage] || v.Outcome != tc.outcome || v.Status != tc.status || !slices.Equal(v.Reasons, tc.reasons) {
				t.Errorf("verdict %d %s %s %s %q; want %d %s %s %q", v.Stage, v.Name, v.Outcome, v.Status, v.Reasons, tc.stage, tc.outcome, tc.status, tc.reasons)
			}
			if len(v.Trace) == 0 || !strings.Contains(string(v.Trace), `"rules"`) {
				t.Errorf("verdict has no decision-table trace: %s", v.Trace)
			}
			p := h.projection(t, id)
			if p.Status != tc.status || len(p.Stages) != 1 {
				t.Fatalf("projection status %s, stages %+v; want %s and one entry", p.Status, p.Stages, tc.status)
			}
			e := p.Stages[0]
			if e.Stage != tc.stage || e.Outcome != tc.outcome || e.Round != tc.round || e.At != atPlus(time.Duration(tc.round)*time.Minute) || !slices.Equal(e.Reasons, tc.reasons) {
				t.Errorf("stage entry %+v; want stage %d outcome %s round %d reasons %q", e, tc.stage, tc.outcome, tc.round, tc.reasons)
			}
			if got, want := p.RevisionCallback != "", tc.callback; got != want {
				t.Errorf("revision callback kept %q; want kept: %v", p.RevisionCallback, want)
			}
		})
		keys[agentreq.StageKey(id, tc.stage, tc.round)] = tc.outcome
	}
	got := audits(t, h.drain(t))
	for key, outcome := range keys {
		stage := int(key[len(key)-3] - '0')
		checkAudit(t, got, key, agentreq.StepNames[stage], outcome, true)
	}
}

// TestStageRetried: the same call twice records once, answers the same bytes and publishes
// the same audit event id; a call for a later round records again.
func TestStageRetried(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		path  string
		stage int
		spec  map[string]any
		wow   map[string]any
	}{
		{"specification", 1, retailSpec(), nil},
		{"way_of_working", 2, retailSpec(), with(wayOfWorking(), map[string]any{"identity": deleted})},
		{"certification", 3, retailSpec(), wayOfWorking()},
		{"governor_approval", 6, retailSpec(), wayOfWorking()},
		{"governor_approval", 6, healthcareSpec(), wayOfWorking()},
	}
	var ids []string
	for i, tc := range cases {
		id := fmt.Sprintf("req-retry-%d", i)
		ids = append(ids, id)
		h.request(t, id, tc.spec)
		body := stageBody(id, 1, tc.spec, tc.wow)
		first := h.post(t, "/v1/stages/"+tc.path, body)
		again := h.post(t, "/v1/stages/"+tc.path, body)
		if first.status != http.StatusOK || string(first.body) != string(again.body) {
			t.Errorf("%s: answers differ:\n%s\n%s", tc.path, first.body, again.body)
		}
		if n := h.records(t, id); n != 1 {
			t.Errorf("%s: %d records, want 1", tc.path, n)
		}
		if p := h.projection(t, id); len(p.Stages) != 1 {
			t.Errorf("%s: %d stage entries, want 1", tc.path, len(p.Stages))
		}
	}
	got := h.drain(t)
	byID := map[string]int{}
	for _, p := range got["audit_events"] {
		byID[p.EventID]++
	}
	for i, tc := range cases {
		key := agentreq.StageKey(ids[i], tc.stage, 1)
		if n := byID[agentreq.EventID(key)]; n != 2 {
			t.Errorf("%s: audit event %s published %d times, want twice with the one id", tc.path, agentreq.EventID(key), n)
		}
	}
	if len(byID) != len(cases) {
		t.Errorf("%d distinct audit event ids, want %d", len(byID), len(cases))
	}
}
