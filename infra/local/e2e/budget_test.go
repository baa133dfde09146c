package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/stack"
	"waooaw.dev/governance/shared/events"
)

// budgetView is what the guard's GET /v1/budget answers (shared/budget State).
type budgetView struct {
	State       string  `json:"state"`
	Month       string  `json:"month"`
	SpendUSD    float64 `json:"spend_usd"`
	AISpendUSD  float64 `json:"ai_spend_usd"`
	BillingUSD  float64 `json:"billing_cost_usd"`
	Transitions int64   `json:"transitions"`
}

type budgetRun struct {
	ep  stack.Endpoints
	ps  *pubsub.Client
	pub *pubsub.Publisher
}

func (b *budgetRun) state(t *testing.T, ctx context.Context) budgetView {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.ep.Functions["budgetguard"]+"/v1/budget", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v budgetView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/budget: %d %v", resp.StatusCode, err)
	}
	return v
}

// waitState polls the guard until until holds.
func (b *budgetRun) waitState(t *testing.T, ctx context.Context, what string, until func(budgetView) bool) budgetView {
	t.Helper()
	for {
		v := b.state(t, ctx)
		if until(v) {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: the budget is %+v", what, v)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notify publishes a budget notification on budget_alerts as Cloud Billing does: its own
// JSON, no envelope, the billing attributes.
func (b *budgetRun) notify(t *testing.T, ctx context.Context, interval time.Time, cost float64) {
	t.Helper()
	n := map[string]any{"budgetDisplayName": "waooaw-governance", "costAmount": cost, "costIntervalStart": interval.Format(time.RFC3339),
		"budgetAmount": 100.0, "budgetAmountType": "SPECIFIED_AMOUNT", "currencyCode": "USD"}
	if cost >= 50 {
		n["alertThresholdExceeded"] = float64(int(cost/10)) / 10
	}
	data, _ := json.Marshal(n)
	attrs := map[string]string{"billingAccountId": "01D4EE-079462-DFD6EC", "budgetId": "e2e-budget", "schemaVersion": "1.0"}
	if _, err := b.pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}).Get(ctx); err != nil {
		t.Fatalf("publish %v %%: %v", cost, err)
	}
}

// TestBudget plays a month of billing notifications through the running stack: 50 %, 80 %,
// 80 % again, 95 %, 70 % (late), 100 %, then a new month. The platform goes normal → alert
// → suspended → halted → normal, each transition once on the platform stream; the alert's
// approval request is listed for the platform's Governor, a deployed customer agent is
// suspended, and while halted a manager's request is refused naming the budget while the
// Governor still decides. It changes platform-wide state, so it runs alone (no t.Parallel)
// and leaves the platform normal, in a new month.
func TestBudget(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	shared.mu.Lock()
	raw, err := os.ReadFile(filepath.Join(shared.state, stack.EndpointsFile))
	shared.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	b := &budgetRun{}
	if err := json.Unmarshal(raw, &b.ep); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PUBSUB_EMULATOR_HOST", b.ep.PubSub)
	if b.ps, err = pubsub.NewClient(ctx, stack.Project); err != nil {
		t.Fatal(err)
	}
	defer b.ps.Close()
	b.pub = b.ps.Publisher(events.TopicBudgetAlerts)
	defer b.pub.Stop()

	// A customer agent, deployed and live, for the suspension to reach.
	p := newParty(t, ctx)
	id := p.submit(t, ctx, apiclient.LowRiskSpec(p.eng, "Budget probe"), apiclient.WayOfWorking())
	ap := p.pendingApproval(t, ctx, id, "deployment")
	if _, err := decide(t, ctx, p.gov, ap.ApprovalID, "approve"); err != nil {
		t.Fatal(err)
	}
	agent := p.wait(t, ctx, id, true, "deployed").AgentID
	waitAgent(t, ctx, b.ep, agent, "live")

	// The platform's Governor, who decides the platform's own approvals.
	govP, err := p.l.As("governor", "gov-platform", "platform")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.admin.CreateEngagement(ctx, "platform", "gov-platform"); err != nil || (code != http.StatusCreated && code != http.StatusOK) {
		t.Fatalf("assign the platform's Governor: %d %v", code, err)
	}

	// The month played: the month after the later of now and the guard's, so nothing of
	// earlier tests (AI spend of this month) counts as a newer month; then the one after.
	start := b.state(t, ctx)
	base := time.Now().UTC()
	if m, err := time.Parse("2006-01", start.Month); err == nil && m.After(base) {
		base = m
	}
	month := time.Date(base.Year(), base.Month()+1, 1, 8, 0, 0, 0, time.UTC) // midnight Pacific, as billing starts it
	next := time.Date(base.Year(), base.Month()+2, 1, 8, 0, 0, 0, time.UTC)
	m1, m2 := month.Format("2006-01"), next.Format("2006-01")
	platformAfter := int64(0)
	if es, err := govP.Entries(ctx, "platform", 0); err == nil && len(es) > 0 {
		platformAfter = es[len(es)-1].Seq
	}

	b.notify(t, ctx, month, 50)
	b.waitState(t, ctx, "50 %", func(v budgetView) bool { return v.Month == m1 && v.BillingUSD == 50 && v.State == "normal" })
	b.notify(t, ctx, month, 80)
	b.waitState(t, ctx, "alert", func(v budgetView) bool { return v.Month == m1 && v.State == "alert" })
	b.notify(t, ctx, month, 80)
	b.notify(t, ctx, month, 95)
	b.waitState(t, ctx, "suspended", func(v budgetView) bool { return v.Month == m1 && v.State == "suspended" })
	waitAgent(t, ctx, b.ep, agent, "suspended")
	b.notify(t, ctx, month, 70)

	// AI spend of the month adds to the bill.
	before := b.state(t, ctx).SpendUSD
	spendPub := b.ps.Publisher(events.TopicSpendEvents)
	defer spendPub.Stop()
	e := events.Envelope{EventID: randomID("spend-"), Type: "waooaw.spend.ai_tokens", Source: "//waooaw/ai",
		Time: month.Add(time.Hour).Format(time.RFC3339), Actor: "agent:" + agent, AgentID: agent, EngagementID: p.eng}
	e.CorrelationID = e.EventID
	e.Data, _ = json.Marshal(map[string]any{"kind": "ai_tokens", "engagement_id": p.eng, "agent_id": agent, "execution_id": "exe-e2e",
		"provider": "groq", "model": "e2e", "prompt_tokens": 1000, "completion_tokens": 200, "cost_usd": 1.5, "reserved_usd": 1.5,
		"observed_at": month.Add(time.Hour).Format(time.RFC3339)})
	data, err := events.Encode(events.TopicSpendEvents, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spendPub.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	b.waitState(t, ctx, "the AI spend counted", func(v budgetView) bool { return v.AISpendUSD >= 1.5 && v.SpendUSD >= before+1.5 })

	sent := time.Now()
	b.notify(t, ctx, month, 100)
	b.waitState(t, ctx, "halted", func(v budgetView) bool { return v.Month == m1 && v.State == "halted" })

	// Halted: a manager's new request is refused naming the budget, within 10 s of the
	// notification; the platform's Governor still lists and decides.
	var refusal error
	for {
		_, refusal = p.mgr.Submit(ctx, randomID("halted-"), apiclient.LowRiskSpec(p.eng, "Refused while halted"), apiclient.WayOfWorking())
		if apiclient.StatusOf(refusal) == http.StatusForbidden && strings.Contains(refusal.Error(), "budget halted") {
			break
		}
		if time.Since(sent) > 10*time.Second {
			t.Fatalf("10 s after the 100 %% notification a manager's request is answered %v, want 403 naming the budget", refusal)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("halt enforced by the gateway %v after the notification was published", time.Since(sent).Round(time.Millisecond))
	pending, err := govP.Pending(ctx)
	if err != nil {
		t.Fatalf("the platform's Governor lists approvals while halted: %v", err)
	}
	approval := "apv-budget-" + m1
	if !slices.ContainsFunc(pending, func(a apiclient.Approval) bool { return a.ApprovalID == approval && a.Type == "financial" }) {
		t.Fatalf("approval %s not pending for the platform's Governor: %+v", approval, pending)
	}
	if _, err := decide(t, ctx, govP, approval, "approve"); err != nil {
		t.Fatalf("the platform's Governor decides while halted: %v", err)
	}

	// A new month: normal again, and a manager passes the budget.
	b.notify(t, ctx, next, 1)
	end := b.waitState(t, ctx, "a new month", func(v budgetView) bool { return v.Month == m2 && v.State == "normal" })

	// Each transition once on the platform stream.
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		es, err := govP.Entries(ctx, "platform", platformAfter)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range es {
			// A state other than normal before the played month is reset on entering it:
			// that transition is not the month's.
			if e.EventType == "waooaw.budget.transition" && ((e.Context["month"] == m1 && e.Context["to"] != "normal") || e.Context["month"] == m2) {
				got = append(got, e.Context["from"]+">"+e.Context["to"])
			}
		}
		if len(got) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := []string{"normal>alert", "alert>suspended", "suspended>halted", "halted>normal"}
	if !slices.Equal(got, want) {
		t.Fatalf("platform stream transitions %v, want %v (final %+v)", got, want, end)
	}
	if rep, err := govP.Verify(ctx, "platform"); err != nil || !rep.OK {
		t.Fatalf("platform stream verification: %+v %v", rep, err)
	}
}

// waitAgent polls the registry (a private function, reached locally) until the agent is in
// state.
func waitAgent(t *testing.T, ctx context.Context, ep stack.Endpoints, agent, state string) {
	t.Helper()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ep.Functions["registry"]+"/v1/agents/"+agent, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var v struct {
				Agent struct {
					State  string `json:"state"`
					Reason string `json:"reason"`
				} `json:"agent"`
			}
			json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			last = fmt.Sprintf("%s (%s)", v.Agent.State, v.Agent.Reason)
			if v.Agent.State == state {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("agent %s is %s, want %s", agent, last, state)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
