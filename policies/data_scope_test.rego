package waooaw.data_scope_test

import data.waooaw.data_scope

member := {"id": "u1", "role": "operator", "engagements": ["eng-1"]}

test_member_reads_own_engagement if {
	d := data_scope.decision with input as {"subject": member, "action": "read", "resource": {"engagement_id": "eng-1", "data_class": "internal"}}
	d.outcome == "allow"
	d.reasons == ["u1 works on engagement eng-1"]
}

test_other_engagement_denied if {
	d := data_scope.decision with input as {"subject": member, "action": "read", "resource": {"engagement_id": "eng-2"}}
	d.reasons == ["u1 has no access to engagement eng-2"]
}

test_cross_engagement_role if {
	d := data_scope.decision with input as {"subject": {"id": "a1", "role": "auditor"}, "action": "read", "resource": {"engagement_id": "eng-2"}}
	d.reasons == ["role auditor reaches every engagement"]
}

test_missing_engagement if {
	d := data_scope.decision with input as {"subject": member, "action": "read", "resource": {}}
	d.reasons == ["resource.engagement_id is missing"]
}

test_agent_reads_declared_classes_only if {
	agent := {"id": "agent-7", "type": "agent", "engagements": ["eng-1"], "data_access": ["catalog"]}
	data_scope.allow with input as {"subject": agent, "resource": {"engagement_id": "eng-1", "data_class": "catalog"}}
	d := data_scope.decision with input as {"subject": agent, "resource": {"engagement_id": "eng-1", "data_class": "pii"}}
	d.reasons == ["agent agent-7 did not declare access to pii data"]
}

test_sensitive_data_is_masked_without_clearance if {
	d := data_scope.decision with input as {"subject": member, "resource": {"engagement_id": "eng-1", "data_class": "phi"}}
	d.outcome == "allow_with_obligations"
	d.obligations == ["mask_fields"]
	cleared := object.union(member, {"clearances": ["unmask"]})
	c := data_scope.decision with input as {"subject": cleared, "resource": {"engagement_id": "eng-1", "data_class": "phi"}}
	c.outcome == "allow"
}

test_empty_input if {
	d := data_scope.decision with input as {}
	d.reasons == ["resource.engagement_id is missing"]
}

bound := {"client_engagements": {"c1": ["eng-1"], "ops": ["eng-1"]}, "platform_clients": ["ops"]}

client_asks(id, engagement, claimed) := {"subject": {"id": id, "type": "client", "role": "operator", "engagements": claimed}, "action": "submit", "resource": {"engagement_id": engagement}}

test_client_reaches_its_bound_engagements_only if {
	d := data_scope.decision with input as client_asks("c1", "eng-1", []) with data.platform as object.union(data.platform, bound)
	d.reasons == ["c1 works on engagement eng-1"]
	e := data_scope.decision with input as client_asks("c1", "eng-2", ["eng-2"]) with data.platform as object.union(data.platform, bound)
	e.reasons == ["c1 has no access to engagement eng-2"]
}

test_unbound_client_reaches_nothing if {
	d := data_scope.decision with input as client_asks("c2", "eng-1", ["eng-1"]) with data.platform as object.union(data.platform, bound)
	d.reasons == ["c2 has no access to engagement eng-1"]
}

test_client_never_reaches_across if {
	asks := object.union(client_asks("c1", "eng-2", []), {"subject": {"role": "admin"}})
	d := data_scope.decision with input as asks with data.platform as object.union(data.platform, bound)
	d.reasons == ["c1 has no access to engagement eng-2"]
}

test_platform_is_reserved if {
	c := data_scope.decision with input as client_asks("c1", "platform", ["platform"]) with data.platform as object.union(data.platform, {"client_engagements": {"c1": ["platform"]}})
	c.reasons == ["c1 has no access to engagement platform: reserved to platform clients and roles admin, auditor"]
	g := data_scope.decision with input as {"subject": {"id": "g1", "role": "governor", "engagements": ["platform"]}, "resource": {"engagement_id": "platform"}}
	g.reasons == ["g1 has no access to engagement platform: reserved to platform clients and roles admin, auditor"]
	a := data_scope.decision with input as {"subject": {"id": "a1", "role": "auditor"}, "resource": {"engagement_id": "platform"}}
	a.reasons == ["role auditor reaches every engagement"]
}

test_platform_client_reaches_platform if {
	d := data_scope.decision with input as client_asks("ops", "platform", []) with data.platform as object.union(data.platform, bound)
	d.reasons == ["client ops is a platform client"]
	e := data_scope.decision with input as client_asks("ops", "eng-2", []) with data.platform as object.union(data.platform, bound)
	e.reasons == ["ops has no access to engagement eng-2"]
}

test_platform_governor_reaches_platform if {
	gov := {"engagements": {"platform": {"governor": "gp"}}}
	d := data_scope.decision with input as {"subject": {"id": "gp", "role": "governor", "engagements": ["platform"]}, "resource": {"engagement_id": "platform"}}
		with data.platform as object.union(data.platform, gov)
	d.allow
	d.reasons == ["gp is the platform's Governor"]
	o := data_scope.decision with input as {"subject": {"id": "g1", "role": "governor", "engagements": ["platform"]}, "resource": {"engagement_id": "platform"}}
		with data.platform as object.union(data.platform, gov)
	not o.allow
	c := data_scope.decision with input as client_asks("gp", "platform", ["platform"])
		with data.platform as object.union(data.platform, object.union(gov, {"client_engagements": {"gp": ["platform"]}}))
	not c.allow
}
