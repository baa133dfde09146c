package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/apiclient"
)

// party is one engagement with its people: a fresh engagement per scenario keeps each
// scenario's audit stream its own.
type party struct {
	eng        string
	admin, gov *apiclient.Client
	mgr        *apiclient.Client
	l          *apiclient.Local
}

func randomID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func newParty(t testing.TB, ctx context.Context) party {
	t.Helper()
	l := shared.client()
	p := party{eng: randomID("eng-"), l: l}
	var err error
	if p.admin, err = l.As("admin", "admin-1", ""); err != nil {
		t.Fatal(err)
	}
	gov := "gov-" + p.eng
	if p.gov, err = l.As("governor", gov, p.eng); err != nil {
		t.Fatal(err)
	}
	if p.mgr, err = l.As("manager", "mgr-"+p.eng, p.eng); err != nil {
		t.Fatal(err)
	}
	if code, err := p.admin.CreateEngagement(ctx, p.eng, gov); err != nil || code != http.StatusCreated {
		t.Fatalf("create engagement %s: %d %v", p.eng, code, err)
	}
	// The stack's webhook client reports the engagement's agents' health.
	if code, err := p.admin.BindClient(ctx, p.eng, l.WebhookClient); err != nil || code != http.StatusCreated {
		t.Fatalf("bind %s to %s: %d %v", l.WebhookClient, p.eng, code, err)
	}
	return p
}

// refresh takes the stack's current client (after a restart its ports may differ).
func (p *party) refresh(t testing.TB) {
	t.Helper()
	l := shared.client()
	p.l = l
	for _, c := range []*apiclient.Client{p.admin, p.gov, p.mgr} {
		c.Gateway, c.Workflows, c.Control = l.Gateway, l.Workflows, l.Control
	}
}

func (p party) submit(t *testing.T, ctx context.Context, spec, wow map[string]any) string {
	t.Helper()
	sub, err := p.mgr.Submit(ctx, randomID("key-"), spec, wow)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if sub.RequestID == "" || sub.Execution == "" || sub.Status != "running" {
		t.Fatalf("submit answered %+v", sub)
	}
	return sub.RequestID
}

// wait waits for one of statuses; a healthy report goes out once the agent is deploying
// when healthy is set.
func (p party) wait(t *testing.T, ctx context.Context, id string, healthy bool, statuses ...string) apiclient.Request {
	t.Helper()
	sent := false
	r, err := p.mgr.WaitFor(ctx, id, func(r apiclient.Request) bool {
		if healthy && !sent && r.Status == "deploying" && r.AgentID != "" {
			if err := p.l.Health(ctx, r.AgentID, p.eng, "healthy", time.Now()); err == nil {
				sent = true
			}
		}
		return slices.Contains(statuses, r.Status)
	})
	if err != nil {
		t.Fatalf("waiting for %v: %v", statuses, err)
	}
	return r
}

// decide decides as c; a Governor set a moment ago may take the policy a few seconds to see.
func decide(t *testing.T, ctx context.Context, c *apiclient.Client, approvalID, decision string) (apiclient.Decided, error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := c.Decide(ctx, approvalID, decision, "e2e: "+decision)
		if apiclient.StatusOf(err) == http.StatusForbidden && strings.Contains(err.Error(), "no Governor on record") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		return d, err
	}
}

func outcomes(r apiclient.Request) []string {
	var out []string
	for _, s := range r.Stages {
		out = append(out, s.Name+":"+s.Outcome)
	}
	return out
}

// checkStream waits until the engagement's audit stream holds every action named, then
// verifies the chain.
func (p party) checkStream(t *testing.T, ctx context.Context, actions ...string) []apiclient.Entry {
	t.Helper()
	var entries []apiclient.Entry
	var missing []string
	for {
		var err error
		entries, err = p.gov.Entries(ctx, p.eng, 0)
		missing = missing[:0]
		if err == nil {
			have := map[string]bool{}
			for _, e := range entries {
				have[e.Action] = true
			}
			for _, a := range actions {
				if !have[a] {
					missing = append(missing, a)
				}
			}
			if len(missing) == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s: still missing %v after waiting (last error %v); it holds %d entries", p.eng, missing, err, len(entries))
		case <-time.After(100 * time.Millisecond):
		}
	}
	rep, err := p.gov.Verify(ctx, p.eng)
	if err != nil {
		t.Fatalf("verify %s: %v", p.eng, err)
	}
	if !rep.OK || rep.Entries < int64(len(entries)) {
		t.Fatalf("stream %s does not verify: %+v", p.eng, rep)
	}
	return entries
}

