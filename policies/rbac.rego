# rbac: seven role levels (data.platform.roles, admin 1 ... viewer 7); each
# action needs a level at or below data.platform.actions[action].
package waooaw.rbac

import data.waooaw.lib

default role := ""

role := input.subject.role

default action := ""

action := input.action

grants contains sprintf("role %v (level %v) may %v: needs level <= %v", [role, level, action, needed]) if {
	level := data.platform.roles[role]
	needed := data.platform.actions[action]
	level <= needed
}

# One reason per refusal, the first that applies: a single partial rule keeps
# the hot path short. Some actions belong to named roles whatever their level
# (data.platform.action_roles): verifying the audit log is the Governor's and
# the auditor's.
denials contains problem

problem := "subject.role is missing" if {
	role == ""
} else := sprintf("unknown role %v", [role]) if {
	not data.platform.roles[role]
} else := "action is missing" if {
	action == ""
} else := sprintf("unknown action %v", [action]) if {
	not data.platform.actions[action]
} else := sprintf("role %v may not %v: reserved to %v", [role, action, concat(", ", reserved)]) if {
	reserved := data.platform.action_roles[action]
	not role in reserved
} else := sprintf("role %v (level %v) may not %v: needs level <= %v", [role, level, action, needed]) if {
	level := data.platform.roles[role]
	needed := data.platform.actions[action]
	level > needed
}

# Approvals and deploys carry idempotency keys so a retry never acts twice.
obligations contains "require_idempotency_key" if action in data.platform.idempotent_actions

fallback := lib.no_grant

decision := lib.decide(grants, denials, obligations, fallback)

allow := decision.allow
