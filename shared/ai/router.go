package ai

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/secrets"
)

// ErrBudgetStopped is wrapped, together with ErrNotConfigured, when the budget state
// (suspended or halted) routes AI work to the rule-based path: callers that already fall
// back on ErrNotConfigured need nothing more.
var ErrBudgetStopped = errors.New("AI stopped by the budget")

// ErrBadCall is wrapped when a Call lacks what the caps are keyed on.
var ErrBadCall = errors.New("bad AI call")

// Providers the router knows, as query_routing and ai_models name them.
const (
	ProviderGroq   = "groq"
	ProviderOpenAI = "openai"
)

// TableModels is the decision table of models and prices per provider and tier.
const TableModels = "ai_models"

// Spend event identity.
const (
	SpendEventType   = "waooaw.spend.ai_tokens"
	SpendEventSource = "//waooaw/ai"
)

// DefaultAttemptTimeout bounds one request to one provider: past it the provider counts
// as down and the fallback is asked.
const DefaultAttemptTimeout = 20 * time.Second

var credTypes = map[string]string{ProviderGroq: CredGroq, ProviderOpenAI: CredOpenAI}

// Router implements Asker over the OpenAI-compatible chat API. It is safe for concurrent
// use. A nil *Router answers every call with ErrNotConfigured.
type Router struct {
	baseURLs       map[string]string // provider → base URL; a provider without one is never asked
	secrets        secrets.Source
	ledger         *ledger
	pub            events.Publisher
	rules          *rules.Set
	budgetState    func(context.Context) (string, error)
	attemptTimeout time.Duration
	httpClient     *http.Client
	now            func() time.Time

	mu      sync.Mutex
	clients map[string]*openai.Client // by provider and key
}

// Option configures New.
type Option func(*Router)

// WithProvider lets the router ask provider (ProviderGroq, ProviderOpenAI) at baseURL
// (Groq's https://api.groq.com/openai/v1, OpenAI's https://api.openai.com/v1, or a local
// server).
func WithProvider(provider, baseURL string) Option {
	return func(r *Router) { r.baseURLs[provider] = strings.TrimRight(baseURL, "/") }
}

// WithBudgetState gives the router the platform's budget state (normal, alert, suspended,
// halted); without it the state is taken as normal.
func WithBudgetState(f func(context.Context) (string, error)) Option {
	return func(r *Router) { r.budgetState = f }
}

// WithAttemptTimeout bounds each request to a provider (default DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) Option { return func(r *Router) { r.attemptTimeout = d } }

// WithHTTPClient sets the HTTP client the providers are called with.
func WithHTTPClient(c *http.Client) Option { return func(r *Router) { r.httpClient = c } }

// WithRules replaces the embedded decision tables (routing, models, caps).
func WithRules(s *rules.Set) Option { return func(r *Router) { r.rules = s } }

// WithClock sets the clock that dates the per-agent day and the spend events.
func WithClock(now func() time.Time) Option { return func(r *Router) { r.now = now } }

