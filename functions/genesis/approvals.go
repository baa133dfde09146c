package genesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
)

// Approval types agent creation opens (rules/approval_timeouts has them all).
const (
	TypeDeployment     = "deployment"     // stage 6
	TypeConstitutional = "constitutional" // stage 5 escalation, stage 3 reclassification
)

// Decisions an approval closes with, as the close answers them and `decisions` carries them.
const (
	DecisionApproved = "approved"
	DecisionDenied   = "denied"
	DecisionVetoed   = "vetoed"
	DecisionImplicit = "implicit"
)

// DecidedByTimeout is who decided an approval the workflow's timeout closed.
const DecidedByTimeout = "timeout"

// Event types Genesis publishes on approvals and decisions.
const (
	EventApprovalRequested = "waooaw.approval.requested"
	EventApprovalDecided   = "waooaw.approval.decided"
)

// OpenCall is the body of POST /v1/approvals.
type OpenCall struct {
	RequestID      string   `json:"request_id"`
	EngagementID   string   `json:"engagement_id"`
	Round          int      `json:"round"`
	At             string   `json:"at"`
	Kind           string   `json:"kind"` // blocking | veto_window
	Type           string   `json:"type"` // deployment | constitutional | ...
	CallbackURL    string   `json:"callback_url"`
	Stage          int      `json:"stage"`
	SeedID         string   `json:"seed_id"`
	Reasons        []string `json:"reasons"`
	TimeoutSeconds int      `json:"timeout_seconds"` // a veto window's length; blocking ones come from rules
}

// OpenAnswer is what opening an approval answers: what the workflow's wait needs.
type OpenAnswer struct {
	ApprovalID     string `json:"approval_id"`
	TimeoutSeconds int    `json:"timeout_seconds"`
	OnTimeout      string `json:"on_timeout"` // approve | deny (blocking), implicit (veto window)
	Deadline       string `json:"deadline"`
}

func openAnswer(a agentreq.Approval) OpenAnswer {
	return OpenAnswer{ApprovalID: a.ApprovalID, TimeoutSeconds: a.TimeoutSeconds, OnTimeout: a.OnTimeout, Deadline: a.Deadline}
}

// newApproval checks an open call and builds its approval: the id from (request, kind, type,
// round), the timeout (rules for a blocking approval, the call's for a veto window) and the
// deadline counted from the call's time. trace is the approval_timeouts evaluation.
func (s *Server) newApproval(o OpenCall) (a agentreq.Approval, trace json.RawMessage, err error) {
	base := agentreq.Call{RequestID: o.RequestID, EngagementID: o.EngagementID, Round: o.Round, At: o.At}
	if err := base.Check(true); err != nil {
		return a, nil, err
	}
	if _, ok := agentreq.StageNames[o.Stage]; !ok {
		return a, nil, badCall("stage %d is not a stage of agent creation (1 to 7)", o.Stage)
	}
	if u, err := url.Parse(o.CallbackURL); o.CallbackURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return a, nil, badCall("callback_url %q is not an http(s) URL", o.CallbackURL)
	}
	if o.Type == "" {
		return a, nil, badCall("type is missing")
	}
	timeout, res, err := s.rules.ApprovalTimeout(o.Type)
	if errors.Is(err, rules.ErrNoMatch) {
		return a, nil, badCall("type %q is not an approval type", o.Type)
	}
	if err != nil {
		return a, nil, fmt.Errorf("genesis: %w", err)
	}
	if trace, err = res.Trace.JSON(); err != nil {
		return a, nil, err
	}
	a = agentreq.Approval{
		RequestID: o.RequestID, EngagementID: o.EngagementID, Kind: o.Kind, Type: o.Type, State: agentreq.ApprovalPending,
		Stage: o.Stage, Round: o.Round, Reasons: o.Reasons, SeedID: o.SeedID, CallbackURL: o.CallbackURL, OpenedAt: o.At,
	}
	if a.Reasons == nil {
		a.Reasons = []string{}
	}
	switch o.Kind {
	case agentreq.KindBlocking:
		a.TimeoutSeconds, a.OnTimeout = timeout.Minutes*60, timeout.OnTimeout
	case agentreq.KindVetoWindow:
		if o.TimeoutSeconds < 1 {
			return a, nil, badCall("timeout_seconds must be 1 or more for a veto window (the seed's veto_window_hours)")
		}
		if _, ok := s.seed(o.SeedID); !ok {
			return a, nil, badCall("seed_id %q is not a precedent seed; a veto window follows a seed's auto-approval", o.SeedID)
		}
		a.TimeoutSeconds, a.OnTimeout = o.TimeoutSeconds, DecisionImplicit
	default:
		return a, nil, badCall("kind %q is neither %s nor %s", o.Kind, agentreq.KindBlocking, agentreq.KindVetoWindow)
	}
	a.ApprovalID = agentreq.ApprovalID(o.RequestID, o.Kind, o.Type, o.Round)
	a.Deadline = base.Time().Add(time.Duration(a.TimeoutSeconds) * time.Second).UTC().Format(time.RFC3339Nano)
	return a, trace, nil
}

