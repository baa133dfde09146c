package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/canonical"
	sharedrules "waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/workflowexec"
)

// RequestKeys holds one document per (caller, Idempotency-Key):
// agent_request_keys/{hex(sha256(subject, key))}.
const RequestKeys = "agent_request_keys"

// HeaderIdempotencyKey is required on POST /v1/agent-requests.
const HeaderIdempotencyKey = "Idempotency-Key"

// Idempotency record states: starting while its owner starts the execution (under a lease),
// started once the execution is recorded, failed when starting failed (a retry takes over).
const (
	keyStarting = "starting"
	keyStarted  = "started"
	keyFailed   = "failed"
)

// startLease is how long an owner has to start the execution before a retry may take over.
const startLease = 30 * time.Second

// createWait is how long a duplicate waits for the first request to start its execution
// before answering 409; starting one takes tens of milliseconds.
const createWait = 5 * time.Second

type requestKey struct {
	Subject    string    `firestore:"subject"`
	BodySHA256 string    `firestore:"body_sha256"`
	RequestID  string    `firestore:"request_id"`
	Execution  string    `firestore:"execution"`
	State      string    `firestore:"state"`
	LeaseUntil time.Time `firestore:"lease_until"`
	CreatedAt  time.Time `firestore:"created_at"`
}

// StageLimits are the limits every execution's argument carries, from the embedded rules.
func StageLimits() (sharedrules.Limits, error) {
	set, err := sharedrules.Load(rules.FS)
	if err != nil {
		return sharedrules.Limits{}, fmt.Errorf("gateway: rules: %w", err)
	}
	l, err := set.StageLimits()
	if err != nil {
		return sharedrules.Limits{}, fmt.Errorf("gateway: rules: %w", err)
	}
	return l, nil
}

// created is the answer to a created request (and to its repeats).
type created struct {
	RequestID string `json:"request_id"`
	Execution string `json:"execution"`
	Status    string `json:"status"`
}

// executionArgument is agent_creation's argument (docs/agent-creation.md).
type executionArgument struct {
	RequestID    string             `json:"request_id"`
	EngagementID string             `json:"engagement_id"`
	RequestedBy  string             `json:"requested_by"`
	Spec         map[string]any     `json:"spec"`
	WayOfWorking map[string]any     `json:"way_of_working"`
	Limits       sharedrules.Limits `json:"limits"`
}

type createRoute struct {
	body       agentBody
	key        string
	engagement string
}

func createTarget(*request) (Access, *apiError) {
	return Access{Action: ActionCreate, ResourceType: "agent_request", Bundles: []string{"rbac", "data_scope"}}, nil
}

func (s *Server) resolveCreate(req *request, a *Access) *apiError {
	key := req.Header.Get(HeaderIdempotencyKey)
	if key == "" || len(key) > 256 {
		return errorf(http.StatusBadRequest, "header %s is required (1 to 256 characters)", HeaderIdempotencyKey)
	}
	b, aerr := parseAgentBody(req)
	if aerr != nil {
		return aerr
	}
	eng, _ := b.Spec["engagement_id"].(string)
	if eng == "" {
		eng = req.principal.Engagement
	}
	a.Engagement = eng
	req.route = createRoute{body: b, key: key, engagement: eng}
	return nil
}

// errKeyBody: the key was used with another body. errKeyBusy: its first request is still
// starting the execution.
var (
	errKeyBody = errors.New("idempotency key used with another body")
	errKeyBusy = errors.New("idempotency key in progress")
)