var stagesOneToFive = []string{"stage_1_specification", "stage_2_way_of_working", "stage_3_genesis_certification",
	"stage_4_architecture_review", "stage_5_ethics_review"}

func steps(extra ...string) []string { return append(slices.Clone(stagesOneToFive), extra...) }

// pendingApproval waits for the request to await the Governor and checks the approval is
// listed for the engagement's Governor.
func (p party) pendingApproval(t *testing.T, ctx context.Context, id, typ string) apiclient.Approval {
	t.Helper()
	r := p.wait(t, ctx, id, false, "awaiting_approval")
	if r.Approval == nil || r.Approval.Kind != "blocking" || r.Approval.Type != typ || r.Approval.Deadline == "" {
		t.Fatalf("awaiting approval shows %+v; want a blocking %s approval with a deadline", r.Approval, typ)
	}
	list, err := p.gov.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(list, func(a apiclient.Approval) bool { return a.ApprovalID == r.Approval.ApprovalID && a.RequestID == id }) {
		t.Fatalf("approval %s not in the Governor's pending list %+v", r.Approval.ApprovalID, list)
	}
	return *r.Approval
}

// TestAgentCreation runs every path of agent creation through the running stack. Paths that
// leave the Workflows emulator's clock alone run in parallel; those that move it run one at
// a time afterwards, since the clock is the stack's.
func TestAgentCreation(t *testing.T) {
	t.Run("clock-free", func(t *testing.T) {
		t.Run("blocking path approved then deployed", testBlockingApproved)
		t.Run("blocking path denied", testBlockingDenied)
		t.Run("missing spec fields rejected naming each", testMissingFields)
		t.Run("way of working incomplete three times rejected", testThreeRevisions)
		t.Run("guardian escalation opens a constitutional approval", testEscalation)
		t.Run("another engagement's Governor is refused", testOtherGovernor)
		t.Run("two concurrent decisions: one wins", testConcurrentDecisions)
		t.Run("same idempotency key twice: one execution", testIdempotency)
	})
}

func testBlockingApproved(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 2*time.Minute)
	p := newParty(t, ctx)
	id := p.submit(t, ctx, apiclient.LowRiskSpec(p.eng, "Catalogue writer"), apiclient.WayOfWorking())
	ap := p.pendingApproval(t, ctx, id, "deployment")
	d, err := decide(t, ctx, p.gov, ap.ApprovalID, "approve")
	if err != nil || d.Decision == "" || d.DecidedBy == "" {
		t.Fatalf("approve: %+v %v", d, err)
	}
	r := p.wait(t, ctx, id, true, "deployed", "failed")
	want := []string{"specification:accepted", "way_of_working:complete", "certification:certified",
		"architecture_review:approved", "ethics_review:cleared", "governor_approval:awaiting_approval", "governor_approval:approved", "deploy:deploying", "deploy:deployed"}
	for _, s := range r.Stages {
		if s.Reasons == nil || s.At == "" {
			t.Errorf("stage %d shows reasons %v at %q; want a list (maybe empty) and a time", s.Stage, s.Reasons, s.At)
		}
	}
	if r.Status != "deployed" || !slices.Equal(outcomes(r), want) || r.AgentID == "" {
		t.Fatalf("request = %s %v agent %q; want deployed %v with an agent id", r.Status, outcomes(r), r.AgentID, want)
	}
	p.checkStream(t, ctx, steps("stage_6_governor_approval", "stage_7_deploy")...)
}

func testBlockingDenied(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 2*time.Minute)
	p := newParty(t, ctx)
	id := p.submit(t, ctx, apiclient.LowRiskSpec(p.eng, "Catalogue writer"), apiclient.WayOfWorking())
	ap := p.pendingApproval(t, ctx, id, "deployment")
	if _, err := decide(t, ctx, p.gov, ap.ApprovalID, "deny"); err != nil {
		t.Fatalf("deny: %v", err)
	}
	r := p.wait(t, ctx, id, false, "denied")
	if r.AgentID != "" || slices.ContainsFunc(r.Stages, func(s apiclient.Stage) bool { return s.Stage == 7 }) {
		t.Fatalf("a denied request reached stage 7: %+v", r)
	}
	if _, err := decide(t, ctx, p.gov, ap.ApprovalID, "approve"); apiclient.StatusOf(err) != http.StatusConflict {
		t.Errorf("deciding a decided approval: %v, want 409", err)
	}
	p.checkStream(t, ctx, steps("stage_6_governor_approval")...)
}

