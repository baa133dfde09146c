package schema

import (
	"strings"
	"testing"
)

const head = `"event_id":"d-00000001","type":"waooaw.policy.attested","source":"//waooaw/pdp","time":"2027-01-15T08:00:00.000000001Z","correlation_id":"corr-1","causation_id":"","actor":"service:pdp","agent_id":"","engagement_id":""`

// BenchmarkNormalize is the check of one event before it is published, as the pdp's
// attestations and the auditor's entries take it.
func BenchmarkNormalize(b *testing.B) {
	docs := []struct{ topic, doc string }{
		{"policy_attestations", `{` + head + `,"data":{"decision_id":"d-00000001","bundle":"rbac","rule":"decision","revision":"` + strings.Repeat("ab", 32) + `","decision":"deny","obligations":[],"input_sha256":"` + strings.Repeat("0", 64) + `","enforcement_point":"pdp","correlation_id":"corr-1","cached":false,"decided_at":"2027-01-15T08:00:00.000000001Z"}}`},
		{"audit_events", `{` + head + `,"data":{"stream":"eng-1","event_type":"approval.granted","actor_id":"u-1","actor_type":"human","action":"approve","target":"ap-1","context":{"reason":"within budget","ticket":"T-1","amount":"120.50"},"approval_chain":["u-1","u-2"],"result":"ok"}}`},
	}
	for _, d := range docs {
		if _, err := Default().Normalize(d.topic, []byte(d.doc)); err != nil {
			b.Fatalf("%s: %v", d.topic, err)
		}
		b.Run(d.topic, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Default().Normalize(d.topic, []byte(d.doc)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
