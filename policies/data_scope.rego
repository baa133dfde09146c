# data_scope: a subject reaches only its own engagements' data (unless its role
# is in data.platform.cross_engagement_roles); an agent reads only the data
# classes it declared; sensitive classes are masked for subjects without the
# unmask clearance. A signed client's engagements are the bindings an admin
# made (data.platform.client_engagements), never what its request says, and no
# client reaches across engagements. The engagement "platform" (platform-wide
# data: the platform audit stream) is reached only by the cross-engagement
# roles and by the clients in data.platform.platform_clients.
package waooaw.data_scope

import data.waooaw.lib

default subject := {}

subject := input.subject

default resource := {}

resource := input.resource

default engagement := ""

engagement := input.resource.engagement_id

reserved := "platform"

client if subject.type == "client"

default engagements := []

engagements := data.platform.client_engagements[subject.id] if client

engagements := input.subject.engagements if not client

member if {
	engagement != reserved
	engagement in engagements
}

cross_engagement if {
	not client
	subject.role in data.platform.cross_engagement_roles
}

platform_client if {
	engagement == reserved
	client
	subject.id in data.platform.platform_clients
}

# The platform's Governor (data.platform.engagements.platform.governor, assigned by an
# admin) reaches the platform engagement: it decides the platform's own approvals.
platform_governor if {
	engagement == reserved
	not client
	subject.id == data.platform.engagements[reserved].governor
}

# declared says whether an agent listed this data class among its data access requirements.
declared(class) if class in input.subject.data_access

default cleared := []

cleared := input.subject.clearances

grants contains sprintf("%v works on engagement %v", [subject.id, engagement]) if member

grants contains sprintf("role %v reaches every engagement", [subject.role]) if cross_engagement

grants contains sprintf("client %v is a platform client", [subject.id]) if platform_client

grants contains sprintf("%v is the platform's Governor", [subject.id]) if platform_governor

denials contains "resource.engagement_id is missing" if engagement == ""

denials contains sprintf("%v has no access to engagement %v", [subject.id, engagement]) if {
	engagement != ""
	engagement != reserved
	not member
	not cross_engagement
}

denials contains sprintf("%v has no access to engagement %v: reserved to platform clients and roles %v", [subject.id, engagement, concat(", ", data.platform.cross_engagement_roles)]) if {
	engagement == reserved
	not cross_engagement
	not platform_client
	not platform_governor
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
