// Package aireview asks the AI router for a second opinion on a stage's verdict in agent
// creation (genesis, architect, guardian). The decision table's verdict is the floor: the
// review can add reasons or escalate the verdict, never approve what the table refused. The
// review is asked at most once per (request, stage, round), even when the workflow retries
// the stage call, and what it said is kept with the stage's record and audit entry. See
// docs/ai-reviews.md.
package aireview

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/ai"
)

// Collection keeps one document per review asked, keyed by agentreq.StageKey: a retried
// stage call finds it and never asks again.
const Collection = "ai_reviews"

// Engagement is whose keys and spend the foundational agents' reviews are.
const Engagement = "platform"

// What a review may answer.
const (
	VerdictApprove  = "approve"  // nothing to add: the table's verdict stands
	VerdictEscalate = "escalate" // the verdict goes up one step, with the review's reasons
)

// PromptInlineMax is the largest prompt (and reply) kept whole in an audit entry; a larger
// one is kept as its sha256 and size, so an entry stays small whatever the spec holds.
const PromptInlineMax = 4096

// Defaults of a Reviewer.
const (
	DefaultTimeout   = 20 * time.Second
	DefaultMaxTokens = 400
	maxReasons       = 8
	maxReasonBytes   = 500
)

// States of a review's document.
const (
	stateAsking        = "asking"
	stateAnswered      = "answered"
	stateNotConfigured = "not_configured"
)

// Input is one stage verdict to review.
type Input struct {
	Stage        int
	RequestID    string
	EngagementID string
	Round        int
	Outcome      string          // the table's verdict
	Reasons      []string        // the table's reasons
	Trace        json.RawMessage // the table's trace
	// Request holds the request's fields this stage judges. Fields whose name suggests a
	// credential are left out of the prompt.
	Request map[string]any
	// Escalation says, for the prompt, what an escalation does at this stage (e.g. "sends
	// the request back for revision").
	Escalation string
}

// Review is what the AI said about one verdict, as stored and audited.
type Review struct {
	// Asked is false when no review belongs in the record: AI is not configured, or the
	// stage was recorded before (its stored answer stands).
	Asked   bool     `firestore:"asked" json:"asked"`
	Verdict string   `firestore:"verdict" json:"verdict,omitempty"` // approve, escalate; "" when unusable
	Reasons []string `firestore:"reasons" json:"reasons,omitempty"`
	// Error says why the table's verdict stands without the review: a cap, the budget, an
	// outage, a late or unparsable answer.
	Error string `firestore:"error" json:"error,omitempty"`

	Prompt       string `firestore:"prompt" json:"prompt,omitempty"`
	PromptSHA256 string `firestore:"prompt_sha256" json:"prompt_sha256,omitempty"`
	Reply        string `firestore:"reply" json:"reply,omitempty"`

	Provider         string  `firestore:"provider" json:"provider,omitempty"`
	Model            string  `firestore:"model" json:"model,omitempty"`
	PromptTokens     int64   `firestore:"prompt_tokens" json:"prompt_tokens,omitempty"`
	CompletionTokens int64   `firestore:"completion_tokens" json:"completion_tokens,omitempty"`
	CostUSD          float64 `firestore:"cost_usd" json:"cost_usd,omitempty"`
	SpendEventID     string  `firestore:"spend_event_id" json:"spend_event_id,omitempty"`
}

// Escalates reports whether the review raises the verdict.
func (r Review) Escalates() bool { return r.Asked && r.Verdict == VerdictEscalate }

// AddedReasons are the reasons the review adds to the stage's: an escalation's, each marked
// as the review's. An approval adds none, so it can never argue a refusal away.
func (r Review) AddedReasons() []string {
	if !r.Escalates() {
		return nil
	}
	out := make([]string, 0, len(r.Reasons))
	for _, reason := range r.Reasons {
		out = append(out, "AI review: "+reason)
	}
	return out
}

// AuditContext is what the stage's audit entry keeps of the review (nil when none was
// asked). ai_changed says whether the review changed the verdict: an escalation always adds
// its reasons. The prompt and the reply are kept whole up to PromptInlineMax bytes, and
// always by sha256 and size.
func (r Review) AuditContext() map[string]string {
	if !r.Asked {
		return nil
	}
	c := map[string]string{
		"ai_changed":       strconv.FormatBool(r.Escalates()),
		"ai_prompt_sha256": r.PromptSHA256,
		"ai_prompt_bytes":  strconv.Itoa(len(r.Prompt)),
	}
	if len(r.Prompt) <= PromptInlineMax {
		c["ai_prompt"] = r.Prompt
	}
	if r.Error != "" {
		c["ai_review"] = "not used: " + r.Error
	} else {
		c["ai_review"] = r.Verdict
	}
	if r.Model == "" {
		return c // no answer came back
	}
	c["ai_provider"], c["ai_model"] = r.Provider, r.Model
	c["ai_prompt_tokens"] = strconv.FormatInt(r.PromptTokens, 10)
	c["ai_completion_tokens"] = strconv.FormatInt(r.CompletionTokens, 10)
	c["ai_cost_usd"] = strconv.FormatFloat(r.CostUSD, 'f', 6, 64)
	c["ai_spend_event_id"] = r.SpendEventID
	c["ai_reply_bytes"] = strconv.Itoa(len(r.Reply))
	if len(r.Reply) <= PromptInlineMax {
		c["ai_reply"] = r.Reply
	} else {
		c["ai_reply_sha256"] = sum(r.Reply)
	}
	return c
}

