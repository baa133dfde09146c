package events

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
)

// ErrPoison marks a message that no retry can fix (malformed, wrong schema). Handlers log it
// and return an error so that Pub/Sub's dead-letter policy takes it after the last attempt.
var ErrPoison = errors.New("poison message")

// Message is the Pub/Sub message inside a messagePublished CloudEvent.
type Message struct {
	Data        []byte            `json:"data"`
	Attributes  map[string]string `json:"attributes"`
	MessageID   string            `json:"messageId"`
	PublishTime string            `json:"publishTime"`
}

type messagePublished struct {
	Message      Message `json:"message"`
	Subscription string  `json:"subscription"`
}

// FromCloudEvent decodes the envelope carried by a Pub/Sub messagePublished CloudEvent, as
// functions-framework-go delivers a push, and checks it against topic's schema.
func FromCloudEvent(topic string, ce event.Event) (Envelope, Message, error) {
	var mp messagePublished
	if err := json.Unmarshal(ce.Data(), &mp); err != nil {
		return Envelope{}, Message{}, fmt.Errorf("events: cloudevent %s: %w: %v", ce.ID(), ErrPoison, err)
	}
	env, err := Decode(topic, mp.Message.Data)
	if err != nil {
		return Envelope{}, mp.Message, fmt.Errorf("events: message %s: %w", mp.Message.MessageID, err)
	}
	return env, mp.Message, nil
}

// Decode checks data against topic's schema and unmarshals the envelope.
func Decode(topic string, data []byte) (Envelope, error) {
	var env Envelope
	if _, err := Validate(topic, data); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrPoison, err)
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrPoison, err)
	}
	if env.EventID == "" {
		return Envelope{}, fmt.Errorf("%w: no event_id", ErrPoison)
	}
	return env, nil
}
