# budget: the platform's budget state (given, or derived from spend_ratio with
# the budget_thresholds table's ratios in data.platform.budget) and the
# per-agent and per-execution caps. Governance agents, Governor decisions and
# escalations run in every state. The state is the caller's input.budget when
# it sends one, else data.platform.budget_state: the budget guard's Firestore
# document, which enforcement points keep in their data with a listener
# (shared/budget), so every route is decided on the platform's current state.
package waooaw.budget

import data.waooaw.lib

caps := data.platform.budget

default spend := {}

spend := input.budget if {
	input.budget
} else := data.platform.budget_state

default cost := 0

cost := input.budget.estimated_cost_usd

state := spend.state if {
	spend.state
} else := "halted" if {
	spend.spend_ratio >= caps.halt_ratio
} else := "suspended" if {
	spend.spend_ratio >= caps.suspend_ratio
} else := "alert" if {
	spend.spend_ratio >= caps.alert_ratio
} else := "normal"

governance if input.subject.id in data.platform.governance_agents

governance if input.action == "escalate"

governance if {
	input.subject.role == "governor"
	input.action in data.platform.governor_actions
}

# What a Governor reads to decide (pending approvals, requests, the audit stream) and an
# admin's assignment of a Governor are governance work too: a halt must leave the Governor
# able to see and decide.
governor_reads := {"list", "read", "read_audit", "verify"}

governance if {
	input.subject.role == "governor"
	input.action in governor_reads
}

governance if {
	input.subject.role == "admin"
	input.action == "assign_governor"
}

critical if input.resource.critical == true

grants contains "budget normal" if state == "normal"

grants contains "budget alert: rate limited" if state == "alert"

grants contains "budget suspended: critical work continues" if {
	state == "suspended"
	critical
}

grants contains sprintf("governance work continues while budget is %v", [state]) if governance

denials contains "budget halted: only governance agents and Governor escalations may run" if {
	state == "halted"
	not governance
}

denials contains "budget suspended: non-critical work is denied" if {
	state == "suspended"
	not critical
	not governance
}

denials contains sprintf("agent daily spend cap reached: $%v + $%v > $%v", [spend.agent_spend_today_usd, cost, caps.per_agent_daily_usd]) if {
	not governance
	spend.agent_spend_today_usd + cost > caps.per_agent_daily_usd
}

denials contains sprintf("execution cost $%v exceeds the per-execution cap $%v", [cost, caps.per_execution_usd]) if {
	not governance
	cost > caps.per_execution_usd
}

obligations contains "enforce_rate_limit" if state == "alert"

fallback := sprintf("budget state %v is not recognised", [state])

decision := lib.decide(grants, denials, obligations, fallback)

allow := decision.allow
