package events

import (
	"context"
	"encoding/json"
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

// Encode validates e against topic's schema and returns the bytes to publish.
func Encode(topic string, e Envelope) ([]byte, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("events: marshal %s: %w", e.EventID, err)
	}
	b, err := schema.Default().Normalize(topic, raw)
	if err != nil {
		return nil, fmt.Errorf("events: %s event %s: %w", topic, e.EventID, err)
	}
	return b, nil
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
	// Settings, if set before the first Publish, replace the library's publish settings
	// (whose 10 ms batching delay is pure latency to a caller waiting on each publish).
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
		}
		pub.EnableMessageOrdering = true
		p.pubs[topic] = pub
	}
	return pub
}

// Publish validates e and publishes it, waiting for the server's message id.
func (p *PubSub) Publish(ctx context.Context, topic string, e Envelope) (string, error) {
	data, err := Encode(topic, e)
	if err != nil {
		return "", err
	}
	key, err := OrderingKey(topic, e)
	if err != nil {
		return "", err
	}
	pub := p.publisher(topic)
	id, err := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attributes(e), OrderingKey: key}).Get(ctx)
	if err != nil {
		if key != "" {
			// An ordered key stops after a failure until resumed; the caller retries the event.
			pub.ResumePublish(key)
		}
		return "", fmt.Errorf("events: publish %s to %s: %w", e.EventID, topic, err)
	}
	return id, nil
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
