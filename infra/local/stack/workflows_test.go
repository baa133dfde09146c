package stack

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// waitSrc waits for one callback, then answers with the URL its environment gives and what
// the callback carried.
const waitSrc = `
main:
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
        return: ${sys.get_env("GENESIS_URL") + " " + req.http_request.body.v}
`

// TestDeployWorkflows deploys the spec's workflows the way each start does: environment from
// the running functions, a variable left out (with a warning) for one that is not running,
// a workflow without its source skipped; a redeploy keeps a waiting execution, which then
// completes with the new environment.
func TestDeployWorkflows(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "workflows"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := &infraspec.Spec{Region: "europe-west1", Workflows: []infraspec.Workflow{
		{Name: "wait", Source: "workflows/wait.yaml", ServiceAccount: "wf-wait", CallLogLevel: "LOG_ERRORS_ONLY",
			FunctionURLs: map[string]string{"GENESIS_URL": "genesis", "REGISTRY_URL": "registry"}},
		{Name: "later", Source: "workflows/later.yaml", ServiceAccount: "wf-wait", CallLogLevel: "LOG_NONE"},
	}}
	emu := workflowstest.New(t)
	name := WorkflowsParent(spec) + "/workflows/wait"
	rounds := []struct {
		name     string
		source   string
		fns      map[string]string
		wantEnv  map[string]string
		wantWarn string // "" when every variable is set
		wantRevs int
	}{
		{"registry not running", waitSrc, map[string]string{"genesis": "http://g1"},
			map[string]string{"GENESIS_URL": "http://g1"}, "without REGISTRY_URL: function registry is not running", 1},
		{"same source, new URLs", waitSrc, map[string]string{"genesis": "http://g2", "registry": "http://r2"},
			map[string]string{"GENESIS_URL": "http://g2", "REGISTRY_URL": "http://r2"}, "", 1},
		{"new source", waitSrc + "# revised\n", map[string]string{"genesis": "http://g3", "registry": "http://r3"},
			map[string]string{"GENESIS_URL": "http://g3", "REGISTRY_URL": "http://r3"}, "", 2},
	}
	var waiting string
	for _, rd := range rounds {
		if err := os.WriteFile(filepath.Join(root, "workflows", "wait.yaml"), []byte(rd.source), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		names, err := deployWorkflows(context.Background(), root, emu.URL(), spec, rd.fns, &out)
		if err != nil {
			t.Fatalf("%s: %v", rd.name, err)
		}
		if len(names) != 1 || names[0] != name {
			t.Fatalf("%s: deployed %v, want [%s]", rd.name, names, name)
		}
		if !strings.Contains(out.String(), "skipped     workflow later: no workflows/later.yaml yet") {
			t.Errorf("%s: the missing source is not reported: %q", rd.name, out.String())
		}
		if gotWarn := strings.Contains(out.String(), "warning"); gotWarn != (rd.wantWarn != "") || !strings.Contains(out.String(), rd.wantWarn) {
			t.Errorf("%s: output %q, want warning %q", rd.name, out.String(), rd.wantWarn)
		}
		var wf struct {
			ServiceAccount string            `json:"serviceAccount"`
			CallLogLevel   string            `json:"callLogLevel"`
			UserEnvVars    map[string]string `json:"userEnvVars"`
		}
		if code := emu.Do("GET", "/v1/"+name, nil, &wf); code != 200 {
			t.Fatalf("%s: get workflow: HTTP %d", rd.name, code)
		}
		if !maps.Equal(wf.UserEnvVars, rd.wantEnv) || wf.CallLogLevel != "LOG_ERRORS_ONLY" || wf.ServiceAccount != ServiceAccountName("wf-wait") {
			t.Errorf("%s: deployed %+v, want env %v", rd.name, wf, rd.wantEnv)
		}
		var revs struct {
			Workflows []struct{} `json:"workflows"`
		}
		if code := emu.Do("GET", "/v1/"+name+":listRevisions", nil, &revs); code != 200 || len(revs.Workflows) != rd.wantRevs {
			t.Errorf("%s: %d revisions (HTTP %d), want %d", rd.name, len(revs.Workflows), code, rd.wantRevs)
		}
		if waiting == "" {
			waiting = emu.Run(name, nil).Name
		}
		if st := emu.Get(waiting).State; st != "ACTIVE" {
			t.Fatalf("%s: the waiting execution is %s after the deploy", rd.name, st)
		}
	}
	var cbs struct {
		Callbacks []struct{ Name string } `json:"callbacks"`
	}
	if emu.Do("GET", "/v1/"+waiting+"/callbacks", nil, &cbs); len(cbs.Callbacks) != 1 {
		t.Fatalf("callbacks of %s: %+v", waiting, cbs)
	}
	if code := emu.Callback("POST", emu.URL()+"/v1/"+cbs.Callbacks[0].Name, map[string]string{"v": "ok"}); code != 200 {
		t.Fatalf("callback: HTTP %d", code)
	}
	var got string
	emu.Result(emu.Get(waiting), &got)
	if got != "http://g3 ok" {
		t.Errorf("result %q, want the last deploy's URL and the callback's value", got)
	}
}
