package rules_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/rules"
)

func load(t testing.TB) *rules.Set {
	t.Helper()
	s, err := rules.Load(tables.FS)
	if err != nil {
		t.Fatalf("Load(rules.FS): %v", err)
	}
	return s
}

func TestLoadEmbeddedTables(t *testing.T) {
	got := strings.Join(load(t).Names(), ",")
	want := "agent_health,agent_specification,ai_models,approval_timeouts,architecture_review,budget_thresholds,cloud_prices,connector_catalogue,ethics_review," +
		"genesis_certification,notification_cascade,precedent_seeds,query_routing,stage_timeouts,trial_limits,way_of_working"
	if got != want {
		t.Fatalf("tables = %s, want %s", got, want)
	}
}

func TestApprovalTimeout(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		typ     string
		minutes int
		outcome string
	}{
		{"communication", 60, "deny"},
		{"execution", 120, "deny"},
		{"artifact", 30, "approve"},
		{"financial", 240, "deny"},
		{"constitutional", 1440, "deny"},
		{"deployment", 240, "deny"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			got, res, err := s.ApprovalTimeout(tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if got.Minutes != tc.minutes || got.OnTimeout != tc.outcome {
				t.Fatalf("got %+v, want %d min -> %s", got, tc.minutes, tc.outcome)
			}
			if len(res.Trace.Fired) != 1 || res.Trace.Fired[0] != "APPROVAL-"+strings.ToUpper(tc.typ) {
				t.Fatalf("fired = %v", res.Trace.Fired)
			}
		})
	}
	if _, _, err := s.ApprovalTimeout("bribe"); !errors.Is(err, rules.ErrNoMatch) {
		t.Fatalf("unknown type: err = %v, want ErrNoMatch", err)
	}
}

func TestBudgetLevel(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		ratio  float64
		state  string
		action string
	}{
		{0, "normal", "none"},
		{0.79, "normal", "none"},
		{0.80, "alert", "alert_governor"},
		{0.949, "alert", "alert_governor"},
		{0.95, "suspended", "suspend_non_critical"},
		{0.999, "suspended", "suspend_non_critical"},
		{1.0, "halted", "halt_non_governance"},
		{1.7, "halted", "halt_non_governance"},
	} {
		t.Run(fmt.Sprint(tc.ratio), func(t *testing.T) {
			got, _, err := s.BudgetLevel(tc.ratio)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.state || got.Action != tc.action {
				t.Fatalf("BudgetLevel(%v) = %+v, want %s/%s", tc.ratio, got, tc.state, tc.action)
			}
		})
	}
}

func TestMatchSeed(t *testing.T) {
	s := load(t)
	gen004 := map[string]any{
		"request_type": "new_agent", "industry": "healthcare",
		"checks": []string{"fact_check", "hipaa_check"}, "claims_verified": true,
		"high_risk_flags": []string{},
	}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range gen004 {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name  string
		facts map[string]any
		want  string // "" for no active seed
		fired []string
	}{
		{"GEN-004 matches", gen004, "GEN-004", []string{"GEN-004", "GEN-003"}},
		{"high-risk flag blocks", with("high_risk_flags", []any{"diagnosis"}), "", []string{"GEN-003"}},
		{"no HIPAA check: only the superseded seed holds", with("checks", []string{"fact_check"}), "", []string{"GEN-003"}},
		{"claims unverified", with("claims_verified", false), "", []string{}},
		{"other industry", with("industry", "retail"), "", []string{}},
		{"servicing bug fix", map[string]any{
			"request_type": "servicing", "intake_type": "bug_report",
			"new_scope": false, "new_data_access": false, "fewer_approvals": false,
		}, "GEN-007", []string{"GEN-007"}},
		{"servicing that widens data access", map[string]any{
			"request_type": "servicing", "intake_type": "bug_report",
			"new_scope": false, "new_data_access": true, "fewer_approvals": false,
		}, "", []string{}},
		{"pending seed never approves", map[string]any{
			"content_type": "marketing", "industry": "retail", "checks": []string{"ethics_check"},
		}, "", []string{"ETH-001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok, res, err := s.MatchSeed(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tc.want != "") || m.SeedID != tc.want {
				t.Fatalf("MatchSeed = %q ok=%v, want %q", m.SeedID, ok, tc.want)
			}
			if ok && (!m.AutoApprove || m.VetoWindowHours != 24 || m.Seed.Status != "active") {
				t.Fatalf("seed decision = %+v", m)
			}
			if strings.Join(res.Trace.Fired, ",") != strings.Join(tc.fired, ",") {
				t.Fatalf("fired = %v, want %v", res.Trace.Fired, tc.fired)
			}
		})
	}
}

