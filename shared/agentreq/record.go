package agentreq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/events"
)

// ErrUnknownRequest is returned when a record names a request the projection does not hold:
// the call is wrong, and retrying cannot help.
var ErrUnknownRequest = errors.New("agentreq: unknown request")

// Record is one change to a request, made once: a stage's verdict, an undo, an approval
// opened or closed, a terminal status. The zero value of a field leaves the projection's
// field as it is.
type Record struct {
	// Key identifies the change: the same change always has the same key (StageKey, UndoKey,
	// or another the caller derives from what the change is). It is the document id in the
	// Recorder's collection.
	Key          string
	RequestID    string
	EngagementID string
	Round        int
	At           string // the workflow's time of the change (RFC 3339)

	// The audit entry: event_type waooaw.agent_request.<Event>, action Action (a workflow
	// step), result Outcome.
	Event   string
	Action  string
	Outcome string
	Reasons []string
	Trace   json.RawMessage // the decision table's trace, stored and audited
	// AuditContext adds to the audit entry's context (an AI review's model, tokens and cost);
	// the keys Record sets itself win.
	AuditContext map[string]string

	// What the projection gains.
	Stage        *StageEntry
	Compensation *Compensation
	Status       string // ignored once the request's status is terminal
	Reason       string // with a terminal Status
	AgentID      string
	Approval     *ApprovalRef

	// Answer is what the call answers; a retried call gets the stored one back.
	Answer any

	// Also runs inside the transaction after the projection is read and before anything is
	// written, for the change's own documents (an approval, a seed's count, a registry event).
	// It may read (reads come first in a Firestore transaction) and then write; it may change
	// req and the answer. It runs again if the transaction retries.
	Also func(ctx context.Context, tx *firestore.Transaction, req *Request, rec *Record) error
}

// stored is a record as kept in the Recorder's collection.
type stored struct {
	Key       string   `firestore:"key"`
	RequestID string   `firestore:"request_id"`
	Event     string   `firestore:"event"`
	Action    string   `firestore:"action"`
	Outcome   string   `firestore:"outcome"`
	Reasons   []string `firestore:"reasons"`
	Round     int      `firestore:"round"`
	At        string   `firestore:"at"`
	Trace     string   `firestore:"trace"`
	Answer    string   `firestore:"answer"`
	EventID   string   `firestore:"event_id"`
	Audit     string   `firestore:"audit"` // the audit envelope's data, republished on a retry
}

// Recorder records a function's changes: its own collection, its actor name on the audit log.
type Recorder struct {
	FS         *firestore.Client
	Collection string // the function's own records, e.g. "genesis_verdicts"
	Publisher  events.Publisher
	Actor      string // audit actor_id: genesis, systems_architect, vision_guardian, registry
	ActorType  string // audit actor_type; default "agent"
	Source     string // envelope source, e.g. //waooaw/genesis
}

// Result is what Record did.
type Result struct {
	Answer json.RawMessage // the answer stored with the record
	First  bool            // false: the change had been recorded before; nothing was written
}

// Record makes the change once: in one transaction it creates the record and updates the
// projection; then it publishes the audit event (again, with the same id, on a retried call,
// since a crash may have come between the commit and the publish).
func (r *Recorder) Record(ctx context.Context, rec Record) (Result, error) {
	if rec.Key == "" || rec.RequestID == "" || rec.EngagementID == "" || rec.Event == "" || rec.Action == "" || rec.At == "" {
		return Result{}, fmt.Errorf("agentreq: record %q: key, request_id, engagement_id, event, action and at are required", rec.Key)
	}
	recRef := r.FS.Collection(r.Collection).Doc(rec.Key)
	reqRef := r.FS.Collection(Requests).Doc(rec.RequestID)
	var res Result
	var audit []byte
	err := r.FS.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		res, audit = Result{}, nil
		snap, err := tx.Get(recRef)
		if err == nil {
			var s stored
			if err := snap.DataTo(&s); err != nil {
				return fmt.Errorf("read record: %w", err)
			}
			res.Answer, audit = json.RawMessage(s.Answer), []byte(s.Audit)
			return nil
		}
		if status.Code(err) != codes.NotFound {
			return fmt.Errorf("read record: %w", err)
		}
		reqSnap, err := tx.Get(reqRef)
		if status.Code(err) == codes.NotFound {
			return fmt.Errorf("%w: %s", ErrUnknownRequest, rec.RequestID)
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		var req Request
		if err := reqSnap.DataTo(&req); err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		if req.EngagementID != rec.EngagementID {
			return fmt.Errorf("%w: %s belongs to engagement %s, not %s", ErrUnknownRequest, rec.RequestID, req.EngagementID, rec.EngagementID)
		}
		work := rec // Also may change it; a retried transaction starts again from rec
		if work.Also != nil {
			if err := work.Also(ctx, tx, &req, &work); err != nil {
				return err
			}
		}
		apply(&req, work)
		answer, err := json.Marshal(work.Answer)
		if err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		audit, err = r.auditData(work, req.EngagementID)
		if err != nil {
			return err
		}
		res = Result{Answer: answer, First: true}
		if err := tx.Set(reqRef, req); err != nil {
			return err
		}
		return tx.Create(recRef, stored{
			Key: work.Key, RequestID: work.RequestID, Event: work.Event, Action: work.Action,
			Outcome: work.Outcome, Reasons: nonNil(work.Reasons), Round: work.Round, At: work.At,
			Trace: string(work.Trace), Answer: string(answer), EventID: EventID(work.Key), Audit: string(audit),
		})
	})
	if err != nil {
		return Result{}, fmt.Errorf("agentreq: record %s: %w", rec.Key, err)
	}
	if err := r.publish(ctx, rec, audit); err != nil {
		return Result{}, err
	}
	return res, nil
}