func testMissingFields(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, time.Minute)
	p := newParty(t, ctx)
	spec := apiclient.LowRiskSpec(p.eng, "Half a spec")
	for _, f := range []string{"agent_name", "purpose", "industry"} {
		delete(spec, f)
	}
	id := p.submit(t, ctx, spec, apiclient.WayOfWorking())
	r := p.wait(t, ctx, id, false, "rejected")
	if len(r.Stages) != 1 || r.Stages[0].Stage != 1 || r.Stages[0].Outcome != "rejected" {
		t.Fatalf("stages %v; want only stage 1 rejected", outcomes(r))
	}
	reasons := strings.Join(r.Stages[0].Reasons, "\n")
	for _, f := range []string{"agent_name", "purpose", "industry"} {
		if !strings.Contains(reasons, f) {
			t.Errorf("stage 1 reasons %q do not name %s", reasons, f)
		}
	}
	if strings.Contains(reasons, "engagement_id") || strings.Contains(reasons, "scope_boundaries") {
		t.Errorf("stage 1 reasons %q name a field that is present", reasons)
	}
	p.checkStream(t, ctx, "stage_1_specification")
}

func testThreeRevisions(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 2*time.Minute)
	p := newParty(t, ctx)
	spec := apiclient.LowRiskSpec(p.eng, "Patchy worker")
	wow := apiclient.WayOfWorking()
	delete(wow, "integrations")
	id := p.submit(t, ctx, spec, wow)
	for round := 1; round <= 2; round++ {
		r := p.wait(t, ctx, id, false, "needs_revision", "rejected")
		if r.Status != "needs_revision" {
			t.Fatalf("round %d: %s %v; want needs_revision", round, r.Status, outcomes(r))
		}
		last := r.Stages[len(r.Stages)-1]
		if last.Stage != 2 || last.Outcome != "revise" || !strings.Contains(strings.Join(last.Reasons, " "), "integrations") {
			t.Fatalf("round %d: last stage %+v; want stage 2 revise naming integrations", round, last)
		}
		if err := p.mgr.Revise(ctx, id, spec, wow); err != nil {
			t.Fatalf("round %d: revise: %v", round, err)
		}
		p.mgr.WaitFor(ctx, id, func(r apiclient.Request) bool { return r.Status != "needs_revision" })
	}
	r := p.wait(t, ctx, id, false, "rejected")
	n := 0
	for _, s := range r.Stages {
		if s.Stage == 2 {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("stage 2 ran %d times (%v); want 3", n, outcomes(r))
	}
	if err := p.mgr.Revise(ctx, id, spec, apiclient.WayOfWorking()); apiclient.StatusOf(err) != http.StatusConflict {
		t.Errorf("revising a rejected request: %v, want 409", err)
	}
	p.checkStream(t, ctx, "stage_1_specification", "stage_2_way_of_working")
}

func testEscalation(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 2*time.Minute)
	p := newParty(t, ctx)
	spec := apiclient.LowRiskSpec(p.eng, "Youth club helper")
	spec["risk_flags"] = []any{"works_with_minors"}
	id := p.submit(t, ctx, spec, apiclient.WayOfWorking())
	ap := p.pendingApproval(t, ctx, id, "constitutional")
	r, _ := p.mgr.Get(ctx, id)
	if last := r.Stages[len(r.Stages)-1]; last.Stage != 5 || last.Outcome != "escalate" {
		t.Fatalf("last stage %+v; want stage 5 escalate", last)
	}
	if _, err := decide(t, ctx, p.gov, ap.ApprovalID, "approve"); err != nil {
		t.Fatalf("approve the escalation: %v", err)
	}
	dep := p.pendingApproval(t, ctx, id, "deployment")
	if dep.ApprovalID == ap.ApprovalID {
		t.Fatal("stage 6 reused the constitutional approval")
	}
	if _, err := decide(t, ctx, p.gov, dep.ApprovalID, "deny"); err != nil {
		t.Fatal(err)
	}
	p.wait(t, ctx, id, false, "denied")
	p.checkStream(t, ctx, steps("stage_6_governor_approval")...)
}

