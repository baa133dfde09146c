# governor: only the engagement's Governor (data.platform.engagements[id].governor)
# may decide approvals (data.platform.governor_actions) or veto.
package waooaw.governor

import data.waooaw.lib

default action := ""

action := input.action

default subject := ""

subject := input.subject.id

default engagement := ""

engagement := input.resource.engagement_id

grants contains sprintf("%v is the Governor of engagement %v", [subject, engagement]) if {
	action in data.platform.governor_actions
	subject == data.platform.engagements[engagement].governor
}

# One reason per refusal, the first that applies.
denials contains problem

problem := "action is missing" if {
	action == ""
} else := sprintf("action %v is not a Governor decision", [action]) if {
	not action in data.platform.governor_actions
} else := "resource.engagement_id is missing" if {
	engagement == ""
} else := "subject.id is missing" if {
	subject == ""
} else := sprintf("engagement %v has no Governor on record", [engagement]) if {
	not data.platform.engagements[engagement].governor
} else := sprintf("%v is not the Governor of engagement %v", [subject, engagement]) if {
	subject != data.platform.engagements[engagement].governor
}

# A Governor decision carries no obligations.
obligations := set()

fallback := lib.no_grant

decision := lib.decide(grants, denials, obligations, fallback)

allow := decision.allow
