package workflows_test

import (
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

func TestSmokeCallbackAndSleep(t *testing.T) {
	emu := workflowstest.New(t)
	wf := emu.Deploy("veto", `
main:
  params: [args]
  steps:
    - cb:
        call: events.create_callback_endpoint
        args:
          http_callback_method: POST
        result: cb
    - log:
        call: sys.log
        args:
          data: ${cb.url}
    - wait:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 86400
        result: req
    - nap:
        call: sys.sleep
        args:
          seconds: 3600
    - done:
        return: ${req.http_request.body.decision}
`)
	ex := emu.Run(wf, map[string]any{"x": 1})
	if ex.State != "ACTIVE" || ex.Status == nil || ex.Status.CurrentSteps[0].Step != "wait" {
		t.Fatalf("want ACTIVE at wait, got %+v", ex)
	}
	var cbs struct {
		Callbacks []struct{ Name, Method string } `json:"callbacks"`
	}
	emu.Do("GET", "/v1/"+ex.Name+"/callbacks", nil, &cbs)
	if len(cbs.Callbacks) != 1 {
		t.Fatalf("callbacks: %+v", cbs)
	}
	url := emu.URL() + "/v1/" + cbs.Callbacks[0].Name
	if code := emu.Callback("POST", url, map[string]any{"decision": "veto"}); code != 200 {
		t.Fatalf("callback: %d", code)
	}
	ex = emu.Get(ex.Name)
	if ex.State != "ACTIVE" || ex.Status.CurrentSteps[0].Step != "nap" {
		t.Fatalf("want sleeping, got %+v", ex)
	}
	emu.Advance(time.Hour)
	ex = emu.Get(ex.Name)
	var res string
	emu.Result(ex, &res)
	if res != "veto" {
		t.Fatalf("result %q", res)
	}
}
