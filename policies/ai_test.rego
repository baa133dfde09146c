package waooaw.ai_test

import data.waooaw.ai

call(request) := {"subject": {"id": "agent-7", "type": "agent"}, "action": "ai_call", "request": request}

test_approved_provider_is_rate_limited if {
	d := ai.decision with input as call({"provider": "groq", "estimated_cost_usd": 0.01})
	d.outcome == "allow_with_obligations"
	d.obligations == ["enforce_rate_limit"]
	d.reasons == ["provider groq is approved"]
}

test_unapproved_provider if {
	d := ai.decision with input as call({"provider": "shadow-llm"})
	d.reasons == ["provider shadow-llm is not approved"]
}

test_missing_provider if {
	not ai.allow with input as call({})
}

test_personal_data_is_masked if {
	d := ai.decision with input as call({"provider": "openai", "contains_pii": true})
	d.obligations == ["enforce_rate_limit", "mask_fields"]
}

test_per_execution_cap if {
	d := ai.decision with input as call({"provider": "groq", "estimated_cost_usd": 0.26})
	d.reasons == ["estimated cost $0.26 exceeds the per-execution cap $0.25"]
}

test_missing_request if {
	not ai.allow with input as {"action": "ai_call"}
}