func (s *Server) serveCreate(w http.ResponseWriter, req *request) error {
	if s.opt.Workflows == nil || s.opt.AgentCreationWorkflow == "" {
		return errorf(http.StatusServiceUnavailable, "agent creation is not configured (%s or %s)", EnvRegion, EnvAgentCreationWorkflow)
	}
	rt := req.route.(createRoute)
	if err := audit.CheckStream(rt.engagement); err != nil {
		return &apiError{code: http.StatusBadRequest, msg: "field spec.engagement_id: not usable as an engagement", cause: err}
	}
	canon, err := canonical.Append(nil, rt.body.all)
	if err != nil {
		return &apiError{code: http.StatusBadRequest, msg: "body: not representable as canonical JSON", cause: err}
	}
	bodySum := sha256.Sum256(canon)
	subject := req.principal.ID
	keySum := sha256.Sum256([]byte(subject + "\x00" + rt.key))
	keyRef := s.opt.Firestore.Collection(RequestKeys).Doc(hex.EncodeToString(keySum[:]))
	ctx := req.Context()

	deadline := time.Now().Add(createWait)
	var k requestKey
	var own bool
	for {
		k, own, err = s.claimKey(ctx, keyRef, subject, hex.EncodeToString(bodySum[:]), req, rt)
		if !errors.Is(err, errKeyBusy) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	switch {
	case errors.Is(err, errKeyBody):
		return errorf(http.StatusUnprocessableEntity, "header %s was already used with another body", HeaderIdempotencyKey)
	case errors.Is(err, errKeyBusy):
		return errorf(http.StatusConflict, "a request with this %s is in progress; retry", HeaderIdempotencyKey)
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "request store unavailable; retry", cause: err}
	}
	req.log = append(req.log, "request_id", k.RequestID)
	if !own {
		w.Header().Set(HeaderReplay, "true")
		writeJSON(w, http.StatusAccepted, created{RequestID: k.RequestID, Execution: k.Execution, Status: agentreq.StatusRunning})
		return nil
	}

	sctx := context.WithoutCancel(ctx) // a caller gone mid-start must not leave half a start
	arg := executionArgument{RequestID: k.RequestID, EngagementID: rt.engagement, RequestedBy: req.principal.Actor(),
		Spec: rt.body.Spec, WayOfWorking: rt.body.WayOfWorking, Limits: *s.opt.Limits}
	labels := map[string]string{"engagement_id": workflowexec.Label(rt.engagement), "request_id": workflowexec.Label(k.RequestID)}
	exec, err := s.opt.Workflows.Start(sctx, s.opt.AgentCreationWorkflow, arg, labels)
	if err != nil {
		_, ferr := keyRef.Update(sctx, []firestore.Update{{Path: "state", Value: keyFailed}, {Path: "lease_until", Value: s.opt.Now()}})
		return &apiError{code: http.StatusServiceUnavailable, msg: "could not start the workflow; retry the same request", cause: errors.Join(err, ferr)}
	}
	batch := s.opt.Firestore.Batch()
	batch.Update(keyRef, []firestore.Update{{Path: "execution", Value: exec}, {Path: "state", Value: keyStarted}})
	batch.Update(s.opt.Firestore.Collection(agentreq.Requests).Doc(k.RequestID), []firestore.Update{{Path: "execution", Value: exec}})
	if _, err := batch.Commit(sctx); err != nil {
		// The execution runs; a retry after the lease would start a second one, so say so.
		return &apiError{code: http.StatusServiceUnavailable, msg: "the workflow started but could not be recorded; retry", cause: err}
	}
	req.log = append(req.log, "execution", exec)
	writeJSON(w, http.StatusAccepted, created{RequestID: k.RequestID, Execution: exec, Status: agentreq.StatusRunning})
	return nil
}

