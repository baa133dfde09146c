package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/workflowexec"
)

// Decisions a Governor may send, each an rbac action and a governor-policy action.
const (
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
	DecisionVeto    = "veto"
)

// decisionsOf is what each kind of approval takes.
var decisionsOf = map[string][]string{
	agentreq.KindBlocking:   {DecisionApprove, DecisionDeny},
	agentreq.KindVetoWindow: {DecisionVeto},
}

// approvalView is one approval as GET /v1/approvals lists it.
type approvalView struct {
	ApprovalID string `json:"approval_id"`
	RequestID  string `json:"request_id"`
	Kind       string `json:"kind"`
	Type       string `json:"type"`
	Deadline   string `json:"deadline"`
	SeedID     string `json:"seed_id"`
	// What is asked: the stage that opened it and the reasons it gave, and when.
	Stage    int      `json:"stage"`
	Reasons  []string `json:"reasons"`
	OpenedAt string   `json:"opened_at"`
	// Notifications: whether its cascade would take an acknowledgement now, and who gave one.
	Acknowledge    bool   `json:"acknowledge"`
	AcknowledgedBy string `json:"acknowledged_by,omitempty"`
}

var approvalStates = []string{agentreq.ApprovalPending, agentreq.ApprovalClaimed, agentreq.ApprovalDecided, agentreq.ApprovalExpired, agentreq.ApprovalImplicit}

func listApprovalsTarget(*request) (Access, *apiError) {
	return Access{Action: ActionList, ResourceType: "approval", Bundles: []string{"rbac", "data_scope"}}, nil
}

// resolveListApprovals scopes the list to the token's engagement, or to ?engagement= (which
// data_scope allows only to the roles that reach every engagement).
func (s *Server) resolveListApprovals(req *request, a *Access) *apiError {
	q := req.URL.Query()
	st := q.Get("state")
	if st == "" {
		st = agentreq.ApprovalPending
	}
	if !slices.Contains(approvalStates, st) {
		return errorf(http.StatusBadRequest, "query state: must be one of %s", strings.Join(approvalStates, ", "))
	}
	eng := q.Get("engagement")
	if eng == "" {
		eng = req.principal.Engagement
	}
	a.Engagement, a.ResourceID = eng, eng
	req.route = [2]string{eng, st}
	return nil
}

func (s *Server) serveListApprovals(w http.ResponseWriter, req *request) error {
	p := req.route.([2]string)
	docs, err := s.opt.Firestore.Collection(agentreq.Approvals).Where("engagement_id", "==", p[0]).Where("state", "==", p[1]).Documents(req.Context()).GetAll()
	if err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "approval store unavailable; retry", cause: err}
	}
	out := make([]approvalView, 0, len(docs))
	for _, d := range docs {
		var a agentreq.Approval
		if err := d.DataTo(&a); err != nil {
			return fmt.Errorf("read approval %s: %w", d.Ref.ID, err)
		}
		out = append(out, approvalView{ApprovalID: a.ApprovalID, RequestID: a.RequestID, Kind: a.Kind, Type: a.Type, Deadline: a.Deadline, SeedID: a.SeedID,
			Stage: a.Stage, Reasons: a.Reasons, OpenedAt: a.OpenedAt})
	}
	if err := s.notificationStates(req.Context(), out); err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "notification store unavailable; retry", cause: err}
	}
	// The nearest deadline first: what needs the Governor soonest.
	slices.SortFunc(out, func(x, y approvalView) int { return strings.Compare(x.Deadline+x.ApprovalID, y.Deadline+y.ApprovalID) })
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
	return nil
}

type decideBody struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

type decideRoute struct {
	body     decideBody
	approval agentreq.Approval
}

// decided is the answer to a decision.
type decided struct {
	ApprovalID string `json:"approval_id"`
	Decision   string `json:"decision"`
	DecidedBy  string `json:"decided_by"`
	// Status is "delivered" on a 202: the workflow had not closed the approval in time.
	Status string `json:"status,omitempty"`
}

func decideTarget(req *request) (Access, *apiError) {
	id, verb, ok := strings.Cut(req.PathValue("action"), ":")
	if !ok || verb != "decide" || id == "" {
		return Access{}, errorf(http.StatusNotFound, "no route for this path; use POST /v1/approvals/{id}:decide")
	}
	return Access{ResourceType: "approval", ResourceID: id, Bundles: []string{"rbac", "governor"}}, nil
}

