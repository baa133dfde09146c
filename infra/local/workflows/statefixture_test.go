package workflows_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// The fixture is a state directory written by an earlier build of the
// emulator; `go test -run TestStateFixtureResumes -update-state-fixture`
// writes it anew (only when the persisted format changes on purpose).
var updateStateFixture = flag.Bool("update-state-fixture", false, "rewrite testdata/state-v1")

const fixtureDir = "testdata/state-v1"

var fixtureStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Each workflow leaves its execution waiting inside a different mix of
// frames: a callback in a try in a subworkflow called from a for loop; a
// parallel for over a range with some iterations done; a retry backoff with
// a predicate subworkflow; a plain for over a range.
var fixtureWorkflows = map[string]string{
	"nested": `
main:
  params: [args]
  steps:
    - init:
        assign:
          - total: 0
    - loop:
        for:
          value: v
          in: ${args.items}
          steps:
            - sub:
                call: ask
                args:
                  v: ${v}
                result: got
            - add:
                assign:
                  - total: ${total + got}
    - r:
        return: ${total}
ask:
  params: [v]
  steps:
    - guarded:
        try:
          steps:
            - cb:
                call: events.create_callback_endpoint
                result: cb
            - await:
                call: events.await_callback
                args:
                  callback: ${cb}
                  timeout: 86400
                result: req
            - out:
                return: ${v * req.http_request.body.k}
        except:
          as: e
          steps:
            - fail:
                return: -1
`,
	"fanout": `
main:
  steps:
    - init:
        assign:
          - n: 0
          - acc: []
    - fan:
        parallel:
          shared: [n]
          for:
            value: i
            range: [1, 3]
            steps:
              - nap:
                  call: sys.sleep
                  args:
                    seconds: ${i * 60}
              - bump:
                  assign:
                    - n: ${n + i}
    - branches:
        parallel:
          shared: [acc]
          branches:
            - a:
                steps:
                  - s1:
                      call: sys.sleep
                      args:
                        seconds: 30
                  - p1:
                      assign:
                        - acc: ${list.concat(acc, "a")}
            - b:
                steps:
                  - p2:
                      assign:
                        - acc: ${list.concat(acc, "b")}
    - r:
        return: ${[n, len(acc)]}
`,
	"retry": `
main:
  steps:
    - init:
        assign:
          - attempts: 0
    - t:
        try:
          steps:
            - bump:
                assign:
                  - attempts: ${attempts + 1}
            - check:
                switch:
                  - condition: ${attempts < 3}
                    steps:
                      - boom:
                          raise: "again"
            - ok:
                return: ${attempts}
        retry:
          predicate: ${always}
          max_retries: 5
          backoff:
            initial_delay: 100
            max_delay: 1000
            multiplier: 2
always:
  params: [e]
  steps:
    - y:
        return: true
`,
	"ranged": `
main:
  steps:
    - init:
        assign:
          - sum: 0
    - loop:
        for:
          value: i
          range: [1, 4]
          steps:
            - s:
                call: sys.sleep
                args:
                  seconds: 60
            - a:
                assign:
                  - sum: ${sum + i}
    - r:
        return: ${sum}
`,
}

var fixtureArgs = map[string]any{"nested": map[string]any{"items": []int{1, 2}}}

// writeStateFixture runs every fixture workflow until it waits and leaves
// the state directory behind.
func writeStateFixture(t *testing.T) {
	if err := os.RemoveAll(fixtureDir); err != nil {
		t.Fatal(err)
	}
	emu := workflowstest.NewWithOptions(t, workflows.Options{StateDir: fixtureDir, VirtualStart: fixtureStart})
	for id, src := range fixtureWorkflows {
		emu.Run(emu.Deploy(id, src), fixtureArgs[id])
	}
	// One of three parallel iterations done, one retry attempt failed,
	// one range iteration done.
	emu.Advance(90 * time.Second)
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}
}

// An execution persisted by an earlier build resumes and finishes: the
// serialised frames, waits and callbacks keep their meaning.
func TestStateFixtureResumes(t *testing.T) {
	if *updateStateFixture {
		writeStateFixture(t)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(fixtureDir)); err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
	// The copy must be writable: the emulator replaces records as they change.
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	emu := workflowstest.NewWithOptions(t, workflows.Options{StateDir: dir, VirtualStart: fixtureStart})
	only := func(id string) workflowstest.Execution {
		t.Helper()
		var page struct {
			Executions []workflowstest.Execution `json:"executions"`
		}
		emu.Do("GET", "/v1/"+workflowstest.Parent+"/workflows/"+id+"/executions", nil, &page)
		if len(page.Executions) != 1 || page.Executions[0].State != "ACTIVE" {
			t.Fatalf("%s: want one ACTIVE execution in the fixture, got %+v", id, page.Executions)
		}
		return page.Executions[0]
	}
	nested := only("nested")
	for i := 0; i < 2; i++ {
		var cbs struct {
			Callbacks []struct{ Name, Waiters string } `json:"callbacks"`
		}
		emu.Do("GET", "/v1/"+nested.Name+"/callbacks", nil, &cbs)
		// Each iteration makes its own endpoint; one is awaited.
		awaited := ""
		for _, c := range cbs.Callbacks {
			if c.Waiters == "1" {
				awaited = c.Name
			}
		}
		if len(cbs.Callbacks) != i+1 || awaited == "" {
			t.Fatalf("nested, iteration %d: callbacks %+v", i, cbs)
		}
		if code := emu.Callback("POST", emu.URL()+"/v1/"+awaited, map[string]any{"k": 10}); code != 200 {
			t.Fatalf("nested, iteration %d: callback answered %d", i, code)
		}
	}
	names := map[string]string{"nested": nested.Name}
	for _, id := range []string{"fanout", "retry", "ranged"} {
		names[id] = only(id).Name
	}
	emu.Advance(time.Hour)
	cases := []struct {
		id   string
		want string
	}{
		{"nested", "30"},    // 1*10 + 2*10
		{"fanout", "[6,2]"}, // 1+2+3, both branches
		{"retry", "3"},      // third attempt
		{"ranged", "10"},    // 1+2+3+4
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			ex := emu.Get(names[c.id])
			if ex.State != "SUCCEEDED" || ex.Result != c.want {
				t.Fatalf("%s: %s %q, want SUCCEEDED %q (%+v)", c.id, ex.State, ex.Result, c.want, ex.Error)
			}
		})
	}
}
