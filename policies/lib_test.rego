package waooaw.lib_test

import data.waooaw.lib

test_default_deny_names_the_fallback if {
	d := lib.decide(set(), set(), {"sign_payload"}, "nothing applies")
	d == {"allow": false, "outcome": "deny", "obligations": [], "reasons": ["nothing applies"], "ttl_seconds": data.platform.decision_ttl_seconds}
}

test_denials_beat_grants if {
	d := lib.decide({"granted"}, {"b denied", "a denied"}, set(), "x")
	not d.allow
	d.reasons == ["a denied", "b denied"]
}

test_obligations_sorted_on_allow if {
	d := lib.decide({"ok"}, set(), {"sign_payload", "mask_fields"}, "x")
	d.outcome == "allow_with_obligations"
	d.obligations == ["mask_fields", "sign_payload"]
}
