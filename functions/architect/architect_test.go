package architect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/architect"
	"waooaw.dev/governance/shared/agentreq"
)

// holding is a request that already holds an agent name when a case starts.
type holding struct {
	engagement, name, status string
}

// TestArchitectureReview: every outcome, with what it leaves on the request, on the name
// reservations and on the engagement's audit stream.
func TestArchitectureReview(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name    string
		spec    func(eng string) map[string]any
		round   int
		holds   *holding // another request holding a name first
		selfHas bool     // the request itself already holds its name
		outcome string
		status  string
		reasons []string // substrings, one per reason, in order
		holder  string   // "self", "other" or "" for who holds the spec's name afterwards
	}{
		{name: "low-risk retail", spec: func(e string) map[string]any { return retailSpec(e, "Shop Helper") }, round: 1,
			outcome: "approved", status: "running", holder: "self"},
		{name: "healthcare with all three controls", spec: func(e string) map[string]any { return healthcareSpec(e, "Leaflet Writer") }, round: 1,
			outcome: "approved", status: "running", holder: "self"},
		{name: "a catalogued connector in another spelling", spec: withSystems(" Salesforce", "SLACK"), round: 1,
			outcome: "approved", status: "running", holder: "self"},
		{name: "cost exactly at the cap", spec: withCost(5), round: 1, outcome: "approved", status: "running", holder: "self"},
		{name: "unknown connector", spec: withSystems("salesforce", "Acme ERP", "legacy_fax"), round: 1,
			outcome: "revise", status: "needs_revision", reasons: []string{"no connector for external systems: Acme ERP, legacy_fax"}},
		{name: "unknown connector in the last round", spec: withSystems("Acme ERP"), round: 3,
			outcome: "rejected", status: "rejected", reasons: []string{"no connector for external systems: Acme ERP"}},
		{name: "cost over the cap", spec: withCost(12), round: 1, outcome: "revise", status: "needs_revision",
			reasons: []string{"estimated daily cost $12 is 2.4 times the per-agent daily cap of $5"}},
		{name: "cost over the cap in the last round", spec: withCost(5.5), round: 3, outcome: "rejected", status: "rejected",
			reasons: []string{"estimated daily cost $5.5 is 1.1 times the per-agent daily cap of $5"}},
		{name: "duplicate name", spec: withName(" shop helper "), round: 1, holds: &holding{"", "Shop Helper", "running"},
			outcome: "revise", status: "needs_revision", reasons: []string{"an agent named shop helper already exists in the engagement"}, holder: "other"},
		{name: "duplicate name in the last round", spec: withName("Shop Helper"), round: 3, holds: &holding{"", "SHOP HELPER", "deployed"},
			outcome: "rejected", status: "rejected", reasons: []string{"an agent named Shop Helper already exists"}, holder: "other"},
		{name: "everything at once, in table order", spec: func(e string) map[string]any {
			s := withSystems("acme")(e)
			s["estimated_cost_usd_per_day"] = 10.0
			return s
		}, round: 2, holds: &holding{"", "Shop Helper", "awaiting_approval"}, outcome: "revise", status: "needs_revision",
			reasons: []string{"acme", "$10 is 2 times", "an agent named Shop Helper"}, holder: "other"},
		{name: "the name held by the request itself", spec: withName("Shop Helper"), round: 2, selfHas: true,
			outcome: "approved", status: "running", holder: "self"},
		{name: "the name held by a denied request is free", spec: withName("Shop Helper"), round: 1, holds: &holding{"", "Shop Helper", "denied"},
			outcome: "approved", status: "running", holder: "self"},
		{name: "the same name in another engagement", spec: withName("Shop Helper"), round: 1, holds: &holding{"eng-other", "Shop Helper", "running"},
			outcome: "approved", status: "running", holder: "self"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case in an engagement of its own, so names never meet across cases.
			eng := "eng-" + strings.ReplaceAll(tc.name, " ", "-")
			req := "req-" + eng
			h.request(t, req, eng, agentreq.StatusRunning)
			spec := tc.spec(eng)
			if tc.holds != nil {
				other, holdEng := req+"-other", eng
				if tc.holds.engagement != "" {
					holdEng = tc.holds.engagement + "-" + eng
				}
				h.request(t, other, holdEng, agentreq.StatusRunning)
				if code, b := h.post(t, "/v1/stages/architecture_review", call(other, holdEng, 1, retailSpec(holdEng, tc.holds.name))); code != 200 || decodeVerdict(t, b).Outcome != "approved" {
					t.Fatalf("the holder's review: %d %s", code, b)
				}
				if _, err := h.fs.Collection(agentreq.Requests).Doc(other).Update(context.Background(), []firestore.Update{{Path: "status", Value: tc.holds.status}}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.selfHas {
				if code, b := h.post(t, "/v1/stages/architecture_review", call(req, eng, tc.round-1, spec)); code != 200 {
					t.Fatalf("the earlier round: %d %s", code, b)
				}
			}
			code, b := h.post(t, "/v1/stages/architecture_review", call(req, eng, tc.round, spec))
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, b)
			}
			v := decodeVerdict(t, b)
			if v.Stage != 4 || v.Name != "architecture_review" || v.Outcome != tc.outcome || v.Status != tc.status {
				t.Errorf("verdict %+v; want stage 4 architecture_review, %s, status %s", v, tc.outcome, tc.status)
			}
			checkReasons(t, v.Reasons, tc.reasons)
			if v.Trace.ArchitectureReview.Table != "architecture_review" || len(v.Trace.ConnectorCatalogue) != len(systemsOf(spec)) {
				t.Errorf("trace: table %q and %d connector lookups; want architecture_review and %d", v.Trace.ArchitectureReview.Table, len(v.Trace.ConnectorCatalogue), len(systemsOf(spec)))
			}

			got := h.get(t, req)
			if got.Status != tc.status {
				t.Errorf("request status %s, want %s", got.Status, tc.status)
			}
			last := got.Stages[len(got.Stages)-1]
			if last.Stage != 4 || last.Name != "architecture_review" || last.Outcome != tc.outcome || last.Round != tc.round ||
				last.At != "2026-12-01T10:00:00Z" || !slices.Equal(last.Reasons, v.Reasons) {
				t.Errorf("stage entry %+v; want the verdict's", last)
			}
			if wantCB := tc.outcome == "revise"; (got.RevisionCallback != "") != wantCB {
				t.Errorf("revision_callback %q; stored only for a revise (%v)", got.RevisionCallback, wantCB)
			}
			name, _ := spec["agent_name"].(string)
			switch holder := h.holder(t, eng, name); tc.holder {
			case "self":
				if holder != req {
					t.Errorf("name held by %q, want this request", holder)
				}
			case "other":
				if holder != req+"-other" {
					t.Errorf("name held by %q, want the other request still", holder)
				}
			default:
				if holder != "" {
					t.Errorf("name held by %q; a %s holds nothing", holder, tc.outcome)
				}
			}
		})
	}

	// Every verdict is on its engagement's stream with its trace.
	audits := h.audits(t)
	for id, as := range audits {
		for _, a := range as {
			if a.Action != "stage_4_architecture_review" || a.Actor != "systems_architect" || a.Type != "waooaw.agent_request.stage" ||
				a.Stream != a.env.EngagementID || !strings.HasPrefix(a.Stream, "eng-") || a.Target != "agent_request:"+a.Context["request_id"] ||
				!strings.Contains(a.Context["trace"], `"architecture_review":{"table":"architecture_review"`) || a.Result != a.Context["outcome"] {
				t.Errorf("audit event %s = %+v", id, a)
			}
			if want := agentreq.EventID(agentreq.StageKey(a.Context["request_id"], 4, atoi(t, a.Context["round"]))); id != want {
				t.Errorf("audit event id %s, want %s (the record key's)", id, want)
			}
		}
	}
	if len(audits) < 14 {
		t.Errorf("%d audit events, want one per verdict (at least 14)", len(audits))
	}
}

