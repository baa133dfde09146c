package rules_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"waooaw.dev/governance/shared/rules"
)

// The limits exactly as docs/agent-creation.md shows them in the workflow's argument.
func TestStageLimits(t *testing.T) {
	s := load(t)
	l, err := s.StageLimits()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"max_rounds":3,"stage_seconds":{"1":7200,"2":7200,"3":7200,"4":7200,"5":7200,"6":14400,"7":1800},"revision_seconds":259200,"deploy_health_seconds":1800}`
	if string(b) != want {
		t.Fatalf("limits = %s\nwant %s", b, want)
	}
	if got := s.MaxRevisionRounds(); got != 3 {
		t.Fatalf("MaxRevisionRounds = %d, want 3", got)
	}
}

func TestStageTimeoutRules(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		step    string
		rule    string
		minutes float64
	}{
		{"stage_1", "STAGE-SPECIFICATION", 120},
		{"stage_2", "STAGE-SPECIFICATION", 120},
		{"stage_3", "STAGE-REVIEWS", 120},
		{"stage_4", "STAGE-REVIEWS", 120},
		{"stage_5", "STAGE-REVIEWS", 120},
		{"stage_6", "STAGE-GOVERNOR-APPROVAL", 240},
		{"stage_7", "STAGE-DEPLOY", 30},
		{"revision", "STAGE-REVISION", 4320},
		{"deploy_health", "STAGE-DEPLOY-HEALTH", 30},
		{"stage_8", "", 0},
	} {
		t.Run(tc.step, func(t *testing.T) {
			res, err := s.Evaluate(rules.TableStageTimeouts, map[string]any{"step": tc.step})
			if err != nil {
				t.Fatal(err)
			}
			if tc.rule == "" {
				if len(res.Matches) != 0 {
					t.Fatalf("unknown step matched %v", res.Trace.Fired)
				}
				return
			}
			if len(res.Matches) != 1 || res.Matches[0].RuleID != tc.rule || res.Matches[0].Then["timeout_minutes"] != tc.minutes {
				t.Fatalf("matches = %+v, want %s -> %v min", res.Matches, tc.rule, tc.minutes)
			}
		})
	}
}

const brokenTimeouts = `table: stage_timeouts
hit_policy: first
facts: {step: string}
params: {max_revision_rounds: %s}
outputs: {timeout_minutes: number}
rules:
  - {id: MOST, when: {fact: step, op: in, value: [stage_1, stage_2, stage_3, stage_4, stage_5, stage_7, revision, deploy_health]}, then: {timeout_minutes: 1}}
  - {id: SIX, when: {fact: step, op: "==", value: %s}, then: {timeout_minutes: 2}}
