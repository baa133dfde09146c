// Package policytest holds what tests of policy users need and deployed code never does: an
// attestation sink that keeps everything in memory.
package policytest

import (
	"context"
	"errors"
	"sync"

	"waooaw.dev/governance/shared/policy"
)

// MemorySink keeps attestations in memory. FailNext makes that many following sends fail, to
// exercise the attester's retries.
type MemorySink struct {
	mu       sync.Mutex
	batches  [][]policy.Attestation
	FailNext int
}

// SendAttestations records a copy of batch.
func (m *MemorySink) SendAttestations(_ context.Context, batch []policy.Attestation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailNext > 0 {
		m.FailNext--
		return errors.New("memory sink: injected failure")
	}
	m.batches = append(m.batches, append([]policy.Attestation(nil), batch...))
	return nil
}

// Attestations returns everything received, in order.
func (m *MemorySink) Attestations() []policy.Attestation {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []policy.Attestation
	for _, b := range m.batches {
		out = append(out, b...)
	}
	return out
}

// Batches reports how many sends succeeded.
func (m *MemorySink) Batches() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.batches)
}