// New returns a router whose keys come from src, whose spend is kept in fs (collection
// ai_spend) and published through pub on spend_events.
func New(src secrets.Source, fs *firestore.Client, pub events.Publisher, opts ...Option) (*Router, error) {
	if src == nil || fs == nil || pub == nil {
		return nil, fmt.Errorf("ai: New needs a secret source, a Firestore client and a publisher")
	}
	r := &Router{
		baseURLs: map[string]string{}, secrets: src, pub: pub,
		attemptTimeout: DefaultAttemptTimeout, httpClient: http.DefaultClient, now: time.Now,
		clients: map[string]*openai.Client{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.rules == nil {
		s, err := loadRules()
		if err != nil {
			return nil, err
		}
		r.rules = s
	}
	caps, err := capsFrom(r.rules)
	if err != nil {
		return nil, err
	}
	for p := range r.baseURLs {
		if _, ok := credTypes[p]; !ok {
			return nil, fmt.Errorf("ai: unknown provider %q", p)
		}
	}
	r.ledger = &ledger{fs: fs, caps: caps}
	return r, nil
}

// attempt is one provider the call may be sent to, with the model and price it would use.
type attempt struct {
	provider string
	key      string
	model    model
}

// Ask routes c, checks and reserves its worst-case cost under every cap, sends it (falling
// back from Groq to OpenAI on 5xx, 429 or timeout), reconciles the spend to the usage
// reported and publishes one spend event. A call refused by a cap returns a *CapError and
// sends nothing. Asking again with the same call (same execution, task, messages, bounds)
// returns the recorded answer and publishes the same spend event again without a new
// request, so a retried step neither pays twice nor counts twice. When the spend event
// cannot be published the answer comes back with the error: the spend is recorded, and
// asking again publishes it.
func (r *Router) Ask(ctx context.Context, c Call) (Answer, error) {
	if r == nil {
		return Answer{}, fmt.Errorf("ai: no provider configured: %w", ErrNotConfigured)
	}
	if c.EngagementID == "" || c.AgentID == "" || c.ExecutionID == "" || len(c.Messages) == 0 || c.MaxTokens <= 0 {
		return Answer{}, fmt.Errorf("ai: a call needs engagement, agent, execution, messages and max tokens: %w", ErrBadCall)
	}
	state := "normal"
	if r.budgetState != nil {
		s, err := r.budgetState(ctx)
		if err != nil {
			return Answer{}, fmt.Errorf("ai: budget state: %w", err)
		}
		state = s
	}
	keys, err := r.keys(ctx, c)
	if err != nil {
		return Answer{}, err
	}
	attempts, err := r.route(c, state, keys)
	if err != nil {
		return Answer{}, err
	}
	id := callID(c)
	asked := 0.0
	promptBound := promptTokenBound(c.Messages)
	for _, a := range attempts {
		asked = max(asked, a.model.cost(promptBound, c.MaxTokens))
	}
	now := r.now().UTC()
	rec, err := r.ledger.reserve(ctx, id, c, asked, now)
	if err != nil {
		return Answer{}, err
	}
	if rec.Settled {
		return rec.Answer, r.publish(ctx, c, rec)
	}
	ans, sendErr := r.send(ctx, c, attempts)
	ans.SpendEventID = id
	// Settled even when the caller has gone: a reservation left behind would hold the caps.
	rec, err = r.ledger.settle(context.WithoutCancel(ctx), id, c, rec, ans, r.now().UTC())
	if err != nil {
		return Answer{}, errors.Join(sendErr, err)
	}
	if sendErr != nil {
		return Answer{}, sendErr
	}
	return rec.Answer, r.publish(ctx, c, rec)
}

// keys reads the caller's key for every provider the router may ask; a provider without
// one is left out.
func (r *Router) keys(ctx context.Context, c Call) (map[string]string, error) {
	keys := map[string]string{}
	for _, p := range []string{ProviderGroq, ProviderOpenAI} {
		if r.baseURLs[p] == "" {
			continue
		}
		name, err := SecretName(c.EngagementID, c.AgentID, credTypes[p])
		if err != nil {
			return nil, err
		}
		v, err := r.secrets.Get(ctx, name)
		switch {
		case errors.Is(err, secrets.ErrNotFound) || errors.Is(err, secrets.ErrTooShort):
			continue
		case err != nil:
			return nil, fmt.Errorf("ai: key %s: %w", name, err)
		}
		keys[p] = string(v)
	}
	return keys, nil
}

// route asks query_routing which provider and tier serve c, and ai_models the model and
// price of each provider the call may be sent to, in order.
func (r *Router) route(c Call, state string, keys map[string]string) ([]attempt, error) {
	up := make([]string, 0, 2)
	for _, p := range []string{ProviderGroq, ProviderOpenAI} {
		if keys[p] != "" {
			up = append(up, p)
		}
	}
	facts := map[string]any{
		"task_type": c.Task, "budget_state": state, "providers_up": up,
		"estimated_tokens": float64(promptTokenBound(c.Messages) / 4), "escalated": c.Escalated,
	}
	res, err := r.rules.Evaluate(rules.TableQueryRouting, facts)
	if err != nil {
		return nil, fmt.Errorf("ai: route: %w", err)
	}
	if len(res.Matches) == 0 {
		return nil, fmt.Errorf("ai: route: %w", rules.ErrNoMatch)
	}
	then := res.Matches[0].Then
	provider, _ := then["provider"].(string)
	fallback, _ := then["fallback"].(string)
	tier, _ := then["tier"].(string)
	if provider == "rule_based" {
		if state == "suspended" || state == "halted" {
			return nil, fmt.Errorf("ai: budget %s (%s): %w: %w", state, res.Matches[0].RuleID, ErrBudgetStopped, ErrNotConfigured)
		}
		return nil, fmt.Errorf("ai: no key for %s/%s (%s): %w", c.EngagementID, c.AgentID, res.Matches[0].RuleID, ErrNotConfigured)
	}
	var out []attempt
	for _, p := range []string{provider, fallback} {
		if keys[p] == "" || (len(out) > 0 && out[0].provider == p) {
			continue
		}
		m, err := modelFor(r.rules, p, tier)
		if err != nil {
			return nil, err
		}
		out = append(out, attempt{provider: p, key: keys[p], model: m})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ai: route %s wants %s (tier %s), no key for it: %w", res.Matches[0].RuleID, provider, tier, ErrNotConfigured)
	}
	return out, nil
}

// send tries each attempt in order; the next one is asked only when the previous provider
// answered 5xx or 429, timed out or could not be reached.
func (r *Router) send(ctx context.Context, c Call, attempts []attempt) (Answer, error) {
	msgs := make([]openai.ChatCompletionMessageParamUnion, len(c.Messages))
	for i, m := range c.Messages {
		switch m.Role {
		case "system":
			msgs[i] = openai.SystemMessage(m.Content)
		case "assistant":
			msgs[i] = openai.AssistantMessage(m.Content)
		default:
			msgs[i] = openai.UserMessage(m.Content)
		}
	}
	var errs []error
	for i, a := range attempts {
		actx, cancel := context.WithTimeout(ctx, r.attemptTimeout)
		resp, err := r.client(a).Chat.Completions.New(actx, openai.ChatCompletionNewParams{
			Model:               a.model.Name,
			Messages:            msgs,
			MaxCompletionTokens: openai.Int(c.MaxTokens),
		})
		cancel()
		if err == nil {
			if len(resp.Choices) == 0 {
				return Answer{}, fmt.Errorf("ai: %s %s answered no choice: %w", a.provider, a.model.Name, ErrUnavailable)
			}
			u := resp.Usage
			return Answer{
				Text: resp.Choices[0].Message.Content, Provider: a.provider, Model: a.model.Name,
				PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
				CostUSD: a.model.cost(u.PromptTokens, u.CompletionTokens), FellBack: i > 0,
			}, nil
		}
		errs = append(errs, fmt.Errorf("%s %s: %w", a.provider, a.model.Name, err))
		if ctx.Err() != nil || !transient(err) {
			return Answer{}, fmt.Errorf("ai: chat completion: %w", errors.Join(errs...))
		}
	}
	return Answer{}, fmt.Errorf("ai: %w: %w", ErrUnavailable, errors.Join(errs...))
}

// transient reports whether a provider's failure lets the fallback be asked: 5xx, 429,
// a timeout of the attempt, or no connection at all.
func transient(err error) bool {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= 500 || apiErr.StatusCode == http.StatusTooManyRequests
	}
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr)
}

