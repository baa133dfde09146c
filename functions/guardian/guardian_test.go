package guardian_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/guardian"
	"waooaw.dev/governance/shared/agentreq"
)

// TestEthicsReview: every outcome, with what it leaves on the request and on the
// engagement's audit stream.
func TestEthicsReview(t *testing.T) {
	h := newHarness(t)
	healthcare := func(controls map[string]any, flags ...any) func(string) map[string]any {
		return func(e string) map[string]any {
			s := healthcareSpec(e)
			s["controls"], s["risk_flags"] = controls, flags
			return s
		}
	}
	retail := func(change func(map[string]any)) func(string) map[string]any {
		return func(e string) map[string]any {
			s := retailSpec(e)
			change(s)
			return s
		}
	}
	for _, tc := range []struct {
		name    string
		spec    func(eng string) map[string]any
		round   int
		outcome string
		status  string
		reasons []string // substrings, one per reason, in order
		fired   []string
	}{
		{name: "low-risk retail", spec: retailSpec, round: 1, outcome: "cleared", status: "running", reasons: []string{}, fired: []string{}},
		{name: "healthcare with all three controls", spec: healthcareSpec, round: 1, outcome: "cleared", status: "running", reasons: []string{}, fired: []string{}},
		{name: "healthcare in capitals with all three controls", spec: func(e string) map[string]any {
			s := healthcareSpec(e)
			s["industry"] = "Healthcare"
			return s
		}, round: 1, outcome: "cleared", status: "running", reasons: []string{}, fired: []string{}},
		{name: "healthcare without hipaa_check and a risk flag", round: 1,
			spec:    healthcare(map[string]any{"fact_check": true, "claims_verified": true}, "handles diagnoses"),
			outcome: "escalate", status: "running",
			reasons: []string{"a healthcare agent without the hipaa_check control", "risk flags raised: handles diagnoses"},
			fired:   []string{"ETH-HEALTHCARE-CONTROLS-HIPAA", "ETH-RISK-FLAGS"}},
		{name: "healthcare with hipaa_check false", round: 2,
			spec:    healthcare(map[string]any{"fact_check": true, "hipaa_check": false, "claims_verified": true}),
			outcome: "escalate", status: "running", reasons: []string{"without the hipaa_check control"}, fired: []string{"ETH-HEALTHCARE-CONTROLS-HIPAA"}},
		{name: "healthcare in capitals without controls", round: 1, spec: func(e string) map[string]any {
			s := healthcare(nil)(e)
			s["industry"] = " HEALTHCARE"
			return s
		}, outcome: "escalate", status: "running", reasons: []string{"hipaa_check", "fact_check"},
			fired: []string{"ETH-HEALTHCARE-CONTROLS-HIPAA", "ETH-HEALTHCARE-CONTROLS-FACT-CHECK"}},
		{name: "finance without fact_check", round: 1, spec: retail(func(s map[string]any) { s["industry"] = "finance" }),
			outcome: "escalate", status: "running", reasons: []string{"a finance agent without the fact_check control"}, fired: []string{"ETH-FINANCE-CONTROLS"}},
		{name: "retail with risk flags", round: 1, spec: retail(func(s map[string]any) { s["risk_flags"] = []any{"minors", " payments "} }),
			outcome: "escalate", status: "running", reasons: []string{"risk flags raised: minors, payments"}, fired: []string{"ETH-RISK-FLAGS"}},
		{name: "forbidden purpose", round: 1, spec: retail(func(s map[string]any) { s["purpose"] = "Tracking employees across their social media" }),
			outcome: "rejected", status: "rejected", reasons: []string{"the purpose is one the constitution forbids; it needs a constitutional amendment"},
			fired: []string{"ETH-FORBIDDEN-PURPOSE"}},
		{name: "forbidden purpose beats escalation", round: 1, spec: func(e string) map[string]any {
			s := healthcare(nil, "unreviewed claims")(e)
			s["purpose"] = "spread disinformation about vaccines"
			return s
		}, outcome: "rejected", status: "rejected", reasons: []string{"constitutional amendment"},
			fired: []string{"ETH-FORBIDDEN-PURPOSE", "ETH-HEALTHCARE-CONTROLS-HIPAA", "ETH-HEALTHCARE-CONTROLS-FACT-CHECK", "ETH-RISK-FLAGS"}},
		{name: "forbidden purpose in a later round", round: 3, spec: retail(func(s map[string]any) { s["purpose"] = "design weapons targeting" }),
			outcome: "rejected", status: "rejected", reasons: []string{"constitutional amendment"}, fired: []string{"ETH-FORBIDDEN-PURPOSE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := "eng-" + strings.ReplaceAll(tc.name, " ", "-")
			req := "req-" + eng
			h.request(t, req, eng, agentreq.StatusRunning)
			code, b := h.post(t, "/v1/stages/ethics_review", call(req, eng, tc.round, tc.spec(eng)))
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, b)
			}
			v := decodeVerdict(t, b)
			if v.Stage != 5 || v.Name != "ethics_review" || v.Outcome != tc.outcome || v.Status != tc.status {
				t.Errorf("verdict %+v; want stage 5 ethics_review, %s, status %s", v, tc.outcome, tc.status)
			}
			checkReasons(t, v.Reasons, tc.reasons)
			if v.Trace.Table != "ethics_review" || !slices.Equal(v.Trace.Fired, tc.fired) {
				t.Errorf("trace: table %q fired %v; want ethics_review, %v", v.Trace.Table, v.Trace.Fired, tc.fired)
			}
			got := h.get(t, req)
			if got.Status != tc.status || len(got.Stages) != 1 {
				t.Fatalf("request status %s with %d stages; want %s and 1", got.Status, len(got.Stages), tc.status)
			}
			if s := got.Stages[0]; s.Stage != 5 || s.Name != "ethics_review" || s.Outcome != tc.outcome || s.Round != tc.round ||
				s.At != "2026-12-01T10:00:00Z" || !slices.Equal(s.Reasons, v.Reasons) {
				t.Errorf("stage entry %+v; want the verdict's", s)
			}
		})
	}

	audits := h.audits(t)
	for id, as := range audits {
		for _, a := range as {
			if a.Action != "stage_5_ethics_review" || a.Actor != "vision_guardian" || a.Type != "waooaw.agent_request.stage" ||
				a.Stream != a.env.EngagementID || !strings.HasPrefix(a.Stream, "eng-") || a.Target != "agent_request:"+a.Context["request_id"] ||
				!strings.HasPrefix(a.Context["trace"], `{"table":"ethics_review"`) || a.Result != a.Context["outcome"] {
				t.Errorf("audit event %s = %+v", id, a)
			}
			if want := agentreq.EventID(agentreq.StageKey(a.Context["request_id"], 5, atoi(a.Context["round"]))); id != want {
				t.Errorf("audit event id %s, want %s (the record key's)", id, want)
			}
		}
	}
	if len(audits) != 11 {
		t.Errorf("%d audit events, want one per verdict (11)", len(audits))
	}
}