// TestReviewRetried: the same call twice records once, answers the same bytes and
// publishes the same audit event id.
func TestReviewRetried(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		spec map[string]any
	}{
		{"approved", retailSpec("eng-1", "Shop Helper")},
		{"revise", withSystems("acme")("eng-1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "req-retry-" + tc.name
			h.request(t, req, "eng-1", agentreq.StatusRunning)
			body := call(req, "eng-1", 1, tc.spec)
			c1, b1 := h.post(t, "/v1/stages/architecture_review", body)
			c2, b2 := h.post(t, "/v1/stages/architecture_review", body)
			if c1 != 200 || c2 != 200 || string(b1) != string(b2) {
				t.Fatalf("answers %d %s and %d %s; want the same 200 twice", c1, b1, c2, b2)
			}
			if got := h.get(t, req); len(got.Stages) != 1 {
				t.Errorf("%d stage entries, want 1", len(got.Stages))
			}
			snaps, err := h.fs.Collection(architect.Verdicts).Where("request_id", "==", req).Documents(context.Background()).GetAll()
			if err != nil || len(snaps) != 1 {
				t.Errorf("%d verdict records (%v), want 1", len(snaps), err)
			}
		})
	}
	audits := h.audits(t)
	for _, name := range []string{"approved", "revise"} {
		id := agentreq.EventID(agentreq.StageKey("req-retry-"+name, 4, 1))
		if as := audits[id]; len(as) != 2 || as[0].Context["trace"] != as[1].Context["trace"] || as[0].Result != name {
			t.Errorf("%s: %d audit events with id %s, want 2 alike, result %s", name, len(as), id, name)
		}
	}
	if len(audits) != 2 {
		t.Errorf("%d audit event ids, want 2", len(audits))
	}
}

