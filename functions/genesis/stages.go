package genesis

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
	"waooaw.dev/governance/shared/rules"
)

// Stage outcomes Genesis answers (docs/agent-creation.md, Stage calls).
const (
	OutcomeAccepted         = "accepted"
	OutcomeRejected         = "rejected"
	OutcomeComplete         = "complete"
	OutcomeRevise           = "revise"
	OutcomeCertified        = "certified"
	OutcomeReclassify       = "reclassify"
	OutcomeAutoApproved     = "auto_approved"
	OutcomeAwaitingApproval = "awaiting_approval"
)

// Verdict is a stage call's answer.
type Verdict struct {
	Stage   int             `json:"stage"`
	Name    string          `json:"name"`
	Outcome string          `json:"outcome"`
	Reasons []string        `json:"reasons"`
	Status  string          `json:"status"` // the request's status once recorded
	Trace   json.RawMessage `json:"trace"`
}

// decision is what a stage decided from the call, before it is recorded.
type decision struct {
	outcome string
	reasons []string
	status  string
	trace   json.RawMessage
	// revisionCallback is kept on the request while it waits for a revision.
	revisionCallback string
}

// stageCall decodes and checks a stage call.
func stageCall(r *http.Request) (agentreq.Call, error) {
	var c agentreq.Call
	if err := agentreq.Decode(r, &c); err != nil {
		return c, err
	}
	return c, c.Check(true)
}

