// Package auditor is the Cloud Function that appends audit_events to the hash-chained audit
// log. Pub/Sub pushes each message; functions-framework-go turns the push into a CloudEvent.
//
// Outcomes, as Pub/Sub sees them:
//   - appended, or already in the log (a redelivery): success, the message is acknowledged;
//   - poison (not JSON, breaks the schema, unusable stream): logged at ERROR and returned as
//     an error, so Pub/Sub retries it and the subscription's dead-letter policy (5 attempts)
//     moves it to the dead-letter topic; the log is never touched;
//   - Firestore failed: returned as an error, so the retry can succeed.
package auditor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/events"
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
	env.OnShutdown(func(context.Context) error { return client.Close() })
	h := &Handler{App: audit.NewAppender(client), Log: env.Log}
	return h.Handle, nil
}

// Handler appends pushed audit events.
type Handler struct {
	App Appender
	Log *slog.Logger
}

// Handle decodes ce and appends it; see the package comment for the outcomes.
func (h *Handler) Handle(ctx context.Context, ce event.Event) error {
	env, msg, err := events.FromCloudEvent(events.TopicAuditEvents, ce)
	if err != nil {
		return h.poison(ctx, ce, msg, "", err)
	}
	r, err := h.App.Append(ctx, env)
	switch {
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