// FinalStatus is the status a request ends with when a record asks for next: next, unless
// it is empty or the request's current status is terminal. A call's answer says this status,
// so a late call reports what the request really is.
func FinalStatus(current, next string) string {
	if next == "" || Terminal(current) {
		return current
	}
	return next
}

// apply changes the projection as rec says; a terminal status is kept.
func apply(req *Request, rec Record) {
	if rec.Stage != nil {
		s := *rec.Stage
		s.Reasons = nonNil(s.Reasons)
		req.Stages = append(req.Stages, s)
	}
	if rec.Compensation != nil {
		req.Compensations = append(req.Compensations, *rec.Compensation)
	}
	if rec.AgentID != "" {
		req.AgentID = rec.AgentID
	}
	if rec.Approval != nil {
		a := *rec.Approval
		req.Approval = &a
	}
	if status := FinalStatus(req.Status, rec.Status); status != req.Status {
		req.Status = status
		if rec.Reason != "" {
			req.Reason = rec.Reason
		}
	}
	if rec.At != "" {
		req.UpdatedAt = rec.At
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// auditPayload is the data of an audit_events envelope.
type auditPayload struct {
	Stream    string            `json:"stream"`
	EventType string            `json:"event_type"`
	ActorID   string            `json:"actor_id"`
	ActorType string            `json:"actor_type"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Context   map[string]string `json:"context"`
	Result    string            `json:"result"`
}

func (r *Recorder) auditData(rec Record, stream string) ([]byte, error) {
	actorType := r.ActorType
	if actorType == "" {
		actorType = "agent"
	}
	ctx := make(map[string]string, len(rec.AuditContext)+8)
	for k, v := range rec.AuditContext {
		ctx[k] = v
	}
	ctx["request_id"], ctx["round"] = rec.RequestID, strconv.Itoa(rec.Round)
	if rec.Outcome != "" {
		ctx["outcome"] = rec.Outcome
	}
	if len(rec.Reasons) > 0 {
		ctx["reasons"] = strings.Join(rec.Reasons, "; ")
	}
	if len(rec.Trace) > 0 {
		ctx["trace"] = string(rec.Trace)
	}
	if rec.Status != "" {
		ctx["status"] = rec.Status
	}
	if rec.AgentID != "" {
		ctx["agent_id"] = rec.AgentID
	}
	if rec.Approval != nil {
		ctx["approval_id"] = rec.Approval.ApprovalID
		if rec.Approval.SeedID != "" {
			ctx["seed_id"] = rec.Approval.SeedID
		}
	}
	if rec.Compensation != nil {
		ctx["undone_stage"] = strconv.Itoa(rec.Compensation.Stage)
	}
	b, err := json.Marshal(auditPayload{
		Stream: stream, EventType: "waooaw.agent_request." + rec.Event, ActorID: r.Actor, ActorType: actorType,
		Action: rec.Action, Target: "agent_request:" + rec.RequestID, Context: ctx, Result: rec.Outcome,
	})
	if err != nil {
		return nil, fmt.Errorf("agentreq: audit data: %w", err)
	}
	return b, nil
}

// AuditEventType is the envelope type of the audit events a Recorder publishes.
const AuditEventType = "waooaw.audit.recorded"

func (r *Recorder) publish(ctx context.Context, rec Record, data []byte) error {
	var p auditPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("agentreq: record %s: stored audit data: %w", rec.Key, err)
	}
	env := events.Envelope{
		EventID:       EventID(rec.Key),
		Type:          AuditEventType,
		Source:        r.Source,
		Time:          rec.At,
		CorrelationID: rec.RequestID,
		Actor:         "agent:" + r.Actor,
		EngagementID:  p.Stream,
		Data:          data,
	}
	if _, err := r.Publisher.Publish(ctx, events.TopicAuditEvents, env); err != nil {
		return fmt.Errorf("agentreq: record %s: publish audit event: %w", rec.Key, err)
	}
	return nil
}
