package rules

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Table names the platform relies on.
const (
	TableBudgetThresholds = "budget_thresholds"
	TableApprovalTimeouts = "approval_timeouts"
	TableQueryRouting     = "query_routing"
	TablePrecedentSeeds   = "precedent_seeds"
	TableTrialLimits      = "trial_limits"

	// Agent creation's stage reviews.
	TableStageTimeouts        = "stage_timeouts"
	TableAgentSpecification   = "agent_specification"
	TableWayOfWorking         = "way_of_working"
	TableGenesisCertification = "genesis_certification"
	TableConnectorCatalogue   = "connector_catalogue"
	TableArchitectureReview   = "architecture_review"
	TableEthicsReview         = "ethics_review"
	TableAgentHealth          = "agent_health"
)

// ErrNoMatch is returned by a typed helper when no rule fired.
var ErrNoMatch = errors.New("no rule matched")

// ApprovalTimeout is how long a blocking approval waits and what a timeout means.
type ApprovalTimeout struct {
	Minutes   int    `json:"timeout_minutes"`
	OnTimeout string `json:"on_timeout"` // approve | deny
}

// ApprovalTimeout looks up an approval type (communication, execution,
// artifact, financial, constitutional, deployment).
func (s *Set) ApprovalTimeout(approvalType string) (ApprovalTimeout, Result, error) {
	res, err := s.Evaluate(TableApprovalTimeouts, map[string]any{"type": approvalType})
	if err != nil {
		return ApprovalTimeout{}, res, err
	}
	if len(res.Matches) == 0 {
		return ApprovalTimeout{}, res, fmt.Errorf("rules: approval type %q: %w", approvalType, ErrNoMatch)
	}
	then := res.Matches[0].Then
	return ApprovalTimeout{Minutes: int(then["timeout_minutes"].(float64)), OnTimeout: then["on_timeout"].(string)}, res, nil
}

// BudgetLevel is the budget state for a spend ratio and the action it calls for.
type BudgetLevel struct {
	State  string `json:"state"`  // normal | alert | suspended | halted
	Action string `json:"action"` // none | alert_governor | suspend_non_critical | halt_non_governance
}

// BudgetLevel maps month-to-date spend over the platform cap to a level.
func (s *Set) BudgetLevel(spendRatio float64) (BudgetLevel, Result, error) {
	res, err := s.Evaluate(TableBudgetThresholds, map[string]any{"spend_ratio": spendRatio})
	if err != nil {
		return BudgetLevel{}, res, err
	}
	if len(res.Matches) == 0 {
		return BudgetLevel{}, res, fmt.Errorf("rules: spend ratio %v: %w", spendRatio, ErrNoMatch)
	}
	then := res.Matches[0].Then
	return BudgetLevel{State: then["state"].(string), Action: then["action"].(string)}, res, nil
}

// SeedMatch is the active precedent seed that approves a request.
type SeedMatch struct {
	SeedID          string   `json:"seed_id"`
	Seed            SeedMeta `json:"seed"`
	AutoApprove     bool     `json:"auto_approve"`
	VetoWindowHours int      `json:"veto_window_hours"`
}

// MatchSeed returns the first active seed (in table order) whose conditions
// hold for the request facts. Seeds in any other status are traced but never
// approve. ok is false when none matched.
func (s *Set) MatchSeed(facts map[string]any) (m SeedMatch, ok bool, res Result, err error) {
	res, err = s.Evaluate(TablePrecedentSeeds, facts)
	if err != nil {
		return SeedMatch{}, false, res, err
	}
	for _, hit := range res.Matches {
		if hit.Seed == nil || hit.Seed.Status != "active" {
			continue
		}
		return SeedMatch{
			SeedID:          hit.RuleID,
			Seed:            *hit.Seed,
			AutoApprove:     hit.Then["auto_approve"].(bool),
			VetoWindowHours: int(hit.Then["veto_window_hours"].(float64)),
		}, true, res, nil
	}
	return SeedMatch{}, false, res, nil
}

// SeedNeedsRevision reports whether a seed with this many vetoed approvals is
// flagged for Genesis to revise or deprecate.
func (s *Set) SeedNeedsRevision(falsePositives int) bool {
	t := s.tables[TablePrecedentSeeds]
	limit, ok := t.Params["false_positive_flag_at"].(float64)
	return ok && float64(falsePositives) >= limit
}

