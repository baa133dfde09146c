package notifier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/notification"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/workflowexec"
)

// MaxBodyBytes bounds a push or a send: an approval's message is a few kilobytes.
const MaxBodyBytes = 1 << 20

// StaleStart is how long a cascade may stay "starting" before a redelivery takes it over:
// the push that claimed it died between claiming and starting the execution.
const StaleStart = 2 * time.Minute

// Audit entries the notifier writes on the engagement's stream.
const (
	AuditEventType = "waooaw.audit.recorded"
	AuditSent      = "waooaw.notification.sent"
	AuditFailed    = "waooaw.notification.failed"
	AuditCancelled = "waooaw.notification.cancelled"
	AuditStopped   = "waooaw.notification.stopped"
)

// LinkTTL is how long an acknowledge link lives when its approval has no deadline.
const LinkTTL = 24 * time.Hour

// Executions starts and cancels workflow executions (*workflowexec.Client).
type Executions interface {
	Start(ctx context.Context, workflow string, argument any, labels map[string]string) (string, error)
	Cancel(ctx context.Context, execution string) error
}

// Options are the notifier's collaborators; all but Logger, Rules, GatewayURL and Now are
// required.
type Options struct {
	Firestore  *firestore.Client
	Publisher  events.Publisher // audit_events
	Executions Executions
	Workflow   string             // projects/P/locations/L/workflows/notification_cascade
	Channels   map[string]Channel // by the names rules/notification_cascade uses
	GatewayURL string             // for the acknowledge route and link; "" leaves them out
	// LinkKey reads the key acknowledge links are signed with (notification.LinkKeySecret);
	// nil leaves the link out of the messages.
	LinkKey func(ctx context.Context) ([]byte, error)
	Rules   *rules.Set // default: the embedded tables
	Logger  *slog.Logger
	Now     func() time.Time
}

