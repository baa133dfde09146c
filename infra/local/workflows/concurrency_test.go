package workflows_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/service"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// Many executions at once, with callbacks, cancels and reads racing each
// other (run under -race): every execution ends in the state its driver
// chose, none is lost.
func TestConcurrentCallbacksCancelsAndReads(t *testing.T) {
	const n = 300
	srv, err := workflows.Start(context.Background(), workflows.Options{StateDir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	svc := srv.Service
	op, err := svc.CreateWorkflow(workflowstest.Parent, "c", service.WorkflowInput{SourceContents: waitingSrc})
	if err != nil {
		t.Fatal(err)
	}
	wf := op.Workflow.Name
	names := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, err := svc.CreateExecution(wf, service.ExecutionInput{Argument: fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
				return
			}
			names[i] = v.Name
		}(i)
	}
	wg.Wait()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { // a reader hammering list and get while the rest happens
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := svc.ListExecutions(wf, 100, "", ""); err != nil {
				t.Error(err)
				return
			}
			_, _ = svc.GetExecution(names[0])
		}
	}()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := names[i]
			if i%3 == 0 {
				if _, err := svc.CancelExecution(name); err != nil {
					t.Errorf("cancel %d: %v", i, err)
				}
				return
			}
			// The execution may not have reached its await yet: retry until
			// its callback exists.
			for tries := 0; ; tries++ {
				cbs, err := svc.ListCallbacks(name)
				if err == nil && len(cbs) == 1 {
					if err := svc.Callback(name, cbs[0].ID, service.CallbackRequest{Method: "POST", Body: []byte(`{"i":1}`), JSON: true}); err != nil {
						t.Errorf("callback %d: %v", i, err)
					}
					return
				}
				if tries > 2000 {
					t.Errorf("execution %d never created its callback", i)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}(i)
	}
	wg.Wait()
	svc.WaitIdle()
	close(stop)
	readers.Wait()
	for i, name := range names {
		v, err := svc.GetExecution(name)
		if err != nil {
			t.Fatal(err)
		}
		want := "SUCCEEDED"
		if i%3 == 0 {
			want = "CANCELLED"
		}
		if v.State != want {
			t.Fatalf("execution %d is %s, want %s", i, v.State, want)
		}
	}
}

// Parallel branches waiting on their own callbacks survive a restart: the
// whole thread set is in the persisted state.
func TestParallelWaitsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	emu := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir})
	wf := emu.Deploy("par", `
- init:
    assign:
      - got: {}
- p:
    parallel:
      shared: [got]
      for:
        value: k
        in: ["a", "b", "c"]
        steps:
          - mk:
              call: events.create_callback_endpoint
              result: cb
          - wait:
              call: events.await_callback
              args:
                callback: ${cb}
              result: req
          - put:
              assign:
                - got[k]: ${req.http_request.body.v}
- r:
    return: ${got}`)
	ex := emu.Run(wf, nil)
	if ex.Status == nil || len(ex.Status.CurrentSteps) != 3 {
		t.Fatalf("want three branches waiting, got %+v", ex.Status)
	}
	emu.Close()
	emu2 := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir})
	var cbs struct {
		Callbacks []struct{ Name string } `json:"callbacks"`
	}
	emu2.Do("GET", "/v1/"+ex.Name+"/callbacks", nil, &cbs)
	if len(cbs.Callbacks) != 3 {
		t.Fatalf("callbacks after restart: %+v", cbs)
	}
	for i, c := range cbs.Callbacks {
		if code := emu2.Callback("POST", emu2.URL()+"/v1/"+c.Name, map[string]any{"v": i}); code != 200 {
			t.Fatalf("callback: %d", code)
		}
	}
	var got map[string]float64
	emu2.Result(emu2.Get(ex.Name), &got)
	if len(got) != 3 || got["a"]+got["b"]+got["c"] != 3 {
		t.Fatalf("got %v", got)
	}
}

// A parent waiting on a child execution keeps waiting across a restart and
// takes the child's result when it ends.
func TestChildLinkSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	emu := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir})
	emu.Deploy("kid", "- s:\n    call: sys.sleep\n    args:\n      seconds: 30\n- r:\n    return: \"kid done\"\n")
	wf := emu.Deploy("mom", `
- run:
    call: googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run
    args:
      workflow_id: kid
    result: r
- out:
    return: ${r}`)
	ex := emu.Run(wf, nil)
	emu.Close()
	emu2 := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir})
	emu2.Advance(30 * time.Second)
	var got string
	emu2.Result(emu2.Get(ex.Name), &got)
	if got != "kid done" {
		t.Fatalf("got %q", got)
	}
}
