package ai_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/infra/local/aiemu"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/secrets"
)

const testEngagement = "eng-1"

// fixture is a router against two local providers, with its spend in the Firestore
// emulator and its spend events on the Pub/Sub emulator's spend_events topic.
type fixture struct {
	env          *emulators.Env
	router       *ai.Router
	groq, openai *aiemu.Server
	keys         string // the secrets folder
	sub          string // a pull subscription on spend_events
	now          time.Time
	mu           sync.Mutex
	instance     func(t testing.TB) *ai.Router // another router on the same stores
}

type setup struct {
	keys    map[string][]string // agent → providers with a key
	timeout time.Duration
	state   string
}

func newFixture(t testing.TB, s setup) *fixture {
	t.Helper()
	env := emulators.ForTest(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
	t.Setenv("FIRESTORE_EMULATOR_HOST", env.FirestoreHost)
	ps := env.PubSub(t)
	// The topic alone: the publisher checks each event against its Avro schema before it
	// leaves, as everywhere.
	if _, err := ps.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{
		Name: "projects/" + env.Project + "/topics/" + events.TopicSpendEvents,
	}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, groq: aiemu.New("groq"), openai: aiemu.New("openai"), keys: t.TempDir(),
		sub: "projects/" + env.Project + "/subscriptions/spend-test", now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	if _, err := ps.SubscriptionAdminClient.CreateSubscription(context.Background(), &pubsubpb.Subscription{
		Name: f.sub, Topic: "projects/" + env.Project + "/topics/" + events.TopicSpendEvents,
	}); err != nil {
		t.Fatal(err)
	}
	for agent, providers := range s.keys {
		for _, p := range providers {
			f.addKey(t, agent, p)
		}
	}
	gs, os := httptest.NewServer(f.groq), httptest.NewServer(f.openai)
	t.Cleanup(gs.Close)
	t.Cleanup(os.Close)
	pub := events.NewPubSub(ps)
	t.Cleanup(pub.Close)
	if s.timeout == 0 {
		s.timeout = 5 * time.Second
	}
	opts := []ai.Option{
		ai.WithProvider(ai.ProviderGroq, gs.URL+"/v1"), ai.WithProvider(ai.ProviderOpenAI, os.URL+"/v1"),
		ai.WithAttemptTimeout(s.timeout), ai.WithClock(f.clock),
	}
	if s.state != "" {
		opts = append(opts, ai.WithBudgetState(func(context.Context) (string, error) { return s.state, nil }))
	}
	f.instance = func(t testing.TB) *ai.Router {
		r, err := ai.New(secrets.Dir(f.keys), env.Firestore(t), pub, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	f.router = f.instance(t)
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func testKey(agent, provider string) string {
	return "key-" + provider + "-" + agent + "-" + strings.Repeat("x", 32)
}

func (f *fixture) addKey(t testing.TB, agent, provider string) {
	t.Helper()
	cred := map[string]string{ai.ProviderGroq: ai.CredGroq, ai.ProviderOpenAI: ai.CredOpenAI}[provider]
	name, err := ai.SecretName(testEngagement, agent, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.keys, name), []byte(testKey(agent, provider)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// premium is a call served by OpenAI's premium model (escalated), which, billing 40,000
// completion tokens at $10 per million, costs $0.40 and a few hundredths of a cent.
func premium(agent, execution string) ai.Call {
	c := call(agent, execution, "architecture_review", 40_000)
	c.Escalated = true
	return c
}

func call(agent, execution, task string, maxTokens int64) ai.Call {
	return ai.Call{
		EngagementID: testEngagement, AgentID: agent, ExecutionID: execution, Task: task, MaxTokens: maxTokens,
		Messages: []ai.Message{{Role: "system", Content: "You review agent requests."}, {Role: "user", Content: "Review request " + execution + "."}},
	}
}

// spendEvents pulls spend events until want have arrived and a quiet second has passed
// (a duplicate would arrive in it), or until the deadline.
func (f *fixture) spendEvents(t *testing.T, want int) []map[string]any {
	t.Helper()
	client := f.env.PubSub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		got  []map[string]any
		last = time.Now()
	)
	go func() {
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			done := len(got) >= want && time.Since(last) > time.Second
			mu.Unlock()
			if done {
				cancel()
			}
		}
	}()
	err := client.Subscriber(f.sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var e map[string]any
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Errorf("spend event %s: %v", m.Data, err)
			return
		}
		mu.Lock()
		got, last = append(got, e), time.Now()
		mu.Unlock()
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// A failing Groq hands the call to OpenAI: 503, 429, or no answer within the attempt's
// bound. Groq answering needs no fallback.
func TestFallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     []aiemu.Failure
		provider string
		groqSaw  int // status Groq answered (0: the client left first)
	}{
		{"groq answers", nil, ai.ProviderGroq, http.StatusOK},
		{"groq 503", []aiemu.Failure{{Status: 503}}, ai.ProviderOpenAI, 503},
		{"groq 500", []aiemu.Failure{{Status: 500}}, ai.ProviderOpenAI, 500},
		{"groq 429", []aiemu.Failure{{Status: 429}}, ai.ProviderOpenAI, 429},
		{"groq timeout", []aiemu.Failure{{Delay: 5 * time.Second}}, ai.ProviderOpenAI, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, setup{keys: map[string][]string{"genesis": {"groq", "openai"}}, timeout: 500 * time.Millisecond})
			f.groq.Fail(tc.fail...)
			f.openai.Reply(aiemu.Reply{Content: "from openai"})
			ans, err := f.router.Ask(context.Background(), call("genesis", "exec-1", "summarise", 200))
			if err != nil {
				t.Fatal(err)
			}
			if ans.Provider != tc.provider || ans.FellBack != (tc.provider == ai.ProviderOpenAI) {
				t.Fatalf("answer %+v, want provider %s", ans, tc.provider)
			}
			g, o := f.groq.Requests(), f.openai.Requests()
			if len(g) != 1 || g[0].Status != tc.groqSaw || g[0].Key != testKey("genesis", "groq") || g[0].Model != "llama-3.1-8b-instant" || g[0].MaxTokens != 200 {
				t.Fatalf("groq saw %+v", g)
			}
			if wantO := map[bool]int{true: 1, false: 0}[tc.provider == ai.ProviderOpenAI]; len(o) != wantO {
				t.Fatalf("openai saw %d requests, want %d", len(o), wantO)
			}
			if tc.provider == ai.ProviderOpenAI && (ans.Text != "from openai" || o[0].Model != "gpt-4o-mini" || o[0].Key != testKey("genesis", "openai")) {
				t.Fatalf("fallback answer %+v, request %+v", ans, o[0])
			}
		})
	}
}

// Both providers failing leaves ErrUnavailable and releases the reservation: the same
// call asked again is sent again.
func TestBothProvidersDown(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"genesis": {"groq", "openai"}}})
	f.groq.Fail(aiemu.Failure{Status: 503})
	f.openai.Fail(aiemu.Failure{Status: 502})
	c := call("genesis", "exec-1", "summarise", 100)
	if _, err := f.router.Ask(context.Background(), c); !errors.Is(err, ai.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	ans, err := f.router.Ask(context.Background(), c)
	if err != nil || ans.Provider != ai.ProviderGroq {
		t.Fatalf("asked again: %+v, %v", ans, err)
	}
}