// TestBadCalls: a call that can never succeed is 400 naming what is wrong, and records
// nothing.
func TestBadCalls(t *testing.T) {
	h := newHarness(t)
	h.request(t, "req-1", "eng-1", agentreq.StatusRunning)
	good := func(change func(map[string]any)) map[string]any {
		c := call("req-1", "eng-1", 1, retailSpec("eng-1", "Shop Helper"))
		change(c)
		return c
	}
	spec := func(field string, v any) func(map[string]any) {
		return func(c map[string]any) { c["spec"].(map[string]any)[field] = v }
	}
	for _, tc := range []struct {
		name, path string
		body       any
		want       string
	}{
		{"malformed JSON", "/v1/stages/architecture_review", `{"request_id":`, "body"},
		{"no request_id", "/v1/stages/architecture_review", good(func(c map[string]any) { delete(c, "request_id") }), "request_id"},
		{"no engagement_id", "/v1/stages/architecture_review", good(func(c map[string]any) { delete(c, "engagement_id") }), "engagement_id"},
		{"round 0", "/v1/stages/architecture_review", good(func(c map[string]any) { c["round"] = 0 }), "round"},
		{"at not a time", "/v1/stages/architecture_review", good(func(c map[string]any) { c["at"] = "tomorrow" }), "at"},
		{"no spec", "/v1/stages/architecture_review", good(func(c map[string]any) { delete(c, "spec") }), "spec is missing"},
		{"systems a string", "/v1/stages/architecture_review", good(spec("external_systems", "salesforce")), "spec.external_systems"},
		{"a system a number", "/v1/stages/architecture_review", good(spec("external_systems", []any{1})), "spec.external_systems"},
		{"cost a string", "/v1/stages/architecture_review", good(spec("estimated_cost_usd_per_day", "5")), "spec.estimated_cost_usd_per_day"},
		{"cost negative", "/v1/stages/architecture_review", good(spec("estimated_cost_usd_per_day", -1)), "spec.estimated_cost_usd_per_day"},
		{"name a list", "/v1/stages/architecture_review", good(spec("agent_name", []any{"x"})), "spec.agent_name"},
		{"revise without a callback", "/v1/stages/architecture_review", good(func(c map[string]any) {
			delete(c, "revision_callback")
			c["spec"].(map[string]any)["external_systems"] = []any{"acme"}
		}), "revision_callback"},
		{"unknown request", "/v1/stages/architecture_review", good(func(c map[string]any) { c["request_id"] = "req-none" }), "unknown request"},
		{"another engagement's request", "/v1/stages/architecture_review", good(func(c map[string]any) { c["engagement_id"] = "eng-2" }), "eng-2"},
		{"undo: no request_id", "/v1/undo/architecture_review", good(func(c map[string]any) { delete(c, "request_id") }), "request_id"},
		{"undo: at missing", "/v1/undo/architecture_review", good(func(c map[string]any) { delete(c, "at") }), "at"},
		{"undo: unknown request", "/v1/undo/architecture_review", good(func(c map[string]any) { c["request_id"] = "req-none" }), "unknown request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := h.post(t, tc.path, tc.body)
			var e struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if code != http.StatusBadRequest || e.Error.Code != 400 || !strings.Contains(e.Error.Message, tc.want) {
				t.Errorf("%d %s; want 400 naming %q", code, b, tc.want)
			}
		})
	}
	if got := h.get(t, "req-1"); len(got.Stages) != 0 || len(got.Compensations) != 0 || got.Status != "running" {
		t.Errorf("request after bad calls: %+v; want it untouched", got)
	}
	snaps, err := h.fs.Collection(architect.Verdicts).Documents(context.Background()).GetAll()
	if err != nil || len(snaps) != 0 {
		t.Errorf("%d verdict records (%v) after bad calls, want none", len(snaps), err)
	}
}

