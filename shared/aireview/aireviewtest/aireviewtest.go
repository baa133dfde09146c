// Package aireviewtest runs the same AI review cases against each reviewing function
// (genesis, architect, guardian): the function on the Firestore and Pub/Sub emulators, its
// Options.AI the real router (shared/ai) over two local OpenAI-compatible servers
// (infra/local/aiemu) standing in for Groq and OpenAI. Tests only.
package aireviewtest

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/infra/local/aiemu"
	"waooaw.dev/governance/infra/local/emulators"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/aireview"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/secrets"
)

// Stage is one reviewing function's stage, as the cases drive it.
type Stage struct {
	Agent  string // whose keys and caps: genesis, systems_architect, vision_guardian
	Number int    // the stage reviewed
	// Open starts the function in an emulator project of its own, its Options.AI built by
	// asker from the function's own Firestore client and publisher (asker nil: no AI).
	Open func(t *testing.T, asker func(*firestore.Client, events.Publisher) ai.Asker) Target
	// The outcomes: of the spec the table passes, of that spec escalated by the review, and
	// of the spec the table refuses.
	Passed, Escalated, Refused string
}

// Target is a started function.
type Target struct {
	FS  *firestore.Client
	Tap *emulators.Tap // on every topic of the spec
	// Call sends round 1 of the stage for request req, with a spec the table passes (pass)
	// or refuses, and returns the verdict's outcome and reasons.
	Call func(t *testing.T, req string, pass bool) (outcome string, reasons []string)
}

// Reply is a review's reply as the prompt asks for it.
func Reply(verdict string, reasons ...string) string {
	b, _ := json.Marshal(map[string]any{"verdict": verdict, "reasons": append([]string{}, reasons...)})
	return string(b)
}

// The outcome a case expects.
const (
	passed    = "passed"
	escalated = "escalated"
	refused   = "refused"
)

const (
	groq   = ai.ProviderGroq
	openai = ai.ProviderOpenAI
)