`

func TestStageLimitsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, rounds, six string
		want              error
	}{
		{"a step without a rule", "3", "stage_six", rules.ErrNoMatch},
		{"rounds not whole", "2.5", "stage_6", rules.ErrInvalidTable},
		{"rounds zero", "0", "stage_6", rules.ErrInvalidTable},
		{"rounds not a number", "three", "stage_6", rules.ErrInvalidTable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(brokenTimeouts, "%s", tc.rounds, 1), "%s", tc.six, 1)
			s, err := rules.Load(fstest.MapFS{"stage_timeouts.yaml": {Data: []byte(src)}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.StageLimits(); !errors.Is(err, tc.want) {
				t.Fatalf("StageLimits err = %v, want %v", err, tc.want)
			}
		})
	}
	src := strings.Replace(strings.Replace(brokenTimeouts, "%s", "4", 1), "%s", "stage_6", 1)
	s, err := rules.Load(fstest.MapFS{"stage_timeouts.yaml": {Data: []byte(src)}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.StageLimits()
	if err != nil || l.MaxRounds != 4 || l.StageSeconds["6"] != 120 || l.StageSeconds["1"] != 60 || s.MaxRevisionRounds() != 4 {
		t.Fatalf("limits from another table = %+v, %v; want them read from it", l, err)
	}
}

// Without the tables the helpers fail or answer zero values; they never invent numbers.
func TestHelpersWithoutTheirTables(t *testing.T) {
	s, err := rules.Load(fstest.MapFS{"other.yaml": {Data: []byte("table: other\nhit_policy: first\noutputs: {x: bool}\nrules:\n  - {id: X, then: {x: true}}\n")}})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]error{}
	_, calls["StageLimits"] = s.StageLimits()
	_, _, calls["SpecGaps"] = s.SpecGaps(nil)
	_, _, calls["WayOfWorkingGaps"] = s.WayOfWorkingGaps(nil)
	_, _, calls["Certify"] = s.Certify(nil)
	_, _, calls["ArchitectureReview"] = s.ArchitectureReview(nil)
	_, _, calls["EthicsReview"] = s.EthicsReview(nil)
	_, _, calls["ConnectorKnown"] = s.ConnectorKnown("slack")
	_, calls["PerAgentDailyCapUSD"] = s.PerAgentDailyCapUSD()
	_, _, calls["ActiveSeeds"] = s.ActiveSeeds(nil)
	for name, err := range calls {
		if !errors.Is(err, rules.ErrUnknownTable) {
			t.Errorf("%s err = %v, want ErrUnknownTable", name, err)
		}
	}
	if s.MaxRevisionRounds() != 0 || s.FalsePositiveFlagAt() != 0 || s.SpecFields() != nil || s.WayOfWorkingSections() != nil {
		t.Fatalf("zero values expected without the tables")
	}
}

var (
	specFields = []string{"agent_name", "purpose", "scope_boundaries", "required_capabilities",
		"data_access_requirements", "external_systems", "industry", "engagement_id"}
	wowSections = []string{"identity", "scope_and_boundaries", "capabilities", "data_access_and_privacy",
		"integrations", "approvals_and_escalation", "quality_and_slos", "failure_modes_and_fallbacks",
		"cost_and_limits", "audit_and_reporting"}
)

func without(l []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(l), func(s string) bool { return s == drop })
}

// Both completeness tables: the declared list is DOMAIN.md's, each entry has
// exactly one rule that fires when it alone is absent, and order is kept.
func TestGapTables(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		name   string
		list   []string
		want   []string
		gaps   func([]string) ([]string, rules.Result, error)
		prefix string
	}{
		{"specification", s.SpecFields(), specFields, s.SpecGaps, "SPEC-"},
		{"way of working", s.WayOfWorkingSections(), wowSections, s.WayOfWorkingGaps, "WOW-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Equal(tc.list, tc.want) {
				t.Fatalf("declared %v, want %v", tc.list, tc.want)
			}
			if got, _, err := tc.gaps(tc.want); err != nil || len(got) != 0 {
				t.Fatalf("complete: gaps %v, err %v", got, err)
			}
			for _, have := range [][]string{nil, {}, {"unrelated"}} {
				got, res, err := tc.gaps(have)
				if err != nil || !slices.Equal(got, tc.want) || len(res.Trace.Fired) != len(tc.want) {
					t.Fatalf("gaps(%v) = %v, err %v, fired %v; want every entry in order", have, got, err, res.Trace.Fired)
				}
			}
			for _, f := range tc.want {
				got, res, err := tc.gaps(append(without(tc.want, f), "extra"))
				if err != nil {
					t.Fatal(err)
				}
				id := tc.prefix + strings.ToUpper(strings.ReplaceAll(f, "_", "-"))
				if !slices.Equal(got, []string{f}) || !slices.Equal(res.Trace.Fired, []string{id}) {
					t.Errorf("without %s: gaps %v fired %v, want [%s] by %s", f, got, res.Trace.Fired, f, id)
				}
			}
			two := without(without(tc.want, tc.want[0]), tc.want[len(tc.want)-1])
			if got, _, _ := tc.gaps(two); !slices.Equal(got, []string{tc.want[0], tc.want[len(tc.want)-1]}) {
				t.Fatalf("two missing: gaps %v", got)
			}
		})
	}
	// The declared lists are copies: a caller changing one changes nothing.
	f := s.SpecFields()
	f[0] = "changed"
	if s.SpecFields()[0] != "agent_name" {
		t.Fatal("SpecFields shares the table's list")
	}
}

func TestCertify(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		name    string
		facts   map[string]any
		outcome string
		reasons []string // substrings, one per reason in order
		fired   string
	}{
		{"complete retail", map[string]any{"empty_lists": []string{"external_systems"}, "industry": "retail"}, "certified", nil, ""},
		{"no facts about lists", map[string]any{"industry": "healthcare"}, "certified", nil, ""},
		{"empty scope", map[string]any{"empty_lists": []string{"scope_boundaries"}, "industry": "retail"}, "revise", []string{"scope_boundaries is empty"}, "CERT-SCOPE"},
		{"empty capabilities", map[string]any{"empty_lists": []any{"required_capabilities"}, "industry": "retail"}, "revise", []string{"required_capabilities is empty"}, "CERT-CAPABILITIES"},
		{"empty data access", map[string]any{"empty_lists": []string{"data_access_requirements"}, "industry": "legal"}, "revise", []string{"data_access_requirements is empty"}, "CERT-DATA-ACCESS"},
		{"all three", map[string]any{"empty_lists": []string{"data_access_requirements", "required_capabilities", "scope_boundaries"}, "industry": "retail"},
			"revise", []string{"scope_boundaries", "required_capabilities", "data_access_requirements"}, "CERT-SCOPE,CERT-CAPABILITIES,CERT-DATA-ACCESS"},
		{"unknown industry", map[string]any{"empty_lists": []string{}, "industry": "crypto"}, "reclassify", []string{"industry crypto is not one the platform knows; the Governor classifies it"}, "CERT-RECLASSIFY"},
		{"industry missing", map[string]any{}, "reclassify", []string{"industry (none) is not"}, "CERT-RECLASSIFY"},
		{"case matters", map[string]any{"industry": "Retail"}, "reclassify", []string{"industry Retail"}, "CERT-RECLASSIFY"},
		{"revise beats reclassify", map[string]any{"empty_lists": []string{"scope_boundaries"}, "industry": "crypto"}, "revise", []string{"scope_boundaries is empty"}, "CERT-SCOPE,CERT-RECLASSIFY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, res, err := s.Certify(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			checkVerdict(t, v, res, tc.outcome, tc.reasons, tc.fired)
		})
	}
	for _, industry := range []string{"retail", "healthcare", "finance", "education", "marketing", "legal", "hospitality", "manufacturing", "logistics", "technology"} {
		if v, _, err := s.Certify(map[string]any{"industry": industry}); err != nil || v.Outcome != "certified" {
			t.Errorf("industry %s: %+v, %v; want certified", industry, v, err)
		}
	}
}

func checkVerdict(t *testing.T, v rules.Verdict, res rules.Result, outcome string, reasons []string, fired string) {
	t.Helper()
	if v.Outcome != outcome || len(v.Reasons) != len(reasons) || v.Reasons == nil {
		t.Fatalf("verdict = %+v, want %s with %d reasons", v, outcome, len(reasons))
	}
	for i, want := range reasons {
		if !strings.Contains(v.Reasons[i], want) {
			t.Errorf("reason %d = %q, want it to contain %q", i, v.Reasons[i], want)
		}
	}
	if got := strings.Join(res.Trace.Fired, ","); got != fired {
		t.Fatalf("fired %s, want %s", got, fired)
	}
}

func TestConnectorKnown(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		system string
		known  bool
	}{
		{"salesforce", true}, {"hubspot", true}, {"zendesk", true}, {"slack", true}, {"gmail", true},
		{"google_drive", true}, {"shopify", true}, {"stripe", true}, {"epic_fhir", true}, {"twilio", true},
		{" Salesforce ", true}, {"SLACK", true},
		{"acme_crm", false}, {"", false}, {"google drive", false}, {"salesforce_eu", false},
	} {
		t.Run(tc.system, func(t *testing.T) {
			known, res, err := s.ConnectorKnown(tc.system)
			if err != nil {
				t.Fatal(err)
			}
			if known != tc.known || (len(res.Trace.Fired) == 1) != tc.known || len(res.Trace.Rules) != 1 {
				t.Fatalf("ConnectorKnown(%q) = %v, fired %v; want %v", tc.system, known, res.Trace.Fired, tc.known)
			}
		})
	}
}

func TestPerAgentDailyCapUSD(t *testing.T) {
	s := load(t)
	got, err := s.PerAgentDailyCapUSD()
	if err != nil || got != 5 {
		t.Fatalf("PerAgentDailyCapUSD = %v, %v; want 5", got, err)
	}
	d, _ := s.PolicyData()
	if d["budget"].(map[string]any)["per_agent_daily_usd"] != got {
		t.Fatal("the cap differs from the one the budget policy receives")
	}
	s, err = rules.Load(fstest.MapFS{"budget_thresholds.yaml": {Data: []byte("table: budget_thresholds\nhit_policy: first\nparams: {per_agent_daily_usd: free}\noutputs: {x: bool}\nrules:\n  - {id: X, then: {x: true}}\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PerAgentDailyCapUSD(); !errors.Is(err, rules.ErrInvalidTable) {
		t.Fatalf("non-number cap: err = %v, want ErrInvalidTable", err)
	}
}

func TestArchitectureReview(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		name    string
		facts   map[string]any
		outcome string
		reasons []string
		fired   string
	}{
		{"clean", map[string]any{"unknown_systems": []string{}, "cost_ratio": 0.4, "duplicate_name": false}, "approved", nil, ""},
		{"nothing known yet", map[string]any{}, "approved", nil, ""},
		{"cost exactly at the cap", map[string]any{"cost_ratio": 1}, "approved", nil, ""},
		{"unknown connector", map[string]any{"unknown_systems": []string{"acme_crm", "legacy_erp"}}, "revise", []string{"no connector for external systems: acme_crm, legacy_erp"}, "ARCH-CONNECTOR"},
		{"over the cap", map[string]any{"cost_ratio": 1.4, "estimated_cost_usd_per_day": 7, "per_agent_daily_cap_usd": 5}, "revise",
			[]string{"estimated daily cost $7 is 1.4 times the per-agent daily cap of $5"}, "ARCH-COST"},
		{"ratio rounded in the reason", map[string]any{"cost_ratio": 2.0 / 3 * 2}, "revise", []string{"is 1.33 times"}, "ARCH-COST"},
		{"duplicate name", map[string]any{"duplicate_name": true, "agent_name": "shop-helper"}, "revise", []string{"an agent named shop-helper already exists"}, "ARCH-DUPLICATE"},
		{"a fact named in a reason but not given", map[string]any{"duplicate_name": true}, "revise", []string{"an agent named (none) already exists"}, "ARCH-DUPLICATE"},
		{"everything, in table order", map[string]any{"unknown_systems": []any{"x"}, "cost_ratio": 3, "duplicate_name": true}, "revise",
			[]string{"systems: x", "3 times", "already exists"}, "ARCH-CONNECTOR,ARCH-COST,ARCH-DUPLICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, res, err := s.ArchitectureReview(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			checkVerdict(t, v, res, tc.outcome, tc.reasons, tc.fired)
		})
	}
}

func TestEthicsReview(t *testing.T) {
	s := load(t)
	all := []string{"fact_check", "hipaa_check", "claims_verified"}
	facts := func(purpose, industry string, controls, flags []string) map[string]any {
		return map[string]any{"purpose": purpose, "industry": industry, "controls": controls, "risk_flags": flags}
	}
	const shop = "Answer product questions for an online shop"
	for _, tc := range []struct {
		name    string
		facts   map[string]any
		outcome string
		reasons []string
		fired   string
	}{
		{"retail", facts(shop, "retail", nil, []string{}), "cleared", nil, ""},
		{"healthcare with its controls", facts("Summarise patient intake forms for clinicians", "healthcare", all, nil), "cleared", nil, ""},
		{"healthcare without hipaa_check", facts("Summarise intake forms", "healthcare", []string{"fact_check"}, nil), "escalate", []string{"without the hipaa_check control"}, "ETH-HEALTHCARE-CONTROLS-HIPAA"},
		{"healthcare without fact_check", facts("Summarise intake forms", "healthcare", []string{"hipaa_check", "claims_verified"}, nil), "escalate", []string{"without the fact_check control"}, "ETH-HEALTHCARE-CONTROLS-FACT-CHECK"},
		{"healthcare without controls", facts("Summarise intake forms", "healthcare", nil, nil), "escalate", []string{"hipaa_check", "fact_check"}, "ETH-HEALTHCARE-CONTROLS-HIPAA,ETH-HEALTHCARE-CONTROLS-FACT-CHECK"},
		{"finance without fact_check", facts("Explain account statements", "finance", []string{"hipaa_check"}, nil), "escalate", []string{"a finance agent without the fact_check control"}, "ETH-FINANCE-CONTROLS"},
		{"finance with fact_check", facts("Explain account statements", "finance", []string{"fact_check"}, nil), "cleared", nil, ""},
		{"retail needs no controls", facts(shop, "retail", nil, nil), "cleared", nil, ""},
		{"risk flags", facts(shop, "retail", nil, []string{"minors", "payments"}), "escalate", []string{"risk flags raised: minors, payments"}, "ETH-RISK-FLAGS"},
		{"escalations add up", facts(shop, "finance", nil, []string{"payments"}), "escalate", []string{"finance", "payments"}, "ETH-FINANCE-CONTROLS,ETH-RISK-FLAGS"},
		{"amendment beats escalate", facts("Spread disinformation about a rival clinic", "healthcare", nil, []string{"x"}), "amendment_required",
			[]string{"constitutional amendment"}, "ETH-FORBIDDEN-PURPOSE,ETH-HEALTHCARE-CONTROLS-HIPAA,ETH-HEALTHCARE-CONTROLS-FACT-CHECK,ETH-RISK-FLAGS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, res, err := s.EthicsReview(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			checkVerdict(t, v, res, tc.outcome, tc.reasons, tc.fired)
		})
	}
}

func TestForbiddenPurposes(t *testing.T) {
	s := load(t)
	for purpose, forbidden := range map[string]bool{
		"Surveillance of individuals for a private client": true,
		"covert SURVEILLANCE of individuals":               true,
		"Track people across social networks":              true,
		"spy on employees' chats":                          true,
		"monitoring citizens at protests":                  true,
		"Design weapons for a drone maker":                 true,
		"weaponize chat bots":                              true,
		"Generate disinformation before the vote":          true,
		"manipulate voters ahead of elections":             true,
		"Deceive customers into renewing":                  true,
		"mislead the public about side effects":            true,
		"discriminate against applicants by ethnicity":     true,
		"screen tenants, discriminating based on religion": true,
		"Answer product questions for an online shop":      false,
		"Summarise patient intake forms for clinicians":    false,
		"data manipulation in spreadsheets":                false,
		"flag deceptive reviews for moderators":            false,
		"monitor individual transactions for fraud":        false,
		"detect discrimination in job adverts":             false,
		"track orders for customers":                       false,
		"forecast weather for farmers":                     false,
	} {
		v, res, err := s.EthicsReview(map[string]any{"purpose": purpose, "industry": "retail"})
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Outcome == "amendment_required"; got != forbidden {
			t.Errorf("%q: outcome %s, fired %v; forbidden %v", purpose, v.Outcome, res.Trace.Fired, forbidden)
		}
	}
}

func TestReviewsRefuseBadFacts(t *testing.T) {
	s := load(t)
	for name, call := range map[string]func() error{
		"certify: industry a number":    func() error { _, _, err := s.Certify(map[string]any{"industry": 3}); return err },
		"certify: undeclared fact":      func() error { _, _, err := s.Certify(map[string]any{"industri": "retail"}); return err },
		"certify: lists a string":       func() error { _, _, err := s.Certify(map[string]any{"empty_lists": "scope_boundaries"}); return err },
		"architecture: ratio a string":  func() error { _, _, err := s.ArchitectureReview(map[string]any{"cost_ratio": "high"}); return err },
		"architecture: duplicate a str": func() error { _, _, err := s.ArchitectureReview(map[string]any{"duplicate_name": "yes"}); return err },
		"ethics: controls a map": func() error {
			_, _, err := s.EthicsReview(map[string]any{"controls": map[string]bool{"fact_check": true}})
			return err
		},
		"ethics: flags mixed":    func() error { _, _, err := s.EthicsReview(map[string]any{"risk_flags": []any{"a", 1}}); return err },
		"seeds: undeclared fact": func() error { _, _, err := s.ActiveSeeds(map[string]any{"risk_flags": []string{}}); return err },
	} {
		if err := call(); !errors.Is(err, rules.ErrBadFact) {
			t.Errorf("%s: err = %v, want ErrBadFact", name, err)
		}
	}
}

const reviewTable = `table: genesis_certification
hit_policy: all
facts: {n: number}
params: {%s}
outputs: {outcome: string, reason: string}
rules:
  - {id: A, when: {fact: n, op: ">", value: 1}, then: {outcome: revise, reason: "n is {n}"}}
  - {id: B, when: {fact: n, op: ">", value: 2}, then: {outcome: reclassify, reason: b}}
