package guardian

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/events"
)

// AuditCheckPath is the route Cloud Scheduler posts to every 10 minutes
// (infra/infrastructure.yaml, schedules).
const AuditCheckPath = "/v1/schedules/audit-anchor"

// AnchorKeySecret is the secret holding the anchors' HMAC-SHA256 key (at least 32 bytes).
const AnchorKeySecret = "audit-anchor-key"

// BreakAnchorUnverified is the break raised when the latest anchor's signature does not
// verify with the current key.
const BreakAnchorUnverified = "anchor_unverified"

// PlatformStream is the audit stream a chain break is recorded on.
const PlatformStream = "platform"

// Anchoring is what the scheduled audit check needs.
type Anchoring struct {
	// AuditLog is a client on the audit log's database (store.NewAuditClient); the
	// guardian's own client when nil, as on the local stack where both are (default).
	AuditLog *firestore.Client
	Store    AnchorStore
	// Key returns the signing key; it is read on every check, so a rotated secret is taken
	// up at the next one (anchors signed before are then reported as not verifying).
	Key func(ctx context.Context) ([]byte, error)
	Now func() time.Time // time.Now when nil
	Log *slog.Logger     // slog.Default when nil
}

// CheckReport is the scheduled check's answer.
type CheckReport struct {
	Streams     int           `json:"streams"`
	EntriesRead int           `json:"entries_read"`
	Breaks      []audit.Break `json:"breaks"`
	// Anchor is the object written by this check, "" when nothing grew.
	Anchor string `json:"anchor"`
	// Previous is the anchor checked against, "" on the first check.
	Previous string `json:"previous"`
}

// auditCheck verifies every stream from its last checkpoint, raises each break, and anchors
// the new heads. Damage is reported with 200 (the job ran); failing to read or to anchor is
// 500, so Cloud Scheduler retries.
func (s *Server) auditCheck(w http.ResponseWriter, r *http.Request) {
	rep, err := s.checkOnce(r.Context())
	if err != nil {
		s.anchor.log().Error("audit check failed", "error", err.Error())
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

func (a *Anchoring) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

func (s *Server) checkOnce(ctx context.Context) (CheckReport, error) {
	a := s.anchor
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	at := now()
	key, err := a.Key(ctx)
	if err != nil {
		return CheckReport{}, fmt.Errorf("guardian: anchor key: %w", err)
	}
	doc, name, err := a.Store.Latest(ctx)
	if err != nil {
		return CheckReport{}, err
	}
	rep := CheckReport{Previous: name, Breaks: []audit.Break{}}
	var prev audit.Anchor
	if doc != nil {
		if prev, err = audit.OpenAnchor(key, doc); err != nil {
			// Nothing can be checked against an anchor that does not verify, and nothing is
			// anchored over it: the break repeats every check until someone acts.
			b := audit.Break{Stream: PlatformStream, Kind: BreakAnchorUnverified, Detail: fmt.Sprintf("anchor %s: %v", name, err)}
			rep.Breaks = append(rep.Breaks, b)
			return rep, s.raise(ctx, b, at)
		}
	}
	log := a.AuditLog
	if log == nil {
		log = s.fs
	}
	res, err := audit.CheckSince(ctx, log, prev, at)
	if err != nil {
		return CheckReport{}, fmt.Errorf("guardian: %w", err)
	}
	rep.Streams, rep.EntriesRead = res.Streams, res.EntriesRead
	for _, b := range res.Breaks {
		rep.Breaks = append(rep.Breaks, b)
		if err := s.raise(ctx, b, at); err != nil {
			return CheckReport{}, err
		}
	}
	if res.Changed {
		sealed, err := audit.SealAnchor(key, res.Anchor)
		if err != nil {
			return CheckReport{}, fmt.Errorf("guardian: %w", err)
		}
		rep.Anchor = AnchorName(at)
		if err := a.Store.Create(ctx, rep.Anchor, sealed); err != nil {
			return CheckReport{}, err
		}
	}
	a.log().Info("audit check", "streams", rep.Streams, "entries_read", rep.EntriesRead, "breaks", len(rep.Breaks), "anchor", rep.Anchor)
	return rep, nil
}

// Alert fields of a chain break on slo_breach.
const (
	AlertService = "audit_log"
	AlertSLO     = "audit_chain_intact"
)

// raise publishes a break as a critical slo_breach alert and records it on the platform
// stream. A failure to publish fails the check, so the scheduler's retry raises it again.
func (s *Server) raise(ctx context.Context, b audit.Break, at time.Time) error {
	s.anchor.log().Error("audit chain break", "stream", b.Stream, "kind", b.Kind, "seq", b.Seq, "detail", b.Detail)
	when := at.UTC().Format(time.RFC3339Nano)
	alert, err := events.New("waooaw.slo.breached", "//waooaw/guardian", "vision_guardian", map[string]any{
		"service": AlertService, "engagement_id": b.Stream, "agent_id": "", "slo": AlertSLO,
		"objective": 1.0, "observed": 0.0, "window": "10m", "severity": "critical", "observed_at": when,
	})
	if err != nil {
		return fmt.Errorf("guardian: alert: %w", err)
	}
	alert.EngagementID = b.Stream
	rec, err := events.New(AuditEventTypeRecorded, "//waooaw/guardian", "vision_guardian", map[string]any{
		"stream": PlatformStream, "event_type": "waooaw.audit.chain_break", "actor_id": "vision_guardian",
		"actor_type": "agent", "action": "verify_audit_chain", "target": "audit_stream:" + b.Stream,
		"context": map[string]string{"kind": b.Kind, "seq": strconv.FormatInt(b.Seq, 10), "detail": b.Detail, "alert_event_id": alert.EventID},
		"result":  "break",
	})
	if err != nil {
		return fmt.Errorf("guardian: audit event: %w", err)
	}
	rec = rec.CausedBy(alert)
	rec.EngagementID = PlatformStream
	_, err1 := s.pub.Publish(ctx, events.TopicSLOBreach, alert)
	_, err2 := s.pub.Publish(ctx, events.TopicAuditEvents, rec)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("guardian: raise break of %s: %w", b.Stream, err)
	}
	return nil
}

// AuditEventTypeRecorded is the envelope type of audit events.
const AuditEventTypeRecorded = "waooaw.audit.recorded"
