package guardian

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

// Verdicts is the guardian's own collection: its verdicts and undos.
const Verdicts = "guardian_verdicts"

// Stage is the ethics review's number and name in the workflow.
const (
	Stage     = 5
	StageName = "ethics_review"
)

// Outcomes the review answers (docs/agent-creation.md). The table's amendment_required is
// answered as rejected: the request stops.
const (
	OutcomeCleared   = "cleared"
	OutcomeEscalate  = "escalate"
	OutcomeRejected  = "rejected"
	OutcomeWithdrawn = "withdrawn"

	tableAmendmentRequired = "amendment_required"
)

// Rules is what the review reads from the decision tables (*rules.Set).
type Rules interface {
	EthicsReview(facts map[string]any) (rules.Verdict, rules.Result, error)
}

// Options are what a Server needs.
type Options struct {
	Firestore *firestore.Client
	Publisher events.Publisher // audit_events; slo_breach for chain breaks
	Rules     Rules
	// Anchoring, when set, serves the scheduled audit check at AuditCheckPath.
	Anchoring *Anchoring
	// AI, when set, reviews each verdict (docs/ai-reviews.md); nil runs the table alone.
	AI ai.Asker
}

// Server answers the workflow's calls for stage 5 and Cloud Scheduler's audit check.
type Server struct {
	mux    *http.ServeMux
	fs     *firestore.Client
	rules  Rules
	rec    *agentreq.Recorder
	pub    events.Publisher
	anchor *Anchoring
	ai     *aireview.Reviewer
}

// New checks o and builds the Server.
func New(o Options) (*Server, error) {
	if o.Firestore == nil || o.Publisher == nil || o.Rules == nil {
		return nil, errors.New("guardian: Firestore, Publisher and Rules are required")
	}
	s := &Server{
		mux:    http.NewServeMux(),
		fs:     o.Firestore,
		rules:  o.Rules,
		pub:    o.Publisher,
		anchor: o.Anchoring,
		rec: &agentreq.Recorder{
			FS: o.Firestore, Collection: Verdicts, Publisher: o.Publisher,
			Actor: Agent, Source: "//waooaw/guardian",
		},
	}
	if o.AI != nil {
		s.ai = &aireview.Reviewer{Asker: o.AI, FS: o.Firestore, Records: Verdicts, Agent: Agent}
	}
	s.mux.HandleFunc("POST /v1/stages/"+StageName, agentreq.Handler(s.reviewOnce))
	s.mux.HandleFunc("POST /v1/undo/"+StageName, agentreq.Handler(s.undoOnce))
	if a := o.Anchoring; a != nil {
		if a.Store == nil || a.Key == nil {
			return nil, errors.New("guardian: Anchoring needs a Store and a Key")
		}
		s.mux.HandleFunc("POST "+AuditCheckPath, s.auditCheck)
	}
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

// Withdrawn is the answer to an undo: the clearance no longer stands.
type Withdrawn struct {
	Stage   int    `json:"stage"`
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	Rounds  []int  `json:"rounds"` // the rounds whose verdicts were withdrawn
	Status  string `json:"status"`
}

// reviewOnce reviews the call's spec and records the verdict once per (request, round).
func (s *Server) reviewOnce(ctx context.Context, c agentreq.Call) (agentreq.Result, error) {
	if err := c.Check(true); err != nil {
		return agentreq.Result{}, err
	}
	facts, err := readFacts(c.Spec)
	if err != nil {
		return agentreq.Result{}, err
	}
	v, res, err := s.rules.EthicsReview(facts)
	if err != nil {
		return agentreq.Result{}, fmt.Errorf("guardian: review: %w", err)
	}
	trace, err := res.Trace.JSON()
	if err != nil {
		return agentreq.Result{}, fmt.Errorf("guardian: %w", err)
	}
	rv, err := s.ai.Review(ctx, aireview.Input{
		Stage: Stage, RequestID: c.RequestID, EngagementID: c.EngagementID, Round: c.Round,
		Outcome: v.Outcome, Reasons: v.Reasons, Trace: trace, Request: c.Spec, Escalation: escalation,
	})
	if err != nil {
		return agentreq.Result{}, fmt.Errorf("guardian: %w", err)
	}
	outcome, reasons := escalate(v.Outcome, v.Reasons, rv)
	status := agentreq.StatusRunning
	switch outcome {
	case OutcomeCleared, OutcomeEscalate:
		// An escalation keeps the request running: the workflow opens the constitutional
		// approval next.
	case tableAmendmentRequired:
		outcome, status = OutcomeRejected, agentreq.StatusRejected
	default:
		return agentreq.Result{}, fmt.Errorf("guardian: rules: outcome %q is not one stage 5 answers", outcome)
	}
	return s.rec.Record(ctx, agentreq.Record{
		Key: agentreq.StageKey(c.RequestID, Stage, c.Round), RequestID: c.RequestID,
		EngagementID: c.EngagementID, Round: c.Round, At: c.At,
		Event: "stage", Action: agentreq.StepNames[Stage], Outcome: outcome, Reasons: reasons, Trace: trace,
		AuditContext: rv.AuditContext(),
		Stage:        &agentreq.StageEntry{Stage: Stage, Name: StageName, Outcome: outcome, Reasons: reasons, At: c.At, Round: c.Round},
		Status:       status,
		Also: func(_ context.Context, _ *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			rec.Answer = Verdict{Stage: Stage, Name: StageName, Outcome: outcome, Reasons: reasons, Status: agentreq.FinalStatus(req.Status, status), Trace: trace}
			return nil
		},
	})
}

// undoOnce withdraws the request's ethics clearance: its stage-5 verdicts are marked
// withdrawn and the undo is recorded once.
func (s *Server) undoOnce(ctx context.Context, c agentreq.Call) (agentreq.Result, error) {
	if err := c.Check(false); err != nil {
		return agentreq.Result{}, err
	}
	why := "the ethics clearance is withdrawn"
	if c.ApprovalID != "" {
		why += ": approval " + c.ApprovalID + " was vetoed"
	}
	return s.rec.Record(ctx, agentreq.Record{
		Key: agentreq.UndoKey(c.RequestID, Stage), RequestID: c.RequestID,
		EngagementID: c.EngagementID, At: c.At,
		Event: "undo", Action: "undo_" + agentreq.StepNames[Stage], Outcome: OutcomeWithdrawn,
		Reasons:      []string{why},
		Compensation: &agentreq.Compensation{Stage: Stage, At: c.At},
		Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			rec.Round = req.Round
			snaps, err := tx.Documents(s.fs.Collection(Verdicts).Where("request_id", "==", c.RequestID)).GetAll()
			if err != nil {
				return fmt.Errorf("guardian: verdicts of %s: %w", c.RequestID, err)
			}
			rounds := []int{}
			var marks []*firestore.DocumentRef
			for _, snap := range snaps {
				// Stage verdicts only: the key is {request}_5_{round}.
				round, ok := stageRound(snap.Ref.ID, c.RequestID)
				if !ok {
					continue
				}
				rounds = append(rounds, round)
				marks = append(marks, snap.Ref)
			}
			for _, ref := range marks {
				if err := tx.Update(ref, []firestore.Update{{Path: "withdrawn_at", Value: c.At}, {Path: "withdrawn_by", Value: c.ApprovalID}}); err != nil {
					return fmt.Errorf("guardian: withdraw %s: %w", ref.ID, err)
				}
			}
			slices.Sort(rounds)
			rec.Answer = Withdrawn{Stage: Stage, Name: StageName, Outcome: OutcomeWithdrawn, Rounds: rounds, Status: req.Status}
			return nil
		},
	})
}