func TestSeedNeedsRevision(t *testing.T) {
	s := load(t)
	for n, want := range map[int]bool{0: false, 2: false, 3: true, 4: true} {
		if got := s.SeedNeedsRevision(n); got != want {
			t.Errorf("SeedNeedsRevision(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestTrialViolations(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		name  string
		facts map[string]any
		want  string
	}{
		{"within limits", map[string]any{"tasks_today": 9, "ai_spend_usd": 4.99, "days_active": 6, "data_class": "synthetic", "integration_mode": "sandbox"}, ""},
		{"task limit", map[string]any{"tasks_today": 10}, "daily_task_limit"},
		{"ai cap", map[string]any{"ai_spend_usd": 5.0}, "ai_cap"},
		{"expired", map[string]any{"days_active": 7}, "trial_expired"},
		{"billing", map[string]any{"resource_type": "invoices"}, "billing_resource"},
		{"live integration and real data", map[string]any{"integration_mode": "live", "data_class": "production"}, "live_integration,non_synthetic_data"},
		{"everything", map[string]any{"tasks_today": 11, "ai_spend_usd": 9, "days_active": 8, "resource_type": "subscriptions"}, "daily_task_limit,ai_cap,trial_expired,billing_resource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := s.TrialViolations(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != tc.want {
				t.Fatalf("violations = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestRouteQuery(t *testing.T) {
	s := load(t)
	up := []string{"groq", "openai"}
	for _, tc := range []struct {
		name  string
		facts map[string]any
		want  rules.Route
	}{
		{"halted budget", map[string]any{"budget_state": "halted", "providers_up": up}, rules.Route{"rule_based", "none", "none"}},
		{"no provider", map[string]any{"budget_state": "normal", "providers_up": []string{}}, rules.Route{"rule_based", "none", "none"}},
		{"groq down", map[string]any{"providers_up": []string{"openai"}}, rules.Route{"openai", "rule_based", "small"}},
		{"review task", map[string]any{"task_type": "ethics_review", "providers_up": up}, rules.Route{"groq", "openai", "large"}},
		{"escalated", map[string]any{"task_type": "ethics_review", "escalated": true, "providers_up": up}, rules.Route{"openai", "rule_based", "premium"}},
		{"not escalated", map[string]any{"task_type": "ethics_review", "escalated": false, "providers_up": up}, rules.Route{"groq", "openai", "large"}},
		{"long context", map[string]any{"task_type": "summarise", "estimated_tokens": 9000, "providers_up": up}, rules.Route{"groq", "openai", "large"}},
		{"default", map[string]any{"task_type": "summarise", "estimated_tokens": 800, "providers_up": up}, rules.Route{"groq", "openai", "small"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := s.RouteQuery(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("route = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTraceJSON(t *testing.T) {
	s := load(t)
	_, res, err := s.RouteQuery(map[string]any{"task_type": "ethics_review", "providers_up": []string{"groq"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := res.Trace.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Fired []string `json:"fired"`
		Rules []struct {
			ID         string `json:"id"`
			Matched    bool   `json:"matched"`
			Conditions []struct {
				Expr     string `json:"expr"`
				Held     bool   `json:"held"`
				Children []struct {
					Expr    string `json:"expr"`
					Held    bool   `json:"held"`
					Missing bool   `json:"missing"`
				} `json:"children"`
			} `json:"conditions"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Rules) != 5 || tr.Fired[0] != "ROUTE-REVIEW" {
		t.Fatalf("trace stops at the first match: %s", b)
	}
	budget := tr.Rules[0]
	if budget.Matched || budget.Conditions[0].Held || budget.Conditions[0].Expr != `budget_state in [suspended halted]` {
		t.Fatalf("budget rule trace = %+v", budget)
	}
	review := tr.Rules[4].Conditions[0]
	if review.Expr != "any" || !review.Held || len(review.Children) != 3 {
		t.Fatalf("review trace = %+v", review)
	}
	if !review.Children[0].Held || review.Children[1].Held || !review.Children[2].Missing {
		t.Fatalf("children = %+v; want matches held, == not held, tokens missing", review.Children)
	}
}

const opsTable = `table: ops
hit_policy: all
facts: {n: number, s: string, b: bool, l: strings}
outputs: {ok: bool}
rules:
  - {id: EQ, when: {fact: s, op: "==", value: x}, then: {ok: true}}
  - {id: NE, when: {fact: s, op: "!=", value: x}, then: {ok: true}}
  - {id: LT, when: {fact: n, op: "<", value: 2}, then: {ok: true}}
  - {id: LE, when: {fact: n, op: "<=", value: 2}, then: {ok: true}}
  - {id: GT, when: {fact: n, op: ">", value: 2}, then: {ok: true}}
  - {id: GE, when: {fact: n, op: ">=", value: 2}, then: {ok: true}}
  - {id: IN, when: {fact: s, op: in, value: [x, y]}, then: {ok: true}}
  - {id: CONTAINS, when: {fact: l, op: contains, value: a}, then: {ok: true}}
  - {id: SUBSTR, when: {fact: s, op: contains, value: "x"}, then: {ok: true}}
  - {id: MATCHES, when: {fact: s, op: matches, value: "^x+$"}, then: {ok: true}}
  - {id: EMPTY, when: {fact: l, op: empty}, then: {ok: true}}
  - {id: BOOL, when: {fact: b, op: "==", value: true}, then: {ok: true}}
  - {id: ALL, when: {all: [{fact: n, op: ">", value: 0}, {fact: b, op: "==", value: true}]}, then: {ok: true}}
  - {id: ANY, when: {any: [{fact: n, op: ">", value: 5}, {fact: b, op: "==", value: true}]}, then: {ok: true}}
  - {id: NOT, when: {not: {fact: s, op: "==", value: x}}, then: {ok: true}}
`

func TestOperators(t *testing.T) {
	s, err := rules.Load(fstest.MapFS{"ops.yaml": {Data: []byte(opsTable)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		facts map[string]any
		want  string
	}{
		{map[string]any{"s": "x", "n": 2, "l": []string{"a"}, "b": true}, "EQ,LE,GE,IN,CONTAINS,SUBSTR,MATCHES,BOOL,ALL,ANY"},
		{map[string]any{"s": "xz", "n": 1.5, "l": []any{"b"}, "b": false}, "NE,LT,LE,SUBSTR,NOT"},
		{map[string]any{"s": "y", "n": int64(3), "l": []string{}, "b": false}, "NE,GT,GE,IN,EMPTY,NOT"},
		{map[string]any{"n": json.Number("7")}, "GT,GE,EMPTY,ANY,NOT"},
		{map[string]any{}, "EMPTY,NOT"},
	} {
		t.Run(fmt.Sprint(tc.facts), func(t *testing.T) {
			res, err := s.Evaluate("ops", tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(res.Trace.Fired, ","); got != tc.want {
				t.Fatalf("fired %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		table string
		facts map[string]any
		want  error
	}{
		{"nope", nil, rules.ErrUnknownTable},
		{"budget_thresholds", map[string]any{"spend_ration": 0.5}, rules.ErrBadFact},
		{"budget_thresholds", map[string]any{"spend_ratio": "0.5"}, rules.ErrBadFact},
		{"precedent_seeds", map[string]any{"checks": []any{"a", 1}}, rules.ErrBadFact},
		{"precedent_seeds", map[string]any{"claims_verified": "yes"}, rules.ErrBadFact},
	} {
		if _, err := s.Evaluate(tc.table, tc.facts); !errors.Is(err, tc.want) {
			t.Errorf("Evaluate(%s, %v) err = %v, want %v", tc.table, tc.facts, err, tc.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	head := "table: t\nhit_policy: first\nfacts: {n: number, s: string}\nparams: {p: 1}\noutputs: {x: string}\nrules:\n"
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown table field", "table: t\nhit_policy: first\ncolour: red\nrules: []\n", "t.yaml:3: table: unknown field \"colour\""},
		{"unknown rule field", head + "  - id: A\n    then: {x: a}\n    priority: 1\n", "t.yaml:9: rule: unknown field \"priority\""},
		{"unknown condition field", head + "  - id: A\n    when: {fact: n, op: \">\", value: 1, unit: usd}\n    then: {x: a}\n", "t.yaml:8: condition: unknown field \"unit\""},
		{"unknown operator", head + "  - id: A\n    when: {fact: n, op: \"=~\", value: 1}\n    then: {x: a}\n", "t.yaml:8: condition: unknown operator \"=~\""},
		{"wrong value type", head + "  - id: A\n    when:\n      fact: n\n      op: \">\"\n      value: lots\n    then: {x: a}\n", "t.yaml:11: condition on n (number) >: wrong type"},
		{"wrong output type", head + "  - id: A\n    then: {x: 3}\n", "t.yaml:8: rule A: output x: want string, got number"},
		{"unknown output", head + "  - id: A\n    then: {y: a}\n", "t.yaml:8: rule A: unknown output \"y\""},
		{"unknown fact", head + "  - id: A\n    when: {fact: m, op: \">\", value: 1}\n    then: {x: a}\n", "t.yaml:8: condition: unknown fact \"m\""},
		{"unknown param", head + "  - id: A\n    when: {fact: n, op: \">\", param: q}\n    then: {x: a}\n", "t.yaml:8: condition: unknown param \"q\""},
		{"bad pattern", head + "  - id: A\n    when: {fact: s, op: matches, value: \"(\"}\n    then: {x: a}\n", "t.yaml:8: condition on s (string) matches: bad pattern"},
		{"unknown fact type", "table: t\nhit_policy: all\nfacts: {n: integer}\nrules: []\n", "t.yaml:3: facts.n: unknown type \"integer\""},
		{"bad hit policy", "table: t\nhit_policy: best\nrules: []\n", "t.yaml:2: hit_policy \"best\""},
		{"duplicate id", head + "  - {id: A, then: {x: a}}\n  - {id: A, then: {x: b}}\n", "t.yaml:8: rule id \"A\" already used at line 7"},
		{"missing then", head + "  - id: A\n", "t.yaml:7: rule A: missing field \"then\""},
		{"seed unknown field", head + "  - id: GEN-1\n    seed: {domain: GEN, status: active, owner: x}\n    then: {x: a}\n", "t.yaml:8: seed: unknown field \"owner\""},
		{"seed bad status", head + "  - id: GEN-1\n    seed: {domain: GEN, status: live}\n    then: {x: a}\n", "t.yaml:8: seed: unknown status \"live\""},
		{"seed wrong type", head + "  - id: GEN-1\n    seed: {domain: GEN, status: active, version: two}\n    then: {x: a}\n", "t.yaml:8: seed:"},
		{"empty any", head + "  - id: A\n    when: {any: []}\n    then: {x: a}\n", "t.yaml:8: any: want a non-empty list"},
		{"ordering on strings", head + "  - id: A\n    when: {fact: s, op: \"<\", value: b}\n    then: {x: a}\n", "t.yaml:8: condition on s (string) <: wrong type"},
		{"syntax", "table: [\n", "t.yaml:0: yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.Load(fstest.MapFS{"t.yaml": {Data: []byte(tc.src)}})
			if err == nil {
				t.Fatalf("Load accepted:\n%s", tc.src)
			}
			if !errors.Is(err, rules.ErrInvalidTable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q and wrap ErrInvalidTable", err, tc.want)
			}
		})
	}
}

func TestPolicyData(t *testing.T) {
	d, err := load(t).PolicyData()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d)
	want := `{"budget":{"alert_ratio":0.8,"halt_ratio":1,"per_agent_daily_usd":5,"per_execution_usd":0.5,"platform_cap_usd":100,"suspend_ratio":0.95},"trial_limits":{"ai_cap_usd":5,"billing_resources":["invoices","subscriptions","billing"],"duration_days":7,"tasks_per_day":10}}`
	if string(b) != want {
		t.Fatalf("PolicyData = %s\nwant %s", b, want)
	}
}

func ExampleSet_ApprovalTimeout() {
	s, err := rules.Load(tables.FS)
	if err != nil {
		panic(err)
	}
	to, res, err := s.ApprovalTimeout("artifact")
	if err != nil {
		panic(err)
	}
	fmt.Println(to.Minutes, to.OnTimeout, res.Trace.Fired)
	// Output: 30 approve [APPROVAL-ARTIFACT]
}
