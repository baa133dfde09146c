package audit_test

import (
	"errors"
	"fmt"

	"waooaw.dev/governance/shared/audit"
)

// The first two links of a stream. An external verifier needs only a JCS serialiser and
// SHA-256: hash = sha256(prev_hash as 64 hex characters ‖ canonical entry).
func ExampleChainHash() {
	e := audit.Entry{
		EventID: "ev-1", Seq: 1, Time: "2026-11-26T17:00:00Z", EventType: "decision",
		ActorID: "gov-1", ActorType: "human", Action: "approve", Target: "agent-42",
		Context: map[string]string{"seed": "GEN-004"}, ApprovalChain: []string{"genesis"}, Result: "approved",
	}
	c, err := audit.Canonical(e)
	fmt.Println(string(c), err)
	h1, err := audit.ChainHash(audit.GenesisHash, e)
	fmt.Println(h1, err)

	e.EventID, e.Seq, e.Action, e.Result = "ev-2", 2, "veto", "vetoed"
	fmt.Println(audit.ChainHash(h1, e))

	// A string that is not UTF-8 has no RFC 8785 form: such an entry is refused.
	e.Target = "agent-\xff"
	_, err = audit.ChainHash(h1, e)
	fmt.Println(errors.Is(err, audit.ErrInvalid), err)
	// Output:
	// {"action":"approve","actor_id":"gov-1","actor_type":"human","approval_chain":["genesis"],"context":{"seed":"GEN-004"},"event_id":"ev-1","event_type":"decision","result":"approved","seq":1,"target":"agent-42","time":"2026-11-26T17:00:00Z"} <nil>
	// 6df29927acd3c9c4f3579662e0729758b522ae0beaa89328b1c3ed34fdb56b42 <nil>
	// d579097f35cac37a4eb99f3c61b1c5c5d5e0e1ef72a06610a1bc02a866f4e9ed <nil>
	// true audit: invalid entry: event "ev-2": target: canonical: string is not valid UTF-8: byte 6 of "agent-\xff"
}