// atoi reads an audit context's round; a malformed one gives 0, which no record key has.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestReviewRetried: the same call twice records once, answers the same bytes and
// publishes the same audit event id.
func TestReviewRetried(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		spec map[string]any
	}{
		{"cleared", retailSpec("eng-1")},
		{"escalate", func() map[string]any { s := retailSpec("eng-1"); s["risk_flags"] = []any{"minors"}; return s }()},
		{"rejected", func() map[string]any { s := retailSpec("eng-1"); s["purpose"] = "build weapons"; return s }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "req-retry-" + tc.name
			h.request(t, req, "eng-1", agentreq.StatusRunning)
			body := call(req, "eng-1", 1, tc.spec)
			c1, b1 := h.post(t, "/v1/stages/ethics_review", body)
			c2, b2 := h.post(t, "/v1/stages/ethics_review", body)
			if c1 != 200 || c2 != 200 || string(b1) != string(b2) || decodeVerdict(t, b1).Outcome != tc.name {
				t.Fatalf("answers %d %s and %d %s; want the same 200 %s twice", c1, b1, c2, b2, tc.name)
			}
			if got := h.get(t, req); len(got.Stages) != 1 {
				t.Errorf("%d stage entries, want 1", len(got.Stages))
			}
			snaps, err := h.fs.Collection(guardian.Verdicts).Where("request_id", "==", req).Documents(context.Background()).GetAll()
			if err != nil || len(snaps) != 1 {
				t.Errorf("%d verdict records (%v), want 1", len(snaps), err)
			}
		})
	}
	audits := h.audits(t)
	for _, name := range []string{"cleared", "escalate", "rejected"} {
		id := agentreq.EventID(agentreq.StageKey("req-retry-"+name, 5, 1))
		if as := audits[id]; len(as) != 2 || as[0].Context["trace"] != as[1].Context["trace"] || as[0].Result != name {
			t.Errorf("%s: %d audit events with id %s, want 2 alike, result %s", name, len(as), id, name)
		}
	}
	if len(audits) != 3 {
		t.Errorf("%d audit event ids, want 3", len(audits))
	}
}