// A client error from Groq (its key refused) is not a reason to spend on OpenAI.
func TestNoFallbackOnClientError(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"genesis": {"groq", "openai"}}})
	f.groq.Fail(aiemu.Failure{Status: 401})
	if _, err := f.router.Ask(context.Background(), call("genesis", "exec-1", "summarise", 100)); err == nil || errors.Is(err, ai.ErrUnavailable) {
		t.Fatalf("err = %v, want the provider's refusal", err)
	}
	if n := len(f.openai.Requests()); n != 0 {
		t.Fatalf("openai saw %d requests", n)
	}
}

func capError(t *testing.T, err error, cap string) *ai.CapError {
	t.Helper()
	var ce *ai.CapError
	if !errors.As(err, &ce) || ce.Cap != cap {
		t.Fatalf("err = %v, want the %s cap", err, cap)
	}
	return ce
}

// A call whose worst case (OpenAI's large model answering max_tokens) passes $0.50 is
// refused before either provider sees it.
func TestExecutionCapRefusedBeforeSending(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"architect": {"groq", "openai"}}})
	_, err := f.router.Ask(context.Background(), call("architect", "exec-1", "architecture_review", 70_000))
	ce := capError(t, err, ai.CapExecution)
	if ce.LimitUSD != 0.50 || ce.SpentUSD != 0 || ce.AskedUSD <= 0.56 || ce.AskedUSD > 0.57 {
		t.Fatalf("cap error %+v", ce)
	}
	if !strings.Contains(err.Error(), "per_execution cap $0.5000") {
		t.Fatalf("message %q", err)
	}
	if g, o := len(f.groq.Requests()), len(f.openai.Requests()); g+o != 0 {
		t.Fatalf("providers saw %d and %d requests", g, o)
	}
	// Within the cap, the same execution proceeds.
	if _, err := f.router.Ask(context.Background(), call("architect", "exec-1", "architecture_review", 60_000)); err != nil {
		t.Fatal(err)
	}
}