`

// The precedence and default of a review come from its table; a table whose
// rules give an outcome it does not rank is refused, never guessed.
func TestVerdictReadsItsTable(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		n            float64
		want         string
		err          error
	}{
		{"default from params", "default_outcome: fine, outcome_order: [revise, reclassify]", 0, "fine", nil},
		{"first in order wins", "default_outcome: fine, outcome_order: [revise, reclassify]", 3, "revise:n is 3", nil},
		{"order reversed", "default_outcome: fine, outcome_order: [reclassify, revise]", 3, "reclassify:b", nil},
		{"outcome not ranked", "default_outcome: fine, outcome_order: [revise]", 3, "", rules.ErrInvalidTable},
		{"no default", "outcome_order: [revise, reclassify]", 0, "", rules.ErrInvalidTable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(reviewTable, "%s", tc.params, 1)
			s, err := rules.Load(fstest.MapFS{"genesis_certification.yaml": {Data: []byte(src)}})
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := s.Certify(map[string]any{"n": tc.n})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			got := v.Outcome
			if len(v.Reasons) > 0 {
				got += ":" + strings.Join(v.Reasons, ";")
			}
			if err == nil && got != tc.want {
				t.Fatalf("verdict %s, want %s", got, tc.want)
			}
		})
	}
}

func TestActiveSeeds(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		name  string
		facts map[string]any
		want  string
		fired string
	}{
		{"GEN-004, the superseded GEN-003 skipped", map[string]any{
			"request_type": "new_agent", "industry": "healthcare", "checks": []string{"fact_check", "hipaa_check"},
			"claims_verified": true, "high_risk_flags": []string{},
		}, "GEN-004", "GEN-004,GEN-003"},
		{"two active seeds in table order", map[string]any{
			"request_type": "trial_go_live", "industry": "healthcare", "checks": []string{"fact_check", "hipaa_check", "genesis_certification"},
			"claims_verified": true, "high_risk_flags": []string{},
		}, "GEN-004,GEN-010", "GEN-004,GEN-003,GEN-010"},
		{"pending seed never returned", map[string]any{
			"content_type": "marketing", "industry": "retail", "checks": []string{"ethics_check"},
		}, "", "ETH-001"},
		{"nothing", map[string]any{"request_type": "new_agent", "industry": "retail"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, res, err := s.ActiveSeeds(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(got))
			for i, m := range got {
				ids[i] = m.SeedID
				if m.Seed.Status != "active" || !m.AutoApprove || m.VetoWindowHours != 24 {
					t.Errorf("seed %s = %+v", m.SeedID, m)
				}
			}
			if got == nil || strings.Join(ids, ",") != tc.want || strings.Join(res.Trace.Fired, ",") != tc.fired {
				t.Fatalf("seeds %v (nil %v), fired %v; want %s, fired %s", ids, got == nil, res.Trace.Fired, tc.want, tc.fired)
			}
		})
	}
	if s.FalsePositiveFlagAt() != 3 {
		t.Fatalf("FalsePositiveFlagAt = %d, want 3", s.FalsePositiveFlagAt())
	}
	at := s.FalsePositiveFlagAt()
	if s.SeedNeedsRevision(at-1) || !s.SeedNeedsRevision(at) {
		t.Fatal("FalsePositiveFlagAt disagrees with SeedNeedsRevision")
	}
}

// request is what a requester submits, decoded as a function decodes JSON.
type request struct {
	Spec         map[string]any
	WayOfWorking map[string]any
}

func decodeRequest(t *testing.T, src string) request {
	t.Helper()
	var r struct {
		Spec         map[string]any `json:"spec"`
		WayOfWorking map[string]any `json:"way_of_working"`
	}
	if err := json.Unmarshal([]byte(src), &r); err != nil {
		t.Fatal(err)
	}
	return request{r.Spec, r.WayOfWorking}
}

func strs(v any) []string {
	out := []string{}
	l, _ := v.([]any)
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// stageOutcomes runs stages 1 to 5 on a request, deriving each table's facts
// from the request the way the stage functions do, and returns each stage's
// outcome.
func stageOutcomes(t *testing.T, s *rules.Set, r request) []string {
	t.Helper()
	present := []string{}
	for k, v := range r.Spec {
		if s, isStr := v.(string); v != nil && (!isStr || s != "") {
			present = append(present, k)
		}
	}
	slices.Sort(present)
	sections := []string{}
	for k, v := range r.WayOfWorking {
		if s, _ := v.(string); s != "" {
			sections = append(sections, k)
		}
	}
	var out []string
	gaps, _, err := s.SpecGaps(present)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, "gaps:"+strings.Join(gaps, ","))
	if gaps, _, err = s.WayOfWorkingGaps(sections); err != nil {
		t.Fatal(err)
	}
	out = append(out, "gaps:"+strings.Join(gaps, ","))

	empty := []string{}
	for _, f := range []string{"scope_boundaries", "required_capabilities", "data_access_requirements", "external_systems"} {
		if len(strs(r.Spec[f])) == 0 {
			empty = append(empty, f)
		}
	}
	v, _, err := s.Certify(map[string]any{"empty_lists": empty, "industry": r.Spec["industry"]})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, v.Outcome)

	unknown := []string{}
	for _, sys := range strs(r.Spec["external_systems"]) {
		known, _, err := s.ConnectorKnown(sys)
		if err != nil {
			t.Fatal(err)
		}
		if !known {
			unknown = append(unknown, sys)
		}
	}
	capUSD, err := s.PerAgentDailyCapUSD()
	if err != nil {
		t.Fatal(err)
	}
	arch := map[string]any{"unknown_systems": unknown, "duplicate_name": false}
	if cost, ok := r.Spec["estimated_cost_usd_per_day"].(float64); ok {
		arch["cost_ratio"] = cost / capUSD
	}
	if v, _, err = s.ArchitectureReview(arch); err != nil {
		t.Fatal(err)
	}
	out = append(out, v.Outcome)

	controls := []string{}
	c, _ := r.Spec["controls"].(map[string]any)
	for k, on := range c {
		if on == true {
			controls = append(controls, k)
		}
	}
	if v, _, err = s.EthicsReview(map[string]any{
		"purpose": r.Spec["purpose"], "industry": r.Spec["industry"], "controls": controls, "risk_flags": strs(r.Spec["risk_flags"]),
	}); err != nil {
		t.Fatal(err)
	}
	return append(out, v.Outcome)
}

const wayOfWorking = `{"identity": "Shop assistant of eng-1", "scope_and_boundaries": "Answers questions; never takes payments",
 "capabilities": "Search the catalogue", "data_access_and_privacy": "Public catalogue only",
 "integrations": "None", "approvals_and_escalation": "Hands over to staff", "quality_and_slos": "95% answered",
 "failure_modes_and_fallbacks": "Says it does not know", "cost_and_limits": "Under $1 a day",
 "audit_and_reporting": "Every answer logged"}`

// DOMAIN.md: a complete low-risk retail request, and a healthcare request
// carrying its three controls, pass stages 1 to 5 without revision.
func TestCompleteRequestsPassStagesOneToFive(t *testing.T) {
	s := load(t)
	passes := []string{"gaps:", "gaps:", "certified", "approved", "cleared"}
	for _, tc := range []struct {
		name, spec string
		want       []string
	}{
		{"retail, low risk", `{"agent_name": "shop-helper", "purpose": "Answer product questions for an online shop",
			"scope_boundaries": ["product questions only"], "required_capabilities": ["catalogue_search"],
			"data_access_requirements": ["public_catalogue"], "external_systems": [], "industry": "retail",
			"engagement_id": "eng-1", "risk_flags": [], "estimated_cost_usd_per_day": 1.5}`, passes},
		{"healthcare with its three controls", `{"agent_name": "intake-summariser", "purpose": "Summarise patient intake forms for clinicians",
			"scope_boundaries": ["no diagnosis"], "required_capabilities": ["summarise"],
			"data_access_requirements": ["intake_forms"], "external_systems": ["epic_fhir"], "industry": "healthcare",
			"engagement_id": "eng-1", "controls": {"fact_check": true, "hipaa_check": true, "claims_verified": true},
			"risk_flags": [], "estimated_cost_usd_per_day": 4.99}`, passes},
		{"healthcare missing a control", `{"agent_name": "a", "purpose": "Summarise patient intake forms", "scope_boundaries": ["x"],
			"required_capabilities": ["x"], "data_access_requirements": ["x"], "external_systems": [], "industry": "healthcare",
			"engagement_id": "eng-1", "controls": {"fact_check": true, "hipaa_check": false, "claims_verified": true}}`,
			[]string{"gaps:", "gaps:", "certified", "approved", "escalate"}},
		{"retail over the cap with an unknown system", `{"agent_name": "a", "purpose": "Answer product questions", "scope_boundaries": ["x"],
			"required_capabilities": ["x"], "data_access_requirements": ["x"], "external_systems": ["acme_crm"], "industry": "retail",
			"engagement_id": "eng-1", "estimated_cost_usd_per_day": 7.5}`,
			[]string{"gaps:", "gaps:", "certified", "revise", "cleared"}},
		{"missing fields", `{"agent_name": "", "purpose": "Answer product questions", "scope_boundaries": [],
			"required_capabilities": ["x"], "data_access_requirements": ["x"], "industry": "retail", "engagement_id": null}`,
			[]string{"gaps:agent_name,external_systems,engagement_id", "gaps:", "revise", "approved", "cleared"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stageOutcomes(t, s, decodeRequest(t, `{"spec": `+tc.spec+`, "way_of_working": `+wayOfWorking+`}`))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("stages 1-5 = %q, want %q", got, tc.want)
			}
		})
	}
	r := decodeRequest(t, `{"spec": {}, "way_of_working": `+wayOfWorking+`}`)
	r.WayOfWorking["integrations"] = ""
	delete(r.WayOfWorking, "audit_and_reporting")
	if got := stageOutcomes(t, s, r)[1]; got != "gaps:integrations,audit_and_reporting" {
		t.Fatalf("way of working gaps = %s", got)
	}
}

var placeholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// Every {name} in an output names a fact of its table, and every outcome a
// review table's rules give is ranked in its outcome_order: a typo in a table
// fails here rather than in a verdict.
func TestReviewTablesAreConsistent(t *testing.T) {
	s := load(t)
	reviews := 0
	for _, name := range s.Names() {
		tbl, _ := s.Table(name)
		order, hasOrder := tbl.Params["outcome_order"].([]any)
		if hasOrder {
			reviews++
			if _, ok := tbl.Params["default_outcome"].(string); !ok {
				t.Errorf("%s: outcome_order without default_outcome", name)
			}
		}
		for _, r := range tbl.Rules {
			for out, v := range r.Then {
				str, _ := v.(string)
				for _, m := range placeholder.FindAllStringSubmatch(str, -1) {
					if _, ok := tbl.Facts[m[1]]; !ok {
						t.Errorf("%s: rule %s: %s names {%s}, not a fact of the table", name, r.ID, out, m[1])
					}
				}
			}
			if hasOrder && !slices.Contains(order, r.Then["outcome"]) {
				t.Errorf("%s: rule %s: outcome %v is not in outcome_order %v", name, r.ID, r.Then["outcome"], order)
			}
		}
	}
	if reviews != 3 {
		t.Fatalf("%d review tables with outcome_order, want certification, architecture and ethics", reviews)
	}
}

func BenchmarkStageLimits(b *testing.B) {
	s := load(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.StageLimits(); err != nil {
			b.Fatal(err)
		}
	}
}

// The largest review: a forbidden purpose and every escalation, five rules fired.
func BenchmarkEthicsReview(b *testing.B) {
	s := load(b)
	facts := map[string]any{"purpose": "Spread disinformation about a rival clinic", "industry": "healthcare",
		"controls": []string{"claims_verified"}, "risk_flags": []string{"minors"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.EthicsReview(facts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSpecGaps(b *testing.B) {
	s := load(b)
	present := specFields[:5]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.SpecGaps(present); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHealthAction(t *testing.T) {
	s := load(t)
	cases := []struct {
		streak int
		want   string
	}{{0, ""}, {1, ""}, {2, ""}, {3, "suspend"}, {4, "suspend"}}
	for _, c := range cases {
		got, res, err := s.HealthAction(c.streak)
		if err != nil {
			t.Fatalf("streak %d: %v", c.streak, err)
		}
		if got != c.want {
			t.Errorf("streak %d: action %q, want %q (trace %+v)", c.streak, got, c.want, res.Trace)
		}
	}
}
