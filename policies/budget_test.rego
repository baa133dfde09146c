package waooaw.budget_test

import data.waooaw.budget

req(subject, action, spend) := {"subject": subject, "action": action, "resource": {"type": "task"}, "budget": spend}

worker := {"id": "agent-7", "type": "agent", "role": "operator"}

test_normal_budget_allows if {
	d := budget.decision with input as req(worker, "execute", {"state": "normal"})
	d.outcome == "allow"
	d.reasons == ["budget normal"]
}

test_halted_denies_non_governance_work if {
	d := budget.decision with input as req(worker, "execute", {"state": "halted"})
	not d.allow
	d.reasons == ["budget halted: only governance agents and Governor escalations may run"]
}

test_halted_allows_governor_escalation if {
	d := budget.decision with input as req({"id": "gov-1", "role": "governor"}, "escalate", {"state": "halted"})
	d.allow
	d.reasons == ["governance work continues while budget is halted"]
}

test_halted_allows_governance_agents_and_governor_decisions if {
	budget.allow with input as req({"id": "genesis", "type": "agent"}, "execute", {"state": "halted"})
	budget.allow with input as req({"id": "gov-1", "role": "governor"}, "veto", {"state": "halted"})
	not budget.allow with input as req({"id": "gov-1", "role": "governor"}, "deploy", {"state": "halted"})
}

test_suspended_denies_non_critical_only if {
	d := budget.decision with input as req(worker, "execute", {"state": "suspended"})
	d.reasons == ["budget suspended: non-critical work is denied"]
	critical := object.union(req(worker, "execute", {"state": "suspended"}), {"resource": {"critical": true}})
	c := budget.decision with input as critical
	c.allow
	c.reasons == ["budget suspended: critical work continues"]
}

test_alert_rate_limits if {
	d := budget.decision with input as req(worker, "execute", {"state": "alert"})
	d.outcome == "allow_with_obligations"
	d.obligations == ["enforce_rate_limit"]
}

test_state_derived_from_spend_ratio if {
	every ratio, want in {0.1: "normal", 0.5: "alert", 0.69: "alert", 0.7: "suspended", 0.9: "halted", 1.2: "halted"} {
		budget.state == want with input as req(worker, "execute", {"spend_ratio": ratio})
	}
	budget.state == "normal" with input as req(worker, "execute", {})
}

test_agent_daily_cap if {
	d := budget.decision with input as req(worker, "execute", {"state": "normal", "agent_spend_today_usd": 0.9, "estimated_cost_usd": 0.2})
	d.reasons == ["agent daily spend cap reached: $0.9 + $0.2 > $1"]
	budget.allow with input as req(worker, "execute", {"state": "normal", "agent_spend_today_usd": 0.5, "estimated_cost_usd": 0.2})
}

test_per_execution_cap if {
	d := budget.decision with input as req(worker, "execute", {"state": "normal", "estimated_cost_usd": 0.3})
	d.reasons == ["execution cost $0.3 exceeds the per-execution cap $0.25"]
}

test_unknown_state if {
	d := budget.decision with input as req(worker, "execute", {"state": "panic"})
	d.reasons == ["budget state panic is not recognised"]
}

test_missing_budget_is_normal if {
	d := budget.decision with input as {"subject": worker, "action": "read"}
	d.reasons == ["budget normal"]
}

test_state_from_platform_data_when_input_has_none if {
	halted := {"state": "halted", "spend_usd": 101, "interval_start": "2026-12-01T00:00:00Z"}
	d := budget.decision with input as {"subject": worker, "action": "execute"}
		with data.platform.budget_state as halted
	d.reasons == ["budget halted: only governance agents and Governor escalations may run"]
	budget.allow with input as {"subject": {"id": "gov-1", "role": "governor"}, "action": "escalate"}
		with data.platform.budget_state as halted
	budget.allow with input as {"subject": {"id": "vision_guardian", "type": "agent"}, "action": "deploy"}
		with data.platform.budget_state as halted
}

test_input_budget_overrides_platform_data if {
	d := budget.decision with input as req(worker, "execute", {"state": "normal"})
		with data.platform.budget_state as {"state": "halted"}
	d.reasons == ["budget normal"]
	s := budget.decision with input as {"subject": worker, "action": "execute", "resource": {"critical": true}}
		with data.platform.budget_state as {"state": "suspended"}
	s.reasons == ["budget suspended: critical work continues"]
}

test_halted_leaves_the_governor_able_to_read_and_decide if {
	halted := {"state": "halted"}
	every action in ["list", "read", "read_audit", "verify", "approve", "deny", "escalate"] {
		budget.allow with input as {"subject": {"id": "gov-1", "role": "governor"}, "action": action}
			with data.platform.budget_state as halted
	}
	budget.allow with input as {"subject": {"id": "root", "role": "admin"}, "action": "assign_governor"}
		with data.platform.budget_state as halted
	every action in ["create", "submit", "list", "read"] {
		not budget.allow with input as {"subject": {"id": "mgr-1", "role": "manager"}, "action": action}
			with data.platform.budget_state as halted
	}
	not budget.allow with input as {"subject": {"id": "root", "role": "admin"}, "action": "manage_clients"}
		with data.platform.budget_state as halted
}
