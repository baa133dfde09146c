package genesis_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/functions/genesis"
	"waooaw.dev/governance/shared/agentreq"
)

// TestGovernorApproval: a matching unflagged seed auto-approves citing it; with none, a
// blocking deployment approval opens with the verdict and goes out on `approvals`.
func TestGovernorApproval(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name    string
		spec    map[string]any
		outcome string
		status  string
		seed    string
	}{
		{"seed GEN-004", healthcareSpec(), "auto_approved", "deploying", "GEN-004"},
		{"no seed: retail", retailSpec(), "awaiting_approval", "awaiting_approval", ""},
		{"no seed: a risk flag", with(healthcareSpec(), map[string]any{"risk_flags": []any{"diagnosis"}}), "awaiting_approval", "awaiting_approval", ""},
		{"no seed: claims not verified", with(healthcareSpec(), map[string]any{"controls": map[string]any{"fact_check": true, "hipaa_check": true}}), "awaiting_approval", "awaiting_approval", ""},
	}
	blocking := map[string]string{} // approval id -> request id
	for i, tc := range cases {
		id := fmt.Sprintf("req-gov-%d", i)
		t.Run(tc.name, func(t *testing.T) {
			h.request(t, id, tc.spec)
			var v genesis.ApprovalVerdict
			h.post(t, "/v1/stages/governor_approval", stageBody(id, 1, tc.spec, wayOfWorking())).into(t, &v)
			if v.Stage != 6 || v.Outcome != tc.outcome || v.Status != tc.status || v.SeedID != tc.seed {
				t.Fatalf("verdict %s; want outcome %s status %s seed %q", brief(v), tc.outcome, tc.status, tc.seed)
			}
			if !strings.Contains(string(v.Trace), `"precedent_seeds"`) {
				t.Errorf("trace is not the seed table's: %s", v.Trace)
			}
			p := h.projection(t, id)
			if p.Status != tc.status || len(p.Stages) != 1 || p.Stages[0].Outcome != tc.outcome || p.Approval == nil {
				t.Fatalf("projection %s %+v approval %+v", p.Status, p.Stages, p.Approval)
			}
			if tc.seed != "" {
				wantID := agentreq.ApprovalID(id, "veto_window", "deployment", 1)
				if v.ApprovalID != wantID || v.VetoWindowSeconds != 24*3600 || v.TimeoutSeconds != 24*3600 || v.OnTimeout != "implicit" || v.Deadline != "" {
					t.Errorf("seed verdict %s; want approval %s, a 24 h window, no deadline until it opens", brief(v), wantID)
				}
				want := agentreq.ApprovalRef{ApprovalID: wantID, Kind: "veto_window", Type: "deployment", SeedID: tc.seed, State: "pending"}
				if *p.Approval != want {
					t.Errorf("approval on the request %+v, want %+v", *p.Approval, want)
				}
				if r := p.Stages[0].Reasons; len(r) == 0 || !strings.Contains(r[0], "GEN-004") || !strings.Contains(r[0], "HIPAA-checked") {
					t.Errorf("reasons %q do not name the seed and its rule text", r)
				}
				return
			}
			wantID := agentreq.ApprovalID(id, "blocking", "deployment", 1)
			deadline := atPlus(time.Minute + 240*time.Minute)
			if v.ApprovalID != wantID || v.TimeoutSeconds != 240*60 || v.OnTimeout != "deny" || v.Deadline != deadline || v.VetoWindowSeconds != 0 {
				t.Errorf("blocking verdict %s; want %s, 240 min, deny, deadline %s", brief(v), wantID, deadline)
			}
			a := h.approval(t, wantID)
			if a.State != "pending" || a.Kind != "blocking" || a.Type != "deployment" || a.Stage != 6 || a.Deadline != deadline ||
				a.CallbackURL != "http://workflows.local/callbacks/approval-"+id || a.RequestID != id || a.EngagementID != engagement {
				t.Errorf("approval document %+v", a)
			}
			if *p.Approval != *a.Ref() {
				t.Errorf("approval on the request %+v, want %+v", *p.Approval, *a.Ref())
			}
			blocking[wantID] = id
		})
	}
	got := h.drain(t)
	var opened []string
	for _, p := range got["approvals"] {
		opened = append(opened, p.orderingKey)
		if p.EventID != agentreq.EventID("approvals/"+p.orderingKey) || p.EngagementID != engagement || p.CorrelationID != blocking[p.orderingKey] {
			t.Errorf("approval event %+v", p.Envelope)
		}
	}
	slices.Sort(opened)
	want := make([]string, 0, len(blocking))
	for id := range blocking {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(opened, want) {
		t.Errorf("approvals published for %q, want %q (one per blocking approval)", opened, want)
	}
	a := audits(t, got)
	for i, tc := range cases {
		checkAudit(t, a, agentreq.StageKey(fmt.Sprintf("req-gov-%d", i), 6, 1), "stage_6_governor_approval", tc.outcome, true)
	}
}