// Run runs every case against st, each on a fresh function, project and pair of providers.
func Run(t *testing.T, st Stage) {
	both := []string{groq, openai}
	escalate := Reply(aireview.VerdictEscalate, "no rollback plan for the agent's changes")
	cases := []struct {
		name    string
		noAI    bool                       // Options.AI nil, as a function without provider URLs
		keys    []string                   // providers the agent has a key for
		state   string                     // the budget state the router is given
		capUSD  float64                    // per_execution_usd in the tables (0: as shipped)
		fail    map[string][]aiemu.Failure // queued per provider
		reply   string                     // what the answering provider says
		pass    bool                       // the spec the table passes
		retried bool                       // the stage call is sent twice

		outcome  string
		added    bool     // the review's reasons are added
		review   string   // ai_review's prefix in the audit entry; "" none of the ai_ keys
		errHas   string   // in ai_review's "not used" reason
		provider string   // who answered
		requests [2]int   // received by groq, openai
		spend    int      // spend events published
		claim    string   // state of the ai_reviews document; "" none
		claimHas []string // in the claim's error
	}{
		{name: "no router", noAI: true, pass: true, outcome: passed},
		{name: "no keys: the rule path, nothing sent", pass: true, outcome: passed,
			claim: "not_configured", claimHas: []string{"AI not configured"}},
		{name: "escalates what the table passed", keys: both, reply: escalate, pass: true,
			outcome: escalated, added: true, review: "escalate", provider: groq, requests: [2]int{1, 0}, spend: 1, claim: "answered"},
		{name: "approves what the table refused: still refused", keys: both, reply: Reply(aireview.VerdictApprove), pass: false,
			outcome: refused, review: "approve", provider: groq, requests: [2]int{1, 0}, spend: 1, claim: "answered"},
		{name: "escalates what the table refused: reasons added", keys: both, reply: escalate, pass: false,
			outcome: refused, added: true, review: "escalate", provider: groq, requests: [2]int{1, 0}, spend: 1, claim: "answered"},
		{name: "groq 503: openai answers", keys: both, reply: escalate, pass: true,
			fail:    map[string][]aiemu.Failure{groq: {{Status: 503}}},
			outcome: escalated, added: true, review: "escalate", provider: openai, requests: [2]int{1, 1}, spend: 1, claim: "answered"},
		{name: "both 503: the table's verdict, why recorded", keys: both, reply: escalate, pass: true,
			fail:    map[string][]aiemu.Failure{groq: {{Status: 503}}, openai: {{Status: 503}}},
			outcome: passed, review: "not used: ", errHas: ai.ErrUnavailable.Error(), requests: [2]int{1, 1}, claim: "answered"},
		{name: "over the per-execution cap: refused before sending", keys: both, reply: escalate, pass: true, capUSD: 0.0001,
			outcome: passed, review: "not used: ", errHas: ai.CapExecution + " cap", claim: "answered"},
		{name: "budget suspended: nothing sent, why recorded", keys: both, state: "suspended", reply: escalate, pass: true,
			outcome: passed, review: "not used: ", errHas: "budget suspended", claim: "answered"},
		{name: "unparsable reply: the table's verdict", keys: both, reply: "Looks fine to me.", pass: true,
			outcome: passed, review: "not used: ", errHas: "unparsable reply", provider: groq, requests: [2]int{1, 0}, spend: 1, claim: "answered"},
		{name: "retried stage call: asked and paid once", keys: both, reply: escalate, pass: true, retried: true,
			outcome: escalated, added: true, review: "escalate", provider: groq, requests: [2]int{1, 0}, spend: 1, claim: "answered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := map[string]*aiemu.Server{groq: aiemu.New(groq), openai: aiemu.New(openai)}
			keys := t.TempDir()
			for _, prov := range tc.keys {
				AddKey(t, keys, st.Agent, prov)
			}
			opts := []ai.Option{ai.WithAttemptTimeout(5 * time.Second)}
			for _, prov := range both {
				srv := httptest.NewServer(p[prov])
				t.Cleanup(srv.Close)
				opts = append(opts, ai.WithProvider(prov, srv.URL+"/v1"))
				p[prov].Fail(tc.fail[prov]...)
				p[prov].Reply(aiemu.Reply{Content: tc.reply})
			}
			if tc.state != "" {
				opts = append(opts, ai.WithBudgetState(func(context.Context) (string, error) { return tc.state, nil }))
			}
			if tc.capUSD > 0 {
				opts = append(opts, ai.WithRules(RulesWithExecutionCap(t, tc.capUSD)))
			}
			var asker func(*firestore.Client, events.Publisher) ai.Asker
			if !tc.noAI {
				asker = func(fs *firestore.Client, pub events.Publisher) ai.Asker {
					r, err := ai.New(secrets.Dir(keys), fs, pub, opts...)
					if err != nil {
						t.Fatal(err)
					}
					return r
				}
			}
			target := st.Open(t, asker)
			req := "req-ai-" + strconv.Itoa(st.Number)
			outcome, reasons := target.Call(t, req, tc.pass)
			if tc.retried {
				again, againReasons := target.Call(t, req, tc.pass)
				if again != outcome || strings.Join(againReasons, "\n") != strings.Join(reasons, "\n") {
					t.Errorf("retried call answered %s %q; the first %s %q", again, againReasons, outcome, reasons)
				}
			}

			want := map[string]string{passed: st.Passed, escalated: st.Escalated, refused: st.Refused}[tc.outcome]
			if outcome != want {
				t.Errorf("outcome %s, want %s (%s); reasons %q", outcome, want, tc.outcome, reasons)
			}
			var added []string
			for _, r := range reasons {
				if strings.HasPrefix(r, "AI review: ") {
					added = append(added, r)
				}
			}
			if wantAdded := []string{"AI review: no rollback plan for the agent's changes"}; tc.added != (len(added) == 1 && added[0] == wantAdded[0]) {
				t.Errorf("reasons %q: the review's added = %v, want %v", reasons, added, tc.added)
			}
			if tc.added && len(reasons) == len(added) && tc.outcome == refused {
				t.Errorf("reasons %q: the table's own reasons are gone", reasons)
			}
			if got := [2]int{len(p[groq].Requests()), len(p[openai].Requests())}; got != tc.requests {
				t.Errorf("requests received by groq, openai: %v, want %v", got, tc.requests)
			}

			msgs := target.Tap.Drain(t, 2*time.Second)
			var spendIDs []string
			for _, m := range msgs[events.TopicSpendEvents] {
				env, err := events.Decode(events.TopicSpendEvents, m.Data)
				if err != nil {
					t.Fatalf("undecodable spend event %s: %v", m.Data, err)
				}
				spendIDs = append(spendIDs, env.EventID)
			}
			if len(spendIDs) != tc.spend {
				t.Errorf("%d spend events %v, want %d", len(spendIDs), spendIDs, tc.spend)
			}
			ctx := stageContext(t, msgs[events.TopicAuditEvents], agentreq.EventID(agentreq.StageKey(req, st.Number, 1)))
			checkContext(t, ctx, tc.review, tc.errHas, tc.provider, tc.added, spendIDs)

			snap, err := target.FS.Collection(aireview.Collection).Doc(agentreq.StageKey(req, st.Number, 1)).Get(context.Background())
			switch {
			case tc.claim == "" && status.Code(err) != codes.NotFound:
				t.Errorf("a review document (%v) where no review may be read or written", err)
			case tc.claim != "" && err != nil:
				t.Errorf("review document: %v", err)
			case tc.claim != "":
				if st, _ := snap.DataAt("state"); st != tc.claim {
					t.Errorf("review document state %v, want %s", st, tc.claim)
				}
				msg, _ := snap.DataAt("review.error")
				for _, s := range tc.claimHas {
					if m, _ := msg.(string); !strings.Contains(m, s) {
						t.Errorf("review document error %q, want it to name %q", m, s)
					}
				}
			}
		})
	}
}

