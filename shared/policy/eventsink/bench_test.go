package eventsink_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
)

func attestation(i int, corr string) policy.Attestation {
	return policy.Attestation{
		DecisionID: fmt.Sprintf("d-%08d", i), Bundle: "rbac", Rule: "decision", Revision: strings.Repeat("ab", 32),
		Decision: policy.Deny, InputSHA256: strings.Repeat("0", 64), EnforcementPoint: "pdp",
		CorrelationID: corr, Time: time.Unix(1_800_000_000, int64(i)),
	}
}

// BenchmarkEncode is the CPU an attestation costs before it leaves the process: the
// envelope, then its validation and normalisation against the topic's Avro schema.
func BenchmarkEncode(b *testing.B) {
	a := attestation(1, "corr-1")
	b.Run("Event", func(b *testing.B) {
		for b.Loop() {
			if _, err := eventsink.Event("//waooaw/pdp", a); err != nil {
				b.Fatal(err)
			}
		}
	})
	e, err := eventsink.Event("//waooaw/pdp", a)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("events.Encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := events.Encode(events.TopicPolicyAttestations, e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSend publishes batches of 100 attestations to the Pub/Sub emulator, as the
// Attester hands them over: with one correlation id for all (one ordering key, so a batch is
// one publish request) and with one per decision (a request per attestation).
func BenchmarkSend(b *testing.B) {
	env := emulators.ForTest(b)
	b.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
	env.Provision(b, nil)
	ps := events.NewPubSub(env.PubSub(b))
	b.Cleanup(ps.Close)
	sink := eventsink.New(ps, "//waooaw/bench")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		corr func(i int) string
	}{
		{"one-correlation-id", func(int) string { return "flow-1" }},
		{"id-per-decision", func(i int) string { return fmt.Sprintf("req-%d", i) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const size = 100
			n := 0
			start := time.Now()
			for b.Loop() {
				batch := make([]policy.Attestation, size)
				for i := range batch {
					batch[i] = attestation(n, tc.corr(n))
					n++
				}
				if err := sink.SendAttestations(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "attestations/s")
		})
	}
}