// openBody is POST /v1/approvals.
func openBody(id, kind, typ string, stage int, seed string, timeout int, after time.Duration) map[string]any {
	return map[string]any{
		"request_id": id, "engagement_id": engagement, "round": 1, "at": atPlus(after), "kind": kind, "type": typ,
		"callback_url": "http://workflows.local/callbacks/" + kind + "-" + id, "stage": stage, "seed_id": seed,
		"reasons": []string{"opened by the workflow"}, "timeout_seconds": timeout,
	}
}

func closeBody(id, outcome, decision string, after time.Duration) map[string]any {
	b := map[string]any{"request_id": id, "at": atPlus(after), "outcome": outcome}
	if outcome == "callback" {
		// What events.await_callback returns: the gateway's post under http_request.body.
		b["callback"] = map[string]any{"http_request": map[string]any{"body": map[string]any{
			"decision": decision, "reason": "read the spec", "decided_by": "user:gov",
		}}, "type": "HTTP"}
	}
	return b
}

// TestApprovals opens and closes every kind of approval and checks the request, the approval,
// the seed's count and what reached `approvals`, `decisions` and `audit_events`.
func TestApprovals(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name                   string
		kind, typ              string
		stage                  int
		seed                   string
		timeout                int // veto window seconds
		startStatus            string
		outcome, decision      string // the close
		wantDecision, decided  string
		wantState, wantStatus  string
		openStatus             string
		wantTimeout            int
		wantOnTimeout          string
		entryOutcome, entryHas string
		seedCount              int
	}{
		{name: "deployment approved", kind: "blocking", typ: "deployment", stage: 6, outcome: "callback", decision: "approve",
			openStatus: "awaiting_approval", wantTimeout: 14400, wantOnTimeout: "deny",
			wantDecision: "approved", decided: "user:gov", wantState: "decided", wantStatus: "deploying", entryOutcome: "approved", entryHas: "deployment approved by user:gov"},
		{name: "deployment denied", kind: "blocking", typ: "deployment", stage: 6, outcome: "callback", decision: "deny",
			openStatus: "awaiting_approval", wantTimeout: 14400, wantOnTimeout: "deny",
			wantDecision: "denied", decided: "user:gov", wantState: "decided", wantStatus: "denied", entryOutcome: "denied", entryHas: "deployment denied by user:gov"},
		{name: "deployment timed out", kind: "blocking", typ: "deployment", stage: 6, outcome: "timeout",
			openStatus: "awaiting_approval", wantTimeout: 14400, wantOnTimeout: "deny",
			wantDecision: "denied", decided: "timeout", wantState: "expired", wantStatus: "denied", entryOutcome: "denied", entryHas: "no decision within 4 h"},
		{name: "escalation approved", kind: "blocking", typ: "constitutional", stage: 5, outcome: "callback", decision: "approve",
			openStatus: "awaiting_approval", wantTimeout: 86400, wantOnTimeout: "deny",
			wantDecision: "approved", decided: "user:gov", wantState: "decided", wantStatus: "running", entryOutcome: "approved", entryHas: "escalation approved by user:gov"},
		{name: "reclassification denied", kind: "blocking", typ: "constitutional", stage: 3, outcome: "callback", decision: "deny",
			openStatus: "awaiting_approval", wantTimeout: 86400, wantOnTimeout: "deny",
			wantDecision: "denied", decided: "user:gov", wantState: "decided", wantStatus: "denied", entryOutcome: "denied", entryHas: "escalation denied by user:gov"},
		{name: "veto window passes", kind: "veto_window", typ: "deployment", stage: 6, seed: "GEN-004", timeout: 86400, startStatus: "deploying", outcome: "timeout",
			openStatus: "veto_window", wantTimeout: 86400, wantOnTimeout: "implicit",
			wantDecision: "implicit", decided: "timeout", wantState: "implicit", wantStatus: "veto_window", entryOutcome: "implicit", entryHas: "implicit approval after 24 h, no veto"},
		{name: "vetoed", kind: "veto_window", typ: "deployment", stage: 6, seed: "GEN-004", timeout: 86400, startStatus: "deploying", outcome: "callback", decision: "veto",
			openStatus: "veto_window", wantTimeout: 86400, wantOnTimeout: "implicit",
			wantDecision: "vetoed", decided: "user:gov", wantState: "decided", wantStatus: "vetoed", entryOutcome: "vetoed", entryHas: "deployment vetoed by user:gov", seedCount: 1},
	}
	type sent struct{ request, approval, decision string }
	var all []sent
	for i, tc := range cases {
		id := fmt.Sprintf("req-apv-%d", i)
		t.Run(tc.name, func(t *testing.T) {
			h.request(t, id, healthcareSpec())
			var open genesis.OpenAnswer
			h.post(t, "/v1/approvals", openBody(id, tc.kind, tc.typ, tc.stage, tc.seed, tc.timeout, time.Hour)).into(t, &open)
			wantID := agentreq.ApprovalID(id, tc.kind, tc.typ, 1)
			deadline := atPlus(time.Hour + time.Duration(tc.wantTimeout)*time.Second)
			if open != (genesis.OpenAnswer{ApprovalID: wantID, TimeoutSeconds: tc.wantTimeout, OnTimeout: tc.wantOnTimeout, Deadline: deadline}) {
				t.Errorf("open answered %+v; want %s, %d s, %s, %s", open, wantID, tc.wantTimeout, tc.wantOnTimeout, deadline)
			}
			p := h.projection(t, id)
			if p.Status != tc.openStatus || p.Approval == nil || p.Approval.ApprovalID != wantID || p.Approval.Deadline != deadline || p.Approval.State != "pending" {
				t.Errorf("while open: status %s approval %+v", p.Status, p.Approval)
			}
			var closed genesis.CloseAnswer
			h.post(t, "/v1/approvals/"+wantID+":close", closeBody(id, tc.outcome, tc.decision, 2*time.Hour)).into(t, &closed)
			if closed != (genesis.CloseAnswer{ApprovalID: wantID, Decision: tc.wantDecision, DecidedBy: tc.decided, Status: tc.wantStatus}) {
				t.Errorf("close answered %+v; want %s by %s, status %s", closed, tc.wantDecision, tc.decided, tc.wantStatus)
			}
			a := h.approval(t, wantID)
			if a.State != tc.wantState || a.Decision != tc.wantDecision || a.DecidedBy != tc.decided || a.ClosedAt != atPlus(2*time.Hour) {
				t.Errorf("approval %+v; want state %s decision %s by %s", a, tc.wantState, tc.wantDecision, tc.decided)
			}
			p = h.projection(t, id)
			if p.Status != tc.wantStatus || len(p.Stages) != 1 || p.Approval.State != tc.wantState {
				t.Fatalf("after close: status %s stages %+v approval %+v", p.Status, p.Stages, p.Approval)
			}
			e := p.Stages[0]
			if e.Stage != tc.stage || e.Outcome != tc.entryOutcome || !strings.Contains(strings.Join(e.Reasons, "; "), tc.entryHas) {
				t.Errorf("entry %+v; want stage %d %s with %q", e, tc.stage, tc.entryOutcome, tc.entryHas)
			}
			if agentreq.Terminal(tc.wantStatus) && p.Reason == "" {
				t.Errorf("terminal status %s without a reason", p.Status)
			}
			all = append(all, sent{id, wantID, tc.wantDecision})
		})
	}
	var seeds genesis.SeedsAnswer
	h.get(t, "/v1/seeds").into(t, &seeds)
	for _, s := range seeds.Seeds {
		if s.SeedID == "GEN-004" && (s.FalsePositiveCount != 1 || s.Flagged) {
			t.Errorf("GEN-004 after one veto: %+v", s)
		}
	}
	got := h.drain(t)
	decisions := map[string]string{}
	for _, p := range got["decisions"] {
		var d struct {
			Decision, DecidedAt string
			SeedsCited          []string `json:"seeds_cited"`
		}
		if err := json.Unmarshal(p.Data, &d); err != nil {
			t.Fatal(err)
		}
		decisions[p.orderingKey] = d.Decision
		if p.EventID != agentreq.EventID("decisions/"+p.orderingKey) {
			t.Errorf("decision event id %s is not derived from its approval", p.EventID)
		}
	}
	opened := map[string]bool{}
	for _, p := range got["approvals"] {
		opened[p.orderingKey] = true
	}
	a := audits(t, got)
	for _, s := range all {
		if decisions[s.approval] != s.decision || !opened[s.approval] {
			t.Errorf("%s: published decision %q (want %q), approval request published: %v", s.request, decisions[s.approval], s.decision, opened[s.approval])
		}
		checkAudit(t, a, s.approval+"_open", "approval_opened", "opened", true)
		checkAudit(t, a, s.approval+"_close", "approval_closed", s.decision, false)
	}
}