// Server serves the notifier's routes:
//
//	POST /projects/{p}/topics/approvals  an approval request: start its cascade, once
//	POST /projects/{p}/topics/decisions  a decision: cancel its cascade
//	POST /v1/send                        the cascade's send of one channel (private)
//	POST /v1/failures                    the cascade's record of a send that failed (private)
//	GET  /v1/cascades/{approval_id}      a cascade's record, for operators and tests
type Server struct {
	opt Options
	mux *http.ServeMux
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.Firestore == nil || o.Publisher == nil || o.Executions == nil || o.Workflow == "" {
		return nil, errors.New("notifier: Firestore, Publisher, Executions and Workflow are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rules == nil {
		set, err := rules.Load(tables.FS)
		if err != nil {
			return nil, fmt.Errorf("notifier: rules: %w", err)
		}
		o.Rules = set
	}
	names, err := ChannelNames(o.Rules)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if o.Channels[n] == nil {
			return nil, fmt.Errorf("notifier: channel %s of %s has no adapter", n, Table)
		}
	}
	s := &Server{opt: o, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /projects/{project}/topics/"+events.TopicApprovals, s.serveApproval)
	s.mux.HandleFunc("POST /projects/{project}/topics/"+events.TopicDecisions, s.serveDecision)
	s.mux.HandleFunc("POST /v1/send", s.serveSend)
	s.mux.HandleFunc("POST /v1/failures", s.serveFailure)
	s.mux.HandleFunc("GET /v1/cascades/{id}", s.serveCascade)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func writeError(w http.ResponseWriter, code int, msg string) {
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	agentreq.WriteJSON(w, code, body)
}

func (s *Server) ref(approvalID string) *firestore.DocumentRef {
	return s.opt.Firestore.Collection(notification.Collection).Doc(approvalID)
}

func (s *Server) now() string { return s.opt.Now().UTC().Format(time.RFC3339Nano) }

// readEvent reads a push and decodes its envelope from topic.
func readEvent(r *http.Request, topic string, data any) (events.Push, events.Envelope, error) {
	p, err := events.ReadPush(r, MaxBodyBytes)
	if err != nil {
		return p, events.Envelope{}, err
	}
	env, err := events.Decode(topic, p.Message.Data)
	if err != nil {
		return p, env, err
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return p, env, fmt.Errorf("%w: %s data: %v", events.ErrPoison, topic, err)
	}
	return p, env, nil
}

// Answer is a push's answer (Pub/Sub reads only the status; tests and operators the rest).
type Answer struct {
	ApprovalID string `json:"approval_id"`
	Outcome    string `json:"outcome"` // started, duplicate, cancelled, decided_first, ended
	Execution  string `json:"execution,omitempty"`
}

// answer writes a push's outcome: 200 when applied or nothing to do; 400 for poison (logged
// at ERROR: the dead-letter topic takes it after the last attempt); 503 for anything a
// redelivery may fix.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, p events.Push, ans Answer, err error) {
	switch {
	case errors.Is(err, events.ErrPoison):
		s.opt.Logger.ErrorContext(r.Context(), "notifier: poison message", "message_id", p.Message.MessageID,
			"subscription", p.Subscription, "delivery_attempt", p.DeliveryAttempt, "error", err.Error())
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		s.opt.Logger.WarnContext(r.Context(), "notifier: not applied; Pub/Sub will redeliver", "message_id", p.Message.MessageID, "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.opt.Logger.InfoContext(r.Context(), "notifier: "+ans.Outcome, "approval_id", ans.ApprovalID, "execution", ans.Execution)
		agentreq.WriteJSON(w, http.StatusOK, ans)
	}
}

// approvalRequest is the approvals topic's data (shared/schema/avro/approvals.avsc).
type approvalRequest struct {
	ApprovalID     string `json:"approval_id"`
	EngagementID   string `json:"engagement_id"`
	Type           string `json:"type"`
	Subject        string `json:"subject"`
	Action         string `json:"action"`
	Rationale      string `json:"rationale"`
	TimeoutMinutes int    `json:"timeout_minutes"`
}

// Argument is a notification_cascade execution's argument.
type Argument struct {
	ApprovalID   string  `json:"approval_id"`
	EngagementID string  `json:"engagement_id"`
	Message      Message `json:"message"`
	Steps        []Step  `json:"steps"`
}

func (s *Server) serveApproval(w http.ResponseWriter, r *http.Request) {
	var a approvalRequest
	p, env, err := readEvent(r, events.TopicApprovals, &a)
	var ans Answer
	if err == nil {
		ans, err = s.start(r.Context(), env, a)
	}
	s.answer(w, r, p, ans, err)
}

// start starts the approval's cascade unless one was started (or a decision came first):
// the record is created before the execution, so a redelivery finds it.
func (s *Server) start(ctx context.Context, env events.Envelope, a approvalRequest) (Answer, error) {
	ans := Answer{ApprovalID: a.ApprovalID}
	steps, err := Steps(s.opt.Rules, a.Type)
	if err != nil {
		return ans, fmt.Errorf("%w: %v", events.ErrPoison, err)
	}
	ref := s.ref(a.ApprovalID)
	rec := notification.Cascade{ApprovalID: a.ApprovalID, EngagementID: a.EngagementID, State: notification.StateStarting, UpdatedAt: s.now()}
	_, err = ref.Create(ctx, rec)
	if status.Code(err) == codes.AlreadyExists {
		snap, gerr := ref.Get(ctx)
		if gerr != nil {
			return ans, fmt.Errorf("notifier: read cascade %s: %w", a.ApprovalID, gerr)
		}
		var old notification.Cascade
		if derr := snap.DataTo(&old); derr != nil {
			return ans, fmt.Errorf("notifier: cascade %s: %w", a.ApprovalID, derr)
		}
		if old.State != notification.StateStarting || old.Execution != "" {
			ans.Outcome, ans.Execution = "duplicate", old.Execution
			return ans, nil
		}
		if snap.UpdateTime.After(s.opt.Now().Add(-StaleStart)) {
			return ans, fmt.Errorf("notifier: cascade %s is being started by another delivery", a.ApprovalID)
		}
		// The claimer died before starting: take the claim over, unless someone else just did.
		_, err = ref.Update(ctx, []firestore.Update{{Path: "updated_at", Value: s.now()}}, firestore.LastUpdateTime(snap.UpdateTime))
	}
	if err != nil {
		return ans, fmt.Errorf("notifier: claim cascade %s: %w", a.ApprovalID, err)
	}

	msg := Message{ApprovalID: a.ApprovalID, EngagementID: a.EngagementID, Type: a.Type, Subject: a.Subject,
		Action: a.Action, Rationale: a.Rationale}
	if a.TimeoutMinutes > 0 {
		if at, perr := time.Parse(time.RFC3339Nano, env.Time); perr == nil {
			msg.Deadline = at.Add(time.Duration(a.TimeoutMinutes) * time.Minute).UTC().Format(time.RFC3339)
		}
	}
	if s.opt.GatewayURL != "" {
		msg.AcknowledgeURL = s.opt.GatewayURL + "/v1/approvals/" + a.ApprovalID + "/acknowledge"
	}
	name, err := s.opt.Executions.Start(ctx, s.opt.Workflow, Argument{ApprovalID: a.ApprovalID, EngagementID: a.EngagementID,
		Message: msg, Steps: steps}, map[string]string{"engagement_id": workflowexec.Label(a.EngagementID), "approval_id": workflowexec.Label(a.ApprovalID)})
	if err != nil {
		_, derr := ref.Delete(context.WithoutCancel(ctx))
		return ans, errors.Join(fmt.Errorf("notifier: start cascade %s: %w", a.ApprovalID, err), derr)
	}
	ans.Execution = name
	// A decision may have come while the execution was being started: it finds no execution
	// to cancel, so the cancel is done here.
	var decided bool
	err = s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var cur notification.Cascade
		if err := snap.DataTo(&cur); err != nil {
			return err
		}
		decided = cur.State == notification.StateDecided
		up := []firestore.Update{{Path: "execution", Value: name}, {Path: "updated_at", Value: s.now()}}
		if !decided {
			up = append(up, firestore.Update{Path: "state", Value: notification.StateRunning})
		}
		return tx.Update(ref, up)
	})
	if err != nil {
		// The execution runs; its sends find the record by approval id all the same.
		return ans, fmt.Errorf("notifier: record execution of cascade %s: %w", a.ApprovalID, err)
	}
	ans.Outcome = "started"
	if decided {
		if err := s.cancel(ctx, a.ApprovalID, a.EngagementID, name, "decided while starting"); err != nil {
			return ans, err
		}
		ans.Outcome = "cancelled"
	}
	return ans, nil
}

