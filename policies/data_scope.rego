# data_scope: a subject reaches only its own engagements' data (unless its role
# is in data.platform.cross_engagement_roles); an agent reads only the data
# classes it declared; sensitive classes are masked for subjects without the
# unmask clearance.
package waooaw.data_scope

import data.waooaw.lib

default subject := {}

subject := input.subject

default resource := {}

resource := input.resource

default engagement := ""

engagement := input.resource.engagement_id

member if engagement in input.subject.engagements

cross_engagement if subject.role in data.platform.cross_engagement_roles

# declared says whether an agent listed this data class among its data access requirements.
declared(class) if class in input.subject.data_access

default cleared := []

cleared := input.subject.clearances

grants contains sprintf("%v works on engagement %v", [subject.id, engagement]) if member

grants contains sprintf("role %v reaches every engagement", [subject.role]) if cross_engagement

denials contains "resource.engagement_id is missing" if engagement == ""

denials contains sprintf("%v has no access to engagement %v", [subject.id, engagement]) if {
	engagement != ""
	not member
	not cross_engagement
}

denials contains sprintf("agent %v did not declare access to %v data", [subject.id, resource.data_class]) if {
	subject.type == "agent"
	not declared(resource.data_class)
}

obligations contains "mask_fields" if {
	resource.data_class in data.platform.sensitive_data_classes
	not "unmask" in cleared
}

fallback := lib.no_grant

decision := lib.decide(grants, denials, obligations, fallback)

allow := decision.allow
