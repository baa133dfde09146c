package genesis_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/genesis"
	"waooaw.dev/governance/shared/agentreq"
)

// TestThreeVetoesFlagTheSeed: three requests auto-approved by GEN-004 and vetoed flag it; the
// next matching request waits for a blocking approval, its reasons saying the seed was skipped.
func TestThreeVetoesFlagTheSeed(t *testing.T) {
	h := newHarness(t)
	for i := range 3 {
		id := fmt.Sprintf("req-veto-%d", i)
		h.request(t, id, healthcareSpec())
		var v genesis.ApprovalVerdict
		h.post(t, "/v1/stages/governor_approval", stageBody(id, 1, healthcareSpec(), wayOfWorking())).into(t, &v)
		if v.Outcome != "auto_approved" || v.SeedID != "GEN-004" {
			t.Fatalf("request %d: %s %q before the seed is flagged", i, v.Outcome, v.SeedID)
		}
		var open genesis.OpenAnswer
		h.post(t, "/v1/approvals", openBody(id, "veto_window", "deployment", 6, v.SeedID, v.VetoWindowSeconds, 10*time.Minute)).into(t, &open)
		if open.ApprovalID != v.ApprovalID {
			t.Fatalf("veto window %s, stage 6 announced %s", open.ApprovalID, v.ApprovalID)
		}
		var c genesis.CloseAnswer
		h.post(t, "/v1/approvals/"+open.ApprovalID+":close", closeBody(id, "callback", "veto", 23*time.Hour)).into(t, &c)
		if c.Decision != "vetoed" || c.Status != "vetoed" {
			t.Fatalf("request %d: close %+v", i, c)
		}
		var seeds genesis.SeedsAnswer
		h.get(t, "/v1/seeds").into(t, &seeds)
		k := slices.IndexFunc(seeds.Seeds, func(s genesis.SeedView) bool { return s.SeedID == "GEN-004" })
		if s := seeds.Seeds[k]; s.FalsePositiveCount != i+1 || s.Flagged != (i+1 >= seeds.FalsePositiveFlagAt) {
			t.Errorf("after veto %d: GEN-004 %+v (flag at %d)", i+1, s, seeds.FalsePositiveFlagAt)
		}
	}
	id := "req-veto-next"
	h.request(t, id, healthcareSpec())
	var v genesis.ApprovalVerdict
	h.post(t, "/v1/stages/governor_approval", stageBody(id, 1, healthcareSpec(), wayOfWorking())).into(t, &v)
	if v.Outcome != "awaiting_approval" || v.SeedID != "" || v.ApprovalID != agentreq.ApprovalID(id, "blocking", "deployment", 1) {
		t.Fatalf("after three vetoes: %s; want a blocking approval", brief(v))
	}
	if r := strings.Join(v.Reasons, "; "); !strings.Contains(r, "GEN-004 matches but is flagged after 3 false positives") {
		t.Errorf("reasons %q do not say GEN-004 was skipped as flagged", r)
	}
	if p := h.projection(t, id); p.Status != "awaiting_approval" || p.Approval == nil || p.Approval.Kind != "blocking" {
		t.Errorf("projection %s %+v", p.Status, p.Approval)
	}
}

