package budgetguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/functions/budgetguard"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
)

// harness is a guard on loopback, wired to the Firestore and Pub/Sub emulators in a fresh
// project whose subscriptions push to it as infrastructure.yaml provisions them, with a tap
// on the topics it publishes.
type harness struct {
	env *emulators.Env
	fs  *firestore.Client
	ps  *pubsub.Client
	tap *emulators.Tap
	url string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{env: emulators.ForTest(t)}
	h.fs, h.ps = h.env.Firestore(t), h.env.PubSub(t)
	pub := budgetguard.NewPublisher(h.ps)
	t.Cleanup(pub.Close)
	o := budgetguard.Options{Firestore: h.fs, Publisher: pub, Logger: logging.New(io.Discard, nil)}
	if testing.Verbose() {
		o.Logger = logging.New(os.Stderr, &logging.Options{Project: h.env.Project})
	}
	s, err := budgetguard.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.env.Provision(t, map[string]string{"budgetguard": h.url})
	h.tap = h.env.Tap(t, events.TopicAuditEvents, events.TopicApprovals, events.TopicHealthEvents)
	return h
}

// billing is a notification as Cloud Billing publishes it: its own JSON, no envelope, the
// threshold fields only once one is crossed.
func billing(interval string, cost float64) ([]byte, map[string]string) {
	n := map[string]any{"budgetDisplayName": "waooaw-governance", "costAmount": cost, "costIntervalStart": interval,
		"budgetAmount": 100.0, "budgetAmountType": "SPECIFIED_AMOUNT", "currencyCode": "USD"}
	if cost >= 50 {
		n["alertThresholdExceeded"] = float64(int(cost/10)) / 10
	}
	b, _ := json.Marshal(n)
	return b, map[string]string{"billingAccountId": "01D4EE-079462-DFD6EC", "budgetId": "de72f49d-779b-4945-a127-4d6ce8def0bb", "schemaVersion": "1.0"}
}

func spend(id, engagement, agent string, usd float64, at string) []byte {
	e := events.Envelope{EventID: id, Type: "waooaw.spend.ai_tokens", Source: "//waooaw/ai", Time: at, CorrelationID: id,
		Actor: "agent:" + agent, AgentID: agent, EngagementID: engagement}
	e.Data, _ = json.Marshal(map[string]any{"kind": "ai_tokens", "engagement_id": engagement, "agent_id": agent,
		"execution_id": "exe-" + id, "provider": "groq", "model": "llama", "prompt_tokens": 1000, "completion_tokens": 500,
		"cost_usd": usd, "reserved_usd": usd, "observed_at": at})
	b, _ := json.Marshal(e)
	return b
}

