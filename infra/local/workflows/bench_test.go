package workflows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/service"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

const loopSrc = `
- init:
    assign:
      - sum: 0
- loop:
    for:
      value: i
      range: [1, 10000]
      steps:
        - add:
            assign:
              - sum: ${sum + i}
- done:
    return: ${sum}
`

func startBench(b *testing.B, dir string) *workflows.Server {
	b.Helper()
	srv, err := workflows.Start(context.Background(), workflows.Options{StateDir: dir, Logf: func(string, ...any) {}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
}

func deployBench(b *testing.B, svc *service.Service, id, src string) string {
	b.Helper()
	op, err := svc.CreateWorkflow(workflowstest.Parent, id, service.WorkflowInput{SourceContents: src})
	if err != nil {
		b.Fatal(err)
	}
	return op.Workflow.Name
}

// BenchmarkForLoop10000 measures create to SUCCEEDED for a 10,000-iteration
// for loop of one assign step, with durable state on (it persists at
// creation and completion only).
func BenchmarkForLoop10000(b *testing.B) {
	srv := startBench(b, b.TempDir())
	svc := srv.Service
	wf := deployBench(b, svc, "loop", loopSrc)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := svc.CreateExecution(wf, service.ExecutionInput{})
		if err != nil {
			b.Fatal(err)
		}
		svc.WaitIdle()
		got, _ := svc.GetExecution(v.Name)
		if got.State != "SUCCEEDED" || got.Result != "50005000" {
			b.Fatalf("%s %s", got.State, got.Result)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/execution")
}

// BenchmarkWaitingMemory measures heap per execution waiting on a
// callback, over 10,000 waiting executions.
func BenchmarkWaitingMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		const n = 10000
		srv := startBench(b, "")
		svc := srv.Service
		wf := deployBench(b, svc, "wait", waitingSrc)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := 0; j < n; j++ {
			if _, err := svc.CreateExecution(wf, service.ExecutionInput{Argument: fmt.Sprint(j)}); err != nil {
				b.Fatal(err)
			}
		}
		svc.WaitIdle()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c := svc.Counts()["ACTIVE"]; c != n {
			b.Fatalf("%d waiting, want %d", c, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/waiting-execution")
		srv.Close()
	}
}

// BenchmarkCreate20000 creates 20,000 executions over REST, 128 at a time,
// with durable state, and waits until all of them succeed.
func BenchmarkCreate20000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		const n, parallel = 20000, 128
		srv := startBench(b, b.TempDir())
		wf := deployBench(b, srv.Service, "many", `
main:
  params: [x]
  steps:
    - a:
        assign:
          - y: ${x * 2}
    - r:
        return: ${y}
`)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel}}
		var wg sync.WaitGroup
		var mu sync.Mutex
		failures := 0
		sem := make(chan struct{}, parallel)
		start := time.Now()
		for j := 0; j < n; j++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(j int) {
				defer wg.Done()
				defer func() { <-sem }()
				body, _ := json.Marshal(map[string]any{"argument": fmt.Sprint(j)})
				resp, err := client.Post(srv.URL()+"/v1/"+wf+"/executions", "application/json", bytes.NewReader(body))
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}(j)
		}
		wg.Wait()
		srv.Service.WaitIdle()
		elapsed := time.Since(start)
		counts := srv.Service.Counts()
		if failures > 0 || counts["SUCCEEDED"] != n {
			b.Fatalf("failures=%d counts=%v", failures, counts)
		}
		b.ReportMetric(elapsed.Seconds(), "s/20000-executions")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "executions/s")
		srv.Close()
	}
}

// BenchmarkRestart10000Waiting measures a restart with 10,000 executions
// waiting on callbacks: from Start to every one loaded and deliverable.
func BenchmarkRestart10000Waiting(b *testing.B) {
	const n = 10000
	dir := b.TempDir()
	srv, err := workflows.Start(context.Background(), workflows.Options{StateDir: dir, Logf: func(string, ...any) {}})
	if err != nil {
		b.Fatal(err)
	}
	wf := deployBench(b, srv.Service, "wait", waitingSrc)
	var last string
	for j := 0; j < n; j++ {
		v, err := srv.Service.CreateExecution(wf, service.ExecutionInput{Argument: fmt.Sprint(j)})
		if err != nil {
			b.Fatal(err)
		}
		last = v.Name
	}
	srv.Service.WaitIdle()
	srv.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		srv2, err := workflows.Start(context.Background(), workflows.Options{StateDir: dir, Logf: func(string, ...any) {}})
		if err != nil {
			b.Fatal(err)
		}
		srv2.Service.WaitIdle()
		elapsed := time.Since(start)
		if c := srv2.Service.Counts()["ACTIVE"]; c != n {
			b.Fatalf("%d waiting after restart, want %d", c, n)
		}
		cbs, err := srv2.Service.ListCallbacks(last)
		if err != nil || len(cbs) != 1 || !cbs[0].Waiting {
			b.Fatalf("callbacks of %s after restart: %v %v", last, cbs, err)
		}
		b.ReportMetric(elapsed.Seconds(), "s/restart")
		srv2.Close()
	}
}

// BenchmarkForLoop10000REST is BenchmarkForLoop10000 through the REST API:
// POST the execution, then GET it until it is SUCCEEDED.
func BenchmarkForLoop10000REST(b *testing.B) {
	srv := startBench(b, b.TempDir())
	wf := deployBench(b, srv.Service, "loop", loopSrc)
	client := &http.Client{}
	get := func(url string, out any) {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(srv.URL()+"/v1/"+wf+"/executions", "application/json", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			b.Fatal(err)
		}
		var ex struct{ Name, State, Result string }
		if err := json.NewDecoder(resp.Body).Decode(&ex); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		for ex.State != "SUCCEEDED" {
			if ex.State == "FAILED" {
				b.Fatal("FAILED")
			}
			get(srv.URL()+"/v1/"+ex.Name, &ex)
		}
		if ex.Result != "50005000" {
			b.Fatalf("result %s", ex.Result)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/execution")
}