// TestFinishAndUndo: a terminal status the workflow reached without a verdict, once per
// request, never over another terminal one; the certification's undo, once per request.
func TestFinishAndUndo(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name       string
		start      string
		body       map[string]any
		wantStatus string
		wantReason string
	}{
		{"failed", "running", map[string]any{"status": "failed", "step": "stage_4_architecture_review", "reason": "HTTP 500 after 3 retries"},
			"failed", "stage_4_architecture_review: HTTP 500 after 3 retries"},
		{"rejected", "needs_revision", map[string]any{"status": "rejected", "step": "wait_for_revision", "reason": "no revision within 72 h"},
			"rejected", "wait_for_revision: no revision within 72 h"},
		{"already terminal", "denied", map[string]any{"status": "failed", "step": "stage_7_deploy", "reason": "late"},
			"denied", ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("req-fin-%d", i)
			h.request(t, id, retailSpec())
			if _, err := h.fs.Collection(agentreq.Requests).Doc(id).Update(t.Context(), []firestore.Update{{Path: "status", Value: tc.start}}); err != nil {
				t.Fatal(err)
			}
			body := map[string]any{"at": atPlus(time.Hour)}
			for k, v := range tc.body {
				body[k] = v
			}
			first := h.post(t, "/v1/requests/"+id+":finish", body)
			again := h.post(t, "/v1/requests/"+id+":finish", with(body, map[string]any{"reason": "another"}))
			var f genesis.FinishAnswer
			first.into(t, &f)
			if f.Status != tc.wantStatus || string(first.body) != string(again.body) {
				t.Errorf("finish answered %s then %s; want status %s twice", first.body, again.body, tc.wantStatus)
			}
			p := h.projection(t, id)
			if p.Status != tc.wantStatus || p.Reason != tc.wantReason {
				t.Errorf("projection %s %q; want %s %q", p.Status, p.Reason, tc.wantStatus, tc.wantReason)
			}

			undo := map[string]any{"request_id": id, "engagement_id": engagement, "at": atPlus(2 * time.Hour), "approval_id": "apv-x"}
			u1, u2 := h.post(t, "/v1/undo/certification", undo), h.post(t, "/v1/undo/certification", undo)
			var u genesis.UndoAnswer
			u1.into(t, &u)
			if u.Stage != 3 || u.Outcome != "undone" || string(u1.body) != string(u2.body) {
				t.Errorf("undo answered %s then %s", u1.body, u2.body)
			}
			p = h.projection(t, id)
			if want := []agentreq.Compensation{{Stage: 3, At: atPlus(2 * time.Hour)}}; !slices.Equal(p.Compensations, want) || p.Status != tc.wantStatus {
				t.Errorf("compensations %+v status %s; want %+v, status kept", p.Compensations, p.Status, want)
			}
			if n := h.records(t, id); n != 2 {
				t.Errorf("%d records, want the finish and the undo", n)
			}
		})
	}
	a := audits(t, h.drain(t))
	for i, tc := range cases {
		id := fmt.Sprintf("req-fin-%d", i)
		checkAudit(t, a, id+"_finish", tc.body["step"].(string), tc.body["status"].(string), false)
		checkAudit(t, a, agentreq.UndoKey(id, 3), "undo_stage_3_genesis_certification", "undone", false)
	}
}

