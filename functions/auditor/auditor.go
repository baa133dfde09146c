// Package auditor is the Cloud Function that appends audit_events to the hash-chained audit
// log. Pub/Sub pushes each message; functions-framework-go turns the push into a CloudEvent.
//
// Outcomes, as Pub/Sub sees them:
//   - appended, or already in the log with the same content (a redelivery): success, the
//     message is acknowledged;
//   - poison (not JSON, breaks the schema, unusable stream): logged at ERROR and returned as
//     an error, so Pub/Sub retries it and the subscription's dead-letter policy (5 attempts)
//     moves it to the dead-letter topic; the log is never touched;
//   - an event id the stream holds with other content (audit.ErrConflict): poison as well,
//     and an alert besides: logged at CRITICAL with both content hashes and published on
//     slo_breach as a critical breach of service "audit", slo "event_id_integrity";
//   - Firestore failed: returned as an error, so the retry can succeed.
package auditor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/startup"
	"waooaw.dev/governance/shared/store"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Auditor"

// Auditor is the registered entry point: it handles one pushed audit_events message with a
// Handler configured from the environment (GOOGLE_CLOUD_PROJECT; WAOOAW_AUDIT_DATABASE, the
// audit log's own database when deployed; FIRESTORE_EMULATOR_HOST locally).
var Auditor startup.EventHandler

func init() { Auditor = startup.CloudEvent(FunctionName, open) }

// Appender is what the function needs from the audit log.
type Appender interface {
	Append(ctx context.Context, env events.Envelope) (audit.Receipt, error)
}

func open(ctx context.Context, env *startup.Env) (startup.EventHandler, error) {
	// The log's own database: the auditor's identity is the only one that may write it.
	client, err := store.NewAuditClient(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := pubsub.NewClient(ctx, env.Project)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("auditor: pubsub.NewClient: %w", err)
	}
	alerts := events.NewPubSub(ps)
	env.OnShutdown(func(context.Context) error {
		alerts.Close()
		return errors.Join(ps.Close(), client.Close())
	})
	h := &Handler{App: audit.NewAppender(client), Alerts: alerts, Log: env.Log}
	return h.Handle, nil
}

// Publisher publishes an event on a topic, as *events.PubSub does.
type Publisher interface {
	Publish(ctx context.Context, topic string, e events.Envelope) (string, error)
}

// Handler appends pushed audit events.
type Handler struct {
	App Appender
	// Alerts carries the alert for a reused event id; nil logs it only.
	Alerts Publisher
	Log    *slog.Logger
}

// Source is the source of the events the auditor publishes.
const Source = "//waooaw/auditor"

// The alert a reused event id raises, on slo_breach: the integrity of the log's dedupe is
// an objective of 0 conflicts.
const (
	AlertService = "audit"
	AlertSLO     = "event_id_integrity"
)

// maxAttrLen bounds an id copied into the alert's envelope, whose ids travel as Pub/Sub
// attributes (at most 1,024 bytes); a longer one would lose the alert.
const maxAttrLen = 256

// Handle decodes ce and appends it; see the package comment for the outcomes.
func (h *Handler) Handle(ctx context.Context, ce event.Event) error {
	env, msg, err := events.FromCloudEvent(events.TopicAuditEvents, ce)
	if err != nil {
		return h.poison(ctx, ce, msg, "", err)
	}
	r, err := h.App.Append(ctx, env)
	var conflict *audit.ConflictError
	switch {
	case errors.As(err, &conflict):
		h.alert(ctx, env, msg, conflict)
		return h.poison(ctx, ce, msg, env.EventID, err)
	case errors.Is(err, audit.ErrInvalid):
		return h.poison(ctx, ce, msg, env.EventID, err)
	case err != nil:
		h.Log.WarnContext(ctx, "auditor: append failed; Pub/Sub will retry",
			"event_id", env.EventID, "message_id", msg.MessageID, "error", err.Error())
		return fmt.Errorf("auditor: event %s: %w", env.EventID, err)
	}
	if r.Duplicate {
		// Redeliveries are expected now and then; many of them point at a slow or failing ack.
		h.Log.InfoContext(ctx, "auditor: already appended", "event_id", env.EventID, "stream", r.Stream, "seq", r.Seq)
	} else {
		// The audit log itself records the append; this line is for debugging only.
		h.Log.DebugContext(ctx, "auditor: appended", "event_id", env.EventID, "stream", r.Stream, "seq", r.Seq)
	}
	return nil
}

// poison logs a message that no retry can fix and returns it as an error wrapping
// events.ErrPoison, so the dead-letter policy takes it after the last attempt.
func (h *Handler) poison(ctx context.Context, ce event.Event, msg events.Message, eventID string, err error) error {
	h.Log.ErrorContext(ctx, "auditor: poison message", "cloudevent_id", ce.ID(), "message_id", msg.MessageID,
		"event_id", eventID, "error", err.Error())
	if !errors.Is(err, events.ErrPoison) {
		err = fmt.Errorf("%w: %w", events.ErrPoison, err)
	}
	return fmt.Errorf("auditor: %w", err)
}

// alert reports an event refused because its id is in the stream with other content:
// someone may be replaying an id to hide an event, or a producer reuses ids. The message is
// pushed up to 5 times before it is dead-lettered; every attempt's alert has the same event
// id, so a consumer counts it once.
func (h *Handler) alert(ctx context.Context, env events.Envelope, msg events.Message, c *audit.ConflictError) {
	h.Log.Log(ctx, logging.LevelCritical, "auditor: event id reused with other content; refused",
		"event_id", c.EventID, "stream", c.Stream, "seq", c.Seq, "stored_content", c.Stored,
		"refused_content", c.Got, "message_id", msg.MessageID)
	if h.Alerts == nil {
		return
	}
	a, err := events.New("waooaw.slo.breached", Source, "system:auditor", map[string]any{
		"service": AlertService, "engagement_id": c.Stream, "slo": AlertSLO,
		"objective": 0.0, "observed": 1.0, "severity": "critical",
		"observed_at": time.Now().UTC().Format(time.RFC3339Nano),
	})
	if err == nil {
		sum := sha256.Sum256([]byte(c.Stream + "\x00" + c.EventID + "\x00" + c.Got))
		a.EventID = "audit-conflict-" + hex.EncodeToString(sum[:16])
		if len(env.EventID) <= maxAttrLen {
			a.CausationID = env.EventID // it travels as an attribute, which Pub/Sub bounds
		}
		a.EngagementID = c.Stream
		_, err = h.Alerts.Publish(ctx, events.TopicSLOBreach, a)
	}
	if err != nil {
		// The CRITICAL record above stands; the message is refused either way.
		h.Log.ErrorContext(ctx, "auditor: publish alert", "event_id", c.EventID, "error", err.Error())
	}
}
