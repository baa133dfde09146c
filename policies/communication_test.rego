package waooaw.communication_test

import data.waooaw.communication

send(message) := {"subject": {"id": "agent-7", "type": "agent"}, "action": "send", "message": message}

test_internal_channel if {
	d := communication.decision with input as send({"channel": "in_app"})
	d.outcome == "allow"
	d.reasons == ["internal channel in_app"]
}

test_external_needs_approval if {
	d := communication.decision with input as send({"channel": "email"})
	d.reasons == ["external email message needs an approved communication approval"]
	not communication.allow with input as send({"channel": "email", "approval_id": "ap-1", "approved": false})
}

test_approved_external_is_signed_and_idempotent if {
	d := communication.decision with input as send({"channel": "webhook", "approval_id": "ap-9", "approved": true})
	d.outcome == "allow_with_obligations"
	d.obligations == ["require_idempotency_key", "sign_payload"]
	d.reasons == ["external webhook message approved by ap-9"]
}

test_unknown_channel if {
	d := communication.decision with input as send({"channel": "pigeon"})
	d.reasons == ["unknown channel pigeon"]
}

test_missing_message if {
	not communication.allow with input as {"action": "send"}
}