// Reviewer asks one foundational agent's reviews.
type Reviewer struct {
	// Asker is the AI router; nil when AI is not configured, and then nothing is asked,
	// read or written.
	Asker     ai.Asker
	FS        *firestore.Client
	Records   string        // the agent's agentreq.Recorder collection, where its verdicts are
	Agent     string        // genesis, systems_architect, vision_guardian: whose key and cap
	Timeout   time.Duration // how long an answer may take; DefaultTimeout when 0
	MaxTokens int64         // the reply's bound; DefaultMaxTokens when 0
}

// Configured reports whether reviews are asked at all.
func (r *Reviewer) Configured() bool { return r != nil && r.Asker != nil }

// Review asks for a review of in once per (request, stage, round), as Review's doc says. Its
// error is Firestore's only (the call is worth retrying); anything the AI did wrong is the
// Review's Error, and the table's verdict stands.
func (r *Reviewer) Review(ctx context.Context, in Input) (Review, error) {
	if !r.Configured() {
		return Review{}, nil
	}
	key := agentreq.StageKey(in.RequestID, in.Stage, in.Round)
	// A stage already recorded answers its stored verdict: asking now would spend for
	// nothing.
	if _, err := r.FS.Collection(r.Records).Doc(key).Get(ctx); err == nil {
		return Review{}, nil
	} else if status.Code(err) != codes.NotFound {
		return Review{}, fmt.Errorf("aireview: read record %s: %w", key, err)
	}
	system, user, err := prompt(r.Agent, in)
	if err != nil {
		return Review{}, err
	}
	p := system + "\n\n" + user
	rv := Review{Asked: true, Prompt: p, PromptSHA256: sum(p)}

	ref := r.FS.Collection(Collection).Doc(key)
	_, err = ref.Create(ctx, doc{State: stateAsking, RequestID: in.RequestID, Agent: r.Agent, Stage: in.Stage, Round: in.Round, Review: rv})
	if status.Code(err) == codes.AlreadyExists {
		return r.earlier(ctx, ref, rv)
	}
	if err != nil {
		return Review{}, fmt.Errorf("aireview: claim %s: %w", key, err)
	}

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxTokens := r.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	ans, askErr := r.Asker.Ask(actx, ai.Call{
		EngagementID: Engagement, AgentID: r.Agent,
		ExecutionID:   fmt.Sprintf("%s/stage-%d/round-%d", in.RequestID, in.Stage, in.Round),
		CorrelationID: in.RequestID,
		Task:          agentreq.StageNames[in.Stage] + "_review",
		Messages:      []ai.Message{{Role: "system", Content: system}, {Role: "user", Content: user}},
		MaxTokens:     maxTokens,
	})
	cancel()
	state := stateAnswered
	switch {
	case errors.Is(askErr, ai.ErrBudgetStopped):
		// Refused by the budget state, which also reads as not configured: the table's
		// verdict stands, and the entry says why no review was used.
		rv.Error = askErr.Error()
	case errors.Is(askErr, ai.ErrNotConfigured):
		// No key for this agent: the rule path, exactly as with no router at all. The
		// claim keeps why, for whoever looks for the review.
		state, rv = stateNotConfigured, Review{Error: askErr.Error()}
	case askErr != nil:
		rv.Error = askErr.Error()
		if errors.Is(askErr, context.DeadlineExceeded) {
			rv.Error = fmt.Sprintf("no answer within %s: %v", timeout, askErr)
		}
	default:
		rv.Reply, rv.Provider, rv.Model = ans.Text, ans.Provider, ans.Model
		rv.PromptTokens, rv.CompletionTokens, rv.CostUSD, rv.SpendEventID = ans.PromptTokens, ans.CompletionTokens, ans.CostUSD, ans.SpendEventID
		verdict, reasons, err := Parse(ans.Text)
		if err != nil {
			rv.Error = err.Error()
		} else {
			rv.Verdict, rv.Reasons = verdict, reasons
		}
	}
	// Kept before the stage is recorded: a retry after a failed record uses this answer
	// rather than asking (and spending) again.
	if _, err := ref.Set(ctx, doc{State: state, RequestID: in.RequestID, Agent: r.Agent, Stage: in.Stage, Round: in.Round, Review: rv}); err != nil {
		return Review{}, fmt.Errorf("aireview: keep review %s: %w", key, err)
	}
	return rv, nil
}

