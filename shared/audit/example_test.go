package audit_test

import (
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
	fmt.Println(string(audit.Canonical(e)))
	h1 := audit.ChainHash(audit.GenesisHash, e)
	fmt.Println(h1)

	e.EventID, e.Seq, e.Action, e.Result = "ev-2", 2, "veto", "vetoed"
	fmt.Println(audit.ChainHash(h1, e))
	// Output:
	// {"action":"approve","actor_id":"gov-1","actor_type":"human","approval_chain":["genesis"],"context":{"seed":"GEN-004"},"event_id":"ev-1","event_type":"decision","result":"approved","seq":1,"target":"agent-42","time":"2026-11-26T17:00:00Z"}
	// 6df29927acd3c9c4f3579662e0729758b522ae0beaa89328b1c3ed34fdb56b42
	// d579097f35cac37a4eb99f3c61b1c5c5d5e0e1ef72a06610a1bc02a866f4e9ed
}