// stageContext is the context of the stage's audit entries (a retried call publishes the
// same entry again, alike).
func stageContext(t *testing.T, msgs []*pubsub.Message, id string) map[string]string {
	t.Helper()
	var ctx map[string]string
	n := 0
	for _, m := range msgs {
		env, err := events.Decode(events.TopicAuditEvents, m.Data)
		if err != nil {
			t.Fatalf("undecodable audit event %s: %v", m.Data, err)
		}
		if env.EventID != id {
			continue
		}
		var a struct {
			Context map[string]string `json:"context"`
		}
		if err := json.Unmarshal(env.Data, &a); err != nil {
			t.Fatal(err)
		}
		if n > 0 && !equal(ctx, a.Context) {
			t.Errorf("the stage's audit entry published twice with different contexts:\n%v\n%v", ctx, a.Context)
		}
		ctx, n = a.Context, n+1
	}
	if n == 0 {
		t.Fatalf("no audit entry %s", id)
	}
	return ctx
}

// checkContext checks what the stage's audit entry keeps of the review.
func checkContext(t *testing.T, ctx map[string]string, review, errHas, provider string, changed bool, spendIDs []string) {
	t.Helper()
	if review == "" {
		for k, v := range ctx {
			if strings.HasPrefix(k, "ai_") {
				t.Errorf("audit context %s=%q where no review was asked", k, v)
			}
		}
		return
	}
	if got := ctx["ai_review"]; !strings.HasPrefix(got, review) || !strings.Contains(got, errHas) {
		t.Errorf("ai_review %q, want %q…%q", got, review, errHas)
	}
	if got := ctx["ai_changed"]; got != strconv.FormatBool(changed) {
		t.Errorf("ai_changed %q, want %v", got, changed)
	}
	if ctx["ai_prompt"] == "" || len(ctx["ai_prompt_sha256"]) != 64 {
		t.Errorf("the prompt is not kept: ai_prompt %d bytes, sha256 %q", len(ctx["ai_prompt"]), ctx["ai_prompt_sha256"])
	}
	if provider == "" {
		if ctx["ai_model"] != "" {
			t.Errorf("ai_model %q where no answer came back", ctx["ai_model"])
		}
		return
	}
	if ctx["ai_provider"] != provider || ctx["ai_model"] == "" {
		t.Errorf("ai_provider %q, ai_model %q; want %s and its model", ctx["ai_provider"], ctx["ai_model"], provider)
	}
	for _, k := range []string{"ai_prompt_tokens", "ai_completion_tokens", "ai_cost_usd"} {
		if v, err := strconv.ParseFloat(ctx[k], 64); err != nil || v <= 0 {
			t.Errorf("%s %q, want a positive number", k, ctx[k])
		}
	}
	if len(spendIDs) != 1 || ctx["ai_spend_event_id"] != spendIDs[0] {
		t.Errorf("ai_spend_event_id %q, spend events %v", ctx["ai_spend_event_id"], spendIDs)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// AddKey writes agent's key for provider (engagement platform) into the secrets folder dir,
// under its ai.SecretName.
func AddKey(t testing.TB, dir, agent, provider string) {
	t.Helper()
	cred := map[string]string{groq: ai.CredGroq, openai: ai.CredOpenAI}[provider]
	name, err := ai.SecretName(aireview.Engagement, agent, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("key-"+provider+"-"+agent+"-"+strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// RulesWithExecutionCap is the embedded tables with budget_thresholds' per_execution_usd
// set to usd: a cap every review passes.
func RulesWithExecutionCap(t testing.TB, usd float64) *rules.Set {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(tables.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(tables.FS, path)
		m[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const shipped = "per_execution_usd: 0.50"
	f := m["budget_thresholds.yaml"]
	if f == nil || !strings.Contains(string(f.Data), shipped) {
		t.Fatalf("budget_thresholds.yaml has no %q to change", shipped)
	}
	f.Data = []byte(strings.Replace(string(f.Data), shipped, "per_execution_usd: "+strconv.FormatFloat(usd, 'f', -1, 64), 1))
	s, err := rules.Load(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