// TrialViolations lists every trial limit the facts break (empty: within limits).
func (s *Set) TrialViolations(facts map[string]any) ([]string, Result, error) {
	res, err := s.Evaluate(TableTrialLimits, facts)
	if err != nil {
		return nil, res, err
	}
	out := make([]string, 0, len(res.Matches))
	for _, m := range res.Matches {
		out = append(out, m.Then["violation"].(string))
	}
	return out, res, nil
}

// Route is where an AI query goes.
type Route struct {
	Provider string `json:"provider"` // groq | openai | rule_based
	Fallback string `json:"fallback"`
	Tier     string `json:"tier"`
}

// RouteQuery picks the provider for an AI query.
func (s *Set) RouteQuery(facts map[string]any) (Route, Result, error) {
	res, err := s.Evaluate(TableQueryRouting, facts)
	if err != nil {
		return Route{}, res, err
	}
	if len(res.Matches) == 0 {
		return Route{}, res, fmt.Errorf("rules: query routing: %w", ErrNoMatch)
	}
	t := res.Matches[0].Then
	return Route{Provider: t["provider"].(string), Fallback: t["fallback"].(string), Tier: t["tier"].(string)}, res, nil
}

// PolicyData is the data document the policy bundles read under
// data.platform: the trial limits and budget thresholds, taken from the
// tables' params so each number exists once. Shape:
//
//	{"trial_limits": {tasks_per_day, ai_cap_usd, duration_days, billing_resources},
//	 "budget": {platform_cap_usd, alert_ratio, suspend_ratio, halt_ratio, per_agent_daily_usd, per_execution_usd}}
func (s *Set) PolicyData() (map[string]any, error) {
	out := map[string]any{}
	for key, table := range map[string]string{"trial_limits": TableTrialLimits, "budget": TableBudgetThresholds} {
		t, ok := s.tables[table]
		if !ok {
			return nil, fmt.Errorf("rules: policy data needs table %q: %w", table, ErrUnknownTable)
		}
		params := make(map[string]any, len(t.Params))
		for k, v := range t.Params {
			params[k] = v
		}
		out[key] = params
	}
	return out, nil
}

// Limits are agent creation's timeouts in the shape the workflow's argument
// carries them (docs/agent-creation.md).
type Limits struct {
	MaxRounds           int            `json:"max_rounds"`
	StageSeconds        map[string]int `json:"stage_seconds"` // keys "1".."7"
	RevisionSeconds     int            `json:"revision_seconds"`
	DeployHealthSeconds int            `json:"deploy_health_seconds"`
}

// stageKeys are the seven stages of agent creation as Limits names them; the
// table's step for stage k is "stage_k".
var stageKeys = [...]string{"1", "2", "3", "4", "5", "6", "7"}

// StageLimits evaluates stage_timeouts for every step. A step without a rule,
// or a missing max_revision_rounds, is an error: the workflow must not start
// without a bound on each wait.
func (s *Set) StageLimits() (Limits, error) {
	rounds, err := s.paramInt(TableStageTimeouts, "max_revision_rounds")
	if err != nil {
		return Limits{}, err
	}
	l := Limits{MaxRounds: rounds, StageSeconds: make(map[string]int, len(stageKeys))}
	for _, k := range stageKeys {
		sec, err := s.stepSeconds("stage_" + k)
		if err != nil {
			return Limits{}, err
		}
		l.StageSeconds[k] = sec
	}
	if l.RevisionSeconds, err = s.stepSeconds("revision"); err != nil {
		return Limits{}, err
	}
	if l.DeployHealthSeconds, err = s.stepSeconds("deploy_health"); err != nil {
		return Limits{}, err
	}
	return l, nil
}

func (s *Set) stepSeconds(step string) (int, error) {
	res, err := s.Evaluate(TableStageTimeouts, map[string]any{"step": step})
	if err != nil {
		return 0, err
	}
	if len(res.Matches) == 0 {
		return 0, fmt.Errorf("rules: stage timeout for step %q: %w", step, ErrNoMatch)
	}
	return int(math.Round(res.Matches[0].Then["timeout_minutes"].(float64) * 60)), nil
}

// MaxRevisionRounds is how many rounds a request may go back for revision; a
// revise in the last round is a rejection. 0 when the table lacks it
// (StageLimits reports that as an error).
func (s *Set) MaxRevisionRounds() int {
	n, _ := s.paramInt(TableStageTimeouts, "max_revision_rounds")
	return n
}

