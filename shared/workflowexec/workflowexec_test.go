package workflowexec_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
	"waooaw.dev/governance/shared/workflowexec"
)

// waiter records its argument, waits for one POST on a callback (an hour at most) and
// returns both.
const waiter = `
main:
  params: [args]
  steps:
    - make:
        call: events.create_callback_endpoint
        args: {http_callback_method: POST}
        result: cb
    - wait:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 3600
        result: got
    - done:
        return:
          arg: ${args}
          body: ${got.http_request.body}
`

const failing = `
main:
  params: [args]
  steps:
    - boom:
        raise: {message: "stage 4 could not be called"}
`

func setup(t *testing.T) (*workflowstest.Emulator, *workflowexec.Client) {
	t.Helper()
	emu := workflowstest.New(t)
	c, err := workflowexec.New(context.Background(), emu.URL())
	if err != nil {
		t.Fatal(err)
	}
	return emu, c
}

// callbackURL is the execution's one pending callback.
func callbackURL(t *testing.T, emu *workflowstest.Emulator, execution string) string {
	t.Helper()
	var list struct {
		Callbacks []struct {
			Name string `json:"name"`
		} `json:"callbacks"`
	}
	if code := emu.Do("GET", "/v1/"+execution+"/callbacks", nil, &list); code != 200 || len(list.Callbacks) != 1 {
		t.Fatalf("callbacks of %s: HTTP %d, %+v", execution, code, list)
	}
	return emu.URL() + "/v1/" + list.Callbacks[0].Name
}

func TestStartGetCallback(t *testing.T) {
	emu, c := setup(t)
	ctx := context.Background()
	wf := emu.Deploy("waiter", waiter)
	arg := map[string]any{"request_id": "req-1", "limits": map[string]any{"max_rounds": 3}}
	name, err := c.Start(ctx, wf, arg, map[string]string{"engagement_id": "eng-1", "request_id": "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, wf+"/executions/") {
		t.Fatalf("execution %q is not under %s", name, wf)
	}
	emu.Service.WaitIdle()

	var raw struct {
		Labels map[string]string `json:"labels"`
	}
	emu.Do("GET", "/v1/"+name, nil, &raw)
	if raw.Labels["engagement_id"] != "eng-1" || raw.Labels["request_id"] != "req-1" {
		t.Fatalf("labels %v", raw.Labels)
	}
	ex, err := c.Get(ctx, name)
	if err != nil || ex.State != workflowexec.StateActive || ex.Name != name {
		t.Fatalf("Get = %+v, %v; want ACTIVE", ex, err)
	}

	url := callbackURL(t, emu, name)
	if err := c.Callback(ctx, url, map[string]any{"decision": "approve"}); err != nil {
		t.Fatal(err)
	}
	emu.Service.WaitIdle()
	ex, err = c.Get(ctx, name)
	if err != nil || ex.State != workflowexec.StateSucceeded {
		t.Fatalf("after the callback: %+v, %v", ex, err)
	}
	var res struct {
		Arg  map[string]any `json:"arg"`
		Body map[string]any `json:"body"`
	}
	if err := json.Unmarshal([]byte(ex.Result), &res); err != nil {
		t.Fatal(err)
	}
	if res.Arg["request_id"] != "req-1" || res.Body["decision"] != "approve" {
		t.Fatalf("result %s", ex.Result)
	}

	// The execution has ended: its callback is gone.
	if err := c.Callback(ctx, url, map[string]any{"decision": "deny"}); !errors.Is(err, workflowexec.ErrCallbackGone) {
		t.Fatalf("callback after the end: %v, want ErrCallbackGone", err)
	}
}

func TestFailuresAndRefusals(t *testing.T) {
	emu, c := setup(t)
	ctx := context.Background()
	bad := emu.Deploy("failing", failing)
	name, err := c.Start(ctx, bad, map[string]any{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	emu.Service.WaitIdle()
	ex, err := c.Get(ctx, name)
	if err != nil || ex.State != workflowexec.StateFailed || !strings.Contains(ex.Error, "stage 4 could not be called") {
		t.Fatalf("failed execution: %+v, %v", ex, err)
	}

	// A callback whose wait timed out is gone with its execution.
	wf := emu.Deploy("waiter", waiter)
	late, err := c.Start(ctx, wf, map[string]any{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	emu.Service.WaitIdle()
	url := callbackURL(t, emu, late)
	emu.Advance(2 * time.Hour)

	tests := []struct {
		name string
		err  error
		want error  // errors.Is target, or nil
		msg  string // substring
	}{
		{"callback after its timeout", c.Callback(ctx, url, map[string]any{}), workflowexec.ErrCallbackGone, ""},
		{"callback of an unknown execution", c.Callback(ctx, emu.URL()+"/v1/"+wf+"/executions/nope/callbacks/x", map[string]any{}), workflowexec.ErrCallbackGone, ""},
		{"callback outside the API", c.Callback(ctx, "http://127.0.0.1:1/v1/x", map[string]any{}), nil, "not under"},
		{"label with upper case", startErr(c, wf, map[string]string{"request_id": "REQ-1"}), nil, "is not [a-z0-9_-]"},
		{"label too long", startErr(c, wf, map[string]string{"request_id": strings.Repeat("a", 64)}), nil, "is not [a-z0-9_-]"},
		{"unknown workflow", startErr(c, "projects/p/locations/l/workflows/none", nil), nil, "workflowexec: start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.err == nil:
				t.Fatal("no error")
			case tt.want != nil && !errors.Is(tt.err, tt.want):
				t.Fatalf("%v, want %v", tt.err, tt.want)
			case tt.want == nil && errors.Is(tt.err, workflowexec.ErrCallbackGone):
				t.Fatalf("%v must not be ErrCallbackGone", tt.err)
			case !strings.Contains(tt.err.Error(), tt.msg):
				t.Fatalf("%v, want it to contain %q", tt.err, tt.msg)
			}
		})
	}

	if _, err := c.Get(ctx, wf+"/executions/nope"); !errors.Is(err, workflowexec.ErrNotFound) {
		t.Fatalf("Get of an unknown execution: %v, want ErrNotFound", err)
	}
}

func startErr(c *workflowexec.Client, wf string, labels map[string]string) error {
	_, err := c.Start(context.Background(), wf, map[string]any{}, labels)
	return err
}

func TestLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"eng-1", "eng-1"},
		{"Eng.One/Two", "eng_one_two"},
		{"req-0123abcd", "req-0123abcd"},
		{strings.Repeat("x", 70), strings.Repeat("x", 63)},
		{"", ""},
	}
	for _, tt := range tests {
		if got := workflowexec.Label(tt.in); got != tt.want {
			t.Errorf("Label(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewRefusesABadEndpoint(t *testing.T) {
	if _, err := workflowexec.New(context.Background(), "127.0.0.1:8089"); err == nil {
		t.Fatal("an endpoint without a scheme was accepted")
	}
}
