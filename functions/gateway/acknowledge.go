package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/notification"
	"waooaw.dev/governance/shared/workflowexec"
)

// ActionAcknowledge is the Governor's "I have seen it": it stops the approval's notification
// cascade and decides nothing (docs/notifier.md).
const ActionAcknowledge = "acknowledge"

// acknowledged is the answer to an acknowledgement.
type acknowledged struct {
	ApprovalID     string `json:"approval_id"`
	AcknowledgedBy string `json:"acknowledged_by"`
	// Status: "stopped" (the cascade will send nothing more), "already_acknowledged", or
	// "ended" (it had sent every channel already).
	Status string `json:"status"`
}

func acknowledgeTarget(req *request) (Access, *apiError) {
	return Access{Action: ActionAcknowledge, ResourceType: "approval", ResourceID: req.PathValue("id"), Bundles: []string{"rbac", "governor"}}, nil
}

// resolveAcknowledge reads the cascade's record: its engagement is the governor policy's
// resource. An unknown approval is a 404 only after the policies allowed the caller.
func (s *Server) resolveAcknowledge(req *request, a *Access) *apiError {
	snap, err := s.opt.Firestore.Collection(notification.Collection).Doc(a.ResourceID).Get(req.Context())
	switch {
	case status.Code(err) == codes.NotFound || status.Code(err) == codes.InvalidArgument:
		req.missing = errorf(http.StatusNotFound, "no notifications for approval %q", a.ResourceID)
		return nil
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "notification store unavailable; retry", cause: err}
	}
	var c notification.Cascade
	if err := snap.DataTo(&c); err != nil {
		return &apiError{code: http.StatusInternalServerError, msg: "notification record unreadable", cause: err}
	}
	a.Engagement = c.EngagementID
	req.route = c
	return nil
}

// notificationStates marks the approvals whose cascade the acknowledge route would accept
// now (running, a message sent), so the console offers the button only then.
func (s *Server) notificationStates(ctx context.Context, list []approvalView) error {
	if len(list) == 0 {
		return nil
	}
	refs := make([]*firestore.DocumentRef, len(list))
	for i, a := range list {
		refs[i] = s.opt.Firestore.Collection(notification.Collection).Doc(a.ApprovalID)
	}
	snaps, err := s.opt.Firestore.GetAll(ctx, refs)
	if err != nil {
		return fmt.Errorf("read notification cascades: %w", err)
	}
	for i, snap := range snaps {
		if !snap.Exists() {
			continue
		}
		var c notification.Cascade
		if err := snap.DataTo(&c); err != nil {
			return fmt.Errorf("read notification cascade %s: %w", snap.Ref.ID, err)
		}
		list[i].Acknowledge = c.State == notification.StateRunning && c.CallbackURL != ""
		list[i].AcknowledgedBy = c.AcknowledgedBy
	}
	return nil
}

// serveAcknowledge delivers the Governor's acknowledgement.
func (s *Server) serveAcknowledge(w http.ResponseWriter, req *request) error {
	ans, aerr := s.acknowledge(req, req.route.(notification.Cascade), req.principal.Actor(), nil)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// AuditAcknowledged is the audit entry of an acknowledgement, on the engagement's stream.
const AuditAcknowledged = "waooaw.notification.acknowledged"

// acknowledge delivers an acknowledgement on the cascade's callback (the workflow stops
// waiting and sends nothing more) and records it on the engagement's audit stream, once per
// approval. A decided approval's cascade was cancelled already. undo, if set, runs when
// nothing was delivered and a retry may succeed.
func (s *Server) acknowledge(req *request, c notification.Cascade, by string, undo func()) (acknowledged, *apiError) {
	ans := acknowledged{ApprovalID: c.ApprovalID, AcknowledgedBy: by}
	if undo == nil {
		undo = func() {}
	}
	switch {
	case c.State == notification.StateAcknowledged:
		ans.Status, ans.AcknowledgedBy = "already_acknowledged", c.AcknowledgedBy
		return ans, nil
	case c.State == notification.StateDecided:
		return ans, errorf(http.StatusConflict, "approval %s is decided: its notifications have stopped", c.ApprovalID)
	case c.CallbackURL == "":
		undo()
		return ans, errorf(http.StatusConflict, "approval %s has no notification sent yet; retry", c.ApprovalID)
	case s.opt.Workflows == nil:
		undo()
		return ans, errorf(http.StatusServiceUnavailable, "workflows are not configured (%s)", EnvWorkflowsURL)
	}
	ctx := context.WithoutCancel(req.Context()) // once sent, see the record through
	err := s.opt.Workflows.Callback(ctx, c.CallbackURL, map[string]string{"approval_id": c.ApprovalID, "acknowledged_by": by})
	switch {
	case errors.Is(err, workflowexec.ErrCallbackGone):
		ans.Status = "ended"
	case err != nil:
		undo()
		return ans, &apiError{code: http.StatusServiceUnavailable, msg: "could not deliver the acknowledgement; retry", cause: err}
	default:
		ans.Status = "stopped"
	}
	req.log = append(req.log, "approval_id", c.ApprovalID, "acknowledgement", ans.Status)
	_, err = s.opt.Firestore.Collection(notification.Collection).Doc(c.ApprovalID).Update(ctx, []firestore.Update{
		{Path: "state", Value: notification.StateAcknowledged}, {Path: "acknowledged_by", Value: by}})
	if err != nil {
		// Delivered: the workflow's result holds who acknowledged; the record only lags.
		req.log = append(req.log, "record_error", err.Error())
	}
	env, err := events.New(AuditEventType, Source, by, map[string]any{
		"stream": c.EngagementID, "event_type": AuditAcknowledged, "actor_id": req.principal.ID, "actor_type": "human",
		"action": ActionAcknowledge, "target": "approval:" + c.ApprovalID,
		"context": map[string]string{"approval_id": c.ApprovalID, "acknowledged_by": by, "outcome": ans.Status}, "result": notification.StateAcknowledged,
	})
	if err != nil {
		return ans, &apiError{code: http.StatusInternalServerError, msg: "acknowledged, but its audit entry could not be built", cause: err}
	}
	sum := sha256.Sum256([]byte(c.ApprovalID + "\x00acknowledged"))
	env.EventID = "ack-" + hex.EncodeToString(sum[:16])
	env.CorrelationID, env.EngagementID = "approval-"+c.ApprovalID, c.EngagementID
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := s.opt.Publisher.Publish(pctx, events.TopicAuditEvents, env); err != nil {
		// The acknowledgement stands; its audit entry is what is missing.
		return ans, &apiError{code: http.StatusServiceUnavailable, msg: "acknowledged, but its audit entry could not be published", cause: err}
	}
	return ans, nil
}
