// Package workflowstest starts an in-process Workflows emulator with a
// virtual clock for tests, with small helpers over its REST API.
package workflowstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
)

// Parent is the project/location the helpers deploy into.
const Parent = "projects/test-project/locations/us-central1"

// Emulator is a running test emulator.
type Emulator struct {
	*workflows.Server
	t testing.TB
}

// New starts an emulator with a virtual clock and in-memory state; it is
// closed when the test ends.
func New(t testing.TB) *Emulator {
	t.Helper()
	return NewWithOptions(t, workflows.Options{})
}

// NewWithOptions is New with explicit options (Clock defaults to virtual).
func NewWithOptions(t testing.TB, opts workflows.Options) *Emulator {
	t.Helper()
	if opts.Clock == "" {
		opts.Clock = workflows.ClockVirtual
	}
	if opts.VirtualStart.IsZero() {
		opts.VirtualStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	srv, err := workflows.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("workflowstest: start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &Emulator{Server: srv, t: t}
}

// Do sends a JSON request and decodes a JSON answer into out (if non-nil).
// It returns the HTTP status.
func (e *Emulator) Do(method, path string, body, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatalf("workflowstest: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL()+path, rd)
	if err != nil {
		e.t.Fatalf("workflowstest: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("workflowstest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("workflowstest: %s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// Deploy creates workflow id from source and fails the test on error.
func (e *Emulator) Deploy(id, source string) string {
	e.t.Helper()
	var op map[string]any
	if code := e.Do("POST", "/v1/"+Parent+"/workflows?workflowId="+id, map[string]any{"sourceContents": source}, &op); code != 200 {
		e.t.Fatalf("workflowstest: deploy %s: HTTP %d: %v", id, code, op)
	}
	return Parent + "/workflows/" + id
}

// Execution is the subset of the Executions API resource tests read.
type Execution struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Argument string `json:"argument"`
	Result   string `json:"result"`
	Duration string `json:"duration"`
	Error    *struct {
		Payload    string `json:"payload"`
		Context    string `json:"context"`
		StackTrace struct {
			Elements []struct {
				Step    string `json:"step"`
				Routine string `json:"routine"`
			} `json:"elements"`
		} `json:"stackTrace"`
	} `json:"error"`
	Status *struct {
		CurrentSteps []struct {
			Routine string `json:"routine"`
			Step    string `json:"step"`
		} `json:"currentSteps"`
	} `json:"status"`
}

// Run starts an execution with arg (marshalled to the argument string)
// and returns it once it no longer runs (finished or waiting).
func (e *Emulator) Run(workflow string, arg any) Execution {
	e.t.Helper()
	body := map[string]any{}
	if arg != nil {
		b, err := json.Marshal(arg)
		if err != nil {
			e.t.Fatalf("workflowstest: %v", err)
		}
		body["argument"] = string(b)
	}
	var ex Execution
	if code := e.Do("POST", "/v1/"+workflow+"/executions", body, &ex); code != 200 {
		e.t.Fatalf("workflowstest: create execution: HTTP %d", code)
	}
	e.Service.WaitIdle()
	return e.Get(ex.Name)
}

// Get reads an execution.
func (e *Emulator) Get(name string) Execution {
	e.t.Helper()
	var ex Execution
	if code := e.Do("GET", "/v1/"+name, nil, &ex); code != 200 {
		e.t.Fatalf("workflowstest: get %s: HTTP %d", name, code)
	}
	return ex
}

// Advance moves the virtual clock and waits for woken executions to settle.
func (e *Emulator) Advance(d time.Duration) {
	e.t.Helper()
	if code := e.Do("POST", "/emulator/v1/clock:advance", map[string]any{"seconds": d.Seconds()}, nil); code != 200 {
		e.t.Fatalf("workflowstest: advance: HTTP %d", code)
	}
}

// Callback sends body (as JSON) to a callback URL with method and waits
// for the execution to settle; it returns the HTTP status.
func (e *Emulator) Callback(method, url string, body any) int {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatalf("workflowstest: %v", err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		e.t.Fatalf("workflowstest: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("workflowstest: callback %s: %v", url, err)
	}
	resp.Body.Close()
	e.Service.WaitIdle()
	return resp.StatusCode
}

// Result decodes a SUCCEEDED execution's result, failing otherwise.
func (e *Emulator) Result(ex Execution, out any) {
	e.t.Helper()
	if ex.State != "SUCCEEDED" {
		msg := ""
		if ex.Error != nil {
			msg = fmt.Sprintf("%s (%s)", ex.Error.Payload, ex.Error.Context)
		}
		e.t.Fatalf("workflowstest: %s is %s, not SUCCEEDED: %s", ex.Name, ex.State, msg)
	}
	if err := json.Unmarshal([]byte(ex.Result), out); err != nil {
		e.t.Fatalf("workflowstest: result %q: %v", ex.Result, err)
	}
}
