// Package agentreq holds an agent-creation request's records in Firestore: the request
// projection every reader sees (agent_requests), the Governor approvals (approvals), and the
// once-only record of every stage call, undo and transition, each with its audit event.
//
// The workflow owns the process; the stage functions answer its calls. A call may be retried
// (the workflow's retry policy, a crash after commit), so each change is keyed by what it is
// — (request, stage, round) for a verdict — and recorded in one transaction with the
// projection: a retried call finds its record and answers what was stored, writing nothing.
// See docs/agent-creation.md.
package agentreq

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Collections shared by the gateway and the stage functions. Each function's own verdicts live
// in a collection of its own (the Recorder's).
const (
	Requests  = "agent_requests"
	Approvals = "approvals"
)

// Request statuses (DOMAIN.md, Request states).
const (
	StatusRunning          = "running"
	StatusNeedsRevision    = "needs_revision"
	StatusAwaitingApproval = "awaiting_approval"
	StatusDeploying        = "deploying"
	StatusVetoWindow       = "veto_window"
	StatusDeployed         = "deployed"
	StatusRejected         = "rejected"
	StatusDenied           = "denied"
	StatusVetoed           = "vetoed"
	StatusFailed           = "failed"
)

// Terminal reports whether a status is final: it never changes again.
func Terminal(status string) bool {
	switch status {
	case StatusDeployed, StatusRejected, StatusDenied, StatusVetoed, StatusFailed:
		return true
	}
	return false
}

// Approval kinds and states.
const (
	KindBlocking   = "blocking"
	KindVetoWindow = "veto_window"

	ApprovalPending  = "pending"
	ApprovalClaimed  = "claimed" // a Governor's decision is being delivered to the workflow
	ApprovalDecided  = "decided"
	ApprovalExpired  = "expired"  // a blocking approval's timeout
	ApprovalImplicit = "implicit" // a veto window that closed without a veto
)

// Stage names, by number, as the stage calls name them.
var StageNames = map[int]string{
	1: "specification", 2: "way_of_working", 3: "certification", 4: "architecture_review",
	5: "ethics_review", 6: "governor_approval", 7: "deploy",
}

// StepNames are the workflow's step names, by stage number: what audit entries and sys.log
// lines call a stage.
var StepNames = map[int]string{
	1: "stage_1_specification", 2: "stage_2_way_of_working", 3: "stage_3_genesis_certification",
	4: "stage_4_architecture_review", 5: "stage_5_ethics_review", 6: "stage_6_governor_approval",
	7: "stage_7_deploy",
}

// StageEntry is one verdict on the request, as GET /v1/agent-requests/{id} shows it.
type StageEntry struct {
	Stage   int      `firestore:"stage" json:"stage"`
	Name    string   `firestore:"name" json:"name"`
	Outcome string   `firestore:"outcome" json:"outcome"`
	Reasons []string `firestore:"reasons" json:"reasons"`
	At      string   `firestore:"at" json:"at"`
	Round   int      `firestore:"round" json:"round"`
}

// ApprovalRef is the request's current approval, as shown on the request.
type ApprovalRef struct {
	ApprovalID string `firestore:"approval_id" json:"approval_id"`
	Kind       string `firestore:"kind" json:"kind"`
	Type       string `firestore:"type" json:"type"`
	Deadline   string `firestore:"deadline" json:"deadline"`
	SeedID     string `firestore:"seed_id" json:"seed_id"`
	State      string `firestore:"state" json:"state"`
}

// Compensation is one undo of the saga.
type Compensation struct {
	Stage int    `firestore:"stage" json:"stage"`
	At    string `firestore:"at" json:"at"`
}