// statusWhileOpen is the request's status while an approval of kind is open.
func statusWhileOpen(kind string) string {
	if kind == agentreq.KindVetoWindow {
		return agentreq.StatusVetoWindow
	}
	return agentreq.StatusAwaitingApproval
}

// createApproval creates a's document in tx unless it exists, and returns the one that
// holds. It reads, so it comes before the transaction's writes.
func (s *Server) createApproval(tx *firestore.Transaction, a agentreq.Approval) (agentreq.Approval, error) {
	ref := s.fs.Collection(agentreq.Approvals).Doc(a.ApprovalID)
	snap, err := tx.Get(ref)
	if err == nil {
		var cur agentreq.Approval
		if err := snap.DataTo(&cur); err != nil {
			return a, fmt.Errorf("read approval %s: %w", a.ApprovalID, err)
		}
		return cur, nil
	}
	if status.Code(err) != codes.NotFound {
		return a, fmt.Errorf("read approval %s: %w", a.ApprovalID, err)
	}
	return a, tx.Create(ref, a)
}

// openApproval is POST /v1/approvals: once per (request, kind, type, round), the approval
// document, the request's approval and status, then the request on `approvals`.
func (s *Server) openApproval(w http.ResponseWriter, r *http.Request) {
	var o OpenCall
	if err := agentreq.Decode(r, &o); err != nil {
		s.fail(w, r, err)
		return
	}
	a, trace, err := s.newApproval(o)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	key := a.ApprovalID + "_open"
	var opened *agentreq.Approval
	res, err := s.rec.Record(r.Context(), agentreq.Record{
		Key: key, RequestID: a.RequestID, EngagementID: a.EngagementID, Round: a.Round, At: a.OpenedAt,
		Event: "approval_opened", Action: "approval_opened", Outcome: "opened", Reasons: a.Reasons, Trace: trace,
		Approval: a.Ref(), Status: statusWhileOpen(a.Kind), Answer: openAnswer(a),
		Also: func(_ context.Context, tx *firestore.Transaction, _ *agentreq.Request, rec *agentreq.Record) error {
			cur, err := s.createApproval(tx, a)
			if err != nil {
				return err
			}
			rec.Approval, rec.Answer, opened = cur.Ref(), openAnswer(cur), &cur
			return nil
		},
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.publishOpened(r.Context(), opened, a.ApprovalID, key); err != nil {
		s.fail(w, r, err)
		return
	}
	agentreq.WriteRaw(w, res.Answer)
}

// publishOpened publishes the approval request of an approval just opened (a, or read back
// when a retried call found it opened before), caused by the record key's audit event.
func (s *Server) publishOpened(ctx context.Context, a *agentreq.Approval, approvalID, key string) error {
	if a == nil {
		got, err := agentreq.GetApproval(ctx, s.fs, approvalID)
		if err != nil {
			return err
		}
		a = &got
	}
	data := approvalRequest{
		ApprovalID: a.ApprovalID, EngagementID: a.EngagementID, Type: a.Type,
		Subject: "agent_request:" + a.RequestID, Action: "approve " + a.Type, Rationale: strings.Join(a.Reasons, "; "),
		Evidence: map[string]string{
			"request_id": a.RequestID, "kind": a.Kind, "stage": strconv.Itoa(a.Stage), "round": strconv.Itoa(a.Round),
			"deadline": a.Deadline, "on_timeout": a.OnTimeout,
		},
		TimeoutMinutes: a.TimeoutSeconds / 60,
	}
	if a.Kind == agentreq.KindVetoWindow {
		// The agent is deployed: its id is the registry's, derived from the request.
		data.AgentID, data.Action = agentreq.AgentID(a.RequestID), "veto "+a.Type
	}
	if a.SeedID != "" {
		data.Evidence["seed_id"] = a.SeedID
	}
	return s.publish(ctx, events.TopicApprovals, EventApprovalRequested, "approvals/"+a.ApprovalID, key, a.OpenedAt, a, data.AgentID, data)
}

// approvalRequest is the data of an `approvals` event (schema approvals.avsc).
type approvalRequest struct {
	ApprovalID     string            `json:"approval_id"`
	EngagementID   string            `json:"engagement_id"`
	AgentID        string            `json:"agent_id"`
	Type           string            `json:"type"`
	Subject        string            `json:"subject"`
	Action         string            `json:"action"`
	Rationale      string            `json:"rationale"`
	Evidence       map[string]string `json:"evidence"`
	TimeoutMinutes int               `json:"timeout_minutes"`
}

// approvalDecision is the data of a `decisions` event (schema decisions.avsc).
type approvalDecision struct {
	ApprovalID   string   `json:"approval_id"`
	EngagementID string   `json:"engagement_id"`
	Decision     string   `json:"decision"`
	DecidedBy    string   `json:"decided_by"`
	SeedsCited   []string `json:"seeds_cited"`
	Obligations  []string `json:"obligations"`
	Reason       string   `json:"reason"`
	DecidedAt    string   `json:"decided_at"`
}

// publish sends one event about approval a. Its id derives from what it is (idKey), so a
// retried call publishes the same event again; its cause is the audit event of the record
// (recordKey) that made it.
func (s *Server) publish(ctx context.Context, topic, typ, idKey, recordKey, at string, a *agentreq.Approval, agentID string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("genesis: %s data: %w", topic, err)
	}
	env := events.Envelope{
		EventID: agentreq.EventID(idKey), Type: typ, Source: Source, Time: at,
		CorrelationID: a.RequestID, CausationID: agentreq.EventID(recordKey), Actor: "agent:" + Actor,
		AgentID: agentID, EngagementID: a.EngagementID, Data: raw,
	}
	if _, err := s.pub.Publish(ctx, topic, env); err != nil {
		return fmt.Errorf("genesis: approval %s: %w", a.ApprovalID, err)
	}
	return nil
}

// CloseCall is the body of POST /v1/approvals/{id}:close: what the workflow's wait saw.
type CloseCall struct {
	RequestID string          `json:"request_id"`
	At        string          `json:"at"`
	Outcome   string          `json:"outcome"`  // callback | timeout
	Callback  json.RawMessage `json:"callback"` // the callback's request, or its body
}

// CloseAnswer is what closing an approval answers.
type CloseAnswer struct {
	ApprovalID string `json:"approval_id"`
	Decision   string `json:"decision"`
	DecidedBy  string `json:"decided_by"`
	Status     string `json:"status"` // the request's status once recorded
}

// governorDecision is the body the gateway posts to the callback.
type governorDecision struct {
	ApprovalID string `json:"approval_id"`
	Decision   string `json:"decision"` // approve | deny | veto
	Reason     string `json:"reason"`
	DecidedBy  string `json:"decided_by"`
}

// callbackBody reads the Governor's decision from what events.await_callback returned
// ({"http_request": {"body": …}, …}) or from the body itself.
func callbackBody(raw json.RawMessage) (governorDecision, error) {
	var g governorDecision
	if len(raw) == 0 || string(raw) == "null" {
		return g, badCall("callback is missing; a callback outcome carries what the callback received")
	}
	var wrapped struct {
		HTTPRequest *struct {
			Body json.RawMessage `json:"body"`
		} `json:"http_request"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return g, badCall("callback: %v", err)
	}
	if wrapped.HTTPRequest != nil {
		raw = wrapped.HTTPRequest.Body
		var text string
		if json.Unmarshal(raw, &text) == nil {
			raw = json.RawMessage(text) // a body the workflow kept as text
		}
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return g, badCall("callback body: %v", err)
	}
	return g, nil
}

// closing is how an approval closes.
type closing struct {
	state, decision, decidedBy, reason string
}

// decide reads the close call against the approval as it stands.
func decide(a agentreq.Approval, c CloseCall) (closing, error) {
	if a.State != agentreq.ApprovalPending && a.State != agentreq.ApprovalClaimed {
		return closing{}, badCall("approval %s is already %s", a.ApprovalID, a.State)
	}
	switch c.Outcome {
	case "timeout":
		if a.Kind == agentreq.KindVetoWindow {
			return closing{state: agentreq.ApprovalImplicit, decision: DecisionImplicit, decidedBy: DecidedByTimeout,
				reason: "no veto within " + span(a.TimeoutSeconds)}, nil
		}
		d := DecisionDenied
		if a.OnTimeout == "approve" {
			d = DecisionApproved
		}
		return closing{state: agentreq.ApprovalExpired, decision: d, decidedBy: DecidedByTimeout,
			reason: fmt.Sprintf("no decision within %s; %s on timeout", span(a.TimeoutSeconds), a.OnTimeout)}, nil
	case "callback":
		g, err := callbackBody(c.Callback)
		if err != nil {
			return closing{}, err
		}
		if g.ApprovalID != "" && g.ApprovalID != a.ApprovalID {
			return closing{}, badCall("callback is for approval %s, not %s", g.ApprovalID, a.ApprovalID)
		}
		cl := closing{state: agentreq.ApprovalDecided, decidedBy: g.DecidedBy, reason: g.Reason}
		if a.Claim != nil {
			cl.decidedBy = cmpOr(cl.decidedBy, a.Claim.By)
			cl.reason = cmpOr(cl.reason, a.Claim.Reason)
		}
		if cl.decidedBy == "" {
			return closing{}, badCall("callback decided_by is missing")
		}
		switch {
		case a.Kind == agentreq.KindBlocking && g.Decision == "approve":
			cl.decision = DecisionApproved
		case a.Kind == agentreq.KindBlocking && g.Decision == "deny":
			cl.decision = DecisionDenied
		case a.Kind == agentreq.KindVetoWindow && g.Decision == "veto":
			cl.decision = DecisionVetoed
		default:
			return closing{}, badCall("a %s approval takes %s, not decision %q", a.Kind, takes(a.Kind), g.Decision)
		}
		return cl, nil
	}
	return closing{}, badCall("outcome %q is neither callback nor timeout", c.Outcome)
}

func takes(kind string) string {
	if kind == agentreq.KindVetoWindow {
		return "veto"
	}
	return "approve or deny"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// span says a duration of whole hours, minutes or seconds as people read it.
func span(seconds int) string {
	switch {
	case seconds%3600 == 0:
		return strconv.Itoa(seconds/3600) + " h"
	case seconds%60 == 0:
		return strconv.Itoa(seconds/60) + " min"
	}
	return strconv.Itoa(seconds) + " s"
}

// seedStat is a seed's false-positive record (seed_stats/{seed_id}).
type seedStat struct {
	SeedID             string `firestore:"seed_id" json:"seed_id"`
	FalsePositiveCount int    `firestore:"false_positive_count" json:"false_positive_count"`
	Flagged            bool   `firestore:"flagged" json:"flagged"`
	UpdatedAt          string `firestore:"updated_at" json:"updated_at,omitempty"`
}

// closeApproval is POST /v1/approvals/{id}:close: once per approval, its decision, the
// request's stage entry and status (a veto also counts against the seed, in the same
// transaction), then the decision on `decisions`. A second close answers the first's.
func (s *Server) closeApproval(w http.ResponseWriter, r *http.Request) {
	id, ok := action(w, r, "close")
	if !ok {
		return
	}
	var c CloseCall
	if err := agentreq.Decode(r, &c); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, c.At); err != nil {
		s.fail(w, r, badCall("at %q is not an RFC 3339 time", c.At))
		return
	}
	a, err := agentreq.GetApproval(r.Context(), s.fs, id)
	if errors.Is(err, agentreq.ErrNotFound) {
		s.fail(w, r, badCall("approval %s does not exist", id))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c.RequestID != "" && c.RequestID != a.RequestID {
		s.fail(w, r, badCall("approval %s belongs to request %s, not %s", id, a.RequestID, c.RequestID))
		return
	}
	key := id + "_close"
	ref := s.fs.Collection(agentreq.Approvals).Doc(id)
	var closed *agentreq.Approval
	res, err := s.rec.Record(r.Context(), agentreq.Record{
		Key: key, RequestID: a.RequestID, EngagementID: a.EngagementID, Round: a.Round, At: c.At,
		Event: "approval_closed", Action: "approval_closed",
		Also: func(_ context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			closed = nil
			snap, err := tx.Get(ref)
			if err != nil {
				return fmt.Errorf("read approval %s: %w", id, err)
			}
			var cur agentreq.Approval
			if err := snap.DataTo(&cur); err != nil {
				return fmt.Errorf("read approval %s: %w", id, err)
			}
			cl, err := decide(cur, c)
			if err != nil {
				return err
			}
			var seedNote string
			if cl.decision == DecisionVetoed && cur.SeedID != "" {
				if seedNote, err = s.countFalsePositive(tx, cur.SeedID, c.At); err != nil {
					return err
				}
			}
			cur.State, cur.Decision, cur.DecidedBy, cur.Reason, cur.ClosedAt = cl.state, cl.decision, cl.decidedBy, cl.reason, c.At
			if err := tx.Set(ref, cur); err != nil {
				return err
			}
			closed = &cur
			s.project(rec, cur, cl, seedNote)
			rec.Answer = CloseAnswer{ApprovalID: id, Decision: cl.decision, DecidedBy: cl.decidedBy, Status: agentreq.FinalStatus(req.Status, rec.Status)}
			return nil
		},
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.publishClosed(r.Context(), closed, id, key); err != nil {
		s.fail(w, r, err)
		return
	}
	agentreq.WriteRaw(w, res.Answer)
}

// project fills the record of a close: the stage entry the decision adds to the request, its
// status and the approval as the request shows it.
func (s *Server) project(rec *agentreq.Record, a agentreq.Approval, cl closing, seedNote string) {
	subject := "deployment"
	if a.Type != TypeDeployment {
		subject = "escalation"
	}
	var reasons []string
	switch {
	case cl.decision == DecisionImplicit:
		reasons = []string{fmt.Sprintf("implicit approval after %s, no veto", span(a.TimeoutSeconds))}
	case cl.decidedBy == DecidedByTimeout:
		reasons = []string{fmt.Sprintf("%s %s on timeout: %s", subject, cl.decision, cl.reason)}
	default:
		reasons = []string{fmt.Sprintf("%s %s by %s", subject, cl.decision, cl.decidedBy)}
		if cl.reason != "" {
			reasons = append(reasons, cl.reason)
		}
	}
	if seedNote != "" {
		reasons = append(reasons, seedNote)
	}
	switch cl.decision {
	case DecisionApproved:
		rec.Status = agentreq.StatusRunning
		if a.Type == TypeDeployment {
			rec.Status = agentreq.StatusDeploying
		}
	case DecisionDenied:
		rec.Status, rec.Reason = agentreq.StatusDenied, strings.Join(reasons, "; ")
	case DecisionVetoed:
		rec.Status, rec.Reason = agentreq.StatusVetoed, strings.Join(reasons, "; ")
	}
	stage := a.Stage
	if stage == 0 {
		stage = 6
	}
	rec.Outcome, rec.Reasons = cl.decision, reasons
	rec.Stage = &agentreq.StageEntry{Stage: stage, Name: agentreq.StageNames[stage], Outcome: cl.decision, Reasons: reasons, At: rec.At, Round: a.Round}
	rec.Approval = a.Ref()
}

// countFalsePositive adds a vetoed auto-approval to the seed's count and flags it at
// false_positive_flag_at. A seed without a document starts from its table's count.
func (s *Server) countFalsePositive(tx *firestore.Transaction, seedID, at string) (string, error) {
	ref := s.fs.Collection(SeedStats).Doc(seedID)
	st, err := s.readStat(tx, ref, seedID)
	if err != nil {
		return "", err
	}
	st.FalsePositiveCount++
	st.Flagged = st.FalsePositiveCount >= s.flagAt
	st.UpdatedAt = at
	if err := tx.Set(ref, st); err != nil {
		return "", err
	}
	if st.Flagged {
		return fmt.Sprintf("seed %s flagged after %d false positives; it no longer auto-approves", seedID, st.FalsePositiveCount), nil
	}
	return fmt.Sprintf("seed %s: false positive %d of %d before it is flagged", seedID, st.FalsePositiveCount, s.flagAt), nil
}

// readStat reads a seed's record in tx, or its table's starting count when it has none.
func (s *Server) readStat(tx *firestore.Transaction, ref *firestore.DocumentRef, seedID string) (seedStat, error) {
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return s.tableStat(seedID), nil
	}
	if err != nil {
		return seedStat{}, fmt.Errorf("read seed %s: %w", seedID, err)
	}
	return decodeStat(snap, seedID)
}

func decodeStat(snap *firestore.DocumentSnapshot, seedID string) (seedStat, error) {
	var st seedStat
	if err := snap.DataTo(&st); err != nil {
		return seedStat{}, fmt.Errorf("read seed %s: %w", seedID, err)
	}
	st.SeedID = seedID
	return st, nil
}

// tableStat is a seed's record before any veto: the table's count.
func (s *Server) tableStat(seedID string) seedStat {
	st := seedStat{SeedID: seedID}
	if meta, ok := s.seed(seedID); ok {
		st.FalsePositiveCount = meta.Seed.FalsePositiveCount
	}
	st.Flagged = st.FalsePositiveCount >= s.flagAt
	return st
}

// publishClosed publishes the decision of an approval just closed (a, or read back when a
// retried call found it closed before).
func (s *Server) publishClosed(ctx context.Context, a *agentreq.Approval, approvalID, key string) error {
	if a == nil {
		got, err := agentreq.GetApproval(ctx, s.fs, approvalID)
		if err != nil {
			return err
		}
		a = &got
	}
	data := approvalDecision{
		ApprovalID: a.ApprovalID, EngagementID: a.EngagementID, Decision: a.Decision, DecidedBy: a.DecidedBy,
		SeedsCited: []string{}, Obligations: []string{}, Reason: a.Reason, DecidedAt: a.ClosedAt,
	}
	var agentID string
	if a.SeedID != "" {
		data.SeedsCited = []string{a.SeedID}
	}
	if a.Kind == agentreq.KindVetoWindow {
		agentID = agentreq.AgentID(a.RequestID)
	}
	return s.publish(ctx, events.TopicDecisions, EventApprovalDecided, "decisions/"+a.ApprovalID, key, a.ClosedAt, a, agentID, data)
}