// TestCloseOnce: a second close, even with another body, answers the first decision; two
// concurrent closes of one approval make one record and count one false positive.
func TestCloseOnce(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name       string
		concurrent bool
		second     map[string]any // the other close's outcome and decision
	}{
		{"sequential, then a timeout", false, map[string]any{"outcome": "timeout"}},
		{"concurrent vetoes", true, map[string]any{"outcome": "callback", "decision": "veto"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("req-once-%d", i)
			h.request(t, id, healthcareSpec())
			var open genesis.OpenAnswer
			h.post(t, "/v1/approvals", openBody(id, "veto_window", "deployment", 6, "GEN-004", 86400, 0)).into(t, &open)
			path := "/v1/approvals/" + open.ApprovalID + ":close"
			second, _ := tc.second["decision"].(string)
			bodies := []map[string]any{closeBody(id, "callback", "veto", time.Hour), closeBody(id, tc.second["outcome"].(string), second, 24*time.Hour)}
			answers := make([]answer, len(bodies))
			if tc.concurrent {
				var wg sync.WaitGroup
				for j := range bodies {
					wg.Go(func() { answers[j] = h.post(t, path, bodies[j]) })
				}
				wg.Wait()
			} else {
				for j := range bodies {
					answers[j] = h.post(t, path, bodies[j])
				}
			}
			if answers[0].status != http.StatusOK || string(answers[0].body) != string(answers[1].body) {
				t.Fatalf("closes answered differently:\n%d %s\n%d %s", answers[0].status, answers[0].body, answers[1].status, answers[1].body)
			}
			var c genesis.CloseAnswer
			answers[0].into(t, &c)
			if c.Decision != "vetoed" {
				t.Errorf("decision %s, want the veto", c.Decision)
			}
			if n := h.records(t, id); n != 2 { // the open and one close
				t.Errorf("%d records, want 2", n)
			}
			if p := h.projection(t, id); len(p.Stages) != 1 || p.Status != "vetoed" {
				t.Errorf("status %s, %d stage entries; want vetoed and 1: %+v", p.Status, len(p.Stages), p.Stages)
			}
		})
	}
	var seeds genesis.SeedsAnswer
	h.get(t, "/v1/seeds").into(t, &seeds)
	i := slices.IndexFunc(seeds.Seeds, func(s genesis.SeedView) bool { return s.SeedID == "GEN-004" })
	if i < 0 || seeds.Seeds[i].FalsePositiveCount != len(cases) {
		t.Errorf("seeds %+v; want GEN-004 counting one false positive per vetoed approval (%d)", seeds.Seeds, len(cases))
	}
	vetoes := map[string]int{}
	for _, p := range h.drain(t)["decisions"] {
		vetoes[p.EventID]++
	}
	if len(vetoes) != len(cases) {
		t.Errorf("decision event ids %v; want one id per approval", vetoes)
	}
}
