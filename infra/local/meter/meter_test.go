package meter

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

func TestDiff(t *testing.T) {
	cases := []struct {
		name          string
		before, after map[string]int64
		want          map[string]int64
	}{
		{"grown and new counters", map[string]int64{"a": 1, "b": 2}, map[string]int64{"a": 4, "b": 2, "c": 3}, map[string]int64{"a": 3, "c": 3}},
		{"a counter gone (a reset between)", map[string]int64{"a": 5}, map[string]int64{}, map[string]int64{"a": -5}},
		{"nothing changed", map[string]int64{"a": 1}, map[string]int64{"a": 1}, map[string]int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff(Snapshot{Counters: tc.before}, Snapshot{Counters: tc.after})
			if len(d.Counters) != len(tc.want) {
				t.Fatalf("diff %v, want %v", d.Counters, tc.want)
			}
			for k, v := range tc.want {
				if d.Get(k) != v {
					t.Errorf("%s = %d, want %d", k, d.Get(k), v)
				}
			}
		})
	}
	if got := (Snapshot{Counters: map[string]int64{"x": 30}}).Per(4)["x"]; got != 7.5 {
		t.Errorf("Per: %v, want 7.5", got)
	}
}

// TestHandlerServesWorkflowSteps reads the Workflows emulator's steps through the meter's
// handler, and resets them.
func TestHandlerServesWorkflowSteps(t *testing.T) {
	emu := workflowstest.New(t)
	wf := emu.Deploy("steps", "main:\n  steps:\n    - a:\n        assign:\n          - x: 1\n    - b:\n        return: ${x}\n")
	m := New()
	m.Workflows(emu.URL())
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	usage := func() Snapshot {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/usage")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s Snapshot
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /v1/usage: %d %v", resp.StatusCode, err)
		}
		return s
	}
	m.addMap(map[string]int64{"firestore.reads": 2})
	for range 3 {
		if ex := emu.Run(wf, nil); ex.State != "SUCCEEDED" {
			t.Fatalf("execution %s", ex.State)
		}
	}
	s := usage()
	if s.Get("workflows.executions") != 3 || s.Get("workflows.steps") != 6 || s.Get("workflows.internal_steps") != 6 || s.Get("firestore.reads") != 2 {
		t.Fatalf("after 3 executions of 2 steps:\n%s", s)
	}
	resp, err := http.Post(srv.URL+"/v1/usage:reset", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reset: %v %v", resp, err)
	}
	resp.Body.Close()
	emu.Run(wf, nil)
	s = usage()
	if s.Get("workflows.executions") != 1 || s.Get("workflows.steps") != 2 || s.Get("firestore.reads") != 0 {
		t.Fatalf("after a reset and one execution:\n%s", s)
	}

	m.Workflows("http://127.0.0.1:1") // nothing listens there
	if _, err := m.Snapshot(context.Background()); err == nil {
		t.Fatal("a source that cannot be read gave a snapshot")
	}
}
