package architect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/aireview"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
)

// Collections the architect keeps.
const (
	Verdicts   = "architect_verdicts"
	AgentNames = "architect_agent_names"
)

// Stage is the architecture review's number and name in the workflow.
const (
	Stage     = 4
	StageName = "architecture_review"
)

// Outcomes the review answers (docs/agent-creation.md).
const (
	OutcomeApproved = "approved"
	OutcomeRevise   = "revise"
	OutcomeRejected = "rejected"
	OutcomeUndone   = "undone"
)

// Rules is what the review reads from the decision tables (*rules.Set).
type Rules interface {
	ConnectorKnown(system string) (bool, rules.Result, error)
	PerAgentDailyCapUSD() (float64, error)
	ArchitectureReview(facts map[string]any) (rules.Verdict, rules.Result, error)
	MaxRevisionRounds() int
}

// Options are what a Server needs.
type Options struct {
	Firestore *firestore.Client
	Publisher events.Publisher // audit_events
	Rules     Rules
	// AI, when set, reviews each verdict (docs/ai-reviews.md); nil runs the tables alone.
	AI ai.Asker
}

// Server answers the workflow's calls for stage 4.
type Server struct {
	mux   *http.ServeMux
	fs    *firestore.Client
	rules Rules
	rec   *agentreq.Recorder
	ai    *aireview.Reviewer
}

// New checks o and builds the Server, refusing decision tables it cannot review with.
func New(o Options) (*Server, error) {
	if o.Firestore == nil || o.Publisher == nil || o.Rules == nil {
		return nil, errors.New("architect: Firestore, Publisher and Rules are required")
	}
	if _, err := o.Rules.PerAgentDailyCapUSD(); err != nil {
		return nil, fmt.Errorf("architect: %w", err)
	}
	if o.Rules.MaxRevisionRounds() < 1 {
		return nil, errors.New("architect: rules: max_revision_rounds is missing")
	}
	s := &Server{
		mux:   http.NewServeMux(),
		fs:    o.Firestore,
		rules: o.Rules,
		rec: &agentreq.Recorder{
			FS: o.Firestore, Collection: Verdicts, Publisher: o.Publisher,
			Actor: Agent, Source: "//waooaw/architect",
		},
	}
	if o.AI != nil {
		s.ai = &aireview.Reviewer{Asker: o.AI, FS: o.Firestore, Records: Verdicts, Agent: Agent}
	}
	s.mux.HandleFunc("POST /v1/stages/"+StageName, agentreq.Handler(s.reviewOnce))
	s.mux.HandleFunc("POST /v1/undo/"+StageName, agentreq.Handler(s.undoOnce))
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Verdict is the stage's answer to the workflow.
type Verdict struct {
	Stage   int             `json:"stage"`
	Name    string          `json:"name"`
	Outcome string          `json:"outcome"`
	Reasons []string        `json:"reasons"`
	Status  string          `json:"status"`
	Trace   json.RawMessage `json:"trace"`
}

// Undone is the answer to an undo.
type Undone struct {
	Stage    int      `json:"stage"`
	Name     string   `json:"name"`
	Outcome  string   `json:"outcome"`
	Released []string `json:"released"` // the agent names given up
	Status   string   `json:"status"`
}

// trace is what the audit log keeps of a review: every table evaluated.
type trace struct {
	ConnectorCatalogue []rules.Trace `json:"connector_catalogue"`
	ArchitectureReview rules.Trace   `json:"architecture_review"`
}

// reviewOnce reviews the call's spec and records the verdict once per (request, round).
func (s *Server) reviewOnce(ctx context.Context, c agentreq.Call) (agentreq.Result, error) {
	if err := c.Check(true); err != nil {
		return agentreq.Result{}, err
	}
	sp, err := readSpec(c.Spec)
	if err != nil {
		return agentreq.Result{}, err
	}
	var tr trace
	unknown := []string{}
	for _, system := range sp.systems {
		known, res, err := s.rules.ConnectorKnown(system)
		if err != nil {
			return agentreq.Result{}, fmt.Errorf("architect: connector %q: %w", system, err)
		}
		tr.ConnectorCatalogue = append(tr.ConnectorCatalogue, res.Trace)
		if !known {
			unknown = append(unknown, system)
		}
	}
	capUSD, err := s.rules.PerAgentDailyCapUSD()
	if err != nil {
		return agentreq.Result{}, fmt.Errorf("architect: %w", err)
	}
	facts := map[string]any{
		"unknown_systems":            unknown,
		"cost_ratio":                 sp.costPerDay / capUSD,
		"agent_name":                 sp.name,
		"estimated_cost_usd_per_day": sp.costPerDay,
		"per_agent_daily_cap_usd":    capUSD,
	}
	last := c.Round >= s.rules.MaxRevisionRounds()
	nameRef := s.nameRef(c.EngagementID, sp.name)
	rv, err := s.aiReview(ctx, reviewCall{Call: c, facts: facts, trace: tr, nameRef: nameRef})
	if err != nil {
		return agentreq.Result{}, err
	}

	// The name's holder is read, and an approved verdict reserves the name, in the
	// transaction that records the verdict: two requests for one name cannot both pass.
	return s.rec.Record(ctx, agentreq.Record{
		Key: agentreq.StageKey(c.RequestID, Stage, c.Round), RequestID: c.RequestID,
		EngagementID: c.EngagementID, Round: c.Round, At: c.At,
		Event: "stage", Action: agentreq.StepNames[Stage],
		Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			held, err := s.heldByAnother(tx, nameRef, c.RequestID)
			if err != nil {
				return err
			}
			facts["duplicate_name"] = held
			v, res, err := s.rules.ArchitectureReview(facts)
			if err != nil {
				return fmt.Errorf("architect: review: %w", err)
			}
			t := tr
			t.ArchitectureReview = res.Trace
			traceJSON, err := json.Marshal(t)
			if err != nil {
				return fmt.Errorf("architect: trace: %w", err)
			}
			outcome, reasons := escalate(v.Outcome, v.Reasons, rv)
			status := agentreq.StatusRunning
			switch {
			case outcome == OutcomeApproved:
				if nameRef != nil && !held {
					if err := tx.Set(nameRef, reservation{RequestID: c.RequestID, EngagementID: c.EngagementID, AgentName: sp.name, At: c.At}); err != nil {
						return fmt.Errorf("architect: reserve name: %w", err)
					}
				}
			case outcome == OutcomeRevise && last:
				outcome, status = OutcomeRejected, agentreq.StatusRejected
			case outcome == OutcomeRevise:
				if c.RevisionCallback == "" {
					return fmt.Errorf("%w: revision_callback is missing; a revise is delivered to it", agentreq.ErrBadCall)
				}
				status = agentreq.StatusNeedsRevision
				req.RevisionCallback = c.RevisionCallback
			default:
				return fmt.Errorf("architect: rules: outcome %q is not one stage 4 answers", outcome)
			}
			status = agentreq.FinalStatus(req.Status, status)
			rec.Outcome, rec.Reasons, rec.Trace, rec.Status = outcome, reasons, traceJSON, status
			rec.AuditContext = rv.AuditContext()
			rec.Stage = &agentreq.StageEntry{Stage: Stage, Name: StageName, Outcome: outcome, Reasons: reasons, At: c.At, Round: c.Round}
			rec.Answer = Verdict{Stage: Stage, Name: StageName, Outcome: outcome, Reasons: reasons, Status: status, Trace: traceJSON}
			return nil
		},
	})
}