// decision is the decisions topic's data (shared/schema/avro/decisions.avsc).
type decision struct {
	ApprovalID   string `json:"approval_id"`
	EngagementID string `json:"engagement_id"`
	Decision     string `json:"decision"`
	DecidedBy    string `json:"decided_by"`
}

func (s *Server) serveDecision(w http.ResponseWriter, r *http.Request) {
	var d decision
	p, _, err := readEvent(r, events.TopicDecisions, &d)
	var ans Answer
	if err == nil {
		ans, err = s.decide(r.Context(), d)
	}
	s.answer(w, r, p, ans, err)
}

// decide marks the cascade decided (creating the record when the decision came first, so
// the approval's late delivery starts nothing) and cancels its execution. A redelivery
// cancels again: an ended execution is not an error.
func (s *Server) decide(ctx context.Context, d decision) (Answer, error) {
	ans := Answer{ApprovalID: d.ApprovalID}
	ref := s.ref(d.ApprovalID)
	var cur notification.Cascade
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		cur = notification.Cascade{}
		snap, err := tx.Get(ref)
		if status.Code(err) == codes.NotFound {
			return tx.Create(ref, notification.Cascade{ApprovalID: d.ApprovalID, EngagementID: d.EngagementID,
				State: notification.StateDecided, Decision: d.Decision, UpdatedAt: s.now()})
		}
		if err != nil {
			return err
		}
		if err := snap.DataTo(&cur); err != nil {
			return err
		}
		if cur.State == notification.StateDecided {
			return nil
		}
		return tx.Update(ref, []firestore.Update{{Path: "state", Value: notification.StateDecided},
			{Path: "decision", Value: d.Decision}, {Path: "updated_at", Value: s.now()}})
	})
	if err != nil {
		return ans, fmt.Errorf("notifier: decide cascade %s: %w", d.ApprovalID, err)
	}
	ans.Execution = cur.Execution
	switch {
	case cur.ApprovalID == "":
		ans.Outcome = "decided_first"
	case cur.Execution == "":
		// Still starting: start() sees the decision and cancels what it started.
		ans.Outcome = "decided_while_starting"
	default:
		ans.Outcome = "cancelled"
		if err := s.cancel(ctx, d.ApprovalID, d.EngagementID, cur.Execution, d.Decision); err != nil {
			return ans, err
		}
	}
	return ans, nil
}

