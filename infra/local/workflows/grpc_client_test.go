package workflows_test

import (
	"context"
	"testing"
	"time"

	wfapi "cloud.google.com/go/workflows/apiv1"
	workflowspb "cloud.google.com/go/workflows/apiv1/workflowspb"
	executions "cloud.google.com/go/workflows/executions/apiv1"
	executionspb "cloud.google.com/go/workflows/executions/apiv1/executionspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// The official Go clients deploy and run a workflow over gRPC, pointed at
// the emulator with option.WithEndpoint and insecure credentials.
func TestOfficialGoClients(t *testing.T) {
	emu := workflowstest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []option.ClientOption{
		option.WithEndpoint(emu.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
	wfc, err := wfapi.NewClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer wfc.Close()
	op, err := wfc.CreateWorkflow(ctx, &workflowspb.CreateWorkflowRequest{
		Parent:     workflowstest.Parent,
		WorkflowId: "grpc",
		Workflow: &workflowspb.Workflow{SourceCode: &workflowspb.Workflow_SourceContents{SourceContents: `
main:
  params: [args]
  steps:
    - r:
        return: ${"hello " + args.name}
`}},
	})
	if err != nil {
		t.Fatalf("CreateWorkflow: %v", err)
	}
	wf, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("CreateWorkflow operation: %v", err)
	}
	if wf.GetRevisionId() == "" || wf.GetName() != workflowstest.Parent+"/workflows/grpc" {
		t.Fatalf("workflow %+v", wf)
	}

	ec, err := executions.NewClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	ex, err := ec.CreateExecution(ctx, &executionspb.CreateExecutionRequest{
		Parent:    wf.GetName(),
		Execution: &executionspb.Execution{Argument: `{"name":"grpc"}`},
	})
	if err != nil {
		t.Fatalf("CreateExecution: %v", err)
	}
	emu.Service.WaitIdle()
	got, err := ec.GetExecution(ctx, &executionspb.GetExecutionRequest{Name: ex.GetName()})
	if err != nil {
		t.Fatalf("GetExecution: %v", err)
	}
	if got.GetState() != executionspb.Execution_SUCCEEDED || got.GetResult() != `"hello grpc"` {
		t.Fatalf("execution %v %q", got.GetState(), got.GetResult())
	}
	it := ec.ListExecutions(ctx, &executionspb.ListExecutionsRequest{Parent: wf.GetName()})
	first, err := it.Next()
	if err != nil || first.GetName() != ex.GetName() {
		t.Fatalf("ListExecutions: %v %v", first, err)
	}
	_, err = ec.GetExecution(ctx, &executionspb.GetExecutionRequest{Name: wf.GetName() + "/executions/nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("missing execution: %v", err)
	}
	bad, err := wfc.CreateWorkflow(ctx, &workflowspb.CreateWorkflowRequest{Parent: workflowstest.Parent, WorkflowId: "bad",
		Workflow: &workflowspb.Workflow{SourceCode: &workflowspb.Workflow_SourceContents{SourceContents: "- a:\n    next: nowhere\n"}}})
	if err == nil {
		_, err = bad.Wait(ctx)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid workflow: %v", err)
	}
}
