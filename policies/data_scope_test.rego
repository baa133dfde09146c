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