// cancel cancels a cascade's execution and records it on the audit stream.
func (s *Server) cancel(ctx context.Context, approvalID, engagementID, execution, why string) error {
	err := s.opt.Executions.Cancel(ctx, execution)
	switch {
	case errors.Is(err, workflowexec.ErrNotActive) || errors.Is(err, workflowexec.ErrNotFound):
		return nil // it ended on its own (acknowledged or every channel sent)
	case err != nil:
		return fmt.Errorf("notifier: cancel cascade %s: %w", approvalID, err)
	}
	return s.audit(ctx, approvalID, engagementID, AuditCancelled, "cancel_notifications", "cancelled",
		map[string]string{"execution": execution, "decision": why}, "cancelled")
}

// sendBody is what the workflow posts to /v1/send.
type sendBody struct {
	ApprovalID   string  `json:"approval_id"`
	EngagementID string  `json:"engagement_id"`
	Step         int     `json:"step"`
	Channel      string  `json:"channel"`
	CallbackURL  string  `json:"callback_url"`
	Execution    string  `json:"execution"` // the execution's id, for the acknowledge link
	Message      Message `json:"message"`
}

// Sent is /v1/send's answer.
type Sent struct {
	ApprovalID string `json:"approval_id"`
	Step       int    `json:"step"`
	Channel    string `json:"channel"`
	// delivered, already_delivered, skipped (decided or acknowledged), or closed: the approval
	// was decided or closed without a decision on decisions, and the cascade ends.
	Outcome string `json:"outcome"`
}