// SpecGaps lists, in table order, the required spec fields not in present.
func (s *Set) SpecGaps(present []string) ([]string, Result, error) {
	return s.gaps(TableAgentSpecification, "present", present)
}

// SpecFields lists the fields every agent specification must carry (nil when
// the table lacks them).
func (s *Set) SpecFields() []string {
	return s.paramStrings(TableAgentSpecification, "required_fields")
}

// WayOfWorkingGaps lists, in table order, the way-of-working sections missing
// from sections (the sections present and non-empty).
func (s *Set) WayOfWorkingGaps(sections []string) ([]string, Result, error) {
	return s.gaps(TableWayOfWorking, "sections", sections)
}

// WayOfWorkingSections lists the sections a complete way of working has (nil
// when the table lacks them).
func (s *Set) WayOfWorkingSections() []string {
	return s.paramStrings(TableWayOfWorking, "required_sections")
}

func (s *Set) gaps(table, fact string, have []string) ([]string, Result, error) {
	if have == nil {
		have = []string{} // present and empty: nothing there, rather than an unknown fact
	}
	res, err := s.Evaluate(table, map[string]any{fact: have})
	if err != nil {
		return nil, res, err
	}
	out := make([]string, 0, len(res.Matches))
	for _, m := range res.Matches {
		out = append(out, m.Then["gap"].(string))
	}
	return out, res, nil
}

// Verdict is a review's outcome and the reasons for it, in table order. With
// no rule fired it is the table's default_outcome and no reasons.
type Verdict struct {
	Outcome string   `json:"outcome"`
	Reasons []string `json:"reasons"`
}

// Certify is Genesis's certification (stage 3). Facts: empty_lists (the
// spec's empty list fields), industry. Outcomes: certified, revise (beats)
// reclassify.
func (s *Set) Certify(facts map[string]any) (Verdict, Result, error) {
	return s.verdict(TableGenesisCertification, facts)
}

// ArchitectureReview is the Systems Architect's review (stage 4). Facts:
// unknown_systems, cost_ratio (estimated daily cost over PerAgentDailyCapUSD),
// duplicate_name. Outcomes: approved, revise.
func (s *Set) ArchitectureReview(facts map[string]any) (Verdict, Result, error) {
	return s.verdict(TableArchitectureReview, facts)
}

// EthicsReview is the Vision Guardian's review (stage 5). Facts: purpose,
// industry, controls (those set true), risk_flags. Outcomes: cleared,
// amendment_required (beats) escalate.
func (s *Set) EthicsReview(facts map[string]any) (Verdict, Result, error) {
	return s.verdict(TableEthicsReview, facts)
}

// verdict evaluates an all-match review table whose rules output outcome and
// reason. The fired outcome earliest in the param outcome_order wins and only
// its rules' reasons are given; the others stay in the trace. A reason's
// {fact} is replaced by the fact's value.
func (s *Set) verdict(table string, facts map[string]any) (Verdict, Result, error) {
	res, err := s.Evaluate(table, facts)
	if err != nil {
		return Verdict{}, res, err
	}
	t := s.tables[table]
	def, ok := t.Params["default_outcome"].(string)
	if !ok {
		return Verdict{}, res, fmt.Errorf("rules: table %s: param default_outcome: want a string: %w", table, ErrInvalidTable)
	}
	order := s.paramStrings(table, "outcome_order")
	best := len(order)
	for _, m := range res.Matches {
		o, _ := m.Then["outcome"].(string)
		i := slices.Index(order, o)
		if i < 0 {
			return Verdict{}, res, fmt.Errorf("rules: table %s: rule %s: outcome %q is not in outcome_order: %w", table, m.RuleID, o, ErrInvalidTable)
		}
		best = min(best, i)
	}
	if best == len(order) {
		return Verdict{Outcome: def, Reasons: []string{}}, res, nil
	}
	v := Verdict{Outcome: order[best], Reasons: []string{}}
	for _, m := range res.Matches {
		if m.Then["outcome"] == v.Outcome {
			reason, _ := m.Then["reason"].(string)
			v.Reasons = append(v.Reasons, fillFacts(reason, t, facts))
		}
	}
	return v, res, nil
}

