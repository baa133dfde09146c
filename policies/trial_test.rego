package waooaw.trial_test

import data.waooaw.trial

trial_req(action, resource, usage) := {
	"subject": {"id": "t1", "role": "operator", "trial": true},
	"action": action,
	"resource": resource,
	"trial": usage,
}

fresh := {"tasks_today": 0, "ai_spend_usd": 0, "days_active": 0}

test_non_trial_subject_is_not_limited if {
	d := trial.decision with input as {"subject": {"id": "c1"}, "action": "read", "resource": {"type": "invoices"}}
	d.allow
	d.reasons == ["subject is not on a trial"]
}

test_trial_within_limits if {
	d := trial.decision with input as trial_req("execute", {"type": "task", "data_class": "synthetic"}, fresh)
	d.outcome == "allow"
}

test_trial_never_reaches_billing if {
	every r in ["invoices", "subscriptions", "billing"] {
		d := trial.decision with input as trial_req("read", {"type": r}, fresh)
		d.reasons == [sprintf("trial users may not reach %v", [r])]
	}
}

test_daily_task_limit if {
	d := trial.decision with input as trial_req("execute", {"type": "task"}, {"tasks_today": 3})
	d.reasons == ["trial daily task limit reached: 3 of 3 tasks"]
	trial.allow with input as trial_req("execute", {"type": "task"}, {"tasks_today": 2})
}

test_ai_cap if {
	d := trial.decision with input as trial_req("ai_call", {"type": "model"}, {"ai_spend_usd": 2})
	d.reasons == ["trial AI spend cap reached: $2 of $2"]
	trial.allow with input as trial_req("read", {"type": "model"}, {"ai_spend_usd": 2})
}

test_trial_expires if {
	d := trial.decision with input as trial_req("read", {"type": "task"}, {"days_active": 2})
	d.reasons == ["trial expired: day 2 of 2"]
}

test_synthetic_data_only if {
	d := trial.decision with input as trial_req("read", {"type": "dataset", "data_class": "production"}, fresh)
	d.reasons == ["trial may use synthetic data only, not production"]
}

test_integrations_go_to_the_sandbox if {
	d := trial.decision with input as trial_req("execute", {"type": "integration"}, fresh)
	d.outcome == "allow_with_obligations"
	d.obligations == ["sandbox_route"]
}

test_limits_come_from_data if {
	trial.allow with input as trial_req("execute", {"type": "task"}, {"tasks_today": 3})
		with data.platform.trial_limits.tasks_per_day as 4
}

test_trial_without_usage_counters if {
	trial.allow with input as {"subject": {"id": "t1", "trial": true}, "action": "read", "resource": {"type": "task"}}
}
