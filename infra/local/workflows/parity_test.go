package workflows_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	wfapi "cloud.google.com/go/workflows/apiv1"
	workflowspb "cloud.google.com/go/workflows/apiv1/workflowspb"
	executions "cloud.google.com/go/workflows/executions/apiv1"
	executionspb "cloud.google.com/go/workflows/executions/apiv1/executionspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// REST and gRPC answer the same resources: a REST body read back with
// protojson equals the message the official gRPC client receives.
func TestRESTAnswersWhatGRPCAnswers(t *testing.T) {
	emu := workflowstest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []option.ClientOption{option.WithEndpoint(emu.Addr()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	wfc, err := wfapi.NewClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer wfc.Close()
	ec, err := executions.NewClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	conn, err := grpc.NewClient(emu.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ops := longrunningpb.NewOperationsClient(conn)

	var op struct{ Name string }
	if code := emu.Do("POST", "/v1/"+workflowstest.Parent+"/workflows?workflowId=p", map[string]any{
		"sourceContents": "main:\n  params: [a]\n  steps:\n    - s:\n        call: sys.sleep\n        args:\n          seconds: 1.5\n    - r:\n        return: ${a}\n",
		"description":    "d", "labels": map[string]string{"k": "v", "l": "w"}, "callLogLevel": "LOG_ERRORS_ONLY",
	}, &op); code != 200 {
		t.Fatalf("create: HTTP %d", code)
	}
	wf := workflowstest.Parent + "/workflows/p"
	failing := emu.Deploy("f", "main:\n  steps:\n    - c:\n        call: inner\ninner:\n  steps:\n    - boom:\n        raise:\n          code: 7\n")
	withArg := emu.Run(wf, map[string]any{"x": 1})
	noArg := emu.Run(wf, nil)
	emu.Advance(1500 * time.Millisecond)
	sleeping := emu.Run(wf, nil)
	failed := emu.Run(failing, nil)

	type tc struct {
		name, path string
		rest       proto.Message // filled from the REST body
		grpc       func() (proto.Message, error)
	}
	cases := []tc{
		{"workflow", wf, &workflowspb.Workflow{}, func() (proto.Message, error) {
			return wfc.GetWorkflow(ctx, &workflowspb.GetWorkflowRequest{Name: wf})
		}},
		{"operation", op.Name, &longrunningpb.Operation{}, func() (proto.Message, error) {
			return ops.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: op.Name})
		}},
		{"executions list", wf + "/executions", &executionspb.ListExecutionsResponse{}, func() (proto.Message, error) {
			return executionspb.NewExecutionsClient(conn).ListExecutions(ctx, &executionspb.ListExecutionsRequest{Parent: wf})
		}},
	}
	for label, ex := range map[string]workflowstest.Execution{"succeeded": withArg, "without argument": noArg, "sleeping": sleeping, "failed": failed} {
		name := ex.Name
		cases = append(cases, tc{"execution " + label, name, &executionspb.Execution{}, func() (proto.Message, error) {
			return ec.GetExecution(ctx, &executionspb.GetExecutionRequest{Name: name})
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var raw json.RawMessage
			if code := emu.Do("GET", "/v1/"+c.path, nil, &raw); code != 200 {
				t.Fatalf("GET %s: %d %s", c.path, code, raw)
			}
			if err := protojson.Unmarshal(raw, c.rest); err != nil {
				t.Fatalf("REST body is not the resource: %v\n%s", err, raw)
			}
			want, err := c.grpc()
			if err != nil {
				t.Fatalf("gRPC: %v", err)
			}
			w, r := parts(t, want), parts(t, c.rest)
			for i := range w {
				if !proto.Equal(w[i], r[i]) {
					t.Fatalf("REST and gRPC differ\ngRPC: %v\nREST: %v", w[i], r[i])
				}
			}
		})
	}
}

// parts splits an operation into its envelope and the contents of its Any
// fields: packed bytes of equal messages holding maps need not be equal.
func parts(t *testing.T, m proto.Message) []proto.Message {
	t.Helper()
	op, ok := m.(*longrunningpb.Operation)
	if !ok {
		return []proto.Message{m}
	}
	md, err := op.GetMetadata().UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := op.GetResponse().UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	return []proto.Message{&longrunningpb.Operation{Name: op.GetName(), Done: op.GetDone()}, md, resp}
}
