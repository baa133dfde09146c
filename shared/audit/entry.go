// Package audit is the append-only, hash-chained audit log on Firestore.
//
// The log is a set of independent streams (an engagement, or the platform). Each stream is
// a chain: entry n carries hash_n = hex(sha256(hash_{n-1} ‖ canonical(entry_n))), where
// hash_0 is GenesisHash and canonical is the RFC 8785 (JCS) serialisation described at
// Canonical. Per-stream chains let streams append in parallel; Firestore serialises every
// write through a stream's head document, so an Appender commits all pending events of a
// stream in one transaction (group commit).
//
// Firestore layout (collection names in package store):
//
//	audit_streams/{stream}                      head: {seq, hash}, the last entry
//	audit_streams/{stream}/entries/{seq:%020d}  one entry; created once, never changed
//	audit_streams/{stream}/event_ids/{sha256(event_id)}  {event_id, seq, hash, content}: dedupe index
//
// No code path in this package updates or deletes an entry or an index document: both are
// written with Create only, and the head is the one document that is ever overwritten.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"waooaw.dev/governance/shared/canonical"
	"waooaw.dev/governance/shared/events"
)

// GenesisHash is the prev_hash of the first entry of every stream.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ErrInvalid marks an event that can never be appended (missing or malformed fields, a
// stream name Firestore cannot use). Callers treat it as poison: retrying cannot help.
var ErrInvalid = errors.New("audit: invalid entry")

// Entry is one audit log record as stored in Firestore. Every field but PrevHash and Hash
// is covered by Hash.
type Entry struct {
	EventID       string            `firestore:"event_id" json:"event_id"`
	Seq           int64             `firestore:"seq" json:"seq"`
	Time          string            `firestore:"time" json:"time"`
	EventType     string            `firestore:"event_type" json:"event_type"`
	ActorID       string            `firestore:"actor_id" json:"actor_id"`
	ActorType     string            `firestore:"actor_type" json:"actor_type"`
	Action        string            `firestore:"action" json:"action"`
	Target        string            `firestore:"target" json:"target"`
	Context       map[string]string `firestore:"context" json:"context"`
	ApprovalChain []string          `firestore:"approval_chain" json:"approval_chain"`
	Result        string            `firestore:"result" json:"result"`
	PrevHash      string            `firestore:"prev_hash" json:"prev_hash"`
	Hash          string            `firestore:"hash" json:"hash"`
}

// payload is the data of an audit_events envelope (shared/schema/avro/audit_events.avsc).
type payload struct {
	Stream        string            `json:"stream"`
	EventType     string            `json:"event_type"`
	ActorID       string            `json:"actor_id"`
	ActorType     string            `json:"actor_type"`
	Action        string            `json:"action"`
	Target        string            `json:"target"`
	Context       map[string]string `json:"context"`
	ApprovalChain []string          `json:"approval_chain"`
	Result        string            `json:"result"`
}

// FromEnvelope extracts the stream and the unsequenced entry (Seq, PrevHash and Hash unset)
// of an audit_events envelope. event_id and time come from the envelope, the rest from its
// data. Errors wrap ErrInvalid.
func FromEnvelope(env events.Envelope) (string, Entry, error) {
	var p payload
	if err := json.Unmarshal(env.Data, &p); err != nil {
		return "", Entry{}, fmt.Errorf("%w: event %s: data: %v", ErrInvalid, env.EventID, err)
	}
	e := Entry{
		EventID:       env.EventID,
		Time:          env.Time,
		EventType:     p.EventType,
		ActorID:       p.ActorID,
		ActorType:     p.ActorType,
		Action:        p.Action,
		Target:        p.Target,
		Context:       p.Context,
		ApprovalChain: p.ApprovalChain,
		Result:        p.Result,
	}
	if err := CheckStream(p.Stream); err != nil {
		return "", Entry{}, fmt.Errorf("event %s: %w", env.EventID, err)
	}
	for name, v := range map[string]string{"event_id": e.EventID, "time": e.Time, "data.event_type": e.EventType,
		"data.actor_id": e.ActorID, "data.actor_type": e.ActorType, "data.action": e.Action} {
		if v == "" {
			return "", Entry{}, fmt.Errorf("%w: event %s: %s is empty", ErrInvalid, env.EventID, name)
		}
	}
	return p.Stream, e, nil
}

