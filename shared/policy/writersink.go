package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// WriterSink writes each attestation as one JSON line: where no project is
// configured (the pdp run alone), attestations go to the log instead of
// policy_attestations.
type WriterSink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriterSink writes to w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: w} }

// SendAttestations writes batch, one line per attestation, in one Write.
func (s *WriterSink) SendAttestations(_ context.Context, batch []Attestation) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, a := range batch {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			Attestation
		}{"policy_attestation", a}); err != nil {
			return fmt.Errorf("writer sink: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writer sink: %w", err)
	}
	return nil
}
