package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

func TestDeployFiles(t *testing.T) {
	emu := workflowstest.New(t)
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("agent_creation.yaml", "- r:\n    return: 1\n")
	names, err := workflows.DeployFiles(context.Background(), emu.URL(), workflowstest.Parent, a)
	if err != nil || len(names) != 1 || names[0] != workflowstest.Parent+"/workflows/agent_creation" {
		t.Fatalf("deploy: %v %v", names, err)
	}
	var n int
	emu.Result(emu.Run(names[0], nil), &n)
	if n != 1 {
		t.Fatalf("revision 1 returned %d", n)
	}
	// Deploying again patches: a new revision runs for new executions.
	write("agent_creation.yaml", "- r:\n    return: 2\n")
	if _, err := workflows.DeployFiles(context.Background(), emu.URL(), workflowstest.Parent, a); err != nil {
		t.Fatal(err)
	}
	emu.Result(emu.Run(names[0], nil), &n)
	if n != 2 {
		t.Fatalf("revision 2 returned %d", n)
	}
	bad := write("broken.yaml", "- a:\n    next: nowhere\n")
	_, err = workflows.DeployFiles(context.Background(), emu.URL(), workflowstest.Parent, bad)
	if err == nil || !strings.Contains(err.Error(), `step \"a\"`) {
		t.Fatalf("broken workflow: %v", err)
	}
}