// undoOnce releases every agent name the request holds and records the undo once.
func (s *Server) undoOnce(ctx context.Context, c agentreq.Call) (agentreq.Result, error) {
	if err := c.Check(false); err != nil {
		return agentreq.Result{}, err
	}
	reasons := []string{}
	if c.ApprovalID != "" {
		reasons = append(reasons, "approval "+c.ApprovalID+" was vetoed")
	}
	return s.rec.Record(ctx, agentreq.Record{
		Key: agentreq.UndoKey(c.RequestID, Stage), RequestID: c.RequestID,
		EngagementID: c.EngagementID, At: c.At,
		Event: "undo", Action: "undo_" + agentreq.StepNames[Stage], Outcome: OutcomeUndone,
		Compensation: &agentreq.Compensation{Stage: Stage, At: c.At},
		Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			rec.Round = req.Round
			// Found by holder rather than by the spec's name: the spec may have been revised
			// since the name was reserved.
			q := s.fs.Collection(AgentNames).Where("request_id", "==", c.RequestID)
			snaps, err := tx.Documents(q).GetAll()
			if err != nil {
				return fmt.Errorf("architect: names held by %s: %w", c.RequestID, err)
			}
			released := []string{}
			for _, snap := range snaps {
				var n reservation
				if err := snap.DataTo(&n); err != nil {
					return fmt.Errorf("architect: read name %s: %w", snap.Ref.ID, err)
				}
				if n.EngagementID != c.EngagementID {
					continue
				}
				if err := tx.Delete(snap.Ref); err != nil {
					return fmt.Errorf("architect: release name %s: %w", n.AgentName, err)
				}
				released = append(released, n.AgentName)
			}
			rec.Reasons = append(slices.Clone(reasons), releasedReason(released))
			rec.Answer = Undone{Stage: Stage, Name: StageName, Outcome: OutcomeUndone, Released: released, Status: req.Status}
			return nil
		},
	})
}

func releasedReason(names []string) string {
	if len(names) == 0 {
		return "no agent name was reserved"
	}
	return "released the agent name " + strings.Join(names, ", ")
}