// resolveDecide reads the decision (its verb is the rbac and governor action) and the
// approval (its engagement is the governor policy's resource).
func (s *Server) resolveDecide(req *request, a *Access) *apiError {
	var b decideBody
	if aerr := decodeBody(req, &b); aerr != nil {
		return aerr
	}
	if b.Decision != DecisionApprove && b.Decision != DecisionDeny && b.Decision != DecisionVeto {
		return errorf(http.StatusBadRequest, "field decision: must be approve, deny or veto")
	}
	if len(b.Reason) > 4096 {
		return errorf(http.StatusBadRequest, "field reason: at most 4096 bytes")
	}
	a.Action = b.Decision
	ap, err := agentreq.GetApproval(req.Context(), s.opt.Firestore, a.ResourceID)
	switch {
	case errors.Is(err, agentreq.ErrNotFound) || (err != nil && strings.Contains(err.Error(), "InvalidArgument")):
		req.missing = errorf(http.StatusNotFound, "unknown approval %q", a.ResourceID)
		return nil
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "approval store unavailable; retry", cause: err}
	}
	a.Engagement = ap.EngagementID
	req.route = decideRoute{body: b, approval: ap}
	return nil
}

var errClaimed = errors.New("approval not pending")

// serveDecide follows docs/agent-creation.md: claim the pending approval in a transaction,
// deliver the workflow's callback, then wait for the workflow to close the approval. The
// workflow, not this clock, decides whether the decision came in time.
func (s *Server) serveDecide(w http.ResponseWriter, req *request) error {
	rt := req.route.(decideRoute)
	ap, b := rt.approval, rt.body
	if takes := decisionsOf[ap.Kind]; !slices.Contains(takes, b.Decision) {
		return errorf(http.StatusBadRequest, "a %s approval takes %s, not %s", ap.Kind, strings.Join(takes, " or "), b.Decision)
	}
	if ap.CallbackURL == "" {
		return s.decideInPlace(w, req, ap, b)
	}
	if s.opt.Workflows == nil {
		return errorf(http.StatusServiceUnavailable, "agent creation is not configured (%s)", EnvWorkflowsURL)
	}
	by := req.principal.Actor()
	claim := &agentreq.Claim{Decision: b.Decision, By: by, Reason: b.Reason}
	ctx := req.Context()
	ref := s.opt.Firestore.Collection(agentreq.Approvals).Doc(ap.ApprovalID)
	state, err := s.claim(ctx, ref, claim)
	switch {
	case errors.Is(err, errClaimed):
		return closedError(state)
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "approval store unavailable; retry", cause: err}
	}
	req.log = append(req.log, "approval_id", ap.ApprovalID, "decision", b.Decision)

	dctx := context.WithoutCancel(ctx) // once claimed, see the delivery through
	err = s.opt.Workflows.Callback(dctx, ap.CallbackURL, map[string]string{
		"approval_id": ap.ApprovalID, "decision": b.Decision, "reason": b.Reason, "decided_by": by})
	switch {
	case errors.Is(err, workflowexec.ErrCallbackGone):
		// The execution no longer waits: its timeout closed the window (the workflow records
		// that), so the claim stays and nobody else can decide either.
		return &apiError{code: http.StatusConflict, msg: "the window has closed", cause: err}
	case err != nil:
		rerr := s.unclaim(dctx, ref, by)
		return &apiError{code: http.StatusServiceUnavailable, msg: "could not deliver the decision; retry", cause: errors.Join(err, rerr)}
	}

	final, err := s.awaitClose(ctx, ref)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		req.log = append(req.log, "await_error", err.Error())
	case final == agentreq.ApprovalDecided:
		writeJSON(w, http.StatusOK, decided{ApprovalID: ap.ApprovalID, Decision: b.Decision, DecidedBy: by})
		return nil
	case final == agentreq.ApprovalExpired || final == agentreq.ApprovalImplicit:
		return errorf(http.StatusConflict, "the window has closed")
	}
	// Delivered, but the workflow has not closed the approval yet: it will.
	writeJSON(w, http.StatusAccepted, decided{ApprovalID: ap.ApprovalID, Decision: b.Decision, DecidedBy: by, Status: "delivered"})
	return nil
}

// claim moves the approval from pending to claimed, once: the update is conditional on the
// document being as read (its update time), so of two concurrent deciders exactly one
// succeeds, and neither holds a lock that would delay the workflow's close. It returns the
// state that refused the claim.
func (s *Server) claim(ctx context.Context, ref *firestore.DocumentRef, c *agentreq.Claim) (string, error) {
	for {
		snap, err := ref.Get(ctx)
		if err != nil {
			return "", err
		}
		var cur agentreq.Approval
		if err := snap.DataTo(&cur); err != nil {
			return "", fmt.Errorf("read approval: %w", err)
		}
		if cur.State != agentreq.ApprovalPending {
			return cur.State, errClaimed
		}
		_, err = ref.Update(ctx, []firestore.Update{{Path: "state", Value: agentreq.ApprovalClaimed}, {Path: "claim", Value: c}},
			firestore.LastUpdateTime(snap.UpdateTime))
		if status.Code(err) == codes.FailedPrecondition {
			continue // changed since read: read again and say what it is now
		}
		return "", err
	}
}

