// Package eventsink publishes policy attestations as platform events on
// policy_attestations, through the schema-checked events.BatchPublisher.
package eventsink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/schema"
)

// EventType is the CloudEvents type of an attestation event.
const EventType = "waooaw.policy.attested"

// Sink is a policy.AttestationSink over an events.BatchPublisher.
type Sink struct {
	pub    events.BatchPublisher
	source string
}

// New publishes with pub (an *events.PubSub); source names the enforcing function (for
// example "//waooaw/gateway").
func New(pub events.BatchPublisher, source string) *Sink { return &Sink{pub: pub, source: source} }

// SendAttestations publishes the batch at once, in batch order: the publisher keeps each
// correlation id's order, so a batch costs a round trip per ordering key, not per decision.
// On a transient failure the Attester sends the whole batch again; each event's id is its
// decision_id, so handlers idempotent on event_id drop the repeats. A failure no retry can
// mend (refused), the error wraps policy.ErrRefused.
func (s *Sink) SendAttestations(ctx context.Context, batch []policy.Attestation) error {
	es := make([]events.Envelope, len(batch))
	for i, a := range batch {
		e, err := Event(s.source, a)
		if err != nil {
			return fmt.Errorf("%w: %w", policy.ErrRefused, err)
		}
		es[i] = e
	}
	if err := s.pub.PublishAll(ctx, events.TopicPolicyAttestations, es); err != nil {
		if refused(err) {
			return fmt.Errorf("publish %d attestations: %w: %w", len(es), policy.ErrRefused, err)
		}
		return fmt.Errorf("publish %d attestations: %w", len(es), err)
	}
	return nil
}

// refused tells an event no retry can publish: one the schema or the id limits refuse before
// it leaves, one too large for a message, or one Pub/Sub answers InvalidArgument.
func refused(err error) bool {
	return errors.Is(err, schema.ErrInvalid) || errors.Is(err, events.ErrIDTooLong) ||
		errors.Is(err, pubsub.ErrOversizedMessage) || status.Code(err) == codes.InvalidArgument
}

// data is the payload the policy_attestations schema declares.
type data struct {
	DecisionID       string   `json:"decision_id"`
	Bundle           string   `json:"bundle"`
	Rule             string   `json:"rule"`
	Revision         string   `json:"revision"`
	Decision         string   `json:"decision"`
	Obligations      []string `json:"obligations"`
	InputSHA256      string   `json:"input_sha256"`
	EnforcementPoint string   `json:"enforcement_point"`
	CorrelationID    string   `json:"correlation_id"`
	Cached           bool     `json:"cached"`
	DecidedAt        string   `json:"decided_at"`
}

// Event is the envelope of one attestation: id = decision_id, correlation
// id = the request's (the ordering key), actor = the enforcement point.
func Event(source string, a policy.Attestation) (events.Envelope, error) {
	obligations := a.Obligations
	if obligations == nil {
		obligations = []string{}
	}
	e, err := events.New(EventType, source, "policy:"+a.EnforcementPoint, data{
		DecisionID:       a.DecisionID,
		Bundle:           a.Bundle,
		Rule:             a.Rule,
		Revision:         a.Revision,
		Decision:         a.Decision,
		Obligations:      obligations,
		InputSHA256:      a.InputSHA256,
		EnforcementPoint: a.EnforcementPoint,
		CorrelationID:    a.CorrelationID,
		Cached:           a.Cached,
		DecidedAt:        a.Time.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return events.Envelope{}, fmt.Errorf("events.New: %w", err)
	}
	e.EventID, e.Time = a.DecisionID, a.Time.UTC().Format(time.RFC3339Nano)
	if a.CorrelationID != "" {
		e.CorrelationID = a.CorrelationID
	}
	return e, nil
}
