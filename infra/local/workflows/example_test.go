package workflows_test

import (
	"context"
	"fmt"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/service"
)

// Start an emulator in process with a virtual clock, deploy a workflow and
// let a day pass in an instant.
func ExampleStart() {
	srv, err := workflows.Start(context.Background(), workflows.Options{
		Addr:  "127.0.0.1:0",
		Clock: workflows.ClockVirtual,
		Logf:  func(string, ...any) {},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	svc := srv.Service
	op, err := svc.CreateWorkflow(workflows.DefaultParent, "veto-window", service.WorkflowInput{SourceContents: `
- wait:
    call: sys.sleep
    args:
      seconds: 86400
- done:
    return: "implicit approval"
`})
	if err != nil {
		fmt.Println(err)
		return
	}
	ex, _ := svc.CreateExecution(op.Workflow.Name, service.ExecutionInput{})
	svc.WaitIdle()
	before, _ := svc.GetExecution(ex.Name)
	if _, err := svc.Advance(24 * time.Hour); err != nil {
		fmt.Println(err)
		return
	}
	after, _ := svc.GetExecution(ex.Name)
	fmt.Println(before.State, after.State, after.Result)
	// Output: ACTIVE SUCCEEDED "implicit approval"
}
