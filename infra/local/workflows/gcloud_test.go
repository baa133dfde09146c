package workflows_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// gcloud drives the emulator through its REST API: endpoint overrides,
// credentials disabled, in a throwaway configuration directory.
func TestGcloud(t *testing.T) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		t.Fatalf("gcloud is part of this machine image and required here: %v", err)
	}
	emu := workflowstest.New(t)
	emu.Deploy("hello", `
main:
  params: [args]
  steps:
    - r:
        return: ${"hi " + args.name}
`)
	env := append(os.Environ(),
		"CLOUDSDK_CONFIG="+t.TempDir(),
		"CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWEXECUTIONS="+emu.URL()+"/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWS="+emu.URL()+"/",
		"CLOUDSDK_CORE_PROJECT=test-project",
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		// Nothing may leave the machine: no usage reports, no update checks.
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
	)
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gcloud, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("gcloud %s: %v\n%s", strings.Join(args, " "), err, msg)
		}
		return out
	}
	var ex struct {
		Name   string `json:"name"`
		State  string `json:"state"`
		Result string `json:"result"`
	}
	out := run("workflows", "run", "hello", "--location=us-central1", `--data={"name":"gcloud"}`, "--format=json")
	if err := json.Unmarshal(out, &ex); err != nil {
		t.Fatalf("gcloud output %q: %v", out, err)
	}
	if ex.State != "SUCCEEDED" || ex.Result != `"hi gcloud"` {
		t.Fatalf("gcloud run: %+v", ex)
	}
	var list []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	out = run("workflows", "executions", "list", "hello", "--location=us-central1", "--format=json")
	if err := json.Unmarshal(out, &list); err != nil || len(list) != 1 || list[0].Name != ex.Name {
		t.Fatalf("gcloud executions list: %s %v", out, err)
	}
}