// client returns the client for a provider and key, made once. The library's own retries
// are off: the router decides when to ask again, and whom.
func (r *Router) client(a attempt) *openai.Client {
	k := a.provider + "\x00" + a.key
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[k]; ok {
		return c
	}
	c := openai.NewClient(
		option.WithBaseURL(r.baseURLs[a.provider]+"/"),
		option.WithAPIKey(a.key),
		option.WithMaxRetries(0),
		option.WithHTTPClient(r.httpClient),
	)
	r.clients[k] = &c
	return &c
}

// publish sends the call's spend event; its id and time come from the record, so asking
// again publishes the same event.
func (r *Router) publish(ctx context.Context, c Call, rec callRecord) error {
	data := map[string]any{
		"kind": "ai_tokens", "engagement_id": c.EngagementID, "agent_id": c.AgentID,
		"execution_id": c.ExecutionID, "trial_id": c.TrialID, "task": c.Task,
		"provider": rec.Answer.Provider, "model": rec.Answer.Model,
		"prompt_tokens": rec.Answer.PromptTokens, "completion_tokens": rec.Answer.CompletionTokens,
		"cost_usd": rec.Answer.CostUSD, "reserved_usd": rec.AskedUSD,
		"observed_at": rec.SettledAt.UTC().Format(time.RFC3339Nano),
	}
	e, err := events.New(SpendEventType, SpendEventSource, "agent:"+c.AgentID, data)
	if err != nil {
		return fmt.Errorf("ai: spend event: %w", err)
	}
	e.EventID, e.Time = rec.Answer.SpendEventID, data["observed_at"].(string)
	e.CorrelationID = c.CorrelationID
	if e.CorrelationID == "" {
		e.CorrelationID = c.ExecutionID
	}
	e.AgentID, e.EngagementID = c.AgentID, c.EngagementID
	if _, err := r.pub.Publish(ctx, events.TopicSpendEvents, e); err != nil {
		return fmt.Errorf("ai: spend event %s (the call is recorded; asking again republishes it): %w", e.EventID, err)
	}
	return nil
}

// callID identifies a call by what it asks, so a retried step maps to the same record and
// spend event: 32 hex characters of SHA-256 over its engagement, agent, execution, trial,
// task, escalation, bound and messages.
func callID(c Call) string {
	h := sha256.New()
	for _, s := range []string{c.EngagementID, c.AgentID, c.ExecutionID, c.TrialID, c.Task, fmt.Sprint(c.Escalated), fmt.Sprint(c.MaxTokens)} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	for _, m := range c.Messages {
		fmt.Fprintf(h, "%d:%s%d:%s", len(m.Role), m.Role, len(m.Content), m.Content)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// promptTokenBound is an upper bound on a prompt's tokens: the providers' tokenizers never
// make a token of less than one byte, and frame each message in a few tokens.
func promptTokenBound(msgs []Message) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m.Content)+len(m.Role)) + 8
	}
	return n
}
