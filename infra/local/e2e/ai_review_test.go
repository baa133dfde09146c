package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/infra/local/aiemu"
	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/stack"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/aireview"
)

// reviewers are the foundational agents whose reviews stages 1–5 ask, by stage action.
var reviewers = map[string]string{
	"stage_1_specification": "genesis", "stage_2_way_of_working": "genesis", "stage_3_genesis_certification": "genesis",
	"stage_4_architecture_review": "systems_architect", "stage_5_ethics_review": "vision_guardian",
}

// aiRun is the stack's AI side: its two local providers, its secrets folder and its
// Firestore, where the budget guard sums the spend.
type aiRun struct {
	ep      stack.Endpoints
	secrets string
	fs      *firestore.Client
}

// control calls a local provider's control API.
func (a *aiRun) control(t *testing.T, ctx context.Context, provider, method, path string, body any) []byte {
	t.Helper()
	var in bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&in).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	base := strings.TrimSuffix(a.ep.AI[provider], "/v1")
	req, err := http.NewRequestWithContext(ctx, method, base+path, &in)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s %s: %d %s", provider, method, path, resp.StatusCode, out.Bytes())
	}
	return out.Bytes()
}

// reset forgets both providers' queues and what they received.
func (a *aiRun) reset(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, p := range []string{ai.ProviderGroq, ai.ProviderOpenAI} {
		a.control(t, ctx, p, http.MethodDelete, "/emulator/v1/requests", nil)
	}
}

// statuses is what a provider answered each chat request it received, in order.
func (a *aiRun) statuses(t *testing.T, ctx context.Context, provider string) []int {
	t.Helper()
	var got struct {
		Requests []aiemu.Request `json:"requests"`
	}
	if err := json.Unmarshal(a.control(t, ctx, provider, http.MethodGet, "/emulator/v1/requests", nil), &got); err != nil {
		t.Fatal(err)
	}
	out := []int{}
	for _, r := range got.Requests {
		out = append(out, r.Status)
	}
	return out
}

