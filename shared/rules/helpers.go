package rules

import (
	"errors"
	"fmt"
)

// Table names the platform relies on.
const (
	TableBudgetThresholds = "budget_thresholds"
	TableApprovalTimeouts = "approval_timeouts"
	TableQueryRouting     = "query_routing"
	TablePrecedentSeeds   = "precedent_seeds"
	TableTrialLimits      = "trial_limits"
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