// stageRound is the round of a stage-5 verdict's key, ok false for any other record.
func stageRound(key, requestID string) (int, bool) {
	rest, ok := strings.CutPrefix(key, requestID+"_")
	if !ok {
		return 0, false
	}
	var stage, round int
	if n, err := fmt.Sscanf(rest, "%d_%d", &stage, &round); err != nil || n != 2 || stage != Stage ||
		agentreq.StageKey(requestID, stage, round) != key {
		return 0, false
	}
	return round, true
}

// readFacts takes the review's facts from a spec. Stage 1 has seen every required field, so
// a field of the wrong type is a bad call, not a verdict.
func readFacts(spec map[string]any) (map[string]any, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: spec is missing", agentreq.ErrBadCall)
	}
	facts := map[string]any{}
	for _, f := range []string{"purpose", "industry"} {
		switch v := spec[f].(type) {
		case nil:
		case string:
			facts[f] = strings.TrimSpace(v)
		default:
			return nil, fmt.Errorf("%w: spec.%s: want a string", agentreq.ErrBadCall, f)
		}
	}
	if industry, ok := facts["industry"].(string); ok {
		facts["industry"] = strings.ToLower(industry) // the table names industries in lower case
	}
	controls := []string{}
	switch v := spec["controls"].(type) {
	case nil:
	case map[string]any:
		for name, on := range v {
			b, ok := on.(bool)
			if !ok {
				return nil, fmt.Errorf("%w: spec.controls.%s: want true or false", agentreq.ErrBadCall, name)
			}
			if b {
				controls = append(controls, name)
			}
		}
	default:
		return nil, fmt.Errorf("%w: spec.controls: want an object of booleans", agentreq.ErrBadCall)
	}
	slices.Sort(controls) // map order is random; the trace must not be
	facts["controls"] = controls
	flags := []string{}
	switch v := spec["risk_flags"].(type) {
	case nil:
	case []any:
		for _, e := range v {
			flag, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: spec.risk_flags: want a list of strings", agentreq.ErrBadCall)
			}
			if flag = strings.TrimSpace(flag); flag != "" {
				flags = append(flags, flag)
			}
		}
	default:
		return nil, fmt.Errorf("%w: spec.risk_flags: want a list of strings", agentreq.ErrBadCall)
	}
	facts["risk_flags"] = flags
	return facts, nil
}