// closedError is the 409 for an approval that is not pending.
func closedError(state string) *apiError {
	switch state {
	case agentreq.ApprovalExpired, agentreq.ApprovalImplicit:
		return errorf(http.StatusConflict, "the window has closed")
	case agentreq.ApprovalClaimed:
		return errorf(http.StatusConflict, "another decision on this approval is being delivered")
	default:
		return errorf(http.StatusConflict, "the approval was already decided")
	}
}

// unclaim gives a claim back after a failed delivery, if it is still this caller's.
func (s *Server) unclaim(ctx context.Context, ref *firestore.DocumentRef, by string) error {
	return s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var cur agentreq.Approval
		if err := snap.DataTo(&cur); err != nil {
			return err
		}
		if cur.State != agentreq.ApprovalClaimed || cur.Claim == nil || cur.Claim.By != by {
			return nil
		}
		return tx.Update(ref, []firestore.Update{{Path: "state", Value: agentreq.ApprovalPending}, {Path: "claim", Value: firestore.Delete}})
	})
}

// awaitClose follows the approval until the workflow closes it (decided, expired or
// implicit), for at most DecisionWait; it returns the last state seen.
func (s *Server) awaitClose(ctx context.Context, ref *firestore.DocumentRef) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, s.opt.DecisionWait)
	defer cancel()
	it := ref.Snapshots(wctx)
	defer it.Stop()
	last := agentreq.ApprovalClaimed
	for {
		snap, err := it.Next()
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return last, nil // waited long enough
			}
			return last, err
		}
		if !snap.Exists() {
			continue
		}
		var a agentreq.Approval
		if err := snap.DataTo(&a); err != nil {
			return last, err
		}
		last = a.State
		switch a.State {
		case agentreq.ApprovalDecided, agentreq.ApprovalExpired, agentreq.ApprovalImplicit:
			return last, nil
		}
	}
}

// decideInPlace decides an approval no workflow waits on (the budget guard's financial
// request to the platform's Governor): the decision closes it at once, in a transaction,
// and is recorded on its engagement's audit stream under an id fixed by the approval (one
// decision per approval, so one entry).
func (s *Server) decideInPlace(w http.ResponseWriter, req *request, ap agentreq.Approval, b decideBody) error {
	ctx := req.Context()
	by := req.principal.Actor()
	at := s.opt.Now().UTC().Format(time.RFC3339Nano)
	ref := s.opt.Firestore.Collection(agentreq.Approvals).Doc(ap.ApprovalID)
	var closed string
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		closed = ""
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var cur agentreq.Approval
		if err := snap.DataTo(&cur); err != nil {
			return fmt.Errorf("read approval: %w", err)
		}
		if cur.State != agentreq.ApprovalPending {
			closed = cur.State
			return nil
		}
		return tx.Update(ref, []firestore.Update{{Path: "state", Value: agentreq.ApprovalDecided}, {Path: "decision", Value: b.Decision},
			{Path: "decided_by", Value: by}, {Path: "reason", Value: b.Reason}, {Path: "closed_at", Value: at}})
	})
	switch {
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "approval store unavailable; retry", cause: err}
	case closed != "":
		return closedError(closed)
	}
	req.log = append(req.log, "approval_id", ap.ApprovalID, "decision", b.Decision)
	env, err := events.New(AuditEventType, Source, by, map[string]any{
		"stream": ap.EngagementID, "event_type": "waooaw.approval.decided", "actor_id": req.principal.ID, "actor_type": "human",
		"action": b.Decision, "target": "approval:" + ap.ApprovalID,
		"context": map[string]string{"approval_type": ap.Type, "reason": b.Reason}, "approval_chain": []string{by}, "result": agentreq.ApprovalDecided,
	})
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(ap.ApprovalID + "\x00decided"))
	env.EventID = "dec-" + hex.EncodeToString(sum[:16])
	env.CorrelationID, env.Time, env.EngagementID = env.EventID, at, ap.EngagementID
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := s.opt.Publisher.Publish(pctx, events.TopicAuditEvents, env); err != nil {
		// The decision stands; its audit entry is what is missing.
		return &apiError{code: http.StatusServiceUnavailable, msg: "decided, but its audit entry could not be published", cause: err}
	}
	writeJSON(w, http.StatusOK, decided{ApprovalID: ap.ApprovalID, Decision: b.Decision, DecidedBy: by})
	return nil
}