// At $0.40 a call (premium), twelve calls
// of one agent fit in its $5 day, the thirteenth is refused naming the spend so far, and
// the next UTC day starts afresh.
func TestAgentDayCap(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"architect": {"openai"}}})
	ctx := context.Background()
	for i := range 12 {
		f.openai.Reply(aiemu.Reply{Content: "fine", CompletionTokens: 40_000})
		if _, err := f.router.Ask(ctx, premium("architect", "exec-"+string(rune('a'+i)))); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	_, err := f.router.Ask(ctx, premium("architect", "exec-m"))
	ce := capError(t, err, ai.CapAgentDay)
	if ce.LimitUSD != 5 || ce.SpentUSD < 4.80 || ce.SpentUSD > 4.81 {
		t.Fatalf("cap error %+v", ce)
	}
	if n := len(f.openai.Requests()); n != 12 {
		t.Fatalf("openai saw %d requests, want 12", n)
	}
	// Another agent's day is its own.
	f.addKey(t, "guardian", "openai")
	if _, err := f.router.Ask(ctx, premium("guardian", "exec-n")); err != nil {
		t.Fatal(err)
	}
	f.advance(24 * time.Hour)
	if _, err := f.router.Ask(ctx, premium("architect", "exec-m")); err != nil {
		t.Fatalf("next day: %v", err)
	}
}

// A trial's $5 spans days and executions: six $0.40 calls a day for two days, then one
// more passes the trial's cap though the agent's day has room.
func TestTrialCap(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"trial-agent": {"openai"}}})
	ctx := context.Background()
	ask := func(i int) error {
		c := premium("trial-agent", "exec-"+string(rune('a'+i)))
		c.TrialID = "trial-1"
		f.openai.Reply(aiemu.Reply{Content: "fine", CompletionTokens: 40_000})
		_, err := f.router.Ask(ctx, c)
		return err
	}
	for i := range 12 {
		if i == 6 {
			f.advance(24 * time.Hour)
		}
		if err := ask(i); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	ce := capError(t, ask(12), ai.CapTrial)
	if ce.LimitUSD != 5 || ce.SpentUSD < 4.80 || ce.SpentUSD > 4.81 {
		t.Fatalf("cap error %+v", ce)
	}
}

// Twenty calls at once through two routers (two instances of a function), each reserving
// $0.40 of one agent's $5 day: exactly twelve are sent, whatever the interleaving; the
// rest are refused by the cap.
func TestConcurrentCallsCannotPassCap(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"architect": {"openai"}}})
	routers := []*ai.Router{f.router, f.instance(t)}
	for range 20 {
		f.openai.Reply(aiemu.Reply{Content: "fine", CompletionTokens: 40_000})
	}
	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		sent, refused int
		spent         float64
		other         []error
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := routers[i%2].Ask(context.Background(), premium("architect", "exec-"+string(rune('a'+i))))
			mu.Lock()
			defer mu.Unlock()
			var ce *ai.CapError
			switch {
			case err == nil:
				sent++
				spent += ans.CostUSD
			case errors.As(err, &ce) && ce.Cap == ai.CapAgentDay:
				refused++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if sent != 12 || refused != 8 || len(other) != 0 || spent > 5 {
		t.Fatalf("sent %d, refused %d, spent $%.4f, other errors %v", sent, refused, spent, other)
	}
	if n := len(f.openai.Requests()); n != 12 {
		t.Fatalf("openai saw %d requests", n)
	}
}

// Without a key for any provider the route allows, the caller gets ErrNotConfigured and
// nothing is sent; the budget suspending or halting AI reads the same to callers.
func TestNotConfigured(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keys     []string
		state    string
		escalate bool
		stopped  bool
	}{
		{"no key", nil, "", false, false},
		{"escalated without an openai key", []string{"groq"}, "", true, false},
		{"budget suspended", []string{"groq", "openai"}, "suspended", false, true},
		{"budget halted", []string{"groq", "openai"}, "halted", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, setup{keys: map[string][]string{"genesis": tc.keys}, state: tc.state})
			c := call("genesis", "exec-1", "certification", 100)
			c.Escalated = tc.escalate
			_, err := f.router.Ask(context.Background(), c)
			if !errors.Is(err, ai.ErrNotConfigured) || errors.Is(err, ai.ErrBudgetStopped) != tc.stopped {
				t.Fatalf("err = %v", err)
			}
			if g, o := len(f.groq.Requests()), len(f.openai.Requests()); g+o != 0 {
				t.Fatalf("providers saw %d and %d requests", g, o)
			}
		})
	}
	var none *ai.Router
	if _, err := none.Ask(context.Background(), call("genesis", "exec-1", "x", 1)); !errors.Is(err, ai.ErrNotConfigured) {
		t.Fatalf("nil router: %v", err)
	}
}

