package waooaw.rbac_test

import data.waooaw.rbac

req(role, action) := {"subject": {"id": "u1", "role": role}, "action": action, "resource": {"type": "agent"}}

test_viewer_may_read if {
	d := rbac.decision with input as req("viewer", "read")
	d.allow
	d.outcome == "allow"
	d.reasons == ["role viewer (level 7) may read: needs level <= 7"]
	d.ttl_seconds == data.platform.decision_ttl_seconds
}

test_viewer_may_not_approve if {
	d := rbac.decision with input as req("viewer", "approve")
	not d.allow
	d.outcome == "deny"
	d.obligations == []
	d.reasons == ["role viewer (level 7) may not approve: needs level <= 2"]
}

test_levels_at_the_boundaries if {
	rbac.allow with input as req("governor", "delete")
	not rbac.allow with input as req("manager", "manage")
	rbac.allow with input as req("manager", "execute")
	not rbac.allow with input as req("operator", "create")
	rbac.allow with input as req("admin", "update")
}

test_approve_and_deploy_carry_idempotency_keys if {
	d := rbac.decision with input as req("admin", "deploy")
	d.outcome == "allow_with_obligations"
	d.obligations == ["require_idempotency_key"]
}

test_unknown_role if {
	d := rbac.decision with input as req("pirate", "read")
	d.reasons == ["unknown role pirate"]
}

test_missing_role if {
	d := rbac.decision with input as {"action": "read"}
	d.reasons == ["subject.role is missing"]
}

test_missing_action if {
	d := rbac.decision with input as {"subject": {"role": "admin"}}
	d.reasons == ["action is missing"]
}

test_unknown_action if {
	d := rbac.decision with input as req("admin", "launch")
	not d.allow
	d.reasons == ["unknown action launch"]
}

test_roles_come_from_data if {
	rbac.allow with input as req("intern", "approve") with data.platform.roles as {"intern": 1}
}

test_verify_is_reserved_to_governor_and_auditor if {
	rbac.allow with input as req("governor", "verify")
	d := rbac.decision with input as req("auditor", "verify")
	d.allow
	d.reasons == ["role auditor (level 5) may verify: needs level <= 7"]
	admin := rbac.decision with input as req("admin", "verify")
	not admin.allow
	admin.reasons == ["role admin may not verify: reserved to governor, auditor"]
	viewer := rbac.decision with input as req("viewer", "verify")
	viewer.reasons == ["role viewer may not verify: reserved to governor, auditor"]
}

test_read_audit_is_reserved_to_admin_governor_and_auditor if {
	every role in ["admin", "governor", "auditor"] {
		rbac.allow with input as req(role, "read_audit")
	}
	every role in ["manager", "operator", "analyst", "viewer"] {
		d := rbac.decision with input as req(role, "read_audit")
		not d.allow
		d.reasons == [sprintf("role %v may not read_audit: reserved to admin, governor, auditor", [role])]
	}
}

test_only_admin_assigns_governors if {
	rbac.allow with input as req("admin", "assign_governor")
	d := rbac.decision with input as req("governor", "assign_governor")
	not d.allow
	d.reasons == ["role governor (level 2) may not assign_governor: needs level <= 1"]
}

test_reserved_roles_come_from_data if {
	rbac.allow with input as req("admin", "verify") with data.platform.action_roles as {"verify": ["admin"]}
	not rbac.allow with input as req("auditor", "verify") with data.platform.action_roles as {"verify": ["admin"]}
}

test_clients_submit_at_operator_level if {
	rbac.allow with input as req("operator", "submit")
	d := rbac.decision with input as req("analyst", "submit")
	d.reasons == ["role analyst (level 6) may not submit: needs level <= 4"]
}

test_only_admin_manages_clients if {
	rbac.allow with input as req("admin", "manage_clients")
	d := rbac.decision with input as req("governor", "manage_clients")
	d.reasons == ["role governor (level 2) may not manage_clients: needs level <= 1"]
}
