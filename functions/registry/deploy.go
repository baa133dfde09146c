package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/policy"
)

// Stage 7 as the workflow names it.
const (
	Stage     = 7
	StageName = "deploy"
)

// Outcomes the registry answers and records on the request's stage 7 entries.
const (
	OutcomeDeploying   = "deploying"
	OutcomeDeployed    = "deployed"
	OutcomeRolledBack  = "rolled_back"
	OutcomeUndeployed  = "undeployed"
	OutcomeNotDeployed = "not_deployed" // an undo with no live deployment to take down
)

// Workflow steps, as audit entries name them (workflows/agent_creation.yaml).
const (
	StepComplete = "complete_stage_7_deploy"
	StepRollback = "rollback_stage_7_deploy"
	StepUndo     = "undo_stage_7_deploy"
)

// Verdict is what every call of the workflow is answered.
type Verdict struct {
	Stage   int      `json:"stage"`
	Name    string   `json:"name"`
	Outcome string   `json:"outcome"`
	Reasons []string `json:"reasons"`
	Status  string   `json:"status"` // the request's
	AgentID string   `json:"agent_id"`
	State   string   `json:"state"` // the agent's
}

// deploymentCall is the body of :complete and :rollback.
type deploymentCall struct {
	RequestID string `json:"request_id"`
	At        string `json:"at"`
	Reason    string `json:"reason"`
}

func (c deploymentCall) check() error {
	if c.RequestID == "" {
		return fmt.Errorf("%w: request_id is missing", agentreq.ErrBadCall)
	}
	if _, err := time.Parse(time.RFC3339Nano, c.At); err != nil {
		return fmt.Errorf("%w: at %q is not an RFC 3339 time", agentreq.ErrBadCall, c.At)
	}
	return nil
}

// refuse turns a transition the agent does not take into a bad call: retrying cannot help.
func refuse(a Agent, typ string) error {
	state := a.State
	if state == "" {
		state = "not deployed"
	}
	return fmt.Errorf("%w: agent %s is %s; it cannot be %s", agentreq.ErrBadCall, a.AgentID, state, typ)
}

// record records rec once and answers what was stored (the same answer on a retried call).
func (s *Server) record(w http.ResponseWriter, r *http.Request, rec agentreq.Record) {
	res, err := s.rec.Record(r.Context(), rec)
	if err != nil {
		if !errors.Is(err, agentreq.ErrBadCall) && !errors.Is(err, agentreq.ErrUnknownRequest) {
			s.opt.Logger.WarnContext(r.Context(), "registry: record failed; the workflow retries",
				"key", rec.Key, "error", err.Error())
		}
		agentreq.WriteError(w, err)
		return
	}
	agentreq.WriteRaw(w, res.Answer)
}

// serveDeploy is stage 7: the agent is recorded (deploy_requested) with the workflow's
// health callback, and the request shows its agent_id, deploying.
func (s *Server) serveDeploy(w http.ResponseWriter, r *http.Request) {
	var c agentreq.Call
	if err := agentreq.Decode(r, &c); err != nil {
		agentreq.WriteError(w, err)
		return
	}
	if err := c.Check(true); err != nil {
		agentreq.WriteError(w, err)
		return
	}
	if c.HealthCallback == "" {
		agentreq.WriteError(w, fmt.Errorf("%w: health_callback is missing", agentreq.ErrBadCall))
		return
	}
	agentID := agentreq.AgentID(c.RequestID)
	if err := s.budgetAllows(r.Context(), c, agentID); err != nil {
		agentreq.WriteError(w, err)
		return
	}
	key := agentreq.StageKey(c.RequestID, Stage, c.Round)
	s.record(w, r, agentreq.Record{
		Key: key, RequestID: c.RequestID, EngagementID: c.EngagementID, Round: c.Round, At: c.At,
		Event: "stage", Action: agentreq.StepNames[Stage], Outcome: OutcomeDeploying,
		Stage:   &agentreq.StageEntry{Stage: Stage, Name: StageName, Outcome: OutcomeDeploying, At: c.At, Round: c.Round},
		Status:  agentreq.StatusDeploying,
		AgentID: agentID,
		Answer: Verdict{Stage: Stage, Name: StageName, Outcome: OutcomeDeploying, Reasons: []string{},
			Status: agentreq.StatusDeploying, AgentID: agentID, State: StateDeploying},
		Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			if agentreq.Terminal(req.Status) {
				return fmt.Errorf("%w: request %s is %s", agentreq.ErrBadCall, req.RequestID, req.Status)
			}
			a, _, err := s.store.read(tx, agentID)
			if err != nil {
				return err
			}
			if !Allowed(a.State, EventDeployRequested) {
				return refuse(a, "deployed again")
			}
			name, _ := req.Spec["agent_name"].(string)
			_, err = s.store.append(tx, Agent{}, Event{
				AgentID: agentID, Type: EventDeployRequested, At: c.At, Cause: key,
				RequestID: c.RequestID, EngagementID: c.EngagementID, AgentName: name, HealthCallback: c.HealthCallback,
			})
			return err
		},
	})
}