// The premium model serves escalated work only; a review otherwise gets Groq's large model
// and routine work its small one.
func TestPremiumOnlyWhenEscalated(t *testing.T) {
	for _, tc := range []struct {
		task      string
		escalated bool
		provider  string
		model     string
	}{
		{"ethics_review", true, ai.ProviderOpenAI, "gpt-5"},
		{"summarise", true, ai.ProviderOpenAI, "gpt-5"},
		{"ethics_review", false, ai.ProviderGroq, "llama-3.3-70b-versatile"},
		{"summarise", false, ai.ProviderGroq, "llama-3.1-8b-instant"},
	} {
		t.Run(tc.task+map[bool]string{true: "/escalated", false: ""}[tc.escalated], func(t *testing.T) {
			f := newFixture(t, setup{keys: map[string][]string{"vision_guardian": {"groq", "openai"}}})
			c := call("vision_guardian", "exec-1", tc.task, 100)
			c.Escalated = tc.escalated
			ans, err := f.router.Ask(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if ans.Provider != tc.provider || ans.Model != tc.model {
				t.Fatalf("answer from %s %s, want %s %s", ans.Provider, ans.Model, tc.provider, tc.model)
			}
		})
	}
}

// One spend event per call, with the reconciled cost and the reservation it replaced;
// asking the same call again answers from the record, sends nothing and republishes the
// same event id.
func TestSpendEvent(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"genesis": {"groq", "openai"}}})
	f.groq.Reply(aiemu.Reply{Content: "looks complete", PromptTokens: 40, CompletionTokens: 1000})
	c := call("genesis", "exec-1", "certification", 2000)
	c.CorrelationID = "corr-1"
	ans, err := f.router.Ask(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	wantCost := (40*0.59 + 1000*0.79) / 1e6
	if ans.CostUSD < wantCost-1e-12 || ans.CostUSD > wantCost+1e-12 || ans.Text != "looks complete" || ans.SpendEventID == "" {
		t.Fatalf("answer %+v, want cost %v", ans, wantCost)
	}
	again, err := f.router.Ask(context.Background(), c)
	if err != nil || again != ans {
		t.Fatalf("asked again: %+v, %v", again, err)
	}
	if n := len(f.groq.Requests()); n != 1 {
		t.Fatalf("groq saw %d requests", n)
	}
	got := f.spendEvents(t, 2)
	if len(got) != 2 {
		t.Fatalf("%d spend events, want the first and its republication: %v", len(got), got)
	}
	for _, e := range got {
		d := e["data"].(map[string]any)
		if e["event_id"] != ans.SpendEventID || e["type"] != ai.SpendEventType || e["correlation_id"] != "corr-1" ||
			d["cost_usd"] != ans.CostUSD || d["provider"] != "groq" || d["model"] != "llama-3.3-70b-versatile" ||
			d["completion_tokens"] != 1000.0 || d["reserved_usd"].(float64) <= ans.CostUSD || d["execution_id"] != "exec-1" {
			t.Fatalf("spend event %v", e)
		}
	}
	if got[0]["time"] != got[1]["time"] {
		t.Fatalf("republished event differs: %v", got)
	}
}

// Calls without what the caps are keyed on are refused.
func TestBadCall(t *testing.T) {
	f := newFixture(t, setup{keys: map[string][]string{"genesis": {"groq"}}})
	for _, c := range []ai.Call{
		{AgentID: "genesis", ExecutionID: "e", MaxTokens: 1, Messages: []ai.Message{{Role: "user", Content: "x"}}},
		{EngagementID: "eng-1", AgentID: "genesis", MaxTokens: 1, Messages: []ai.Message{{Role: "user", Content: "x"}}},
		{EngagementID: "eng-1", AgentID: "genesis", ExecutionID: "e", Messages: []ai.Message{{Role: "user", Content: "x"}}},
		{EngagementID: "eng-1", AgentID: "genesis", ExecutionID: "e", MaxTokens: 1},
	} {
		if _, err := f.router.Ask(context.Background(), c); !errors.Is(err, ai.ErrBadCall) {
			t.Fatalf("%+v: err = %v", c, err)
		}
	}
}
