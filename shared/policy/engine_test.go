package policy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/policytest"
)

var ctx = context.Background()

func newEngine(t testing.TB, opts ...policy.Option) *policy.Engine {
	t.Helper()
	e, err := policy.New(opts...)
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	return e
}

var gw = policy.Meta{EnforcementPoint: "gateway", CorrelationID: "corr-1"}

func subject(id, role string) map[string]any { return map[string]any{"id": id, "role": role} }

func TestDecide(t *testing.T) {
	e := newEngine(t, policy.WithData(map[string]any{"engagements": map[string]any{"eng-1": map[string]any{"governor": "gov-1"}}}))
	for _, tc := range []struct {
		name        string
		bundle      string
		input       map[string]any
		outcome     string
		reason      string
		obligations string
	}{
		{"viewer may not approve", "rbac",
			map[string]any{"subject": subject("u1", "viewer"), "action": "approve", "resource": map[string]any{"type": "approval"}},
			policy.Deny, "role viewer (level 7) may not approve: needs level <= 2", ""},
		{"viewer reads", "rbac",
			map[string]any{"subject": subject("u1", "viewer"), "action": "read"},
			policy.Allow, "role viewer (level 7) may read: needs level <= 7", ""},
		{"manager deploys with an idempotency key", "rbac",
			map[string]any{"subject": subject("u2", "manager"), "action": "deploy"},
			policy.AllowWithObligations, "role manager (level 3) may deploy: needs level <= 3", "require_idempotency_key"},
		{"the engagement's Governor vetoes", "governor",
			map[string]any{"subject": subject("gov-1", "governor"), "action": "veto", "resource": map[string]any{"engagement_id": "eng-1"}},
			policy.Allow, "gov-1 is the Governor of engagement eng-1", ""},
		{"another Governor may not", "governor",
			map[string]any{"subject": subject("gov-2", "governor"), "action": "veto", "resource": map[string]any{"engagement_id": "eng-1"}},
			policy.Deny, "gov-2 is not the Governor of engagement eng-1", ""},
		{"halted budget denies non-governance work", "budget",
			map[string]any{"subject": map[string]any{"id": "agent-7", "type": "agent"}, "action": "execute", "budget": map[string]any{"state": "halted"}},
			policy.Deny, "budget halted: only governance agents and Governor escalations may run", ""},
		{"halted budget allows a Governor escalation", "budget",
			map[string]any{"subject": subject("gov-1", "governor"), "action": "escalate", "budget": map[string]any{"state": "halted"}},
			policy.Allow, "governance work continues while budget is halted", ""},
		{"nothing granted, nothing denied: the fallback reason", "budget",
			map[string]any{"subject": subject("u1", "operator"), "action": "execute", "budget": map[string]any{"state": "panic"}},
			policy.Deny, "budget state panic is not recognised", ""},
		{"80% of the cap rate-limits", "budget",
			map[string]any{"subject": subject("u1", "operator"), "action": "execute", "budget": map[string]any{"spend_ratio": 0.8}},
			policy.AllowWithObligations, "budget alert: rate limited", "enforce_rate_limit"},
		{"95% suspends non-critical work", "budget",
			map[string]any{"subject": subject("u1", "operator"), "action": "execute", "budget": map[string]any{"spend_ratio": 0.95}},
			policy.Deny, "budget suspended: non-critical work is denied", ""},
		{"per-execution cap from the rules table", "budget",
			map[string]any{"subject": subject("u1", "operator"), "action": "execute", "budget": map[string]any{"state": "normal", "estimated_cost_usd": 0.51}},
			policy.Deny, "execution cost $0.51 exceeds the per-execution cap $0.5", ""},
		{"per-agent daily cap from the rules table", "budget",
			map[string]any{"subject": subject("agent-7", "operator"), "action": "execute", "budget": map[string]any{"state": "normal", "agent_spend_today_usd": 4.8, "estimated_cost_usd": 0.3}},
			policy.Deny, "agent daily spend cap reached: $4.8 + $0.3 > $5", ""},
		{"trial: tenth task of the day", "trial",
			map[string]any{"subject": map[string]any{"id": "t1", "trial": true}, "action": "execute", "trial": map[string]any{"tasks_today": 10}},
			policy.Deny, "trial daily task limit reached: 10 of 10 tasks", ""},
		{"trial: ninth task of the day", "trial",
			map[string]any{"subject": map[string]any{"id": "t1", "trial": true}, "action": "execute", "trial": map[string]any{"tasks_today": 9}},
			policy.Allow, "trial within its limits", ""},
		{"trial: AI cap", "trial",
			map[string]any{"subject": map[string]any{"id": "t1", "trial": true}, "action": "ai_call", "trial": map[string]any{"ai_spend_usd": 5}},
			policy.Deny, "trial AI spend cap reached: $5 of $5", ""},
		{"trial: day 7", "trial",
			map[string]any{"subject": map[string]any{"id": "t1", "trial": true}, "action": "read", "trial": map[string]any{"days_active": 7}},
			policy.Deny, "trial expired: day 7 of 7", ""},
		{"trial: never billing", "trial",
			map[string]any{"subject": map[string]any{"id": "t1", "trial": true}, "action": "read", "resource": map[string]any{"type": "invoices"}},
			policy.Deny, "trial users may not reach invoices", ""},
		{"data scope masks PII", "data_scope",
			map[string]any{"subject": map[string]any{"id": "u1", "engagements": []any{"eng-1"}}, "resource": map[string]any{"engagement_id": "eng-1", "data_class": "pii"}},
			policy.AllowWithObligations, "u1 works on engagement eng-1", "mask_fields"},
		{"ai provider", "ai",
			map[string]any{"action": "ai_call", "request": map[string]any{"provider": "groq", "estimated_cost_usd": 0.02}},
			policy.AllowWithObligations, "provider groq is approved", "enforce_rate_limit"},
		{"external message", "communication",
			map[string]any{"action": "send", "message": map[string]any{"channel": "email", "approved": true, "approval_id": "ap-1"}},
			policy.AllowWithObligations, "external email message approved by ap-1", "require_idempotency_key,sign_payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Decide(ctx, tc.bundle, policy.RuleDecision, tc.input, gw)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.outcome || d.Allow != (tc.outcome != policy.Deny) {
				t.Fatalf("outcome %s allow=%v, want %s; reasons %v", d.Outcome, d.Allow, tc.outcome, d.Reasons)
			}
			if len(d.Reasons) != 1 || d.Reasons[0] != tc.reason {
				t.Fatalf("reasons %q, want [%q]", d.Reasons, tc.reason)
			}
			if got := strings.Join(d.Obligations, ","); got != tc.obligations {
				t.Fatalf("obligations %q, want %q", got, tc.obligations)
			}
			if d.TTL != 300*time.Second || d.Bundle != tc.bundle || d.DecisionID == "" || !strings.HasPrefix(d.Revision, "sha256:") {
				t.Fatalf("decision metadata: %+v", d)
			}
			// The boolean rule agrees with the decision object.
			b, err := e.Decide(ctx, tc.bundle, policy.RuleAllow, tc.input, gw)
			if err != nil {
				t.Fatal(err)
			}
			if b.Allow != d.Allow {
				t.Fatalf("allow rule = %v, decision.allow = %v", b.Allow, d.Allow)
			}
		})
	}
}

