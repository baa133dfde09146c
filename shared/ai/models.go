package ai

import (
	"fmt"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/rules"
)

// model is one row of ai_models: a provider's model for a tier and its price.
type model struct {
	Name      string
	InputUSD  float64 // per million prompt tokens
	OutputUSD float64 // per million completion tokens
}

// cost prices a number of prompt and completion tokens.
func (m model) cost(prompt, completion int64) float64 {
	return (float64(prompt)*m.InputUSD + float64(completion)*m.OutputUSD) / 1e6
}

// modelFor looks the provider's model for tier up in ai_models.
func modelFor(s *rules.Set, provider, tier string) (model, error) {
	res, err := s.Evaluate(TableModels, map[string]any{"provider": provider, "tier": tier})
	if err != nil {
		return model{}, fmt.Errorf("ai: model for %s %s: %w", provider, tier, err)
	}
	if len(res.Matches) == 0 {
		return model{}, fmt.Errorf("ai: model for %s %s: %w", provider, tier, rules.ErrNoMatch)
	}
	t := res.Matches[0].Then
	m := model{}
	m.Name, _ = t["model"].(string)
	m.InputUSD, _ = t["input_usd_per_mtok"].(float64)
	m.OutputUSD, _ = t["output_usd_per_mtok"].(float64)
	if m.Name == "" || m.InputUSD <= 0 || m.OutputUSD <= 0 {
		return model{}, fmt.Errorf("ai: %s %s: model and positive prices wanted: %w", provider, tier, rules.ErrInvalidTable)
	}
	return m, nil
}

// caps are the limits a call's worst case is checked against, in USD.
type caps struct {
	Execution, AgentDay, Trial float64
}

// capsFrom reads the caps from the tables' params: budget_thresholds' per_execution_usd
// and per_agent_daily_usd, trial_limits' ai_cap_usd.
func capsFrom(s *rules.Set) (caps, error) {
	param := func(table, name string) (float64, error) {
		t, ok := s.Table(table)
		if !ok {
			return 0, fmt.Errorf("ai: caps: table %q: %w", table, rules.ErrUnknownTable)
		}
		v, ok := t.Params[name].(float64)
		if !ok || v <= 0 {
			return 0, fmt.Errorf("ai: caps: %s param %s: want a positive number: %w", table, name, rules.ErrInvalidTable)
		}
		return v, nil
	}
	var c caps
	var err error
	if c.Execution, err = param(rules.TableBudgetThresholds, "per_execution_usd"); err != nil {
		return caps{}, err
	}
	if c.AgentDay, err = param(rules.TableBudgetThresholds, "per_agent_daily_usd"); err != nil {
		return caps{}, err
	}
	if c.Trial, err = param(rules.TableTrialLimits, "ai_cap_usd"); err != nil {
		return caps{}, err
	}
	return c, nil
}

func loadRules() (*rules.Set, error) {
	s, err := rules.Load(tables.FS)
	if err != nil {
		return nil, fmt.Errorf("ai: rules.Load: %w", err)
	}
	return s, nil
}
