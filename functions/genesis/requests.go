package genesis

import (
	"context"
	"errors"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/agentreq"
)

// FinishCall is the body of POST /v1/requests/{id}:finish: a terminal status the workflow
// reached without a verdict.
type FinishCall struct {
	EngagementID string `json:"engagement_id"` // optional; checked against the request's when given
	At           string `json:"at"`
	Status       string `json:"status"` // failed | rejected
	Step         string `json:"step"`   // the workflow step that ended the request
	Reason       string `json:"reason"`
}

// FinishAnswer is what a finish answers.
type FinishAnswer struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"` // the request's status once recorded: a terminal one already reached stays
}

// finish is POST /v1/requests/{id}:finish, once per request.
func (s *Server) finish(w http.ResponseWriter, r *http.Request) {
	id, ok := action(w, r, "finish")
	if !ok {
		return
	}
	var c FinishCall
	if err := agentreq.Decode(r, &c); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, c.At); err != nil {
		s.fail(w, r, badCall("at %q is not an RFC 3339 time", c.At))
		return
	}
	if c.Status != agentreq.StatusFailed && c.Status != agentreq.StatusRejected {
		s.fail(w, r, badCall("status %q is neither %s nor %s", c.Status, agentreq.StatusFailed, agentreq.StatusRejected))
		return
	}
	if c.Step == "" {
		s.fail(w, r, badCall("step is missing"))
		return
	}
	req, err := agentreq.Get(r.Context(), s.fs, id)
	if errors.Is(err, agentreq.ErrNotFound) {
		s.fail(w, r, badCall("request %s does not exist", id))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c.EngagementID != "" && c.EngagementID != req.EngagementID {
		s.fail(w, r, badCall("request %s belongs to engagement %s, not %s", id, req.EngagementID, c.EngagementID))
		return
	}
	reason := c.Step + ": " + c.Reason
	if c.Reason == "" {
		reason = c.Step
	}
	res, err := s.rec.Record(r.Context(), agentreq.Record{
		Key: id + "_finish", RequestID: id, EngagementID: req.EngagementID, Round: req.Round, At: c.At,
		Event: "finished", Action: c.Step, Outcome: c.Status, Reasons: []string{reason},
		Status: c.Status, Reason: reason,
		Also: func(_ context.Context, _ *firestore.Transaction, cur *agentreq.Request, rec *agentreq.Record) error {
			rec.Answer = FinishAnswer{RequestID: id, Status: agentreq.FinalStatus(cur.Status, c.Status)}
			return nil
		},
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	agentreq.WriteRaw(w, res.Answer)
}

// UndoAnswer is what an undo answers.
type UndoAnswer struct {
	Stage   int    `json:"stage"`
	Name    string `json:"name"`
	Outcome string `json:"outcome"` // undone
	Status  string `json:"status"`
}

// undoCertification is POST /v1/undo/certification: the saga's last step after a veto. The
// certification is withdrawn; the record and the compensation on the request are all there
// is to undo, since a certificate lives nowhere else.
func (s *Server) undoCertification(w http.ResponseWriter, r *http.Request) {
	var c agentreq.Call
	if err := agentreq.Decode(r, &c); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := c.Check(false); err != nil {
		s.fail(w, r, err)
		return
	}
	const stage = 3
	reason := "certification withdrawn"
	if c.ApprovalID != "" {
		reason += " after approval " + c.ApprovalID + " was vetoed"
	}
	res, err := s.rec.Record(r.Context(), agentreq.Record{
		Key: agentreq.UndoKey(c.RequestID, stage), RequestID: c.RequestID, EngagementID: c.EngagementID, Round: c.Round, At: c.At,
		Event: "undo", Action: "undo_" + agentreq.StepNames[stage], Outcome: "undone", Reasons: []string{reason},
		Compensation: &agentreq.Compensation{Stage: stage, At: c.At},
		Also: func(_ context.Context, _ *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			if rec.Round == 0 {
				rec.Round = req.Round
			}
			rec.Answer = UndoAnswer{Stage: stage, Name: agentreq.StageNames[stage], Outcome: "undone", Status: req.Status}
			return nil
		},
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	agentreq.WriteRaw(w, res.Answer)
}
