// Package workflowexec starts Cloud Workflows executions, reads them and delivers their
// callbacks: against Google's Executions API with Application Default Credentials, or
// against the local emulator (infra/local/workflows), which serves the same REST API.
//
// It uses the REST client (google.golang.org/api/workflowexecutions/v1) rather than the
// gRPC one: a callback is a plain HTTPS POST to a URL under the same API, so one
// authenticated *http.Client serves the API calls and the callbacks alike, and a function
// that scales to zero keeps no gRPC connection warm.
package workflowexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
	executions "google.golang.org/api/workflowexecutions/v1"
)

// GoogleEndpoint is the Executions API's base URL; production callback URLs are under it.
const GoogleEndpoint = "https://workflowexecutions.googleapis.com/"

// Execution states, as the API names them.
const (
	StateActive    = "ACTIVE"
	StateSucceeded = "SUCCEEDED"
	StateFailed    = "FAILED"
	StateCancelled = "CANCELLED"
)

// ErrCallbackGone is returned by Callback when the callback, or its execution, no longer
// exists: the execution finished, or stopped waiting on it.
var ErrCallbackGone = errors.New("workflowexec: callback no longer exists")

// ErrNotFound is returned by Get for an execution the API does not know.
var ErrNotFound = errors.New("workflowexec: execution not found")

// Client talks to one Executions API.
type Client struct {
	svc  *executions.Service
	http *http.Client
	base string // callback URLs must start with it: the token never leaves the API
}

// New connects to Google's Executions API with Application Default Credentials when
// endpoint is "", or to the emulator at endpoint ("http://127.0.0.1:P") without auth.
func New(ctx context.Context, endpoint string) (*Client, error) {
	var hc *http.Client
	base := GoogleEndpoint
	opts := []option.ClientOption{}
	if endpoint == "" {
		var err error
		hc, _, err = htransport.NewClient(ctx, option.WithScopes(executions.CloudPlatformScope))
		if err != nil {
			return nil, fmt.Errorf("workflowexec: credentials: %w", err)
		}
	} else {
		if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
			return nil, fmt.Errorf("workflowexec: endpoint %q is not an http(s) URL", endpoint)
		}
		base = strings.TrimRight(endpoint, "/") + "/"
		hc = &http.Client{}
		opts = append(opts, option.WithEndpoint(base))
	}
	svc, err := executions.NewService(ctx, append(opts, option.WithHTTPClient(hc))...)
	if err != nil {
		return nil, fmt.Errorf("workflowexec: executions.NewService: %w", err)
	}
	return &Client{svc: svc, http: hc, base: base}, nil
}

// labelRE is what Google accepts as a label key or value (we keep to lower-case ASCII).
var labelRE = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)

// Label turns s into a label value: lower-cased, every character outside [a-z0-9_-]
// replaced by '_', at most 63 characters.
func Label(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}

// Start runs workflow (projects/P/locations/L/workflows/W) with argument (marshalled to
// JSON) and labels, and returns the execution's name.
func (c *Client) Start(ctx context.Context, workflow string, argument any, labels map[string]string) (string, error) {
	for k, v := range labels {
		if k == "" || !labelRE.MatchString(k) || !labelRE.MatchString(v) {
			return "", fmt.Errorf("workflowexec: start %s: label %q=%q is not [a-z0-9_-]{1,63}", workflow, k, v)
		}
	}
	arg, err := json.Marshal(argument)
	if err != nil {
		return "", fmt.Errorf("workflowexec: start %s: argument: %w", workflow, err)
	}
	ex, err := c.svc.Projects.Locations.Workflows.Executions.Create(workflow, &executions.Execution{
		Argument: string(arg), Labels: labels,
	}).Context(ctx).Do()
	if err != nil {
		return "", fmt.Errorf("workflowexec: start %s: %w", workflow, err)
	}
	return ex.Name, nil
}

// Execution is what Get reads of an execution.
type Execution struct {
	Name   string
	State  string // ACTIVE, SUCCEEDED, FAILED, CANCELLED, ...
	Error  string // the error's payload, when FAILED or CANCELLED
	Result string // the result as JSON, when SUCCEEDED
}

// Get reads an execution.
func (c *Client) Get(ctx context.Context, execution string) (Execution, error) {
	ex, err := c.svc.Projects.Locations.Workflows.Executions.Get(execution).Context(ctx).Do()
	if err != nil {
		var ge *googleapi.Error
		if errors.As(err, &ge) && ge.Code == http.StatusNotFound {
			return Execution{}, fmt.Errorf("%w: %s", ErrNotFound, execution)
		}
		return Execution{}, fmt.Errorf("workflowexec: get %s: %w", execution, err)
	}
	out := Execution{Name: ex.Name, State: ex.State, Result: ex.Result}
	if ex.Error != nil {
		out.Error = ex.Error.Payload
	}
	return out, nil
}

// Callback POSTs body as JSON to a callback URL (what events.create_callback_endpoint
// returned to the workflow), with the client's credentials. A URL outside the API is
// refused, so the credentials never go anywhere else. When the callback or its execution
// no longer exists the error wraps ErrCallbackGone.
func (c *Client) Callback(ctx context.Context, url string, body any) error {
	if !strings.HasPrefix(url, c.base) {
		return fmt.Errorf("workflowexec: callback %s: not under %s", url, c.base)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("workflowexec: callback %s: body: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("workflowexec: callback %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("workflowexec: callback %s: %w", url, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	_ = json.Unmarshal(rb, &e) // a body that is not Google's error shape still has its code
	msg := e.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(rb))
	}
	// The emulator answers NOT_FOUND for a callback of an ended execution; Google's API
	// answers NOT_FOUND or FAILED_PRECONDITION for one no longer awaited.
	if gone(resp.StatusCode, e.Error.Status) {
		return fmt.Errorf("%w: %s: %d %s %s", ErrCallbackGone, url, resp.StatusCode, e.Error.Status, msg)
	}
	return fmt.Errorf("workflowexec: callback %s: %d %s %s", url, resp.StatusCode, e.Error.Status, msg)
}

func gone(code int, status string) bool {
	return code == http.StatusNotFound || code == http.StatusGone || status == "NOT_FOUND" || status == "FAILED_PRECONDITION"
}