// serveSend delivers one step. Its codes drive the workflow's retry: 503 for what may work on
// a retry (the receiver down, a 5xx, a timeout), 422 for what never will.
func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	var b sendBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes)).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if b.ApprovalID == "" || b.EngagementID == "" || b.Step < 1 || b.Channel == "" {
		writeError(w, http.StatusBadRequest, "approval_id, engagement_id, step and channel are required")
		return
	}
	ch := s.opt.Channels[b.Channel]
	if ch == nil {
		writeError(w, http.StatusUnprocessableEntity, "no channel "+b.Channel)
		return
	}
	ctx := r.Context()
	out := Sent{ApprovalID: b.ApprovalID, Step: b.Step, Channel: b.Channel}
	step := strconv.Itoa(b.Step)
	ref := s.ref(b.ApprovalID)
	snap, err := ref.Get(ctx)
	if err != nil && status.Code(err) != codes.NotFound {
		writeError(w, http.StatusServiceUnavailable, "cascade store: "+err.Error())
		return
	}
	var cur notification.Cascade
	if snap != nil && snap.Exists() {
		if err := snap.DataTo(&cur); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	switch {
	case cur.Sent[step] != "":
		out.Outcome = "already_delivered"
		agentreq.WriteJSON(w, http.StatusOK, out)
		return
	case cur.State == notification.StateDecided || cur.State == notification.StateAcknowledged:
		out.Outcome = "skipped"
		agentreq.WriteJSON(w, http.StatusOK, out)
		return
	}
	// An approval decided in place (the budget guard's) publishes no decision, and a decision
	// may land while this send is due: the approval itself says whether anyone still waits.
	closed, err := s.approvalClosed(ctx, b.ApprovalID)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if closed != "" {
		if err := s.stop(ctx, b, closed); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		out.Outcome = "closed"
		agentreq.WriteJSON(w, http.StatusOK, out)
		return
	}
	// The callback is recorded before anything is sent: a Governor acting on this very
	// message finds it.
	if b.CallbackURL != "" && cur.CallbackURL != b.CallbackURL {
		_, err := ref.Set(ctx, map[string]any{"approval_id": b.ApprovalID, "engagement_id": b.EngagementID,
			"callback_url": b.CallbackURL, "updated_at": s.now()}, firestore.MergeAll)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "cascade store: "+err.Error())
			return
		}
	}
	m := b.Message
	m.Step = b.Step
	// The first send may come before start() recorded the execution: the workflow names it.
	execution := cur.Execution
	if b.Execution != "" {
		execution = s.opt.Workflow + "/executions/" + b.Execution
	}
	if m.AcknowledgeLink, err = s.link(ctx, b.ApprovalID, execution, m.Deadline); err != nil {
		// Without its key no link is signed; the message goes out all the same, since
		// telling the Governor matters more than the shortcut.
		s.opt.Logger.WarnContext(ctx, "notifier: no acknowledge link", "approval_id", b.ApprovalID, "error", err.Error())
	}
	if err := ch.Send(ctx, m); err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, ErrRefused) {
			code = http.StatusUnprocessableEntity
		}
		s.opt.Logger.WarnContext(ctx, "notifier: send failed", "approval_id", b.ApprovalID, "step", b.Step, "channel", b.Channel, "error", err.Error())
		writeError(w, code, err.Error())
		return
	}
	if _, err := ref.Update(ctx, []firestore.Update{{Path: "sent." + step, Value: b.Channel + " " + s.now()}}); err != nil {
		// Delivered: a lost mark only risks a repeat on the workflow's retry.
		s.opt.Logger.WarnContext(ctx, "notifier: delivery not marked", "approval_id", b.ApprovalID, "step", b.Step, "error", err.Error())
	}
	if err := s.audit(ctx, b.ApprovalID, b.EngagementID, AuditSent, "notify_"+b.Channel, step,
		map[string]string{"channel": b.Channel, "step": step}, "delivered"); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	out.Outcome = "delivered"
	agentreq.WriteJSON(w, http.StatusOK, out)
}