// serveStage answers a stage call of stages 1–3: decide, record once, answer the record.
func (s *Server) serveStage(w http.ResponseWriter, r *http.Request, stage int, decide func(agentreq.Call) (decision, error)) {
	c, err := stageCall(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := decide(c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, aiAudit, err := s.reviewed(r.Context(), stage, c, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := Verdict{Stage: stage, Name: agentreq.StageNames[stage], Outcome: d.outcome, Reasons: d.reasons, Status: d.status, Trace: d.trace}
	rec := stageRecord(c, v)
	rec.AuditContext = aiAudit
	rec.Also = func(_ context.Context, _ *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
		if d.status == agentreq.StatusNeedsRevision {
			req.RevisionCallback = d.revisionCallback
		}
		v := v
		v.Status = agentreq.FinalStatus(req.Status, d.status)
		rec.Answer = v
		return nil
	}
	res, err := s.rec.Record(r.Context(), rec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	agentreq.WriteRaw(w, res.Answer)
}

// stageRecord is the record of a verdict: once per (request, stage, round).
func stageRecord(c agentreq.Call, v Verdict) agentreq.Record {
	return agentreq.Record{
		Key: agentreq.StageKey(c.RequestID, v.Stage, c.Round), RequestID: c.RequestID, EngagementID: c.EngagementID,
		Round: c.Round, At: c.At,
		Event: "stage", Action: agentreq.StepNames[v.Stage], Outcome: v.Outcome, Reasons: v.Reasons, Trace: v.Trace,
		Stage:  &agentreq.StageEntry{Stage: v.Stage, Name: v.Name, Outcome: v.Outcome, Reasons: v.Reasons, At: c.At, Round: c.Round},
		Status: v.Status, Answer: v,
	}
}

// specification is stage 1: every required field of the spec present, else rejected naming
// each missing one. A field is present when it exists and is neither null nor ""; a list may
// be empty here (certification judges that).
func (s *Server) specification(w http.ResponseWriter, r *http.Request) {
	s.serveStage(w, r, 1, func(c agentreq.Call) (decision, error) {
		var present []string
		for k, v := range c.Spec {
			if v != nil && v != "" {
				present = append(present, k)
			}
		}
		slices.Sort(present) // the trace is the same whatever the map's order
		gaps, res, err := s.rules.SpecGaps(present)
		if err != nil {
			return decision{}, ruleErr(err)
		}
		d := decision{outcome: OutcomeAccepted, reasons: []string{}, status: agentreq.StatusRunning}
		if len(gaps) > 0 {
			d.outcome, d.status = OutcomeRejected, agentreq.StatusRejected
			for _, g := range gaps {
				d.reasons = append(d.reasons, g+" is missing")
			}
		}
		d.trace, err = res.Trace.JSON()
		return d, err
	})
}

// wayOfWorking is stage 2: every section of the way of working present and non-empty, else
// back for revision with the gaps, or rejected in the last round.
func (s *Server) wayOfWorking(w http.ResponseWriter, r *http.Request) {
	s.serveStage(w, r, 2, func(c agentreq.Call) (decision, error) {
		var sections []string
		for k, v := range c.WayOfWorking {
			if nonEmpty(v) {
				sections = append(sections, k)
			}
		}
		slices.Sort(sections)
		gaps, res, err := s.rules.WayOfWorkingGaps(sections)
		if err != nil {
			return decision{}, ruleErr(err)
		}
		reasons := make([]string, 0, len(gaps))
		for _, g := range gaps {
			reasons = append(reasons, "section "+g+" is missing or empty")
		}
		trace, err := res.Trace.JSON()
		if err != nil {
			return decision{}, err
		}
		if len(gaps) == 0 {
			return decision{outcome: OutcomeComplete, reasons: reasons, status: agentreq.StatusRunning, trace: trace}, nil
		}
		return s.revise(c, reasons, trace)
	})
}

// certification is stage 3: the blueprint certified, back for revision (or rejected in the
// last round), or an unknown industry for the Governor to classify (the request keeps
// running while the workflow opens a constitutional approval).
func (s *Server) certification(w http.ResponseWriter, r *http.Request) {
	s.serveStage(w, r, 3, func(c agentreq.Call) (decision, error) {
		var empty []string
		for k, v := range c.Spec {
			if l, ok := v.([]any); ok && len(l) == 0 {
				empty = append(empty, k)
			}
		}
		slices.Sort(empty)
		facts := map[string]any{"empty_lists": empty}
		if empty == nil {
			facts["empty_lists"] = []string{}
		}
		industry, ok, err := specString(c.Spec, "industry")
		if err != nil {
			return decision{}, err
		}
		if ok {
			facts["industry"] = industry
		}
		v, res, err := s.rules.Certify(facts)
		if err != nil {
			return decision{}, ruleErr(err)
		}
		trace, err := res.Trace.JSON()
		if err != nil {
			return decision{}, err
		}
		switch v.Outcome {
		case OutcomeRevise:
			return s.revise(c, v.Reasons, trace)
		case OutcomeCertified, OutcomeReclassify:
			return decision{outcome: v.Outcome, reasons: v.Reasons, status: agentreq.StatusRunning, trace: trace}, nil
		}
		return decision{}, fmt.Errorf("genesis: %s answered outcome %q, which stage 3 does not know", rules.TableGenesisCertification, v.Outcome)
	})
}

// revise sends the request back for revision, or rejects it when this is the last round.
func (s *Server) revise(c agentreq.Call, reasons []string, trace json.RawMessage) (decision, error) {
	if c.Round >= s.maxRounds {
		return decision{outcome: OutcomeRejected, reasons: reasons, status: agentreq.StatusRejected, trace: trace}, nil
	}
	if c.RevisionCallback == "" {
		return decision{}, badCall("revision_callback is missing; a revise waits for the revision there")
	}
	return decision{outcome: OutcomeRevise, reasons: reasons, status: agentreq.StatusNeedsRevision, trace: trace, revisionCallback: c.RevisionCallback}, nil
}

// nonEmpty reports whether a way-of-working section says something: not null, not blank, not
// an empty list or object.
func nonEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return strings.TrimSpace(x) != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// specString reads a string field of the spec; ok is false when it is absent or null.
func specString(spec map[string]any, name string) (string, bool, error) {
	switch v := spec[name].(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	default:
		return "", false, badCall("spec.%s must be a string, not %T", name, v)
	}
}

// specStrings reads a list-of-strings field of the spec (nil when absent or null).
func specStrings(spec map[string]any, name string) ([]string, error) {
	switch v := spec[name].(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, badCall("spec.%s[%d] must be a string, not %T", name, i, e)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, badCall("spec.%s must be a list of strings, not %T", name, v)
	}
}

// ruleErr makes a fact the table refuses a bad call: the spec carries a value of the wrong
// type, which no retry changes.
func ruleErr(err error) error {
	if errors.Is(err, rules.ErrBadFact) {
		return fmt.Errorf("%w: %v", agentreq.ErrBadCall, err)
	}
	return err
}
