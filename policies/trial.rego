# trial: trial users never reach billing resources, stay within the limits of
# the trial_limits table (data.platform.trial_limits), use synthetic data and
# reach integrations only through the sandbox.
package waooaw.trial

import data.waooaw.lib

limits := data.platform.trial_limits

default usage := {}

usage := input.trial

on_trial if input.subject.trial == true

grants contains "subject is not on a trial" if not on_trial

grants contains "trial within its limits" if on_trial

denials contains sprintf("trial users may not reach %v", [input.resource.type]) if {
	on_trial
	input.resource.type in limits.billing_resources
}

denials contains sprintf("trial daily task limit reached: %v of %v tasks", [usage.tasks_today, limits.tasks_per_day]) if {
	on_trial
	input.action == "execute"
	usage.tasks_today >= limits.tasks_per_day
}

denials contains sprintf("trial AI spend cap reached: $%v of $%v", [usage.ai_spend_usd, limits.ai_cap_usd]) if {
	on_trial
	input.action in {"execute", "ai_call"}
	usage.ai_spend_usd >= limits.ai_cap_usd
}

denials contains sprintf("trial expired: day %v of %v", [usage.days_active, limits.duration_days]) if {
	on_trial
	usage.days_active >= limits.duration_days
}

denials contains sprintf("trial may use synthetic data only, not %v", [input.resource.data_class]) if {
	on_trial
	input.resource.data_class != "synthetic"
}

obligations contains "sandbox_route" if {
	on_trial
	input.resource.type == "integration"
}

fallback := lib.no_grant

decision := lib.decide(grants, denials, obligations, fallback)

allow := decision.allow
