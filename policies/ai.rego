# ai: AI router calls go only to approved providers, within the per-execution
# cap (data.platform.budget), rate limited, with personal data masked.
package waooaw.ai

import data.waooaw.lib

default request := {}

request := input.request

default provider := ""

provider := input.request.provider

default cost := 0

cost := input.request.estimated_cost_usd

approved if provider in data.platform.ai_providers

grants contains sprintf("provider %v is approved", [provider]) if approved

denials contains sprintf("provider %v is not approved", [provider]) if not approved

denials contains sprintf("estimated cost $%v exceeds the per-execution cap $%v", [cost, data.platform.budget.per_execution_usd]) if {
	cost > data.platform.budget.per_execution_usd
}

# Provider quotas are shared by every agent.
obligations contains "enforce_rate_limit"

obligations contains "mask_fields" if request.contains_pii == true

fallback := lib.no_grant

decision := lib.decide(grants, denials, obligations, fallback)

allow := decision.allow