// TestBadCalls: a call that can never succeed is 400 naming what is wrong, and records
// nothing.
func TestBadCalls(t *testing.T) {
	h := newHarness(t)
	h.request(t, "req-1", "eng-1", agentreq.StatusRunning)
	good := func(change func(map[string]any)) map[string]any {
		c := call("req-1", "eng-1", 1, retailSpec("eng-1"))
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
		{"malformed JSON", "/v1/stages/ethics_review", `[1,`, "body"},
		{"no request_id", "/v1/stages/ethics_review", good(func(c map[string]any) { delete(c, "request_id") }), "request_id"},
		{"no engagement_id", "/v1/stages/ethics_review", good(func(c map[string]any) { delete(c, "engagement_id") }), "engagement_id"},
		{"no round", "/v1/stages/ethics_review", good(func(c map[string]any) { delete(c, "round") }), "round"},
		{"at not a time", "/v1/stages/ethics_review", good(func(c map[string]any) { c["at"] = "2026-12-01" }), "at"},
		{"no spec", "/v1/stages/ethics_review", good(func(c map[string]any) { delete(c, "spec") }), "spec is missing"},
		{"purpose a number", "/v1/stages/ethics_review", good(spec("purpose", 7)), "spec.purpose"},
		{"industry a list", "/v1/stages/ethics_review", good(spec("industry", []any{"retail"})), "spec.industry"},
		{"controls a list", "/v1/stages/ethics_review", good(spec("controls", []any{"fact_check"})), "spec.controls"},
		{"a control a string", "/v1/stages/ethics_review", good(spec("controls", map[string]any{"hipaa_check": "yes"})), "spec.controls.hipaa_check"},
		{"risk flags a string", "/v1/stages/ethics_review", good(spec("risk_flags", "minors")), "spec.risk_flags"},
		{"unknown request", "/v1/stages/ethics_review", good(func(c map[string]any) { c["request_id"] = "req-none" }), "unknown request"},
		{"another engagement's request", "/v1/stages/ethics_review", good(func(c map[string]any) { c["engagement_id"] = "eng-2" }), "eng-2"},
		{"undo: no engagement_id", "/v1/undo/ethics_review", good(func(c map[string]any) { delete(c, "engagement_id") }), "engagement_id"},
		{"undo: unknown request", "/v1/undo/ethics_review", good(func(c map[string]any) { c["request_id"] = "req-none" }), "unknown request"},
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
	snaps, err := h.fs.Collection(guardian.Verdicts).Documents(context.Background()).GetAll()
	if err != nil || len(snaps) != 0 {
		t.Errorf("%d verdict records (%v) after bad calls, want none", len(snaps), err)
	}
}

// TestUndoWithdrawsTheClearance: the saga's undo marks every ethics verdict of the request
// withdrawn, records once, and appends one compensation.
func TestUndoWithdrawsTheClearance(t *testing.T) {
	h := newHarness(t)
	const eng = "eng-1"
	h.request(t, "req-a", eng, agentreq.StatusRunning)
	h.request(t, "req-none", eng, agentreq.StatusVetoed)
	flagged := retailSpec(eng)
	flagged["risk_flags"] = []any{"minors"}
	for round, spec := range map[int]map[string]any{1: flagged, 2: retailSpec(eng)} {
		if code, b := h.post(t, "/v1/stages/ethics_review", call("req-a", eng, round, spec)); code != 200 {
			t.Fatalf("round %d: %d %s", round, code, b)
		}
	}
	if _, err := h.fs.Collection(agentreq.Requests).Doc("req-a").Update(context.Background(), []firestore.Update{{Path: "status", Value: "vetoed"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		req    string
		rounds []int
	}{
		{"the clearance withdrawn", "req-a", []int{1, 2}},
		{"retried, it answers the same", "req-a", []int{1, 2}},
		{"a request never reviewed", "req-none", []int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := h.post(t, "/v1/undo/ethics_review", map[string]any{
				"request_id": tc.req, "engagement_id": eng, "at": "2026-12-02T09:00:00Z", "approval_id": "apv-1",
			})
			var a guardian.Withdrawn
			if err := json.Unmarshal(b, &a); err != nil || code != 200 {
				t.Fatalf("%d %s (%v)", code, b, err)
			}
			if a.Stage != 5 || a.Name != "ethics_review" || a.Outcome != "withdrawn" || !slices.Equal(a.Rounds, tc.rounds) || a.Status != "vetoed" {
				t.Errorf("answer %+v; want stage 5 withdrawn, rounds %v, status vetoed", a, tc.rounds)
			}
			got := h.get(t, tc.req)
			if len(got.Compensations) != 1 || got.Compensations[0] != (agentreq.Compensation{Stage: 5, At: "2026-12-02T09:00:00Z"}) {
				t.Errorf("compensations %+v; want one {5, at}", got.Compensations)
			}
			if got.Status != "vetoed" {
				t.Errorf("status %s; an undo keeps the terminal vetoed", got.Status)
			}
			for _, round := range tc.rounds {
				snap, err := h.fs.Collection(guardian.Verdicts).Doc(agentreq.StageKey(tc.req, 5, round)).Get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				at, _ := snap.DataAt("withdrawn_at")
				by, _ := snap.DataAt("withdrawn_by")
				outcome, _ := snap.DataAt("outcome")
				if at != "2026-12-02T09:00:00Z" || by != "apv-1" || outcome == "" {
					t.Errorf("round %d verdict: withdrawn_at %v by %v, outcome %v; want the undo's at and approval, the outcome kept", round, at, by, outcome)
				}
			}
		})
	}
	undo, err := h.fs.Collection(guardian.Verdicts).Doc(agentreq.UndoKey("req-a", 5)).Get(context.Background())
	if err != nil {
		t.Fatalf("the undo's record: %v", err)
	}
	if outcome, _ := undo.DataAt("outcome"); outcome != "withdrawn" {
		t.Errorf("undo record outcome %v, want withdrawn", outcome)
	}

	as := h.audits(t)[agentreq.EventID(agentreq.UndoKey("req-a", 5))]
	if len(as) != 2 {
		t.Fatalf("%d audit events for req-a's undo, want 2 with one id", len(as))
	}
	for _, a := range as {
		if a.Action != "undo_stage_5_ethics_review" || a.Type != "waooaw.agent_request.undo" || a.Stream != eng || a.Actor != "vision_guardian" ||
			a.Context["undone_stage"] != "5" || a.Context["reasons"] != "the ethics clearance is withdrawn: approval apv-1 was vetoed" ||
			a.Result != "withdrawn" || a.Context["round"] != "1" {
			t.Errorf("undo audit event %+v", a)
		}
	}
}