// TestBadCalls: a call that can never succeed is a 400 naming what is wrong, and records
// nothing.
func TestBadCalls(t *testing.T) {
	h := newHarness(t)
	h.request(t, "req-bad", retailSpec())
	h.request(t, "req-bad-vw", healthcareSpec())
	var open genesis.OpenAnswer
	h.post(t, "/v1/approvals", openBody("req-bad-vw", "veto_window", "deployment", 6, "GEN-004", 86400, 0)).into(t, &open)
	blocking := openBody("req-bad", "blocking", "deployment", 6, "", 0, 0)
	good := stageBody("req-bad", 1, retailSpec(), wayOfWorking())
	cases := []struct {
		name, path string
		body       any
		want       string
	}{
		{"no request id", "/v1/stages/specification", with(good, map[string]any{"request_id": deleted}), "request_id is missing"},
		{"no engagement", "/v1/stages/way_of_working", with(good, map[string]any{"engagement_id": ""}), "engagement_id is missing"},
		{"round 0", "/v1/stages/certification", with(good, map[string]any{"round": 0}), "round must be 1 or more"},
		{"bad time", "/v1/stages/specification", with(good, map[string]any{"at": "yesterday"}), `at "yesterday"`},
		{"unknown request", "/v1/stages/specification", with(good, map[string]any{"request_id": "req-nobody"}), "unknown request"},
		{"other engagement", "/v1/stages/specification", with(good, map[string]any{"engagement_id": "eng-2"}), "belongs to engagement eng-1"},
		{"not JSON", "/v1/stages/specification", "{", "body"},
		{"revise without callback", "/v1/stages/way_of_working",
			with(good, map[string]any{"revision_callback": "", "way_of_working": map[string]any{}}), "revision_callback is missing"},
		{"industry not a string", "/v1/stages/certification", with(good, map[string]any{"spec": with(retailSpec(), map[string]any{"industry": 7})}), "spec.industry must be a string"},
		{"blocking without callback", "/v1/stages/governor_approval", with(good, map[string]any{"approval_callback": ""}), "approval_callback is missing"},
		{"risk flags not strings", "/v1/stages/governor_approval", with(good, map[string]any{"spec": with(retailSpec(), map[string]any{"risk_flags": []any{1}})}), "spec.risk_flags[0]"},
		{"open: kind", "/v1/approvals", with(blocking, map[string]any{"kind": "soon"}), `kind "soon"`},
		{"open: type", "/v1/approvals", with(blocking, map[string]any{"type": "lunch"}), `type "lunch" is not an approval type`},
		{"open: callback", "/v1/approvals", with(blocking, map[string]any{"callback_url": "not a url"}), "callback_url"},
		{"open: stage", "/v1/approvals", with(blocking, map[string]any{"stage": 9}), "stage 9"},
		{"open: veto window without length", "/v1/approvals", with(blocking, map[string]any{"kind": "veto_window", "seed_id": "GEN-004"}), "timeout_seconds"},
		{"open: veto window without seed", "/v1/approvals", with(blocking, map[string]any{"kind": "veto_window", "timeout_seconds": 60}), "seed_id"},
		{"close: unknown approval", "/v1/approvals/apv-nope:close", closeBody("req-bad", "timeout", "", 0), "apv-nope does not exist"},
		{"close: approve on a veto window", "/v1/approvals/" + open.ApprovalID + ":close", closeBody("req-bad-vw", "callback", "approve", 0), `takes veto, not decision "approve"`},
		{"close: outcome", "/v1/approvals/" + open.ApprovalID + ":close", closeBody("req-bad-vw", "maybe", "", 0), `outcome "maybe"`},
		{"close: no callback", "/v1/approvals/" + open.ApprovalID + ":close", map[string]any{"request_id": "req-bad-vw", "at": atPlus(0), "outcome": "callback"}, "callback is missing"},
		{"close: other request", "/v1/approvals/" + open.ApprovalID + ":close", closeBody("req-bad", "timeout", "", 0), "belongs to request req-bad-vw"},
		{"finish: status", "/v1/requests/req-bad:finish", map[string]any{"at": atPlus(0), "status": "deployed", "step": "x"}, `status "deployed"`},
		{"finish: step", "/v1/requests/req-bad:finish", map[string]any{"at": atPlus(0), "status": "failed"}, "step is missing"},
		{"finish: unknown request", "/v1/requests/req-nobody:finish", map[string]any{"at": atPlus(0), "status": "failed", "step": "x"}, "req-nobody does not exist"},
		{"undo: unknown request", "/v1/undo/certification", map[string]any{"request_id": "req-nobody", "engagement_id": engagement, "at": atPlus(0)}, "unknown request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			if s, ok := tc.body.(string); ok {
				resp, err := http.Post(h.url+tc.path, "application/json", strings.NewReader(s))
				if err != nil {
					t.Fatal(err)
				}
				a = readAnswer(t, resp)
			} else {
				a = h.post(t, tc.path, tc.body)
			}
			if a.status != http.StatusBadRequest || !strings.Contains(a.errMsg, tc.want) {
				t.Errorf("%d %q; want 400 naming %q", a.status, a.errMsg, tc.want)
			}
		})
	}
	if n := h.records(t, "req-bad"); n != 0 {
		t.Errorf("bad calls left %d records", n)
	}
	if n := h.records(t, "req-bad-vw"); n != 1 { // its open
		t.Errorf("bad closes left %d records besides the open", n-1)
	}
	if a := h.approval(t, open.ApprovalID); a.State != "pending" {
		t.Errorf("bad closes changed the veto window: %+v", a)
	}
}
