// Package events holds the envelope every topic carries, the topics themselves, publishing
// with ordering keys after schema validation, and decoding of Pub/Sub pushes delivered as
// CloudEvents by functions-framework-go.
package events

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// Envelope is the JSON document published on every topic except budget_alerts (which the
// billing service writes in its own format). The top-level fields are the CloudEvents
// attributes plus the platform's tracing and subject fields; Data is the topic's payload.
type Envelope struct {
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	Source        string          `json:"source"`
	Time          string          `json:"time"` // RFC 3339, UTC
	CorrelationID string          `json:"correlation_id"`
	CausationID   string          `json:"causation_id"`
	Actor         string          `json:"actor"`
	AgentID       string          `json:"agent_id"`
	EngagementID  string          `json:"engagement_id"`
	Data          json.RawMessage `json:"data"`
}

// NewID returns a random 128-bit identifier in hex, used for event ids and correlation ids.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("events: crypto/rand: %v", err)) // never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// New builds an envelope with a fresh event id and the current time; a missing correlation
// id starts a new business flow.
func New(typ, source, actor string, data any) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: marshal %s data: %w", typ, err)
	}
	id := NewID()
	return Envelope{
		EventID:       id,
		Type:          typ,
		Source:        source,
		Time:          time.Now().UTC().Format(time.RFC3339Nano),
		CorrelationID: id,
		Actor:         actor,
		Data:          raw,
	}, nil
}

// CausedBy makes e a consequence of cause: same business flow, cause as its causation.
func (e Envelope) CausedBy(cause Envelope) Envelope {
	e.CorrelationID = cause.CorrelationID
	e.CausationID = cause.EventID
	return e
}

// Topic names, as in infra/infrastructure.yaml.
const (
	TopicApprovals          = "approvals"
	TopicDecisions          = "decisions"
	TopicHealthEvents       = "health_events"
	TopicPolicyAttestations = "policy_attestations"
	TopicAuditEvents        = "audit_events"
	TopicSLOBreach          = "slo_breach"
	TopicBudgetAlerts       = "budget_alerts"
	TopicSpendEvents        = "spend_events"
)

// OrderingKeys names, per topic, the field whose value becomes the Pub/Sub ordering key:
// an envelope field, or "data.<field>" for a payload field. "" means unordered.
var OrderingKeys = map[string]string{
	TopicApprovals:          "data.approval_id",
	TopicDecisions:          "data.approval_id",
	TopicHealthEvents:       "agent_id",
	TopicPolicyAttestations: "correlation_id",
	TopicAuditEvents:        "data.stream",
	TopicSLOBreach:          "data.service",
	TopicBudgetAlerts:       "",
	TopicSpendEvents:        "",
}

// OrderingShards names the topics whose ordering key is not the field's value itself but
// one of n shards of it (a hash of the value, mod n). Messages with one value still share
// one key, so they keep their order, while a publisher sends at most n keys: Pub/Sub takes
// one ordering key per publish request, so a key per business flow would cost a request per
// message on a topic written for every decision. Kept equal to infrastructure.yaml's
// ordering_shards by a test.
var OrderingShards = map[string]int{
	TopicPolicyAttestations: 8,
}

// shardKey is the ordering key of value among n shards: "<field>#<shard>".
func shardKey(field, value string, n int) string {
	h := fnv.New32a()
	h.Write([]byte(value))
	return field + "#" + strconv.Itoa(int(h.Sum32()%uint32(n)))
}

// MaxIDLen is the most bytes an id may hold: event_id, correlation_id, causation_id,
// agent_id, engagement_id, and the payload fields that become ordering keys (approval_id,
// stream, service). They travel as Pub/Sub ordering keys and attribute values, which Pub/Sub
// refuses past 1,024 bytes, and stream names Firestore documents; 256 leaves room for a
// shard suffix and is far beyond any id the platform makes (32 hex digits).
const MaxIDLen = 256

// ErrIDTooLong is wrapped by every IDError.
var ErrIDTooLong = errors.New("id too long")

// IDError names an id longer than MaxIDLen: the event is refused before it is published,
// rather than by Pub/Sub after the events before it were sent.
type IDError struct {
	Field string // as the envelope names it: "correlation_id", "data.stream"
	Len   int
}

func (e *IDError) Error() string {
	return fmt.Sprintf("events: %s is %d bytes, more than %d", e.Field, e.Len, MaxIDLen)
}

func (e *IDError) Unwrap() error { return ErrIDTooLong }

// CheckID returns an *IDError when v is longer than MaxIDLen; field names it.
func CheckID(field, v string) error {
	if len(v) > MaxIDLen {
		return &IDError{Field: field, Len: len(v)}
	}
	return nil
}

// CheckIDs checks e's id fields and, on topic, the payload field that becomes its ordering
// key.
func CheckIDs(topic string, e Envelope) error {
	for _, f := range [...]struct{ name, v string }{
		{"event_id", e.EventID}, {"correlation_id", e.CorrelationID}, {"causation_id", e.CausationID},
		{"agent_id", e.AgentID}, {"engagement_id", e.EngagementID},
	} {
		if err := CheckID(f.name, f.v); err != nil {
			return err
		}
	}
	field := OrderingKeys[topic]
	if len(field) <= len("data.") || len(e.Data) <= MaxIDLen {
		return nil // the envelope's fields are checked; a payload this short holds no long id
	}
	v, err := orderingValue(topic, field, e)
	if err != nil {
		return nil // not an object: the schema's check names the fault
	}
	return CheckID(field, v)
}

// OrderingKey returns the ordering key of e on topic.
func OrderingKey(topic string, e Envelope) (string, error) {
	field, ok := OrderingKeys[topic]
	if !ok {
		return "", fmt.Errorf("events: unknown topic %q", topic)
	}
	v, err := orderingValue(topic, field, e)
	if err == nil {
		err = CheckID(field, v)
	}
	if n := OrderingShards[topic]; err == nil && n > 0 && v != "" {
		return shardKey(field, v, n), nil
	}
	return v, err
}

// orderingValue is the value of e's ordering key field.
func orderingValue(topic, field string, e Envelope) (string, error) {
	switch field {
	case "":
		return "", nil
	case "agent_id":
		return e.AgentID, nil
	case "engagement_id":
		return e.EngagementID, nil
	case "correlation_id":
		return e.CorrelationID, nil
	}
	const prefix = "data."
	if len(field) <= len(prefix) || field[:len(prefix)] != prefix {
		return "", fmt.Errorf("events: topic %s: unsupported ordering key field %q", topic, field)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &data); err != nil {
		return "", fmt.Errorf("events: ordering key of %s: %w", e.EventID, err)
	}
	var key string
	if raw, ok := data[field[len(prefix):]]; ok {
		if err := json.Unmarshal(raw, &key); err != nil {
			return "", fmt.Errorf("events: ordering key %s of %s: %w", field, e.EventID, err)
		}
	}
	return key, nil
}