// lookup reads an agent's projection outside a transaction: what a call needs before it
// records (the engagement, which never changes).
func (s *Server) lookup(ctx context.Context, agentID string) (Agent, error) {
	snap, err := s.store.agentRef(agentID).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Agent{}, fmt.Errorf("%w: %w: %s", agentreq.ErrBadCall, ErrUnknownAgent, agentID)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("registry: get agent %s: %w", agentID, err)
	}
	var a Agent
	if err := snap.DataTo(&a); err != nil {
		return Agent{}, fmt.Errorf("registry: read agent %s: %w", agentID, err)
	}
	return a, nil
}

// serveDeployment is POST /v1/deployments/{agent_id}:complete and :rollback.
func (s *Server) serveDeployment(w http.ResponseWriter, r *http.Request) {
	agentID, verb := splitOp(r.PathValue("op"))
	if verb != "complete" && verb != "rollback" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no method %q; use :complete or :rollback", verb))
		return
	}
	var c deploymentCall
	if err := agentreq.Decode(r, &c); err != nil {
		agentreq.WriteError(w, err)
		return
	}
	if err := c.check(); err != nil {
		agentreq.WriteError(w, err)
		return
	}
	if want := agentreq.AgentID(c.RequestID); agentID != want {
		agentreq.WriteError(w, fmt.Errorf("%w: agent %s is not request %s's (%s)", agentreq.ErrBadCall, agentID, c.RequestID, want))
		return
	}
	a, err := s.lookup(r.Context(), agentID)
	if err != nil {
		agentreq.WriteError(w, err)
		return
	}
	if verb == "complete" {
		s.complete(w, r, c, a)
	} else {
		s.rollback(w, r, c, a)
	}
}

// complete makes the agent live and the request deployed.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, c deploymentCall, a Agent) {
	key := c.RequestID + "_complete"
	s.record(w, r, agentreq.Record{
		Key: key, RequestID: c.RequestID, EngagementID: a.EngagementID, At: c.At,
		Event: "deployed", Action: StepComplete, Outcome: OutcomeDeployed,
		Stage:   &agentreq.StageEntry{Stage: Stage, Name: StageName, Outcome: OutcomeDeployed, At: c.At},
		Status:  agentreq.StatusDeployed,
		AgentID: a.AgentID,
		Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			cur, _, err := s.store.read(tx, a.AgentID)
			if err != nil {
				return err
			}
			if !Allowed(cur.State, EventLive) {
				return refuse(cur, "made live")
			}
			if cur.HealthyAt == "" {
				return fmt.Errorf("%w: agent %s has reported no healthy health event; it cannot be made live", agentreq.ErrBadCall, cur.AgentID)
			}
			if _, err := s.store.append(tx, cur, Event{Type: EventLive, At: c.At, Cause: key}); err != nil {
				return err
			}
			onRound(rec, req.Round)
			rec.Answer = Verdict{Stage: Stage, Name: StageName, Outcome: OutcomeDeployed, Reasons: []string{},
				Status: agentreq.FinalStatus(req.Status, agentreq.StatusDeployed), AgentID: cur.AgentID, State: StateLive}
			return nil
		},
	})
}