// fillFacts replaces each {fact} in a reason by the value of that declared
// fact: lists joined with ", ", numbers to two decimals at most.
func fillFacts(reason string, t *Table, facts map[string]any) string {
	if !strings.Contains(reason, "{") {
		return reason
	}
	for name := range t.Facts {
		ref := "{" + name + "}"
		if !strings.Contains(reason, ref) {
			continue
		}
		// Facts were checked by Evaluate, so normalize cannot fail here.
		v, _ := normalize(facts[name], t.Facts[name])
		var text string
		switch {
		case !v.present:
			text = "(none)"
		case t.Facts[name] == Number:
			text = strconv.FormatFloat(math.Round(v.num*100)/100, 'f', -1, 64)
		case t.Facts[name] == String:
			text = v.str
		case t.Facts[name] == Bool:
			text = strconv.FormatBool(v.b)
		default:
			text = strings.Join(v.list, ", ")
		}
		reason = strings.ReplaceAll(reason, ref, text)
	}
	return reason
}

// ConnectorKnown reports whether the platform has a connector for an
// external system. Names are compared in lower case without surrounding
// space, as the catalogue lists them.
func (s *Set) ConnectorKnown(system string) (bool, Result, error) {
	res, err := s.Evaluate(TableConnectorCatalogue, map[string]any{"system": strings.ToLower(strings.TrimSpace(system))})
	if err != nil {
		return false, res, err
	}
	if len(res.Matches) == 0 {
		return false, res, nil
	}
	known, _ := res.Matches[0].Then["known"].(bool)
	return known, res, nil
}

// PerAgentDailyCapUSD is the daily spend cap of one agent
// (budget_thresholds' per_agent_daily_usd).
func (s *Set) PerAgentDailyCapUSD() (float64, error) {
	t, ok := s.tables[TableBudgetThresholds]
	if !ok {
		return 0, fmt.Errorf("rules: per-agent cap: table %q: %w", TableBudgetThresholds, ErrUnknownTable)
	}
	v, ok := t.Params["per_agent_daily_usd"].(float64)
	if !ok || v <= 0 {
		return 0, fmt.Errorf("rules: table %s: param per_agent_daily_usd: want a positive number: %w", TableBudgetThresholds, ErrInvalidTable)
	}
	return v, nil
}

// ActiveSeeds returns every active precedent seed whose conditions hold, in
// table order. Seeds in any other status are traced but never returned; a
// caller skips those it has flagged (FalsePositiveFlagAt).
func (s *Set) ActiveSeeds(facts map[string]any) ([]SeedMatch, Result, error) {
	res, err := s.Evaluate(TablePrecedentSeeds, facts)
	if err != nil {
		return nil, res, err
	}
	out := []SeedMatch{}
	for _, hit := range res.Matches {
		if hit.Seed == nil || hit.Seed.Status != "active" {
			continue
		}
		out = append(out, SeedMatch{
			SeedID:          hit.RuleID,
			Seed:            *hit.Seed,
			AutoApprove:     hit.Then["auto_approve"].(bool),
			VetoWindowHours: int(hit.Then["veto_window_hours"].(float64)),
		})
	}
	return out, res, nil
}

// FalsePositiveFlagAt is the number of vetoed auto-approvals at which a seed
// is flagged and stops auto-approving (0 when the table lacks it).
func (s *Set) FalsePositiveFlagAt() int {
	n, _ := s.paramInt(TablePrecedentSeeds, "false_positive_flag_at")
	return n
}

// paramInt reads a whole, positive number param.
func (s *Set) paramInt(table, name string) (int, error) {
	t, ok := s.tables[table]
	if !ok {
		return 0, fmt.Errorf("rules: param %s: table %q: %w", name, table, ErrUnknownTable)
	}
	v, ok := t.Params[name].(float64)
	if !ok || v < 1 || v != math.Trunc(v) {
		return 0, fmt.Errorf("rules: table %s: param %s: want a whole number of at least 1: %w", table, name, ErrInvalidTable)
	}
	return int(v), nil
}

// paramStrings reads a list-of-strings param as a fresh slice (nil when absent).
func (s *Set) paramStrings(table, name string) []string {
	t, ok := s.tables[table]
	if !ok {
		return nil
	}
	l, ok := t.Params[name].([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		if str, ok := e.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// HealthAction is what a live agent's run of critical health reports calls for: "suspend",
// or "" while the streak is short of the table's threshold.
func (s *Set) HealthAction(criticalStreak int) (string, Result, error) {
	res, err := s.Evaluate(TableAgentHealth, map[string]any{"critical_streak": float64(criticalStreak)})
	if err != nil {
		return "", res, err
	}
	if len(res.Matches) == 0 {
		return "", res, nil
	}
	return res.Matches[0].Then["action"].(string), res, nil
}
