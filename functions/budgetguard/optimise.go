package budgetguard

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"waooaw.dev/governance/policies"
)

// Spender is one agent's AI spend of the month.
type Spender struct {
	EngagementID string  `json:"engagement_id"`
	AgentID      string  `json:"agent_id"`
	USD          float64 `json:"usd"`
}

// TopSpenders are the month's n largest AI spenders, largest first.
func TopSpenders(m MonthSpend, n int) []Spender {
	out := make([]Spender, 0, len(m.ByAgent))
	for k, usd := range m.ByAgent {
		eng, agent, _ := strings.Cut(k, "/")
		out = append(out, Spender{EngagementID: eng, AgentID: agent, USD: usd})
	}
	slices.SortFunc(out, func(a, b Spender) int {
		if a.USD != b.USD {
			if a.USD > b.USD {
				return -1
			}
			return 1
		}
		return strings.Compare(a.EngagementID+"/"+a.AgentID, b.EngagementID+"/"+b.AgentID)
	})
	return out[:min(n, len(out))]
}

// Optimisation is one proposal the alert puts before the Governor, with the condition on
// the month's spend that makes it worth proposing. The proposals are the platform's levers
// over its own spend (the AI routes of rules/query_routing and rules/ai_models, the
// per-agent cap of rules/budget_thresholds, the schedules and scaling of
// infra/infrastructure.yaml); this table is their one list.
type Optimisation struct {
	ID   string
	When func(s Spend) bool
	Text func(s Spend) string
}

// Spend is what the proposals look at.
type Spend struct {
	SpendUSD, CapUSD, AISpendUSD, BillingCostUSD float64
	Top                                          []Spender
}

// Optimisations are every proposal, in the order they are listed.
var Optimisations = []Optimisation{
	{ID: "OPT-TOP-AGENT", When: func(s Spend) bool { return len(s.Top) > 0 && s.AISpendUSD > 0 && s.Top[0].USD >= s.AISpendUSD/2 },
		Text: func(s Spend) string {
			return fmt.Sprintf("lower the daily AI cap of agent %s (engagement %s), %.0f%% of the month's AI spend, until the month ends",
				s.Top[0].AgentID, s.Top[0].EngagementID, 100*s.Top[0].USD/s.AISpendUSD)
		}},
	{ID: "OPT-AI-ROUTINE", When: func(s Spend) bool { return s.SpendUSD > 0 && s.AISpendUSD >= s.SpendUSD/4 },
		Text: func(Spend) string {
			return "route all non-escalated AI work to the routine tier (rules/query_routing) and halve max_tokens for the month"
		}},
	{ID: "OPT-CLOUD", When: func(s Spend) bool { return s.BillingCostUSD > 0 },
		Text: func(Spend) string {
			return "cap every function at one instance and run the audit check hourly instead of every 10 minutes until the month ends"
		}},
}

// Propose lists the proposals whose condition holds, as "ID: text".
func Propose(s Spend) []string {
	var out []string
	for _, o := range Optimisations {
		if o.When(s) {
			out = append(out, o.ID+": "+o.Text(s))
		}
	}
	return out
}

// GovernanceAgents are data.platform.governance_agents (policies/data/platform.json): the
// agents a budget suspension never touches.
func GovernanceAgents() (map[string]bool, error) {
	raw, err := fs.ReadFile(policies.FS, policies.DataFile)
	if err != nil {
		return nil, fmt.Errorf("budgetguard: read %s: %w", policies.DataFile, err)
	}
	var d struct {
		GovernanceAgents []string `json:"governance_agents"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("budgetguard: %s: %w", policies.DataFile, err)
	}
	out := map[string]bool{}
	for _, a := range d.GovernanceAgents {
		out[a] = true
	}
	return out, nil
}
