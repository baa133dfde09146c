# communication: internal channels are open; a message to the outside world
# needs an approved communication approval and goes signed, with an
# idempotency key so a retry never sends twice.
package waooaw.communication

import data.waooaw.lib

message := input.message

default channel := ""

channel := input.message.channel

external_channel if channel in data.platform.external_channels

internal_channel if channel in data.platform.internal_channels

approved if message.approved == true

grants contains sprintf("internal channel %v", [channel]) if internal_channel

grants contains sprintf("external %v message approved by %v", [channel, message.approval_id]) if {
	external_channel
	approved
}

denials contains sprintf("external %v message needs an approved communication approval", [channel]) if {
	external_channel
	not approved
}

denials contains sprintf("unknown channel %v", [channel]) if {
	not external_channel
	not internal_channel
}

obligations contains "sign_payload" if external_channel

obligations contains "require_idempotency_key" if external_channel

fallback := lib.no_grant

decision := lib.decide(grants, denials, obligations, fallback)

allow := decision.allow