func testOtherGovernor(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 2*time.Minute)
	p := newParty(t, ctx)
	q := newParty(t, ctx)
	id := p.submit(t, ctx, apiclient.LowRiskSpec(p.eng, "Catalogue writer"), apiclient.WayOfWorking())
	ap := p.pendingApproval(t, ctx, id, "deployment")
	_, err := decide(t, ctx, q.gov, ap.ApprovalID, "approve")
	if apiclient.StatusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "not the Governor") {
		t.Fatalf("another engagement's Governor: %v; want 403 saying why", err)
	}
	if list, err := q.gov.Pending(ctx); err != nil || slices.ContainsFunc(list, func(a apiclient.Approval) bool { return a.ApprovalID == ap.ApprovalID }) {
		t.Fatalf("another engagement's Governor lists %+v (%v)", list, err)
	}
	if _, err := q.gov.Get(ctx, id); apiclient.StatusOf(err) != http.StatusForbidden {
		t.Errorf("another engagement's Governor reads the request: %v; want 403", err)
	}
	if _, err := decide(t, ctx, p.gov, ap.ApprovalID, "deny"); err != nil {
		t.Fatal(err)
	}
	p.wait(t, ctx, id, false, "denied")
	p.checkStream(t, ctx, steps("stage_6_governor_approval", "approval_closed")...)
}

func testConcurrentDecisions(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 2*time.Minute)
	p := newParty(t, ctx)
	id := p.submit(t, ctx, apiclient.LowRiskSpec(p.eng, "Catalogue writer"), apiclient.WayOfWorking())
	ap := p.pendingApproval(t, ctx, id, "deployment")
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, d := range []string{"approve", "deny"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := decide(t, ctx, p.gov, ap.ApprovalID, d)
			codes[i] = apiclient.StatusOf(err)
		}()
	}
	wg.Wait()
	slices.Sort(codes)
	if codes[0] != 0 || codes[1] != http.StatusConflict {
		t.Fatalf("concurrent decisions answered %v; want one 200 (0 here) and one 409", codes)
	}
	r := p.wait(t, ctx, id, true, "deployed", "denied")
	p.checkStream(t, ctx, steps("stage_6_governor_approval")...)
	_ = r
}

func testIdempotency(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, time.Minute)
	p := newParty(t, ctx)
	spec, wow := apiclient.LowRiskSpec(p.eng, "Once only"), apiclient.WayOfWorking()
	key := randomID("key-")
	a, err := p.mgr.Submit(ctx, key, spec, wow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.mgr.Submit(ctx, key, spec, wow)
	if err != nil || b.RequestID != a.RequestID || b.Execution != a.Execution {
		t.Fatalf("same key and body: %+v then %+v (%v); want the same answer", a, b, err)
	}
	other := apiclient.LowRiskSpec(p.eng, "Another name")
	if _, err := p.mgr.Submit(ctx, key, other, wow); apiclient.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %v; want 422", err)
	}
	if _, err := p.mgr.Submit(ctx, "", spec, wow); apiclient.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("no Idempotency-Key: %v; want 400", err)
	}
	bad := apiclient.LowRiskSpec(p.eng, "Typed wrong")
	bad["scope_boundaries"] = "not a list"
	if _, err := p.mgr.Submit(ctx, randomID("key-"), bad, wow); apiclient.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "scope_boundaries") {
		t.Errorf("a wrong type: %v; want 400 naming scope_boundaries", err)
	}
	if n := executionsOf(t, ctx, a.RequestID); n != 1 {
		t.Errorf("%d executions carry request_id %s; want 1", n, a.RequestID)
	}
	p.pendingApproval(t, ctx, a.RequestID, "deployment")
	p.checkStream(t, ctx, steps("stage_6_governor_approval")...)
}

// executionsOf counts the agent_creation executions labelled with a request id, through
// the Executions API.
func executionsOf(t testing.TB, ctx context.Context, requestID string) int {
	t.Helper()
	l := shared.client()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		l.Workflows+"/v1/projects/waooaw-local/locations/asia-south1/workflows/agent_creation/executions?pageSize=1000&view=FULL", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Executions []struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"executions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range out.Executions {
		if e.Labels["request_id"] == strings.ToLower(requestID) {
			n++
		}
	}
	return n
}
