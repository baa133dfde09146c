package ui_test

import (
	"io"
	"net/http"
	"testing"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// BenchmarkExecutionPage renders the page of an execution holding as much as one keeps
// (a full step history and the last 100 sys.log lines) while it awaits a callback.
func BenchmarkExecutionPage(b *testing.B) {
	emu := workflowstest.New(b)
	wf := emu.Deploy("busy", `main:
  steps:
    - stage_1_loop:
        for:
          value: i
          range: [1, 990]
          steps:
            - say:
                call: sys.log
                args:
                  json:
                    request_id: r-1
                    stage: 1
                    step: ${"step_" + string(i)}
                    outcome: pass
                  severity: INFO
    - stage_2_callback:
        call: events.create_callback_endpoint
        result: cb
    - stage_2_await:
        call: events.await_callback
        args:
          callback: ${cb}
`)
	ex := emu.Run(wf, map[string]any{"request_id": "r-1"})
	if ex.State != "ACTIVE" {
		b.Fatalf("%s is %s", ex.Name, ex.State)
	}
	url := emu.URL() + exPage(wf, ex.Name)
	var size int64
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET: %d %v", resp.StatusCode, err)
		}
		size = n
	}
	b.ReportMetric(float64(size), "page-bytes")
}