// claimKey records a new key with its request (own = true), or finds the key's record:
// started (own = false: answer it again), or failed or abandoned (own = true: start again
// with the same request id).
func (s *Server) claimKey(ctx context.Context, keyRef *firestore.DocumentRef, subject, bodySum string, req *request, rt createRoute) (requestKey, bool, error) {
	var k requestKey
	var own bool
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		own = false
		now := s.opt.Now()
		snap, err := tx.Get(keyRef)
		if status.Code(err) == codes.NotFound {
			own = true
			k = requestKey{Subject: subject, BodySHA256: bodySum, RequestID: newRequestID(), State: keyStarting,
				LeaseUntil: now.Add(startLease), CreatedAt: now}
			at := now.UTC().Format(time.RFC3339Nano)
			r := agentreq.Request{RequestID: k.RequestID, EngagementID: rt.engagement, Status: agentreq.StatusRunning, Round: 1,
				RequestedBy: req.principal.Actor(), CreatedAt: at, UpdatedAt: at, Spec: rt.body.Spec, WayOfWorking: rt.body.WayOfWorking,
				Stages: []agentreq.StageEntry{}, Compensations: []agentreq.Compensation{}}
			if err := tx.Create(s.opt.Firestore.Collection(agentreq.Requests).Doc(k.RequestID), r); err != nil {
				return err
			}
			return tx.Create(keyRef, k)
		}
		if err != nil {
			return err
		}
		if err := snap.DataTo(&k); err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		switch {
		case k.BodySHA256 != bodySum:
			return errKeyBody
		case k.State == keyStarted:
			return nil
		case k.State == keyStarting && now.Before(k.LeaseUntil):
			return errKeyBusy
		}
		own = true
		k.State, k.LeaseUntil = keyStarting, now.Add(startLease)
		return tx.Update(keyRef, []firestore.Update{{Path: "state", Value: keyStarting}, {Path: "lease_until", Value: k.LeaseUntil}})
	})
	return k, own, err
}

func newRequestID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("gateway: crypto/rand: %v", err)) // never fails on supported platforms
	}
	return "req-" + hex.EncodeToString(b[:])
}

// requestView is GET /v1/agent-requests/{id}'s answer.
type requestView struct {
	RequestID     string                  `json:"request_id"`
	EngagementID  string                  `json:"engagement_id"`
	AgentID       string                  `json:"agent_id"`
	Status        string                  `json:"status"`
	Round         int                     `json:"round"`
	Stages        []agentreq.StageEntry   `json:"stages"`
	Approval      *agentreq.ApprovalRef   `json:"approval"`
	Compensations []agentreq.Compensation `json:"compensations"`
	Reason        string                  `json:"reason,omitempty"`
}

func readRequestTarget(req *request) (Access, *apiError) {
	return Access{Action: ActionRead, ResourceType: "agent_request", ResourceID: req.PathValue("id"), Bundles: []string{"rbac", "data_scope"}}, nil
}

func revisionTarget(req *request) (Access, *apiError) {
	return Access{Action: ActionCreate, ResourceType: "agent_request", ResourceID: req.PathValue("id"), Bundles: []string{"rbac", "data_scope"}}, nil
}

// resolveRequest loads the request named by the path: its engagement scopes the decision.
func (s *Server) resolveRequest(req *request, a *Access) *apiError {
	r, err := agentreq.Get(req.Context(), s.opt.Firestore, req.PathValue("id"))
	switch {
	case errors.Is(err, agentreq.ErrNotFound):
		req.missing = errorf(http.StatusNotFound, "unknown agent request %q", req.PathValue("id"))
		return nil
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "request store unavailable; retry", cause: err}
	}
	a.Engagement = r.EngagementID
	req.route = r
	return nil
}

func (s *Server) resolveRevision(req *request, a *Access) *apiError { return s.resolveRequest(req, a) }