// rollback takes down an agent that reported no healthy event in time; the workflow then
// asks genesis to record the request failed.
func (s *Server) rollback(w http.ResponseWriter, r *http.Request, c deploymentCall, a Agent) {
	if c.Reason == "" {
		agentreq.WriteError(w, fmt.Errorf("%w: reason is missing", agentreq.ErrBadCall))
		return
	}
	key := c.RequestID + "_rollback"
	reasons := []string{c.Reason}
	s.record(w, r, agentreq.Record{
		Key: key, RequestID: c.RequestID, EngagementID: a.EngagementID, At: c.At,
		Event: "rolled_back", Action: StepRollback, Outcome: OutcomeRolledBack, Reasons: reasons,
		Stage:   &agentreq.StageEntry{Stage: Stage, Name: StageName, Outcome: OutcomeRolledBack, Reasons: reasons, At: c.At},
		AgentID: a.AgentID,
		Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			cur, _, err := s.store.read(tx, a.AgentID)
			if err != nil {
				return err
			}
			if !Allowed(cur.State, EventRolledBack) {
				return refuse(cur, "rolled back")
			}
			if _, err := s.store.append(tx, cur, Event{Type: EventRolledBack, At: c.At, Cause: key, Reason: c.Reason}); err != nil {
				return err
			}
			onRound(rec, req.Round)
			rec.Answer = Verdict{Stage: Stage, Name: StageName, Outcome: OutcomeRolledBack, Reasons: reasons,
				Status: req.Status, AgentID: cur.AgentID, State: StateRolledBack}
			return nil
		},
	})
}

// onRound puts the request's current round on a record the call did not number.
func onRound(rec *agentreq.Record, round int) {
	rec.Round = round
	if rec.Stage != nil {
		st := *rec.Stage
		st.Round = round
		rec.Stage = &st
	}
}

// serveUndo is the compensation saga's undo of stage 7: the agent is undeployed (an agent
// never deployed, or already taken down, has nothing to undo; the undo is recorded all the
// same, once).
func (s *Server) serveUndo(w http.ResponseWriter, r *http.Request) {
	var c agentreq.Call
	if err := agentreq.Decode(r, &c); err != nil {
		agentreq.WriteError(w, err)
		return
	}
	if err := c.Check(false); err != nil {
		agentreq.WriteError(w, err)
		return
	}
	agentID := agentreq.AgentID(c.RequestID)
	key := agentreq.UndoKey(c.RequestID, Stage)
	s.record(w, r, agentreq.Record{
		Key: key, RequestID: c.RequestID, EngagementID: c.EngagementID, At: c.At,
		Event: "undo", Action: StepUndo, Outcome: OutcomeUndeployed,
		Compensation: &agentreq.Compensation{Stage: Stage, At: c.At},
		Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			cur, _, err := s.store.read(tx, agentID)
			if err != nil {
				return err
			}
			rec.Round = req.Round
			outcome, state := OutcomeUndeployed, StateUndeployed
			if Allowed(cur.State, EventUndeployed) {
				reason := "undone by the compensation saga"
				if c.ApprovalID != "" {
					reason += " after approval " + c.ApprovalID
				}
				if _, err := s.store.append(tx, cur, Event{Type: EventUndeployed, At: c.At, Cause: key,
					Reason: reason, ApprovalID: c.ApprovalID}); err != nil {
					return err
				}
			} else {
				outcome, state = OutcomeNotDeployed, cur.State
			}
			if cur.State != "" {
				rec.AgentID = agentID
			}
			rec.Outcome = outcome
			rec.Answer = Verdict{Stage: Stage, Name: StageName, Outcome: outcome, Reasons: []string{},
				Status: req.Status, AgentID: rec.AgentID, State: state}
			return nil
		},
	})
}

// EnforcementPoint names the stage runner on its policy attestations.
const EnforcementPoint = "stage_runner"

// budgetAllows asks the budget policy whether the agent a request deploys may start. A
// deploy is the engagement's work, never governance: a halted platform refuses it (and a
// suspended one, as non-critical), as a bad call, so the workflow fails the request rather
// than retrying it into the halt.
func (s *Server) budgetAllows(ctx context.Context, c agentreq.Call, agentID string) error {
	in := map[string]any{
		"subject":  map[string]any{"id": agentID, "type": "agent", "role": "operator", "engagements": []any{c.EngagementID}},
		"action":   "deploy",
		"resource": map[string]any{"type": "agent", "id": agentID, "engagement_id": c.EngagementID},
	}
	d, err := s.opt.Policy.Decide(ctx, "budget", "decision", in, policy.Meta{EnforcementPoint: EnforcementPoint, CorrelationID: c.RequestID})
	if err != nil {
		return fmt.Errorf("registry: budget policy: %w", err)
	}
	if !d.Allow {
		return fmt.Errorf("%w: deploy of agent %s refused by the budget: %s", agentreq.ErrBadCall, agentID, strings.Join(d.Reasons, "; "))
	}
	return nil
}