// keys writes (or, with write false, removes) the agent's key of each provider in the
// stack's secrets folder, under its ai.SecretName.
func (a *aiRun) keys(t *testing.T, write bool, agent string) {
	t.Helper()
	for _, cred := range []string{ai.CredGroq, ai.CredOpenAI} {
		name, err := ai.SecretName(aireview.Engagement, agent, cred)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(a.secrets, name)
		if !write {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, []byte("e2e-"+cred+"-"+agent+"-"+strings.Repeat("k", 32)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// spent is the month's AI spend the budget guard counted for each foundational agent.
func (a *aiRun) spent(t *testing.T, ctx context.Context, month string) map[string]float64 {
	t.Helper()
	snap, err := a.fs.Collection("budget_months").Doc(month).Get(ctx)
	out := map[string]float64{}
	if err != nil {
		return out // no spend yet this month
	}
	byAgent, _ := snap.DataAt("by_agent")
	m, _ := byAgent.(map[string]any)
	for k, v := range m {
		if agent, ok := strings.CutPrefix(k, aireview.Engagement+"/"); ok {
			out[agent], _ = v.(float64)
		}
	}
	return out
}

// reviewed runs one request through stages 1–5 and returns its stage audit entries by
// action, the request denied at the Governor's approval afterwards so nothing is left
// running.
func reviewed(t *testing.T, ctx context.Context, p party, name string) (string, map[string]apiclient.Entry) {
	t.Helper()
	id := p.submit(t, ctx, apiclient.LowRiskSpec(p.eng, name), apiclient.WayOfWorking())
	ap := p.pendingApproval(t, ctx, id, "deployment")
	entries := p.checkStream(t, ctx, stagesOneToFive...)
	if _, err := decide(t, ctx, p.gov, ap.ApprovalID, "deny"); err != nil {
		t.Fatalf("deny %s: %v", ap.ApprovalID, err)
	}
	out := map[string]apiclient.Entry{}
	for _, e := range entries {
		if _, ok := reviewers[e.Action]; ok && e.Target == "agent_request:"+id {
			out[e.Action] = e
		}
	}
	if len(out) != len(reviewers) {
		t.Fatalf("request %s: stage entries %v, want one per stage 1–5", id, out)
	}
	return id, out
}

// costs sums the entries' reconciled AI cost by agent, checking each names provider and
// carries its model, tokens and cost.
func costs(t *testing.T, entries map[string]apiclient.Entry, provider string, agents ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for action, e := range entries {
		agent := reviewers[action]
		if !slices.Contains(agents, agent) {
			continue
		}
		c := e.Context
		if c["ai_review"] != aireview.VerdictApprove || c["ai_provider"] != provider || c["ai_model"] == "" || c["ai_spend_event_id"] == "" {
			t.Errorf("%s: ai_review %q, ai_provider %q, ai_model %q, ai_spend_event_id %q; want approve by %s", action,
				c["ai_review"], c["ai_provider"], c["ai_model"], c["ai_spend_event_id"], provider)
		}
		for _, k := range []string{"ai_prompt_tokens", "ai_completion_tokens", "ai_cost_usd"} {
			if v, err := strconv.ParseFloat(c[k], 64); err != nil || v <= 0 {
				t.Errorf("%s: %s %q, want a positive number", action, k, c[k])
			}
		}
		cost, _ := strconv.ParseFloat(c["ai_cost_usd"], 64)
		out[agent] += cost
	}
	return out
}

// noAI checks the entries carry nothing of a review: the rule path, as before any key.
func noAI(t *testing.T, entries map[string]apiclient.Entry, actions ...string) {
	t.Helper()
	for _, action := range actions {
		for k, v := range entries[action].Context {
			if strings.HasPrefix(k, "ai_") {
				t.Errorf("%s: %s=%q on the rule path", action, k, v)
			}
		}
	}
}

// TestAIReviews turns AI on for the foundational agents by writing their keys into the
// running stack's secrets folder, as docs/ai.md says to: the stage entries carry the
// review's model, provider, tokens and cost, and the budget guard counts what they cost;
// Groq answering 503 or 429 sends the reviews to OpenAI; an agent without its key runs the
// rule path, its review recorded as not configured. Writing keys turns AI on for every
// request, so it runs alone (no t.Parallel); it removes them at the end and shows the next
// request on the rule path with nothing sent.
func TestAIReviews(t *testing.T) {
	ctx := ctxFor(t, 5*time.Minute)
	shared.mu.Lock()
	raw, err := os.ReadFile(filepath.Join(shared.state, stack.EndpointsFile))
	shared.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	a := &aiRun{secrets: filepath.Join(shared.state, "secrets")}
	if err := json.Unmarshal(raw, &a.ep); err != nil {
		t.Fatal(err)
	}
	if a.ep.AI[ai.ProviderGroq] == "" || a.ep.AI[ai.ProviderOpenAI] == "" {
		t.Fatalf("endpoints.json names no local AI providers: %v", a.ep.AI)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", a.ep.Firestore)
	if a.fs, err = firestore.NewClient(ctx, stack.Project); err != nil {
		t.Fatal(err)
	}
	defer a.fs.Close()
	agents := []string{"genesis", "systems_architect", "vision_guardian"}
	t.Cleanup(func() {
		for _, agent := range agents {
			a.keys(t, false, agent)
		}
	})
	for _, agent := range agents {
		a.keys(t, true, agent)
	}
	p := newParty(t, ctx)
	approve := aiemu.Reply{Content: `{"verdict": "approve", "reasons": []}`}

	t.Run("keys written: each stage entry carries the review's provider, model, tokens and cost; the budget guard counts it", func(t *testing.T) {
		a.reset(t, ctx)
		for range reviewers {
			a.control(t, ctx, ai.ProviderGroq, http.MethodPost, "/emulator/v1/replies", approve)
		}
		month := time.Now().UTC().Format("2006-01")
		before := a.spent(t, ctx, month)
		_, entries := reviewed(t, ctx, p, "AI reviewed")
		want := costs(t, entries, ai.ProviderGroq, agents...)
		if got := a.statuses(t, ctx, ai.ProviderGroq); len(got) != len(reviewers) {
			t.Errorf("groq answered %v, want one request per stage 1–5", got)
		}
		if got := a.statuses(t, ctx, ai.ProviderOpenAI); len(got) != 0 {
			t.Errorf("openai received %v, want nothing while groq answers", got)
		}
		// The spend events reach the guard through their push subscription: wait for it.
		var now map[string]float64
		for {
			now = a.spent(t, ctx, month)
			done := true
			for _, agent := range agents {
				if math.Abs(now[agent]-before[agent]-want[agent]) > 1e-5 {
					done = false
				}
			}
			if done {
				t.Logf("stage reviews cost %v by agent; the guard's month grew from %v to %v", want, before, now)
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("budget_months/%s by agent %v (before %v); want it grown by the entries' costs %v", month, now, before, want)
			case <-time.After(200 * time.Millisecond):
			}
		}
	})

	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(fmt.Sprintf("groq %d: openai answers", status), func(t *testing.T) {
			a.reset(t, ctx)
			for range reviewers {
				a.control(t, ctx, ai.ProviderGroq, http.MethodPost, "/emulator/v1/failures", aiemu.Failure{Status: status})
				a.control(t, ctx, ai.ProviderOpenAI, http.MethodPost, "/emulator/v1/replies", approve)
			}
			_, entries := reviewed(t, ctx, p, fmt.Sprintf("AI fallback %d", status))
			costs(t, entries, ai.ProviderOpenAI, agents...)
			groq, oai := a.statuses(t, ctx, ai.ProviderGroq), a.statuses(t, ctx, ai.ProviderOpenAI)
			if len(groq) != len(reviewers) || len(oai) != len(reviewers) {
				t.Errorf("groq answered %v, openai %v; want %d each", groq, oai, len(reviewers))
			}
			for _, s := range groq {
				if s != status {
					t.Errorf("groq answered %v, want %d each time", groq, status)
					break
				}
			}
		})
	}

	t.Run("a missing key: AI not configured recorded, the rule path's verdict", func(t *testing.T) {
		a.reset(t, ctx)
		a.keys(t, false, "genesis")
		for range 2 {
			a.control(t, ctx, ai.ProviderGroq, http.MethodPost, "/emulator/v1/replies", approve)
		}
		id, entries := reviewed(t, ctx, p, "AI without genesis")
		noAI(t, entries, "stage_1_specification", "stage_2_way_of_working", "stage_3_genesis_certification")
		for action, want := range map[string]string{"stage_1_specification": "accepted", "stage_2_way_of_working": "complete", "stage_3_genesis_certification": "certified"} {
			if got := entries[action].Result; got != want {
				t.Errorf("%s: %s, want the table's %s", action, got, want)
			}
		}
		costs(t, entries, ai.ProviderGroq, "systems_architect", "vision_guardian")
		for stage := 1; stage <= 3; stage++ {
			snap, err := a.fs.Collection(aireview.Collection).Doc(agentreq.StageKey(id, stage, 1)).Get(ctx)
			if err != nil {
				t.Fatalf("stage %d's review: %v", stage, err)
			}
			state, _ := snap.DataAt("state")
			msg, _ := snap.DataAt("review.error")
			if s, _ := msg.(string); state != "not_configured" || !strings.Contains(s, ai.ErrNotConfigured.Error()) {
				t.Errorf("stage %d's review: state %v, error %q; want not_configured naming %q", stage, state, msg, ai.ErrNotConfigured)
			}
		}
		if got := a.statuses(t, ctx, ai.ProviderGroq); len(got) != 2 {
			t.Errorf("groq received %v, want the architect's and the guardian's reviews alone", got)
		}
	})

	t.Run("keys removed: the next request runs the rule path, nothing sent", func(t *testing.T) {
		a.reset(t, ctx)
		for _, agent := range agents {
			a.keys(t, false, agent)
		}
		_, entries := reviewed(t, ctx, p, "AI off again")
		noAI(t, entries, stagesOneToFive...)
		if groq, oai := a.statuses(t, ctx, ai.ProviderGroq), a.statuses(t, ctx, ai.ProviderOpenAI); len(groq)+len(oai) != 0 {
			t.Errorf("groq received %v, openai %v, with no key written", groq, oai)
		}
	})
}