// earlier is the review an earlier call of the same stage asked: its answer if it got one;
// if it never finished (it crashed, or still waits), the table's verdict stands rather than
// asking a second time.
func (r *Reviewer) earlier(ctx context.Context, ref *firestore.DocumentRef, rv Review) (Review, error) {
	snap, err := ref.Get(ctx)
	if err != nil {
		return Review{}, fmt.Errorf("aireview: read review %s: %w", ref.ID, err)
	}
	var d doc
	if err := snap.DataTo(&d); err != nil {
		return Review{}, fmt.Errorf("aireview: read review %s: %w", ref.ID, err)
	}
	switch d.State {
	case stateAnswered:
		return d.Review, nil
	case stateNotConfigured:
		return Review{}, nil
	}
	rv.Error = "an earlier call of this stage asked for the review and did not finish; it is not asked twice"
	return rv, nil
}

// doc is a review's document in Collection.
type doc struct {
	State     string `firestore:"state"`
	RequestID string `firestore:"request_id"`
	Agent     string `firestore:"agent"`
	Stage     int    `firestore:"stage"`
	Round     int    `firestore:"round"`
	Review    Review `firestore:"review"`
}

// reply is the one reply format a review accepts.
type reply struct {
	Verdict string   `json:"verdict"`
	Reasons []string `json:"reasons"`
}

// ReplyFormat is the reply the prompt asks for, word for word.
const ReplyFormat = `{"verdict": "approve" | "escalate", "reasons": ["..."]}`

// Parse reads a reply strictly: one JSON object of ReplyFormat and nothing else, a known
// verdict, an escalation with at least one reason, at most 8 reasons of at most 500 bytes.
func Parse(text string) (verdict string, reasons []string, err error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var rp reply
	if err := dec.Decode(&rp); err != nil {
		return "", nil, fmt.Errorf("unparsable reply: %v", err)
	}
	if strings.TrimSpace(text[dec.InputOffset():]) != "" {
		return "", nil, errors.New("unparsable reply: text after the JSON object")
	}
	switch rp.Verdict {
	case VerdictApprove, VerdictEscalate:
	default:
		return "", nil, fmt.Errorf("unparsable reply: verdict %q is neither %q nor %q", rp.Verdict, VerdictApprove, VerdictEscalate)
	}
	if len(rp.Reasons) > maxReasons {
		return "", nil, fmt.Errorf("unparsable reply: %d reasons, at most %d", len(rp.Reasons), maxReasons)
	}
	for i, reason := range rp.Reasons {
		reason = strings.TrimSpace(reason)
		if reason == "" || len(reason) > maxReasonBytes {
			return "", nil, fmt.Errorf("unparsable reply: reason %d is empty or over %d bytes", i, maxReasonBytes)
		}
		rp.Reasons[i] = reason
	}
	if rp.Verdict == VerdictEscalate && len(rp.Reasons) == 0 {
		return "", nil, errors.New("unparsable reply: an escalation without a reason")
	}
	return rp.Verdict, rp.Reasons, nil
}

// prompt is a review's system and user messages: the stage, the table's verdict and trace,
// the request's fields (without credentials), and the reply format.
func prompt(agent string, in Input) (system, user string, err error) {
	name := agentreq.StageNames[in.Stage]
	system = fmt.Sprintf(`You are %s, a foundational governance agent of the WaooaW platform, reviewing stage %d (%s) of a request to create an AI agent.
A decision table has already decided the stage; its verdict, reasons and trace are given with the request's fields. You cannot approve what the table refused or soften its verdict. You may escalate: here that %s. Escalate only for a concrete problem the table missed, and name it.
Reply with exactly one JSON object and nothing else: %s`, agent, in.Stage, name, in.Escalation, ReplyFormat)
	body := struct {
		Stage   int             `json:"stage"`
		Name    string          `json:"name"`
		Round   int             `json:"round"`
		Outcome string          `json:"table_outcome"`
		Reasons []string        `json:"table_reasons"`
		Trace   json.RawMessage `json:"table_trace,omitempty"`
		Request map[string]any  `json:"request"`
	}{in.Stage, name, in.Round, in.Outcome, nonNil(in.Reasons), in.Trace, scrub(in.Request)}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return "", "", fmt.Errorf("aireview: prompt: %w", err)
	}
	return system, strings.TrimSpace(b.String()), nil
}

// credential matches a field name that may hold a secret: such a field never reaches a
// provider.
var credential = regexp.MustCompile(`(?i)secret|token|passw|api_?key|credential|private_?key`)

// scrub copies v without the fields credential matches, at any depth.
func scrub(v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, e := range v {
		if credential.MatchString(k) {
			continue
		}
		out[k] = scrubAny(e)
	}
	return out
}

func scrubAny(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return scrub(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = scrubAny(e)
		}
		return out
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
