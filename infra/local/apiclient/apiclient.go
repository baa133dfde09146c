// Package apiclient speaks the platform's public API as a client would: the gateway's routes
// (bearer tokens, signed webhooks), plus the local stack's own controls (the Workflows
// emulator's clock, stopping and starting a function). `make demo` and the end-to-end tests
// drive the running stack through it.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"waooaw.dev/governance/shared/auth"
)

// Client reaches one running stack.
type Client struct {
	Gateway   string // the gateway's base URL
	Workflows string // the Workflows emulator's base URL
	Control   string // the local stack's control URL
	HTTP      *http.Client
	// Token is the bearer token sent to the gateway's API routes.
	Token string
	// WebhookClient and WebhookSecret sign webhooks.
	WebhookClient string
	WebhookSecret []byte
}

// As returns a copy of c that sends token.
func (c *Client) As(token string) *Client {
	cc := *c
	cc.Token = token
	return &cc
}

// Error is an answer other than 2xx: its status and the gateway's message.
type Error struct {
	Status  int
	Message string
	Body    string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// StatusOf returns the HTTP status of an *Error, 0 for nil and -1 for other errors.
func StatusOf(err error) int {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Status
	}
	return -1
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// do sends a JSON request and decodes a 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, u string, header http.Header, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("apiclient: %s %s: %w", method, u, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, fmt.Errorf("apiclient: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.Token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) (int, error) {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("apiclient: %s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("apiclient: %s %s: read: %w", req.Method, req.URL, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e) // a body that is not the platform's error still says something
		msg := e.Error.Message
		if msg == "" {
			msg = string(b)
		}
		return resp.StatusCode, &Error{Status: resp.StatusCode, Message: msg, Body: string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("apiclient: %s %s: decode %s: %w", req.Method, req.URL, b, err)
		}
	}
	return resp.StatusCode, nil
}

// CreateEngagement sets an engagement's Governor (admin).
func (c *Client) CreateEngagement(ctx context.Context, engagement, governor string) (int, error) {
	return c.do(ctx, http.MethodPost, c.Gateway+"/v1/engagements", nil,
		map[string]string{"engagement_id": engagement, "governor": governor}, nil)
}

// BindClient lets a webhook client post for an engagement (admin): 201 when it was not
// bound, 200 when it was. The gateway answers once it enforces the binding.
func (c *Client) BindClient(ctx context.Context, engagement, client string) (int, error) {
	return c.do(ctx, http.MethodPost, c.Gateway+"/v1/engagements/"+url.PathEscape(engagement)+"/clients", nil,
		map[string]string{"client_id": client}, nil)
}

// Submitted is the answer to a new agent request.
type Submitted struct {
	RequestID string `json:"request_id"`
	Execution string `json:"execution"`
	Status    string `json:"status"`
}

// Submit asks for a new agent under an idempotency key.
func (c *Client) Submit(ctx context.Context, key string, spec, wayOfWorking map[string]any) (Submitted, error) {
	var out Submitted
	h := http.Header{}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	_, err := c.do(ctx, http.MethodPost, c.Gateway+"/v1/agent-requests", h,
		map[string]any{"spec": spec, "way_of_working": wayOfWorking}, &out)
	return out, err
}

// Stage is one verdict as a request shows it.
type Stage struct {
	Stage   int      `json:"stage"`
	Name    string   `json:"name"`
	Outcome string   `json:"outcome"`
	Reasons []string `json:"reasons"`
	At      string   `json:"at"`
}

// Approval is a request's approval, or one listed as pending.
type Approval struct {
	ApprovalID string `json:"approval_id"`
	RequestID  string `json:"request_id,omitempty"`
	Kind       string `json:"kind"`
	Type       string `json:"type"`
	Deadline   string `json:"deadline"`
	SeedID     string `json:"seed_id"`
}

// Compensation is one undo.
type Compensation struct {
	Stage int    `json:"stage"`
	At    string `json:"at"`
}

// Request is GET /v1/agent-requests/{id}.
type Request struct {
	RequestID     string         `json:"request_id"`
	EngagementID  string         `json:"engagement_id"`
	AgentID       string         `json:"agent_id"`
	Status        string         `json:"status"`
	Reason        string         `json:"reason"`
	Stages        []Stage        `json:"stages"`
	Approval      *Approval      `json:"approval"`
	Compensations []Compensation `json:"compensations"`
}

// Get reads a request.
func (c *Client) Get(ctx context.Context, requestID string) (Request, error) {
	var out Request
	_, err := c.do(ctx, http.MethodGet, c.Gateway+"/v1/agent-requests/"+url.PathEscape(requestID), nil, nil, &out)
	return out, err
}

