package apiclient

// Requests a requester would send: the shapes DOMAIN.md describes, for the demo and tests.

// WayOfWorking is a complete ten-section way of working.
func WayOfWorking() map[string]any {
	return map[string]any{
		"identity":                    "An assistant that drafts content for one customer.",
		"scope_and_boundaries":        []any{"drafts only", "never publishes without review"},
		"capabilities":                []any{"drafting", "summarising"},
		"data_access_and_privacy":     "Public data only; nothing personal is stored.",
		"integrations":                "None.",
		"approvals_and_escalation":    "Every publication goes to the Governor's queue.",
		"quality_and_slos":            "95% of drafts accepted without rework.",
		"failure_modes_and_fallbacks": "On doubt, stop and ask a human.",
		"cost_and_limits":             "At most $1 a day.",
		"audit_and_reporting":         "Every draft and decision goes to the audit log.",
	}
}

// LowRiskSpec is a complete retail request: no external systems, public data only, cost
// under the per-agent cap, no risk flags. It passes stages 1–5 and, matching no seed, waits
// for the Governor's blocking approval.
func LowRiskSpec(engagement, name string) map[string]any {
	return map[string]any{
		"agent_name":                 name,
		"purpose":                    "Write product descriptions for the shop's catalogue.",
		"scope_boundaries":           []any{"catalogue texts only"},
		"required_capabilities":      []any{"copywriting"},
		"data_access_requirements":   []any{"public"},
		"external_systems":           []any{},
		"industry":                   "retail",
		"engagement_id":              engagement,
		"risk_flags":                 []any{},
		"estimated_cost_usd_per_day": 1.5,
	}
}

// SeedRequest is a healthcare request carrying fact check, HIPAA check and verified claims
// and no risk flags: seed GEN-004 approves it with a 24 h veto window.
func SeedRequest(engagement, name string) (spec, wayOfWorking map[string]any) {
	spec = LowRiskSpec(engagement, name)
	spec["purpose"] = "Answer patients' frequently asked questions about clinic hours and services."
	spec["industry"] = "healthcare"
	spec["controls"] = map[string]any{"fact_check": true, "hipaa_check": true, "claims_verified": true}
	return spec, WayOfWorking()
}