// TestUndoReleasesTheName: the compensation saga's undo releases the name (only the one
// this request holds), records once, and another request may then use the name.
func TestUndoReleasesTheName(t *testing.T) {
	h := newHarness(t)
	const eng = "eng-1"
	review := func(req string, round int) verdict {
		t.Helper()
		code, b := h.post(t, "/v1/stages/architecture_review", call(req, eng, round, retailSpec(eng, "Shop Helper")))
		if code != 200 {
			t.Fatalf("%s: %d %s", req, code, b)
		}
		return decodeVerdict(t, b)
	}
	undo := func(req string) (int, []byte) {
		t.Helper()
		return h.post(t, "/v1/undo/architecture_review", map[string]any{
			"request_id": req, "engagement_id": eng, "at": "2026-12-02T09:00:00Z", "approval_id": "apv-1",
		})
	}
	for _, r := range []string{"req-a", "req-b", "req-c"} {
		h.request(t, r, eng, agentreq.StatusRunning)
	}
	if v := review("req-a", 1); v.Outcome != "approved" {
		t.Fatalf("req-a: %+v", v)
	}
	if v := review("req-b", 1); v.Outcome != "revise" {
		t.Fatalf("req-b while req-a holds the name: %+v; want revise", v)
	}
	// The veto: the request is vetoed, then the saga undoes stage 4.
	if _, err := h.fs.Collection(agentreq.Requests).Doc("req-a").Update(context.Background(), []firestore.Update{{Path: "status", Value: "vetoed"}}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		req      string
		released []string
		holder   string // after the undo
		status   string // the request's, unchanged
	}{
		{"the holder's undo releases the name", "req-a", []string{"Shop Helper"}, "", "vetoed"},
		{"retried, it answers the same", "req-a", []string{"Shop Helper"}, "", "vetoed"},
		{"an undo of a request holding nothing", "req-b", []string{}, "", "needs_revision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := undo(tc.req)
			var a architect.Undone
			if err := json.Unmarshal(b, &a); err != nil || code != 200 {
				t.Fatalf("%d %s (%v)", code, b, err)
			}
			if a.Stage != 4 || a.Name != "architecture_review" || a.Outcome != "undone" || !slices.Equal(a.Released, tc.released) || a.Status != tc.status {
				t.Errorf("answer %+v; want stage 4 undone, released %v, status %s", a, tc.released, tc.status)
			}
			got := h.get(t, tc.req)
			if len(got.Compensations) != 1 || got.Compensations[0] != (agentreq.Compensation{Stage: 4, At: "2026-12-02T09:00:00Z"}) {
				t.Errorf("compensations %+v; want one {4, at}", got.Compensations)
			}
			if holder := h.holder(t, eng, "Shop Helper"); holder != tc.holder {
				t.Errorf("name held by %q, want %q", holder, tc.holder)
			}
		})
	}
	if got := h.get(t, "req-a"); got.Status != "vetoed" {
		t.Errorf("req-a status %s; an undo keeps the terminal vetoed", got.Status)
	}

	// The name is free: another request takes it, and an undo of someone else leaves it.
	if v := review("req-c", 1); v.Outcome != "approved" || h.holder(t, eng, "Shop Helper") != "req-c" {
		t.Fatalf("req-c after the release: %+v, holder %q; want approved and holding", v, h.holder(t, eng, "Shop Helper"))
	}
	h.request(t, "req-d", eng, agentreq.StatusRunning)
	if code, b := undo("req-d"); code != 200 || h.holder(t, eng, "Shop Helper") != "req-c" {
		t.Errorf("req-d's undo: %d %s; req-c's name must stay held", code, b)
	}

	audits := h.audits(t)
	id := agentreq.EventID(agentreq.UndoKey("req-a", 4))
	as := audits[id]
	if len(as) != 2 {
		t.Fatalf("%d audit events for req-a's undo, want 2 with one id", len(as))
	}
	for _, a := range as {
		if a.Action != "undo_stage_4_architecture_review" || a.Type != "waooaw.agent_request.undo" || a.Stream != eng ||
			a.Context["undone_stage"] != "4" || !strings.Contains(a.Context["reasons"], "released the agent name Shop Helper") ||
			!strings.Contains(a.Context["reasons"], "apv-1") || a.Result != "undone" {
			t.Errorf("undo audit event %+v", a)
		}
	}
}

// TestConcurrentReviewsOfOneName: requests racing for one name; exactly one is approved.
func TestConcurrentReviewsOfOneName(t *testing.T) {
	h := newHarness(t)
	const n = 4
	outcomes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		req := fmt.Sprintf("req-%d", i)
		h.request(t, req, "eng-1", agentreq.StatusRunning)
		wg.Go(func() {
			code, b := h.post(t, "/v1/stages/architecture_review", call(req, "eng-1", 1, retailSpec("eng-1", "Shop Helper")))
			if code != 200 {
				t.Errorf("%s: %d %s", req, code, b)
				return
			}
			outcomes[i] = decodeVerdict(t, b).Outcome
		})
	}
	wg.Wait()
	approved := slices.Index(outcomes, "approved")
	revised := 0
	for _, o := range outcomes {
		if o == "revise" {
			revised++
		}
	}
	if approved < 0 || revised != n-1 {
		t.Fatalf("outcomes %v; want exactly one approved, the others revise", outcomes)
	}
	if holder := h.holder(t, "eng-1", "shop helper"); holder != fmt.Sprintf("req-%d", approved) {
		t.Errorf("name held by %q, want the approved req-%d", holder, approved)
	}
}
