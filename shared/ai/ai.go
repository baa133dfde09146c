// Package ai is the platform's one way to ask a language model: a router over the
// OpenAI-compatible chat API (Groq primary, OpenAI on Groq's failure, the premium model only
// for work a Governor escalated), with the spend caps checked before any request is sent and
// the actual usage reconciled and published after.
package ai

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotConfigured is wrapped when no provider key exists for the caller: the caller runs
// its rule-based path instead.
var ErrNotConfigured = errors.New("AI not configured")

// ErrUnavailable is wrapped when every provider the route allows failed.
var ErrUnavailable = errors.New("AI providers unavailable")

// Caps the router enforces before a call (rules/budget_thresholds, rules/trial_limits).
const (
	CapExecution = "per_execution" // $0.50 per execution
	CapAgentDay  = "per_agent_day" // $5 per agent per day
	CapTrial     = "per_trial"     // $5 per trial
)

// CapError is a call refused before it was sent because its worst-case cost (max_tokens ×
// price) would pass a cap.
type CapError struct {
	Cap      string  // CapExecution, CapAgentDay or CapTrial
	LimitUSD float64 // the cap
	SpentUSD float64 // spent (and reserved) under this cap so far
	AskedUSD float64 // the worst-case cost of the refused call
}

func (e *CapError) Error() string {
	return fmt.Sprintf("ai: %s cap $%.4f: spent $%.4f, call would cost up to $%.4f", e.Cap, e.LimitUSD, e.SpentUSD, e.AskedUSD)
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"` // system, user, assistant
	Content string `json:"content"`
}

// Call is one request to the router.
type Call struct {
	EngagementID  string // whose key is used and whose spend it is
	AgentID       string // the agent asking (a foundational agent for reviews)
	ExecutionID   string // the execution it belongs to: the per-execution cap's key
	TrialID       string // set for a trial's work: the per-trial cap's key
	CorrelationID string
	// Task names the work (e.g. "architecture_review"); rules/query_routing picks the tier.
	Task string
	// Escalated marks work a Governor escalated: the only work the premium model serves.
	Escalated bool
	Messages  []Message
	MaxTokens int64 // the completion's bound: the worst-case cost is computed from it
}

// Answer is what a call returned and what it cost.
type Answer struct {
	Text             string  `json:"text"`
	Provider         string  `json:"provider"` // groq, openai
	Model            string  `json:"model"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	// FellBack is set when the primary failed and the fallback answered.
	FellBack bool `json:"fell_back,omitempty"`
	// SpendEventID is the id of the spend event published for this call.
	SpendEventID string `json:"spend_event_id"`
}

// Asker is what callers depend on: the Router, or nothing when AI is not configured.
type Asker interface {
	Ask(ctx context.Context, c Call) (Answer, error)
}