// WaitFor polls a request until until says yes, or ctx ends (the error then shows the last
// state seen).
func (c *Client) WaitFor(ctx context.Context, requestID string, until func(Request) bool) (Request, error) {
	var last Request
	for {
		r, err := c.Get(ctx, requestID)
		if err == nil {
			last = r
			if until(r) {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("apiclient: request %s: waited in vain; last seen status %q, %d stages, approval %+v, compensations %+v (last error %v): %w",
				requestID, last.Status, len(last.Stages), last.Approval, last.Compensations, err, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Revise sends a revision while the request needs one.
func (c *Client) Revise(ctx context.Context, requestID string, spec, wayOfWorking map[string]any) error {
	_, err := c.do(ctx, http.MethodPost, c.Gateway+"/v1/agent-requests/"+url.PathEscape(requestID)+"/revisions", nil,
		map[string]any{"spec": spec, "way_of_working": wayOfWorking}, nil)
	return err
}

// Pending lists the open approvals and veto windows of the caller's engagement.
func (c *Client) Pending(ctx context.Context) ([]Approval, error) {
	var out struct {
		Approvals []Approval `json:"approvals"`
	}
	_, err := c.do(ctx, http.MethodGet, c.Gateway+"/v1/approvals?state=pending", nil, nil, &out)
	return out.Approvals, err
}

// Decided is the answer to a decision.
type Decided struct {
	ApprovalID string `json:"approval_id"`
	Decision   string `json:"decision"`
	DecidedBy  string `json:"decided_by"`
}

// Decide approves, denies or vetoes.
func (c *Client) Decide(ctx context.Context, approvalID, decision, reason string) (Decided, error) {
	var out Decided
	_, err := c.do(ctx, http.MethodPost, c.Gateway+"/v1/approvals/"+url.PathEscape(approvalID)+":decide", nil,
		map[string]string{"decision": decision, "reason": reason}, &out)
	return out, err
}

// Entry is one audit entry.
type Entry struct {
	EventID   string            `json:"event_id"`
	Seq       int64             `json:"seq"`
	Time      string            `json:"time"`
	EventType string            `json:"event_type"`
	ActorID   string            `json:"actor_id"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Context   map[string]string `json:"context"`
	Result    string            `json:"result"`
	Hash      string            `json:"hash"`
}

// Entries reads every entry of a stream after seq, page by page.
func (c *Client) Entries(ctx context.Context, stream string, after int64) ([]Entry, error) {
	var all []Entry
	for {
		var page struct {
			Entries   []Entry `json:"entries"`
			NextAfter int64   `json:"next_after"`
		}
		u := c.Gateway + "/v1/audit/streams/" + url.PathEscape(stream) + "/entries?limit=1000&after=" + strconv.FormatInt(after, 10)
		if _, err := c.do(ctx, http.MethodGet, u, nil, nil, &page); err != nil {
			return all, err
		}
		all = append(all, page.Entries...)
		if len(page.Entries) == 0 || page.NextAfter <= after {
			return all, nil
		}
		after = page.NextAfter
	}
}

// Report is a stream's verification.
type Report struct {
	Stream  string `json:"stream"`
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	Reason  string `json:"reason"`
}

// Verify walks a stream's chain.
func (c *Client) Verify(ctx context.Context, stream string) (Report, error) {
	var out Report
	_, err := c.do(ctx, http.MethodGet, c.Gateway+"/v1/audit/streams/"+url.PathEscape(stream)+"/verify", nil, nil, &out)
	return out, err
}

// Health reports an agent's health through the signed health webhook, as the agent's
// operator would.
func (c *Client) Health(ctx context.Context, agentID, engagement, status string, observed time.Time) error {
	body, err := json.Marshal(map[string]string{
		"agent_id": agentID, "engagement_id": engagement, "status": status, "check_type": "http",
		"observed_at": observed.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Gateway+"/v1/webhooks/health", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	auth.SignWebhook(req.Header, c.WebhookClient, c.WebhookSecret, body, time.Now())
	_, err = c.send(req, nil)
	return err
}

// Clock is the Workflows emulator's time.
func (c *Client) Clock(ctx context.Context) (time.Time, error) {
	var out struct {
		Now time.Time `json:"now"`
	}
	_, err := c.do(ctx, http.MethodGet, c.Workflows+"/emulator/v1/clock", nil, nil, &out)
	return out.Now, err
}

// Advance moves the Workflows emulator's virtual clock.
func (c *Client) Advance(ctx context.Context, d time.Duration) (time.Time, error) {
	var out struct {
		Now time.Time `json:"now"`
	}
	_, err := c.do(ctx, http.MethodPost, c.Workflows+"/emulator/v1/clock:advance", nil,
		map[string]float64{"seconds": d.Seconds()}, &out)
	return out.Now, err
}

// StopFunction takes a function of the local stack down until StartFunction.
func (c *Client) StopFunction(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPost, c.Control+"/v1/functions/"+url.PathEscape(name)+":stop", nil, nil, nil)
	return err
}

// StartFunction brings a stopped function back on its port.
func (c *Client) StartFunction(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPost, c.Control+"/v1/functions/"+url.PathEscape(name)+":start", nil, nil, nil)
	return err
}
