package workflows_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

const waitingSrc = `
main:
  params: [args]
  steps:
    - create:
        call: events.create_callback_endpoint
        result: cb
    - await:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 86400
        result: req
    - r:
        return: ${[args, req.http_request.body]}
`

const sleepingSrc = `
- s:
    call: sys.sleep
    args:
      seconds: 3600
- r:
    return: "woke"
`

// A restart with the same state directory loses nothing: finished
// executions keep their results, waiting ones take their callback at the
// same URL, sleeping ones wake at their time.
func TestRestartResumes(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emu := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir, VirtualStart: start})
	wait := emu.Deploy("wait", waitingSrc)
	sleep := emu.Deploy("sleep", sleepingSrc)
	done := emu.Deploy("done", "- r:\n    return: 42\n")
	exWait := emu.Run(wait, "a")
	exSleep := emu.Run(sleep, nil)
	exDone := emu.Run(done, nil)
	var cbs struct {
		Callbacks []struct{ Name string } `json:"callbacks"`
	}
	emu.Do("GET", "/v1/"+exWait.Name+"/callbacks", nil, &cbs)
	if len(cbs.Callbacks) != 1 {
		t.Fatalf("callbacks: %+v", cbs)
	}
	cbPath := "/v1/" + cbs.Callbacks[0].Name
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}

	emu2 := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir, VirtualStart: start})
	var n int
	emu2.Result(emu2.Get(exDone.Name), &n)
	if n != 42 {
		t.Fatalf("finished result after restart: %d", n)
	}
	if st := emu2.Get(exSleep.Name).State; st != "ACTIVE" {
		t.Fatalf("sleeping execution is %s after restart", st)
	}
	if code := emu2.Callback("POST", emu2.URL()+cbPath, map[string]any{"ok": 1}); code != 200 {
		t.Fatalf("callback after restart: %d", code)
	}
	var got []any
	emu2.Result(emu2.Get(exWait.Name), &got)
	if got[0] != "a" {
		t.Fatalf("result %v", got)
	}
	emu2.Advance(time.Hour)
	var woke string
	emu2.Result(emu2.Get(exSleep.Name), &woke)
	if woke != "woke" {
		t.Fatalf("sleeping result %q", woke)
	}
}

// With the real clock, a sleep that fell due while the emulator was down
// fires as soon as it starts again.
func TestRestartRealClockOverdueSleep(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := workflows.Start(ctx, workflows.Options{StateDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	svc := srv.Service
	op, err := svc.CreateWorkflow(workflowstest.Parent, "nap", serviceInput("- s:\n    call: sys.sleep\n    args:\n      seconds: 0.2\n- r:\n    return: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := svc.CreateExecution(op.Workflow.Name, execInput(""))
	if err != nil {
		t.Fatal(err)
	}
	svc.WaitIdle()
	srv.Close()
	time.Sleep(300 * time.Millisecond)
	srv2, err := workflows.Start(ctx, workflows.Options{StateDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got, err := srv2.Service.GetExecution(v.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "SUCCEEDED" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("overdue sleep did not fire after restart")
}

// An execution runs the revision it started with, even after a patch and a
// restart.
func TestRevisionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	emu := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir})
	src := func(v string) string {
		return "- s:\n    call: sys.sleep\n    args:\n      seconds: 10\n- r:\n    return: \"" + v + "\"\n"
	}
	wf := emu.Deploy("rev", src("one"))
	old := emu.Run(wf, nil)
	if code := emu.Do("PATCH", "/v1/"+wf, map[string]any{"sourceContents": src("two")}, nil); code != 200 {
		t.Fatalf("patch: %d", code)
	}
	fresh := emu.Run(wf, nil)
	emu.Close()
	emu2 := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir})
	emu2.Advance(5 * time.Second)
	if st := emu2.Get(old.Name).State; st != "ACTIVE" {
		t.Fatalf("woke after 5 of 10 s: %s", st)
	}
	emu2.Close()
	// The virtual clock carries on across a restart: 5 more seconds are due.
	emu2 = workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir})
	emu2.Advance(5 * time.Second)
	for name, want := range map[string]string{old.Name: "one", fresh.Name: "two"} {
		var got string
		emu2.Result(emu2.Get(name), &got)
		if got != want {
			t.Fatalf("%s returned %q, want %q", name, got, want)
		}
	}
}

// An emulator that dies after an HTTP call answered, before the execution's next wait was
// saved, resumes after that call: the call is not sent again and the callback endpoint it
// carried is the one the execution awaits.
func TestRestartAfterCallKeepsItsEffect(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var got []string // callback URLs received by the first call
	second := make(chan struct{}, 4)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ URL string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if r.URL.Path == "/first" {
			mu.Lock()
			got = append(got, body.URL)
			mu.Unlock()
		} else {
			second <- struct{}{}
			<-release // the emulator is stopped while this call is in flight
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	src := `
main:
  steps:
    - create:
        call: events.create_callback_endpoint
        result: cb
    - first:
        call: http.post
        args: {url: "` + srv.URL + `/first", body: {url: "${cb.url}"}}
    - second:
        call: http.post
        args: {url: "` + srv.URL + `/second", timeout: 60}
    - await:
        call: events.await_callback
        args: {callback: "${cb}", timeout: 3600}
        result: req
    - r:
        return: ${req.http_request.body}
`
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emu := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir, VirtualStart: start})
	wf := emu.Deploy("effects", src)
	var ex workflowstest.Execution
	if code := emu.Do("POST", "/v1/"+wf+"/executions", map[string]any{}, &ex); code != http.StatusOK {
		t.Fatalf("create execution: HTTP %d", code)
	}
	<-second
	// What is on disk now is what a SIGKILL would leave: copy it, as the next process finds it.
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	release <- struct{}{}
	emu.Close()

	emu2 := workflowstest.NewWithOptions(t, workflows.Options{StateDir: crashed, VirtualStart: start})
	<-second // the call in flight at the crash is sent again
	release <- struct{}{}
	mu.Lock()
	urls := append([]string(nil), got...)
	mu.Unlock()
	if len(urls) != 1 {
		t.Fatalf("the first call was sent %d times: %v; want once", len(urls), urls)
	}
	// The callback the first call carried is the one the resumed execution awaits.
	u, err := url.Parse(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code := emu2.Callback("POST", emu2.URL()+u.Path, map[string]string{"ok": "yes"})
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callback %s answered %d after the restart", u.Path, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var res map[string]string
	emu2.Result(emu2.Get(ex.Name), &res)
	if res["ok"] != "yes" {
		t.Fatalf("result %v; want the callback's body", res)
	}
}
