package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/events"
)

// Engagements holds one document per engagement: engagements/{engagement_id} with its
// Governor. The governor policy reads them as data.platform.engagements.
const Engagements = "engagements"

// PlatformStream is the audit stream of platform-wide changes (a Governor assigned), and
// the platform's own engagement.
const PlatformStream = "platform"

// engagement is an engagements document.
type engagement struct {
	EngagementID string `firestore:"engagement_id"`
	Governor     string `firestore:"governor"`
	Previous     string `firestore:"previous_governor"`
	AssignedBy   string `firestore:"assigned_by"`
	AssignedAt   string `firestore:"assigned_at"`
}

type engagementBody struct {
	EngagementID string `json:"engagement_id"`
	Governor     string `json:"governor"`
}

func engagementTarget(*request) (Access, *apiError) {
	return Access{Action: ActionAssignGovernor, ResourceType: "engagement", Bundles: []string{"rbac", "data_scope"}}, nil
}

func (s *Server) resolveEngagement(req *request, a *Access) *apiError {
	var b engagementBody
	if aerr := decodeBody(req, &b); aerr != nil {
		return aerr
	}
	// "platform" is the platform's own engagement: its Governor decides the platform's
	// approvals (the budget's financial requests), recorded on the platform stream.
	if err := audit.CheckStream(b.EngagementID); err != nil {
		return errorf(http.StatusBadRequest, "field engagement_id: not usable as an engagement (and its audit stream)")
	}
	if b.Governor == "" || len(b.Governor) > 256 {
		return errorf(http.StatusBadRequest, "field governor: a token subject of 1 to 256 characters is required")
	}
	a.ResourceID, a.Engagement = b.EngagementID, b.EngagementID
	req.route = b
	return nil
}

// serveEngagement sets the engagement's Governor: 201 when it changed (a new engagement,
// or another Governor replacing the one on record), 200 when it was already so. The audit
// event's id comes from the assignment itself, so answering a repeat publishes it again
// harmlessly (the auditor keeps one entry) and a crash after the commit loses nothing.
func (s *Server) serveEngagement(w http.ResponseWriter, req *request) error {
	b := req.route.(engagementBody)
	ctx := req.Context()
	ref := s.opt.Firestore.Collection(Engagements).Doc(b.EngagementID)
	var rec engagement
	changed := false
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		changed = false
		snap, err := tx.Get(ref)
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		var old engagement
		if err == nil {
			if err := snap.DataTo(&old); err != nil {
				return fmt.Errorf("read %s: %w", ref.ID, err)
			}
			if old.Governor == b.Governor {
				rec = old
				return nil
			}
		}
		changed = true
		rec = engagement{EngagementID: b.EngagementID, Governor: b.Governor, Previous: old.Governor,
			AssignedBy: req.principal.Actor(), AssignedAt: s.opt.Now().UTC().Format(time.RFC3339Nano)}
		return tx.Set(ref, rec)
	})
	if err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "engagement store unavailable; retry", cause: err}
	}
	env, err := governorAudit(rec)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := s.opt.Publisher.Publish(pctx, events.TopicAuditEvents, env); err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "could not publish; retry the same request", cause: err}
	}
	code := http.StatusOK
	if changed {
		code = http.StatusCreated
	}
	req.log = append(req.log, "engagement", rec.EngagementID, "governor", rec.Governor, "changed", changed)
	writeJSON(w, code, map[string]string{"engagement_id": rec.EngagementID, "governor": rec.Governor, "assigned_at": rec.AssignedAt})
	return nil
}

// governorAudit is the platform stream's entry for an assignment.
func governorAudit(e engagement) (events.Envelope, error) {
	sum := sha256.Sum256([]byte(e.EngagementID + "\x00" + e.Governor + "\x00" + e.AssignedAt))
	ctxMap := map[string]string{"engagement_id": e.EngagementID, "governor": e.Governor}
	if e.Previous != "" {
		ctxMap["previous_governor"] = e.Previous
	}
	env, err := events.New(AuditEventType, Source, e.AssignedBy, map[string]any{
		"stream": PlatformStream, "event_type": "waooaw.engagement.governor_assigned",
		"actor_id": e.AssignedBy, "actor_type": "human", "action": ActionAssignGovernor,
		"target": "engagement:" + e.EngagementID, "context": ctxMap, "result": "assigned",
	})
	if err != nil {
		return events.Envelope{}, err
	}
	env.EventID = "gov-" + hex.EncodeToString(sum[:16])
	env.CorrelationID = env.EventID
	env.Time = e.AssignedAt
	env.EngagementID = e.EngagementID
	return env, nil
}

// decodeBody reads a JSON object body of at most MaxBodyBytes into v.
func decodeBody(req *request, v any) *apiError {
	b, aerr := readBody(req)
	if aerr != nil {
		return aerr
	}
	if err := json.Unmarshal(b, v); err != nil {
		return bodyError(err)
	}
	return nil
}