// CheckStream refuses stream names that are not usable as a Firestore document id (and a
// few more that would only cause confusion). Errors wrap ErrInvalid.
func CheckStream(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty stream", ErrInvalid)
	case len(s) > 256:
		return fmt.Errorf("%w: stream longer than 256 bytes", ErrInvalid)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: stream %q is not UTF-8", ErrInvalid, s)
	case s == "." || s == "..":
		return fmt.Errorf("%w: stream %q", ErrInvalid, s)
	case strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__"):
		return fmt.Errorf("%w: stream %q is reserved by Firestore", ErrInvalid, s)
	}
	for _, r := range s {
		if r == '/' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: stream %q has a slash or a control character", ErrInvalid, s)
		}
	}
	return nil
}

// Canonical returns the bytes that are hashed for e: the RFC 8785 (JSON Canonicalization
// Scheme) form, written by package canonical, of the object
//
//	{"action", "actor_id", "actor_type", "approval_chain", "context", "event_id",
//	 "event_type", "result", "seq", "target", "time"}
//
// that is: no whitespace; object keys sorted by their UTF-16 code units (context included);
// strings escaped only where JSON requires (\" \\ \b \f \n \r \t, other controls as \u00xx
// in lowercase hex), everything else as literal UTF-8; seq as a decimal integer; a missing
// context is {} and a missing approval_chain is []. Any JCS implementation reproduces it.
// An entry with a string that is not UTF-8 has no such form: the error wraps ErrInvalid.
func Canonical(e Entry) ([]byte, error) {
	return appendCanonical(make([]byte, 0, 256), e)
}

func appendCanonical(b []byte, e Entry) ([]byte, error) {
	// The member names are written in their sorted order; the values go through package
	// canonical, which refuses a string that is not UTF-8.
	var err error
	var member string // the one being written
	str := func(name, s string) {
		if err == nil {
			member = name
			b = append(b, name...)
			b, err = canonical.AppendString(b, s)
		}
	}
	str(`{"action":`, e.Action)
	str(`,"actor_id":`, e.ActorID)
	str(`,"actor_type":`, e.ActorType)
	if err == nil {
		member = `,"approval_chain":`
		b = append(b, member...)
		b, err = canonical.AppendStrings(b, e.ApprovalChain)
	}
	if err == nil {
		member = `,"context":`
		b = append(b, member...)
		b, err = canonical.AppendStringMap(b, e.Context)
	}
	str(`,"event_id":`, e.EventID)
	str(`,"event_type":`, e.EventType)
	str(`,"result":`, e.Result)
	if err == nil {
		member = `,"seq":`
		b = append(b, member...)
		b, err = canonical.AppendInt(b, e.Seq)
	}
	str(`,"target":`, e.Target)
	str(`,"time":`, e.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: event %q: %s: %w", ErrInvalid, e.EventID, strings.Trim(member, `{,":`), err)
	}
	return append(b, '}'), nil
}

// ChainHash returns hex(sha256(prevHash ‖ Canonical(e))), prevHash being the previous
// entry's hash as 64 lowercase hex characters (GenesisHash for seq 1). Its error is
// Canonical's.
func ChainHash(prevHash string, e Entry) (string, error) {
	b := make([]byte, 0, 512)
	b = append(b, prevHash...)
	b, err := appendCanonical(b, e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// seqID is the document id of an entry: zero-padded so that id order is seq order.
func seqID(seq int64) string { return fmt.Sprintf("%020d", seq) }

// indexID is the document id of an event-id index entry. Hashing makes any event id a
// valid document id of fixed length.
func indexID(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return hex.EncodeToString(sum[:])
}