// push posts one message to the guard as a push subscription does.
func (h *harness) push(t *testing.T, topic string, data []byte, attrs map[string]string) (int, budgetguard.Answer, string) {
	t.Helper()
	var p budgetguard.Push
	p.Message.Data, p.Message.Attributes, p.Message.MessageID = data, attrs, fmt.Sprint(time.Now().UnixNano())
	p.Subscription = "projects/" + h.env.Project + "/subscriptions/budgetguard-" + topic
	body, _ := json.Marshal(p)
	resp, err := http.Post(h.url+"/projects/"+h.env.Project+"/topics/"+topic, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a budgetguard.Answer
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a, string(raw)
}

func (h *harness) agent(t *testing.T, id, engagement, state string) {
	t.Helper()
	_, err := h.fs.Collection(budgetguard.RegistryCollection).Doc(id).Set(context.Background(),
		map[string]any{"agent_id": id, "engagement_id": engagement, "state": state})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTheMonth plays the month of the budget: 50 %, 80 %, 80 % again, 95 %, 70 % (late),
// 100 %, then a new month, and checks each answer, that each transition was published
// once on the platform stream, the Governor's approval request, and which agents were
// suspended.
func TestTheMonth(t *testing.T) {
	h := newHarness(t)
	h.agent(t, "agt-customer", "eng-1", "live")
	h.agent(t, "agt-platform", budgetguard.PlatformEngagement, "live") // critical
	h.agent(t, "agt-deploying", "eng-1", "deploying")
	h.agent(t, "genesis", "eng-2", "live") // a governance agent is never suspended
	if code, a, raw := h.push(t, events.TopicSpendEvents, spend("sp-1", "eng-1", "agt-customer", 1.5, "2026-12-02T10:00:00Z"), nil); code != 200 || a.Outcome != budgetguard.OutcomeApplied {
		t.Fatalf("spend: %d %s", code, raw)
	}
	for i, tc := range []struct {
		interval string
		cost     float64
		outcome  string
		state    string
	}{
		{"2026-12-01T08:00:00Z", 50, budgetguard.OutcomeApplied, budget.Normal},
		{"2026-12-01T08:00:00Z", 80, budgetguard.OutcomeTransition, budget.Alert},
		{"2026-12-01T08:00:00Z", 80, budgetguard.OutcomeUnchanged, budget.Alert},
		{"2026-12-01T08:00:00Z", 95, budgetguard.OutcomeTransition, budget.Suspended},
		{"2026-12-01T08:00:00Z", 70, budgetguard.OutcomeUnchanged, budget.Suspended},
		{"2026-12-01T08:00:00Z", 100, budgetguard.OutcomeTransition, budget.Halted},
		{"2026-12-01T08:00:00Z", 100, budgetguard.OutcomeUnchanged, budget.Halted},
		{"2026-11-01T07:00:00Z", 20, budgetguard.OutcomeUnchanged, budget.Halted},
		{"2027-01-01T08:00:00Z", 2, budgetguard.OutcomeTransition, budget.Normal},
	} {
		data, attrs := billing(tc.interval, tc.cost)
		code, a, raw := h.push(t, events.TopicBudgetAlerts, data, attrs)
		if code != http.StatusOK || a.Outcome != tc.outcome || a.State != tc.state {
			t.Fatalf("notification %d (%v %%): %d %s, want %s %s", i, tc.cost, code, raw, tc.outcome, tc.state)
		}
	}
	got := h.tap.Drain(t, 2*time.Second)

	var transitions []string
	for _, m := range got[events.TopicAuditEvents] {
		var e struct {
			Data struct {
				Stream    string            `json:"stream"`
				EventType string            `json:"event_type"`
				Context   map[string]string `json:"context"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Data.Stream != "platform" || e.Data.EventType != budgetguard.AuditTransition {
			t.Errorf("audit event on %s of type %s", e.Data.Stream, e.Data.EventType)
		}
		transitions = append(transitions, e.Data.Context["from"]+">"+e.Data.Context["to"])
	}
	// The tap does not keep the stream's order: each transition once is what is checked.
	slices.Sort(transitions)
	want := []string{"alert>suspended", "halted>normal", "normal>alert", "suspended>halted"}
	if !slices.Equal(transitions, want) {
		t.Errorf("audited transitions %v, want %v", transitions, want)
	}

	if n := len(got[events.TopicApprovals]); n != 1 {
		t.Fatalf("%d approval requests, want 1", n)
	}
	ap, err := agentreq.GetApproval(context.Background(), h.fs, "apv-budget-2026-12")
	if err != nil {
		t.Fatal(err)
	}
	if ap.EngagementID != "platform" || ap.Type != "financial" || ap.State != agentreq.ApprovalPending {
		t.Errorf("approval %+v", ap)
	}
	reasons := strings.Join(ap.Reasons, "\n")
	for _, w := range []string{"top AI spender: agent agt-customer (engagement eng-1) $1.50", "OPT-CLOUD:", "$81.50 of the $100.00 cap"} {
		if !strings.Contains(reasons, w) {
			t.Errorf("approval reasons %q lack %q", reasons, w)
		}
	}

	var suspended []string
	for _, m := range got[events.TopicHealthEvents] {
		var e events.Envelope
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		var rep map[string]string
		if err := json.Unmarshal(e.Data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep["status"] != "suspended" || rep["check_type"] != "budget" {
			t.Errorf("health event %s", e.Data)
		}
		suspended = append(suspended, rep["agent_id"])
	}
	if !slices.Equal(suspended, []string{"agt-customer"}) {
		t.Errorf("suspended %v, want only the live customer agent", suspended)
	}
	st, err := budget.Read(context.Background(), h.fs)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != budget.Normal || st.Month != "2027-01" || st.Transitions != 4 {
		t.Errorf("final state %+v", st)
	}
}

// TestSpendEvents counts AI spend once per event_id, adds it to the month's bill and lets
// it move the state on its own.
func TestSpendEvents(t *testing.T) {
	h := newHarness(t)
	data, attrs := billing("2026-12-01T08:00:00Z", 78)
	if code, _, raw := h.push(t, events.TopicBudgetAlerts, data, attrs); code != 200 {
		t.Fatal(raw)
	}
	for i, tc := range []struct {
		id      string
		usd     float64
		outcome string
		spend   float64
		state   string
	}{
		{"sp-a", 1.25, budgetguard.OutcomeApplied, 79.25, budget.Normal},
		{"sp-a", 1.25, budgetguard.OutcomeDuplicate, 79.25, budget.Normal},
		{"sp-b", 0.75, budgetguard.OutcomeTransition, 80, budget.Alert},
		{"sp-b", 0.75, budgetguard.OutcomeDuplicate, 80, budget.Alert},
	} {
		code, a, raw := h.push(t, events.TopicSpendEvents, spend(tc.id, "eng-1", "agt-9", tc.usd, "2026-12-03T00:00:00Z"), nil)
		if code != 200 || a.Outcome != tc.outcome || a.State != tc.state || a.Spend != tc.spend {
			t.Fatalf("spend %d: %d %s, want %s %s $%v", i, code, raw, tc.outcome, tc.state, tc.spend)
		}
	}
	var m budgetguard.MonthSpend
	snap, err := h.fs.Collection(budgetguard.MonthsCollection).Doc("2026-12").Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.DataTo(&m); err != nil {
		t.Fatal(err)
	}
	if m.AISpendUSD != 2 || m.Events != 2 || m.ByAgent["eng-1/agt-9"] != 2 {
		t.Errorf("month %+v", m)
	}
}

// TestPoison refuses, with 400, what no redelivery can fix.
func TestPoison(t *testing.T) {
	h := newHarness(t)
	good, attrs := billing("2026-12-01T08:00:00Z", 10)
	noAttrs := map[string]string{"schemaVersion": "1.0"}
	euro := bytes.Replace(good, []byte(`"USD"`), []byte(`"EUR"`), 1)
	v2 := map[string]string{"billingAccountId": "a", "budgetId": "b", "schemaVersion": "2.0"}
	for _, tc := range []struct {
		name  string
		topic string
		data  []byte
		attrs map[string]string
		want  string
	}{
		{"no attributes", events.TopicBudgetAlerts, good, noAttrs, "billingAccountId and budgetId are required"},
		{"another schema version", events.TopicBudgetAlerts, good, v2, `schemaVersion \"2.0\"`},
		{"another currency", events.TopicBudgetAlerts, euro, attrs, `currency \"EUR\"`},
		{"not billing's format", events.TopicBudgetAlerts, []byte(`{"cost": 3}`), attrs, "poison"},
		{"a spend event without its data", events.TopicSpendEvents, []byte(`{"event_id": "x"}`), nil, "poison"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, raw := h.push(t, tc.topic, tc.data, tc.attrs)
			if code != http.StatusBadRequest || !strings.Contains(raw, tc.want) {
				t.Errorf("%d %s, want 400 naming %q", code, raw, tc.want)
			}
		})
	}
}

// TestPushedByPubSub publishes a notification on budget_alerts as billing does and waits
// for the emulator's push subscription to deliver it.
func TestPushedByPubSub(t *testing.T) {
	h := newHarness(t)
	data, attrs := billing("2026-12-01T08:00:00Z", 96)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := h.ps.Publisher(events.TopicBudgetAlerts)
	defer p.Stop()
	if _, err := p.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := budget.Read(ctx, h.fs)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == budget.Suspended {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("state %s after the push, want suspended", st.State)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