func TestDecideErrors(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct {
		bundle, rule string
		input        any
		want         error
	}{
		{"payroll", "decision", map[string]any{}, policy.ErrUnknownBundle},
		{"lib", "decision", map[string]any{}, policy.ErrUnknownBundle},
		{"rbac", "grants", map[string]any{}, policy.ErrUnknownRule},
		{"rbac", "decision", map[string]any{"x": math.NaN()}, policy.ErrBadInput},
		{"rbac", "decision", map[string]any{"x": make(chan int)}, policy.ErrBadInput},
	} {
		if _, err := e.Decide(ctx, tc.bundle, tc.rule, tc.input, gw); !errors.Is(err, tc.want) {
			t.Errorf("Decide(%s, %s) err = %v, want %v", tc.bundle, tc.rule, err, tc.want)
		}
	}
}

func TestMissingInputIsDenied(t *testing.T) {
	e := newEngine(t)
	for _, b := range []string{"rbac", "governor", "trial", "budget", "data_scope", "ai", "communication"} {
		d, err := e.Decide(ctx, b, policy.RuleDecision, map[string]any{}, gw)
		if err != nil {
			t.Fatal(err)
		}
		// trial and budget grant subjects that are not on a trial / a normal budget.
		wantAllow := b == "trial" || b == "budget"
		if d.Allow != wantAllow || len(d.Reasons) == 0 {
			t.Errorf("%s with empty input: allow=%v reasons=%v", b, d.Allow, d.Reasons)
		}
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCacheHonoursTTLAndRevision(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e := newEngine(t, policy.WithClock(clk.now))
	in := map[string]any{"subject": subject("gov-1", "governor"), "action": "veto", "resource": map[string]any{"engagement_id": "eng-1"}}
	step := func(wantCached, wantAllow bool) policy.Decision {
		t.Helper()
		d, err := e.Decide(ctx, "governor", "decision", in, gw)
		if err != nil {
			t.Fatal(err)
		}
		if d.Cached != wantCached || d.Allow != wantAllow {
			t.Fatalf("cached=%v allow=%v, want cached=%v allow=%v (%v)", d.Cached, d.Allow, wantCached, wantAllow, d.Reasons)
		}
		return d
	}
	first := step(false, false)
	second := step(true, false)
	if first.DecisionID == second.DecisionID {
		t.Fatal("a cached decision must get its own decision_id")
	}
	clk.add(299 * time.Second)
	step(true, false)
	clk.add(time.Second) // 300 s: the ttl has run out
	step(false, false)

	before := e.Revision()
	if err := e.PutData(ctx, "engagements", map[string]any{"eng-1": map[string]any{"governor": "gov-1"}}); err != nil {
		t.Fatal(err)
	}
	if e.Revision() == before {
		t.Fatal("PutData must move the revision")
	}
	d := step(false, true) // new data, new revision: not served from the cache
	if d.Revision != e.Revision() {
		t.Fatalf("decision revision %s, engine %s", d.Revision, e.Revision())
	}
	step(true, true)
}

func TestCacheDisabled(t *testing.T) {
	e := newEngine(t, policy.WithCacheSize(0))
	in := map[string]any{"subject": subject("u1", "viewer"), "action": "read"}
	for range 3 {
		d, err := e.Decide(ctx, "rbac", "decision", in, gw)
		if err != nil || d.Cached {
			t.Fatalf("cached=%v err=%v with the cache disabled", d.Cached, err)
		}
	}
}

func TestCompileErrorNamesFileAndLine(t *testing.T) {
	data := &fstest.MapFile{Data: []byte(`{"decision_ttl_seconds": 300}`)}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"syntax", "package waooaw.rbac\n\ndecision := {\n", "rbac.rego:4: rego_parse_error"},
		{"undefined function", "package waooaw.rbac\n\nimport rego.v1\n\ndecision := nope(input)\nallow := true\n", "rbac.rego:5: rego_type_error: undefined function nope"},
		{"missing rule", "package waooaw.rbac\n\ndecision := {}\n", "bundle rbac has no rule denials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.New(policy.WithPolicies(fstest.MapFS{"rbac.rego": {Data: []byte(tc.src)}, "data/platform.json": data}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAttestationsMatchDecisions(t *testing.T) {
	sink := &policytest.MemorySink{}
	att := policy.NewAttester(sink, policy.WithBatch(3, time.Hour))
	e := newEngine(t, policy.WithAttester(att))
	inputs := []map[string]any{
		{"subject": subject("u1", "viewer"), "action": "approve"},
		{"subject": subject("u1", "viewer"), "action": "read"},
		{"subject": subject("u1", "viewer"), "action": "approve"}, // cached
		{"subject": subject("u9", "admin"), "action": "deploy"},
	}
	var decisions []policy.Decision
	for i, in := range inputs {
		d, err := e.Decide(ctx, "rbac", "decision", in, policy.Meta{EnforcementPoint: "gateway", CorrelationID: "corr-" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		decisions = append(decisions, d)
	}
	// Close flushes the last partial batch although its wait is an hour.
	if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := sink.Attestations()
	if len(got) != len(decisions) {
		t.Fatalf("%d attestations for %d decisions", len(got), len(decisions))
	}
	for i, a := range got {
		d := decisions[i]
		sum, err := policy.InputSHA256(inputs[i])
		if err != nil {
			t.Fatal(err)
		}
		if a.DecisionID != d.DecisionID || a.Decision != d.Outcome || a.Bundle != "rbac" || a.Revision != e.Revision() ||
			a.InputSHA256 != sum || a.EnforcementPoint != "gateway" || a.CorrelationID != "corr-"+string(rune('a'+i)) ||
			a.Cached != (i == 2) || a.Time.IsZero() {
			t.Errorf("attestation %d = %+v\n for decision %+v", i, a, d)
		}
	}
	if got[0].Decision != policy.Deny || got[3].Decision != policy.AllowWithObligations || strings.Join(got[3].Obligations, ",") != "require_idempotency_key" {
		t.Fatalf("decisions recorded: %s, %s", got[0].Decision, got[3].Decision)
	}
	if got[0].EnforcementPoint != "gateway" {
		t.Fatal("enforcement point lost")
	}
	if _, err := e.Decide(ctx, "rbac", "decision", inputs[0], gw); !errors.Is(err, policy.ErrAttesterClosed) {
		t.Fatalf("decide after close: err = %v; an unattested decision must not be returned", err)
	}
}

func TestInputSHA256(t *testing.T) {
	type sub struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	}
	type in struct {
		Subject sub    `json:"subject"`
		Action  string `json:"action"`
	}
	m := map[string]any{"subject": map[string]any{"role": "viewer", "id": "u<1>"}, "action": "read", "n": []any{1.5, int64(2), json.Number("3"), nil, true, "é\n"}}
	canonical := `{"action":"read","n":[1.5,2,3,null,true,"é\n"],"subject":{"id":"u<1>","role":"viewer"}}`
	want := sha256.Sum256([]byte(canonical))
	got, err := policy.InputSHA256(m)
	if err != nil || got != hex.EncodeToString(want[:]) {
		t.Fatalf("InputSHA256 = %s, %v; want sha256 of %s", got, err, canonical)
	}
	a, _ := policy.InputSHA256(in{Subject: sub{"u1", "viewer"}, Action: "read"})
	b, _ := policy.InputSHA256(map[string]any{"action": "read", "subject": map[string]any{"id": "u1", "role": "viewer"}})
	if a != b {
		t.Fatalf("struct and map of the same JSON hash differently: %s %s", a, b)
	}
}

func TestPreparedInputServesSeveralBundles(t *testing.T) {
	e := newEngine(t, policy.WithCacheSize(0), policy.WithData(map[string]any{"engagements": map[string]any{"eng-1": map[string]any{"governor": "gov-1"}}}))
	raw := map[string]any{"subject": subject("gov-1", "governor"), "action": "veto", "resource": map[string]any{"engagement_id": "eng-1"}}
	in, err := policy.NewInput(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := policy.InputSHA256(raw)
	for _, tc := range []struct {
		bundle string
		allow  bool
	}{{"rbac", true}, {"governor", true}, {"data_scope", false}} {
		viaInput, err := e.Decide(ctx, tc.bundle, "decision", in, gw)
		if err != nil {
			t.Fatal(err)
		}
		viaRaw, err := e.Decide(ctx, tc.bundle, "decision", raw, gw)
		if err != nil {
			t.Fatal(err)
		}
		if viaInput.Allow != tc.allow || strings.Join(viaInput.Reasons, "|") != strings.Join(viaRaw.Reasons, "|") || viaInput.InputSHA256 != sum {
			t.Fatalf("%s: via Input %+v, via raw %+v", tc.bundle, viaInput, viaRaw)
		}
	}
	if _, err := policy.NewInput(map[string]any{"x": math.Inf(1)}); !errors.Is(err, policy.ErrBadInput) {
		t.Fatalf("NewInput(Inf) err = %v", err)
	}
}

// Decisions under way keep the data document they started with while
// PutData swaps in new ones; after the last PutData every decision sees it.
func TestPutDataWhileDeciding(t *testing.T) {
	e := newEngine(t, policy.WithCacheSize(0))
	in := map[string]any{"subject": subject("gov-1", "governor"), "action": "veto", "resource": map[string]any{"engagement_id": "eng-1"}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := e.Decide(ctx, "governor", "decision", in, gw); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 50 {
		gov := fmt.Sprintf("gov-%d", i%2)
		if err := e.PutData(ctx, "engagements", map[string]any{"eng-1": map[string]any{"governor": gov}}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// The last PutData named gov-1.
	d, err := e.Decide(ctx, "governor", "decision", in, gw)
	if err != nil || !d.Allow {
		t.Fatalf("after the last PutData: allow=%v err=%v (%v)", d.Allow, err, d.Reasons)
	}
	// Other keys of data.platform survive a PutData.
	r, err := e.Decide(ctx, "rbac", "decision", map[string]any{"subject": subject("u1", "viewer"), "action": "read"}, gw)
	if err != nil || !r.Allow {
		t.Fatalf("rbac after PutData: allow=%v err=%v (%v)", r.Allow, err, r.Reasons)
	}
}