func (s *Server) serveRequest(w http.ResponseWriter, req *request) error {
	r := req.route.(agentreq.Request)
	v := requestView{RequestID: r.RequestID, EngagementID: r.EngagementID, AgentID: r.AgentID, Status: r.Status, Round: r.Round,
		Stages: r.Stages, Approval: r.Approval, Compensations: r.Compensations, Reason: r.Reason}
	if v.Stages == nil {
		v.Stages = []agentreq.StageEntry{}
	}
	if v.Compensations == nil {
		v.Compensations = []agentreq.Compensation{}
	}
	// A workflow that failed or was cancelled before recording a terminal status shows as
	// failed with its error: the projection alone would say running forever.
	if !agentreq.Terminal(r.Status) && r.Execution != "" && s.opt.Workflows != nil {
		ex, err := s.opt.Workflows.Get(req.Context(), r.Execution)
		switch {
		case err != nil:
			req.log = append(req.log, "execution_error", err.Error())
		case ex.State == workflowexec.StateFailed || ex.State == workflowexec.StateCancelled:
			v.Status = agentreq.StatusFailed
			v.Reason = fmt.Sprintf("the workflow execution is %s: %s", ex.State, ex.Error)
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// revised is the answer to an accepted revision.
type revised struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
	Round     int    `json:"round"`
}

var errNotRevisable = errors.New("request is not waiting for a revision")

// serveRevision claims the waiting revision in a transaction (status running, the next
// round, the new spec and way of working, the callback cleared so nobody delivers it
// twice), then delivers it to the workflow. A delivery that fails for a reason other than
// the window having closed gives the claim back, so the same revision can be sent again.
func (s *Server) serveRevision(w http.ResponseWriter, req *request) error {
	if s.opt.Workflows == nil {
		return errorf(http.StatusServiceUnavailable, "agent creation is not configured (%s)", EnvWorkflowsURL)
	}
	b, aerr := parseAgentBody(req)
	if aerr != nil {
		return aerr
	}
	ctx := req.Context()
	ref := s.opt.Firestore.Collection(agentreq.Requests).Doc(req.PathValue("id"))
	var old agentreq.Request
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		if err := snap.DataTo(&old); err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		if old.Status != agentreq.StatusNeedsRevision || old.RevisionCallback == "" {
			return fmt.Errorf("%w: it is %s", errNotRevisable, old.Status)
		}
		return tx.Update(ref, []firestore.Update{
			{Path: "status", Value: agentreq.StatusRunning}, {Path: "round", Value: old.Round + 1},
			{Path: "spec", Value: b.Spec}, {Path: "way_of_working", Value: b.WayOfWorking},
			{Path: "revision_callback", Value: ""}, {Path: "updated_at", Value: s.opt.Now().UTC().Format(time.RFC3339Nano)},
		})
	})
	switch {
	case errors.Is(err, errNotRevisable):
		return &apiError{code: http.StatusConflict, msg: fmt.Sprintf("request %s is %s; a revision is taken only while %s", old.RequestID, old.Status, agentreq.StatusNeedsRevision), cause: err}
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "request store unavailable; retry", cause: err}
	}
	round := old.Round + 1
	dctx := context.WithoutCancel(ctx)
	err = s.opt.Workflows.Callback(dctx, old.RevisionCallback, map[string]any{"spec": b.Spec, "way_of_working": b.WayOfWorking})
	switch {
	case errors.Is(err, workflowexec.ErrCallbackGone):
		return &apiError{code: http.StatusConflict, msg: "the revision window has closed", cause: err}
	case err != nil:
		rerr := s.opt.Firestore.RunTransaction(dctx, func(ctx context.Context, tx *firestore.Transaction) error {
			snap, err := tx.Get(ref)
			if err != nil {
				return err
			}
			var cur agentreq.Request
			if err := snap.DataTo(&cur); err != nil {
				return err
			}
			if cur.Status != agentreq.StatusRunning || cur.Round != round || cur.RevisionCallback != "" {
				return nil // the workflow moved on: nothing of ours to give back
			}
			return tx.Update(ref, []firestore.Update{
				{Path: "status", Value: agentreq.StatusNeedsRevision}, {Path: "round", Value: old.Round},
				{Path: "spec", Value: old.Spec}, {Path: "way_of_working", Value: old.WayOfWorking},
				{Path: "revision_callback", Value: old.RevisionCallback},
			})
		})
		return &apiError{code: http.StatusServiceUnavailable, msg: "could not deliver the revision; retry", cause: errors.Join(err, rerr)}
	}
	req.log = append(req.log, "request_id", old.RequestID, "round", round)
	writeJSON(w, http.StatusAccepted, revised{RequestID: old.RequestID, Status: agentreq.StatusRunning, Round: round})
	return nil
}
