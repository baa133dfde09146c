package workflows_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

const retriedCall = `
main:
  params: [args]
  steps:
    - init:
        assign:
          - base: ${args.fn}
    - get:
        try:
          call: http.get
          args:
            url: ${base + "/flaky"}
          result: r
        retry:
          predicate: ${http.default_retry_predicate}
          max_retries: 3
          backoff:
            initial_delay: 1
            max_delay: 1
            multiplier: 1
    - external:
        call: http.get
        args:
          url: ${args.ext + "/x"}
    - check:
        switch:
          - condition: ${r.code == 200}
            next: done
    - failed:
        raise: "not 200"
    - done:
        return: ${r.body}
`

const callbackWait = `
main:
  steps:
    - create:
        call: events.create_callback_endpoint
        args:
          http_callback_method: POST
        result: cb
    - wait:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 60
        result: got
    - done:
        return: ${got.http_request.body}
`

// TestUsageCountsStepsByKind runs tiny workflows and checks every step they are billed
// for: a call retried twice is three steps and three requests, a request to a host the
// emulator is told stands for a Cloud Run function is internal, any other is external, and
// a wait for a callback is external.
func TestUsageCountsStepsByKind(t *testing.T) {
	var flaky atomic.Int32
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) <= 2 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok")) //nolint:errcheck // the test reads the result
	}))
	defer fn.Close()
	ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ext.Close()
	fnURL, _ := url.Parse(fn.URL)
	emu := workflowstest.NewWithOptions(t, workflows.Options{InternalHosts: []string{fnURL.Host}})

	cases := []struct {
		name string
		src  string
		run  func(t *testing.T, wf string) string // returns the execution's name
		want engine.Usage
	}{
		{"a call retried twice, then an external one", retriedCall, func(t *testing.T, wf string) string {
			ex := emu.Run(wf, map[string]string{"fn": fn.URL, "ext": ext.URL})
			emu.Advance(10 * time.Second) // the two backoffs
			ex = emu.Get(ex.Name)
			var out string
			emu.Result(ex, &out)
			if out != "ok" || flaky.Load() != 3 {
				t.Fatalf("result %q after %d calls", out, flaky.Load())
			}
			return ex.Name
		}, engine.Usage{
			// init, get (its call and 2 retries), external, check, done.
			Steps: 7, InternalSteps: 6, ExternalSteps: 1, HTTPCalls: 4, ExternalHTTPCalls: 1,
		}},
		{"a wait for a callback", callbackWait, func(t *testing.T, wf string) string {
			ex := emu.Run(wf, nil)
			var list struct {
				Callbacks []struct {
					Name string `json:"name"`
				} `json:"callbacks"`
			}
			if code := emu.Do("GET", "/v1/"+ex.Name+"/callbacks", nil, &list); code != 200 || len(list.Callbacks) != 1 {
				t.Fatalf("callbacks: HTTP %d %v", code, list)
			}
			if code := emu.Callback("POST", emu.URL()+"/v1/"+list.Callbacks[0].Name, map[string]any{"ok": true}); code != 200 {
				t.Fatalf("callback: HTTP %d", code)
			}
			if ex = emu.Get(ex.Name); ex.State != "SUCCEEDED" {
				t.Fatalf("execution %s", ex.State)
			}
			return ex.Name
		}, engine.Usage{Steps: 3, InternalSteps: 2, ExternalSteps: 1, CallbackWaits: 1}},
	}
	var total engine.Usage
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wf := emu.Deploy("usage"+string(rune('a'+i)), tc.src)
			name := tc.run(t, wf)
			var got engine.Usage
			if code := emu.Do("GET", "/emulator/v1/"+name+":usage", nil, &got); code != 200 {
				t.Fatalf("usage: HTTP %d", code)
			}
			if got != tc.want {
				t.Errorf("usage %+v, want %+v", got, tc.want)
			}
			total = total.Add(tc.want)
		})
	}
	var totals struct {
		Executions int64 `json:"executions"`
		engine.Usage
	}
	if code := emu.Do("GET", "/emulator/v1/usage", nil, &totals); code != 200 {
		t.Fatalf("usage: HTTP %d", code)
	}
	if totals.Executions != int64(len(cases)) || totals.Usage != total {
		t.Errorf("totals %+v, want %d executions and %+v", totals, len(cases), total)
	}
	if code := emu.Do("GET", "/emulator/v1/projects/p/locations/l/workflows/w/executions/none:usage", nil, nil); code != 404 {
		t.Errorf("usage of an unknown execution: HTTP %d, want 404", code)
	}
}

func TestGoogleInternal(t *testing.T) {
	cases := []struct {
		url  string
		want bool
	}{
		{"https://pubsub.googleapis.com/v1/projects/p/topics/t:publish", true},
		{"https://genesis-abc123-uc.a.run.app/v1/stages/specification", true},
		{"https://us-central1-p.cloudfunctions.net/genesis", true},
		{"https://p.appspot.com/x", true},
		{"https://api.example.com/x", false},
		{"http://127.0.0.1:8080/v1/stages/x", false},
		{"https://run.app.example.com/", false},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := engine.GoogleInternal(u); got != tc.want {
			t.Errorf("GoogleInternal(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
}
