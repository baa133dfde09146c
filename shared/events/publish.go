package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/shared/schema"
)

// Publisher publishes envelopes. Implementations validate against the topic's schema first,
// so an invalid event is refused before anything leaves the process.
type Publisher interface {
	Publish(ctx context.Context, topic string, e Envelope) (messageID string, err error)
}

// BatchPublisher also publishes many envelopes at once: all of them leave before any is
// waited for, so a batch costs about one round trip per ordering key instead of one per event.
type BatchPublisher interface {
	Publisher
	// PublishAll publishes es on topic, those sharing an ordering key in slice order, and
	// returns once every one is accepted; on error some may have been published, and the
	// caller sends the batch again (consumers dedupe on event_id).
	PublishAll(ctx context.Context, topic string, es []Envelope) error
}

// Encode validates e against topic's schema and its ids' lengths (CheckIDs) and returns the
// bytes to publish.
func Encode(topic string, e Envelope) ([]byte, error) {
	if err := CheckIDs(topic, e); err != nil {
		return nil, fmt.Errorf("events: %s event %.64s: %w", topic, e.EventID, err)
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		// encoding/json names the fault, as it did when it wrote the whole envelope
		_, err := json.Marshal(e)
		return nil, fmt.Errorf("events: marshal %s: %w", e.EventID, err)
	}
	doc := envelopeJSON(make([]byte, 0, 256+len(e.Data)), e)
	b, err := schema.Default().Normalize(topic, doc)
	if err != nil {
		return nil, fmt.Errorf("events: %s event %s: %w", topic, e.EventID, err)
	}
	return b, nil
}

// envelopeJSON appends e as json.Marshal writes it, but without reflection: the schema
// check that follows decodes it again and writes the published form.
func envelopeJSON(b []byte, e Envelope) []byte {
	for _, f := range [...]struct{ key, val string }{
		{`{"event_id":`, e.EventID}, {`,"type":`, e.Type}, {`,"source":`, e.Source}, {`,"time":`, e.Time},
		{`,"correlation_id":`, e.CorrelationID}, {`,"causation_id":`, e.CausationID}, {`,"actor":`, e.Actor},
		{`,"agent_id":`, e.AgentID}, {`,"engagement_id":`, e.EngagementID},
	} {
		b = schema.AppendString(append(b, f.key...), f.val)
	}
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Data...)
	}
	return append(b, '}')
}

// Attributes are copied onto each message so subscriptions can filter and dead-lettered
// messages can be read without decoding the body.
func attributes(e Envelope) map[string]string {
	return map[string]string{
		"ce-specversion": "1.0",
		"ce-id":          e.EventID,
		"ce-type":        e.Type,
		"ce-source":      e.Source,
		"ce-time":        e.Time,
		"correlation_id": e.CorrelationID,
	}
}

// PubSub publishes to Google Cloud Pub/Sub (or its emulator, via PUBSUB_EMULATOR_HOST) with
// message ordering on. Publishers are created per topic on first use and kept.
type PubSub struct {
	client *pubsub.Client
	// Settings, if set before the first Publish, replace the publish settings: the
	// library's, except up to 1000 messages per request. Their 10 ms batching delay is pure
	// latency to a caller waiting on each publish.
	Settings *pubsub.PublishSettings

	mu   sync.Mutex
	pubs map[string]*pubsub.Publisher
}

// NewPubSub wraps a client; Close stops its publishers (flushing them) but not the client.
func NewPubSub(client *pubsub.Client) *PubSub {
	return &PubSub{client: client, pubs: map[string]*pubsub.Publisher{}}
}

func (p *PubSub) publisher(topic string) *pubsub.Publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub, ok := p.pubs[topic]
	if !ok {
		pub = p.client.Publisher(topic)
		if p.Settings != nil {
			pub.PublishSettings = *p.Settings
		} else {
			// Up to the most one publish request carries: a PublishAll of one ordering key
			// then leaves in one request rather than one per hundred.
			pub.PublishSettings.CountThreshold = pubsub.MaxPublishRequestCount
		}
		pub.EnableMessageOrdering = true
		p.pubs[topic] = pub
	}
	return pub
}

// message is e as published on topic: validated and encoded, with its ordering key.
func message(topic string, e Envelope) (*pubsub.Message, error) {
	data, err := Encode(topic, e)
	if err != nil {
		return nil, err
	}
	key, err := OrderingKey(topic, e)
	if err != nil {
		return nil, err
	}
	return &pubsub.Message{Data: data, Attributes: attributes(e), OrderingKey: key}, nil
}

// Publish validates e and publishes it, waiting for the server's message id.
func (p *PubSub) Publish(ctx context.Context, topic string, e Envelope) (string, error) {
	m, err := message(topic, e)
	if err != nil {
		return "", err
	}
	pub := p.publisher(topic)
	id, err := pub.Publish(ctx, m).Get(ctx)
	if err != nil {
		if m.OrderingKey != "" {
			// An ordered key stops after a failure until resumed; the caller retries the event.
			pub.ResumePublish(m.OrderingKey)
		}
		return "", fmt.Errorf("events: publish %s to %s: %w", e.EventID, topic, err)
	}
	return id, nil
}

// PublishAll validates every envelope first (one invalid event publishes none), hands them
// all to the library, which batches them per ordering key in order, then waits for each.
func (p *PubSub) PublishAll(ctx context.Context, topic string, es []Envelope) error {
	msgs := make([]*pubsub.Message, len(es))
	for i, e := range es {
		m, err := message(topic, e)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	pub := p.publisher(topic)
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = pub.Publish(ctx, m)
	}
	var errs []error
	failed := 0
	resumed := map[string]bool{}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			failed++
			// A failed ordered key refuses its later messages until resumed; the caller's
			// retry of the batch publishes them again in order.
			if key := msgs[i].OrderingKey; key != "" && !resumed[key] {
				resumed[key] = true
				defer pub.ResumePublish(key)
			}
			if len(errs) < 3 { // the first few say enough; a whole batch can fail alike
				errs = append(errs, fmt.Errorf("%s: %w", es[i].EventID, err))
			}
		}
	}
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("events: %d of %d events not published to %s: %w", failed, len(es), topic, errors.Join(errs...))
}

// Close flushes and stops every publisher.
func (p *PubSub) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pub := range p.pubs {
		pub.Stop()
	}
	p.pubs = map[string]*pubsub.Publisher{}
}

// Validate checks a published document against topic's schema.
func Validate(topic string, doc []byte) ([]byte, error) {
	return schema.Default().Normalize(topic, doc)
}