// Request is the projection of one agent request (agent_requests/{request_id}).
type Request struct {
	RequestID     string         `firestore:"request_id" json:"request_id"`
	EngagementID  string         `firestore:"engagement_id" json:"engagement_id"`
	AgentID       string         `firestore:"agent_id" json:"agent_id"`
	Status        string         `firestore:"status" json:"status"`
	Round         int            `firestore:"round" json:"round"`
	Execution     string         `firestore:"execution" json:"execution"`
	RequestedBy   string         `firestore:"requested_by" json:"requested_by"`
	CreatedAt     string         `firestore:"created_at" json:"created_at"`
	UpdatedAt     string         `firestore:"updated_at" json:"updated_at"`
	Spec          map[string]any `firestore:"spec" json:"spec"`
	WayOfWorking  map[string]any `firestore:"way_of_working" json:"way_of_working"`
	Stages        []StageEntry   `firestore:"stages" json:"stages"`
	Approval      *ApprovalRef   `firestore:"approval" json:"approval"`
	Compensations []Compensation `firestore:"compensations" json:"compensations"`
	// Reason says why a terminal status was reached without a stage's reasons (a failed
	// step, a revision that never came).
	Reason string `firestore:"reason" json:"reason,omitempty"`
	// RevisionCallback is where a revision is delivered while needs_revision; never shown.
	RevisionCallback string `firestore:"revision_callback" json:"-"`
}

// Claim is a Governor's decision on its way to the workflow.
type Claim struct {
	Decision string `firestore:"decision" json:"decision"`
	By       string `firestore:"by" json:"by"`
	Reason   string `firestore:"reason" json:"reason"`
}

// Approval is one Governor approval (approvals/{approval_id}): a blocking approval or a veto
// window.
type Approval struct {
	ApprovalID     string   `firestore:"approval_id" json:"approval_id"`
	RequestID      string   `firestore:"request_id" json:"request_id"`
	EngagementID   string   `firestore:"engagement_id" json:"engagement_id"`
	Kind           string   `firestore:"kind" json:"kind"`
	Type           string   `firestore:"type" json:"type"`
	State          string   `firestore:"state" json:"state"`
	Stage          int      `firestore:"stage" json:"stage"`
	Round          int      `firestore:"round" json:"round"`
	Reasons        []string `firestore:"reasons" json:"reasons"`
	Deadline       string   `firestore:"deadline" json:"deadline"`
	TimeoutSeconds int      `firestore:"timeout_seconds" json:"timeout_seconds"`
	OnTimeout      string   `firestore:"on_timeout" json:"on_timeout"`
	SeedID         string   `firestore:"seed_id" json:"seed_id"`
	CallbackURL    string   `firestore:"callback_url" json:"-"`
	Decision       string   `firestore:"decision" json:"decision"`
	DecidedBy      string   `firestore:"decided_by" json:"decided_by"`
	Reason         string   `firestore:"reason" json:"reason"`
	OpenedAt       string   `firestore:"opened_at" json:"opened_at"`
	ClosedAt       string   `firestore:"closed_at" json:"closed_at"`
	Claim          *Claim   `firestore:"claim" json:"-"`
}

// Ref is the approval as the request shows it.
func (a Approval) Ref() *ApprovalRef {
	return &ApprovalRef{ApprovalID: a.ApprovalID, Kind: a.Kind, Type: a.Type, Deadline: a.Deadline, SeedID: a.SeedID, State: a.State}
}

func sum(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ApprovalID is the id of the approval a request opens once per kind, type and round.
func ApprovalID(requestID, kind, typ string, round int) string {
	return "apv-" + sum(requestID, kind, typ, strconv.Itoa(round))[:20]
}

// AgentID is the id the registry gives the agent a request deploys.
func AgentID(requestID string) string { return "agt-" + sum(requestID)[:20] }

// EventID is the audit event id of a record: the same record always has the same id, so the
// auditor keeps one entry however often it is published.
func EventID(key string) string { return "ar-" + sum(key)[:32] }

// StageKey is the record key of a stage call.
func StageKey(requestID string, stage, round int) string {
	return fmt.Sprintf("%s_%d_%d", requestID, stage, round)
}

// UndoKey is the record key of a stage's undo.
func UndoKey(requestID string, stage int) string {
	return fmt.Sprintf("%s_undo_%d", requestID, stage)
}
