package waooaw.governor_test

import data.waooaw.governor

req(subject, action, engagement) := {
	"subject": {"id": subject, "role": "governor"},
	"action": action,
	"resource": {"type": "approval", "id": "ap-1", "engagement_id": engagement},
}

test_engagement_governor_may_decide if {
	every action in ["approve", "deny", "defer", "veto"] {
		d := governor.decision with input as req("gov-1", action, "eng-1")
		d.allow
		d.reasons == ["gov-1 is the Governor of engagement eng-1"]
	}
}

test_other_governor_may_not_veto if {
	d := governor.decision with input as req("gov-2", "veto", "eng-1")
	not d.allow
	d.reasons == ["gov-2 is not the Governor of engagement eng-1"]
}

test_engagement_without_governor if {
	d := governor.decision with input as req("gov-1", "approve", "eng-2")
	d.reasons == ["engagement eng-2 has no Governor on record"]
}

test_unknown_engagement if {
	not governor.allow with input as req("gov-1", "approve", "eng-9")
}

test_missing_engagement if {
	d := governor.decision with input as {"subject": {"id": "gov-1"}, "action": "approve"}
	d.reasons == ["resource.engagement_id is missing"]
}

test_missing_action_or_subject if {
	d := governor.decision with input as {"subject": {"id": "gov-1"}, "resource": {"engagement_id": "eng-1"}}
	d.reasons == ["action is missing"]
	e := governor.decision with input as {"action": "veto", "resource": {"engagement_id": "eng-1"}}
	e.reasons == ["subject.id is missing"]
}

test_non_decision_action if {
	d := governor.decision with input as req("gov-1", "deploy", "eng-1")
	d.reasons == ["action deploy is not a Governor decision"]
}

test_governors_come_from_data if {
	governor.allow with input as req("gov-7", "veto", "eng-7")
		with data.platform.engagements as {"eng-7": {"governor": "gov-7"}}
}