// approvalClosed is the approval's state when it is no longer pending ("" while it waits or
// is not an approvals record, as a client's webhook approval is not).
func (s *Server) approvalClosed(ctx context.Context, approvalID string) (string, error) {
	a, err := agentreq.GetApproval(ctx, s.opt.Firestore, approvalID)
	switch {
	case errors.Is(err, agentreq.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("notifier: read approval %s: %w", approvalID, err)
	}
	switch a.State {
	case agentreq.ApprovalDecided, agentreq.ApprovalExpired, agentreq.ApprovalImplicit:
		return a.State, nil
	}
	return "", nil
}

// stop marks the cascade decided for an approval closed without a decision event, and
// records that nothing more is sent.
func (s *Server) stop(ctx context.Context, b sendBody, state string) error {
	_, err := s.ref(b.ApprovalID).Set(ctx, map[string]any{"approval_id": b.ApprovalID, "engagement_id": b.EngagementID,
		"state": notification.StateDecided, "decision": state, "updated_at": s.now()}, firestore.MergeAll)
	if err != nil {
		return fmt.Errorf("notifier: stop cascade %s: %w", b.ApprovalID, err)
	}
	step := strconv.Itoa(b.Step)
	return s.audit(ctx, b.ApprovalID, b.EngagementID, AuditStopped, "stop_notifications", "stopped",
		map[string]string{"approval_state": state, "step": step, "channel": b.Channel}, "stopped")
}

// link is the signed acknowledge link of a cascade's messages, valid until the approval's
// deadline ("" without a gateway, a key or an execution).
func (s *Server) link(ctx context.Context, approvalID, execution, deadline string) (string, error) {
	if s.opt.GatewayURL == "" || s.opt.LinkKey == nil || execution == "" {
		return "", nil
	}
	exp := s.opt.Now().Add(LinkTTL)
	if deadline != "" {
		d, err := time.Parse(time.RFC3339, deadline)
		if err != nil {
			return "", fmt.Errorf("notifier: deadline %q: %w", deadline, err)
		}
		exp = d
	}
	key, err := s.opt.LinkKey(ctx)
	if err != nil {
		return "", fmt.Errorf("notifier: link key: %w", err)
	}
	tok, err := notification.SignLink(key, notification.Link{ApprovalID: approvalID, Execution: execution, Expires: exp})
	if err != nil {
		return "", err
	}
	return s.opt.GatewayURL + notification.LinkPath + "?token=" + tok, nil
}

// failureBody is what the workflow posts to /v1/failures after a send's last retry.
type failureBody struct {
	ApprovalID   string `json:"approval_id"`
	EngagementID string `json:"engagement_id"`
	Failure      struct {
		Channel string `json:"channel"`
		Step    int    `json:"step"`
		Code    int    `json:"code"`
		Error   string `json:"error"`
	} `json:"failure"`
}

func (s *Server) serveFailure(w http.ResponseWriter, r *http.Request) {
	var b failureBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes)).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	f := b.Failure
	if b.ApprovalID == "" || b.EngagementID == "" || f.Channel == "" || f.Step < 1 {
		writeError(w, http.StatusBadRequest, "approval_id, engagement_id, failure.channel and failure.step are required")
		return
	}
	step := strconv.Itoa(f.Step)
	s.opt.Logger.ErrorContext(r.Context(), "notifier: delivery failed after its retries", "approval_id", b.ApprovalID,
		"channel", f.Channel, "step", f.Step, "code", f.Code, "error", f.Error)
	if err := s.audit(r.Context(), b.ApprovalID, b.EngagementID, AuditFailed, "notify_"+f.Channel, step,
		map[string]string{"channel": f.Channel, "step": step, "code": strconv.Itoa(f.Code), "error": truncate(f.Error, 512)}, "failed"); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	agentreq.WriteJSON(w, http.StatusOK, map[string]any{"approval_id": b.ApprovalID, "step": f.Step, "recorded": true})
}

func (s *Server) serveCascade(w http.ResponseWriter, r *http.Request) {
	snap, err := s.ref(r.PathValue("id")).Get(r.Context())
	switch {
	case status.Code(err) == codes.NotFound:
		writeError(w, http.StatusNotFound, "no cascade for approval "+r.PathValue("id"))
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	var c notification.Cascade
	if err := snap.DataTo(&c); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	agentreq.WriteJSON(w, http.StatusOK, c)
}

// audit publishes an entry on the engagement's stream. Its event id is a digest of what it
// records, so a retried send or a redelivered decision is appended once.
func (s *Server) audit(ctx context.Context, approvalID, engagementID, eventType, action, key string, c map[string]string, result string) error {
	c["approval_id"] = approvalID
	e, err := events.New(AuditEventType, Source, Actor, map[string]any{
		"stream": engagementID, "event_type": eventType, "actor_id": Actor, "actor_type": "system",
		"action": action, "target": "approval:" + approvalID, "context": c, "result": result,
	})
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{eventType, approvalID, key}, "\x00")))
	e.EventID = "ntf-" + hex.EncodeToString(sum[:16])
	e.CorrelationID = "approval-" + approvalID
	e.EngagementID = engagementID
	if _, err := s.opt.Publisher.Publish(ctx, events.TopicAuditEvents, e); err != nil {
		return fmt.Errorf("notifier: audit %s of %s: %w", eventType, approvalID, err)
	}
	return nil
}
