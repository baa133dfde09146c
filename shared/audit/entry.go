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
//	audit_streams/{stream}/event_ids/{sha256(event_id)}  {event_id, seq, hash}: dedupe index
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
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

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
// Scheme) form of the object
//
//	{"action", "actor_id", "actor_type", "approval_chain", "context", "event_id",
//	 "event_type", "result", "seq", "target", "time"}
//
// that is: no whitespace; object keys sorted by their UTF-16 code units (context included);
// strings escaped only where JSON requires (\" \\ \b \f \n \r \t, other controls as \u00xx
// in lowercase hex), everything else as literal UTF-8; seq as a decimal integer; a missing
// context is {} and a missing approval_chain is []. Any JCS implementation reproduces it.
func Canonical(e Entry) []byte {
	return appendCanonical(make([]byte, 0, 256), e)
}

func appendCanonical(b []byte, e Entry) []byte {
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"actor_id":`...)
	b = appendString(b, e.ActorID)
	b = append(b, `,"actor_type":`...)
	b = appendString(b, e.ActorType)
	b = append(b, `,"approval_chain":[`...)
	for i, s := range e.ApprovalChain {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, `],"context":{`...)
	keys := make([]string, 0, len(e.Context))
	for k := range e.Context {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessUTF16(keys[i], keys[j]) })
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, e.Context[k])
	}
	b = append(b, `},"event_id":`...)
	b = appendString(b, e.EventID)
	b = append(b, `,"event_type":`...)
	b = appendString(b, e.EventType)
	b = append(b, `,"result":`...)
	b = appendString(b, e.Result)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"target":`...)
	b = appendString(b, e.Target)
	b = append(b, `,"time":`...)
	b = appendString(b, e.Time)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return append(b, '"')
}

// lessUTF16 orders strings by UTF-16 code units, as RFC 8785 sorts keys. It differs from
// byte (code point) order only for characters above U+FFFF against U+E000..U+FFFF.
func lessUTF16(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return utf16Key(ra) < utf16Key(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) < len(b)
}

// utf16Key packs a rune's UTF-16 code units (high unit first) so that comparing keys
// compares the unit sequences.
func utf16Key(r rune) uint32 {
	if r < 0x10000 {
		return uint32(r) << 16
	}
	r -= 0x10000
	return uint32(0xD800+(r>>10))<<16 | uint32(0xDC00+(r&0x3ff))
}

// ChainHash returns hex(sha256(prevHash ‖ Canonical(e))), prevHash being the previous
// entry's hash as 64 lowercase hex characters (GenesisHash for seq 1).
func ChainHash(prevHash string, e Entry) string {
	b := make([]byte, 0, 512)
	b = append(b, prevHash...)
	sum := sha256.Sum256(appendCanonical(b, e))
	return hex.EncodeToString(sum[:])
}

// seqID is the document id of an entry: zero-padded so that id order is seq order.
func seqID(seq int64) string { return fmt.Sprintf("%020d", seq) }

// indexID is the document id of an event-id index entry. Hashing makes any event id a
// valid document id of fixed length.
func indexID(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return hex.EncodeToString(sum[:])
}
