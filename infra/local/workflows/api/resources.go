package api

import (
	"fmt"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	workflowspb "cloud.google.com/go/workflows/apiv1/workflowspb"
	executionspb "cloud.google.com/go/workflows/executions/apiv1/executionspb"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"waooaw.dev/governance/infra/local/workflows/service"
)

// The service model and Google's v1 resources meet here, once: gRPC answers
// these messages as they are and REST answers them through protojson.

// grpcCodes maps the service's status names to gRPC codes; any other status
// is codes.Internal.
var grpcCodes = map[string]codes.Code{
	"INVALID_ARGUMENT":    codes.InvalidArgument,
	"NOT_FOUND":           codes.NotFound,
	"ALREADY_EXISTS":      codes.AlreadyExists,
	"FAILED_PRECONDITION": codes.FailedPrecondition,
}

func grpcCode(status string) codes.Code {
	if c, ok := grpcCodes[status]; ok {
		return c
	}
	return codes.Internal
}

// workflowPB is a workflow as the Workflows API v1 resource.
func workflowPB(w *service.Workflow) *workflowspb.Workflow {
	return &workflowspb.Workflow{
		Name: w.Name, Description: w.Description, RevisionId: w.RevisionID,
		State:              workflowspb.Workflow_State(workflowspb.Workflow_State_value[w.State]),
		CreateTime:         timestamppb.New(w.CreateTime),
		UpdateTime:         timestamppb.New(w.UpdateTime),
		RevisionCreateTime: timestamppb.New(w.RevisionCreateTime),
		Labels:             w.Labels,
		CallLogLevel:       workflowspb.Workflow_CallLogLevel(workflowspb.Workflow_CallLogLevel_value[w.CallLogLevel]),
		ServiceAccount:     w.ServiceAccount, UserEnvVars: w.UserEnvVars,
		SourceCode: &workflowspb.Workflow_SourceContents{SourceContents: w.SourceContents},
	}
}

func workflowPBs(list []*service.Workflow) []*workflowspb.Workflow {
	out := make([]*workflowspb.Workflow, len(list))
	for i, w := range list {
		out[i] = workflowPB(w)
	}
	return out
}

// workflowInput is what a create or patch request asks of the service.
func workflowInput(w *workflowspb.Workflow) service.WorkflowInput {
	in := service.WorkflowInput{SourceContents: w.GetSourceContents(), Description: w.GetDescription(),
		Labels: w.GetLabels(), ServiceAccount: w.GetServiceAccount(), UserEnvVars: w.GetUserEnvVars()}
	if l := w.GetCallLogLevel(); l != workflowspb.Workflow_CALL_LOG_LEVEL_UNSPECIFIED {
		in.CallLogLevel = l.String()
	}
	return in
}

// executionPB is an execution as the Executions API v1 resource.
func executionPB(v service.View) *executionspb.Execution {
	e := &executionspb.Execution{
		Name: v.Name, StartTime: timestamppb.New(v.StartTime), Duration: durationpb.New(v.Duration),
		State:    executionspb.Execution_State(executionspb.Execution_State_value[v.State]),
		Argument: v.Argument, WorkflowRevisionId: v.Revision, Labels: v.Labels,
		CallLogLevel: executionspb.Execution_CallLogLevel(executionspb.Execution_CallLogLevel_value[v.CallLogLevel]),
	}
	if e.Argument == "" {
		// Google answers a run started without an argument with JSON null.
		e.Argument = "null"
	}
	if !v.EndTime.IsZero() {
		e.EndTime = timestamppb.New(v.EndTime)
	}
	if v.State == service.StateSucceeded {
		e.Result = v.Result
	}
	if v.Error != nil {
		st := &executionspb.Execution_StackTrace{}
		for _, el := range v.Error.StackTrace {
			st.Elements = append(st.Elements, &executionspb.Execution_StackTraceElement{Step: el.Step, Routine: el.Routine,
				Position: &executionspb.Execution_StackTraceElement_Position{Line: int64(el.Line), Column: 1, Length: int64(len(el.Step))}})
		}
		e.Error = &executionspb.Execution_Error{Payload: v.Error.Payload, Context: v.Error.Context, StackTrace: st}
	}
	if len(v.Current) > 0 {
		e.Status = &executionspb.Execution_Status{}
		for _, c := range v.Current {
			e.Status.CurrentSteps = append(e.Status.CurrentSteps, &executionspb.Execution_Status_Step{Routine: c.Routine, Step: c.Step})
		}
	}
	return e
}

// executionInput is what a create request asks of the service.
func executionInput(e *executionspb.Execution) service.ExecutionInput {
	in := service.ExecutionInput{Argument: e.GetArgument(), Labels: e.GetLabels()}
	if l := e.GetCallLogLevel(); l != executionspb.Execution_CALL_LOG_LEVEL_UNSPECIFIED {
		in.CallLogLevel = l.String()
	}
	return in
}

// operationPB is a finished long-running operation on a workflow.
func operationPB(op *service.Operation) (*longrunningpb.Operation, error) {
	md, err := anypb.New(&workflowspb.OperationMetadata{CreateTime: timestamppb.New(op.Created),
		EndTime: timestamppb.New(op.Created), Target: op.Workflow.Name, Verb: op.Verb, ApiVersion: "v1"})
	if err != nil {
		return nil, fmt.Errorf("operation %s metadata: %w", op.Name, err)
	}
	out := &longrunningpb.Operation{Name: op.Name, Metadata: md, Done: true}
	if op.Err != nil {
		out.Result = &longrunningpb.Operation_Error{Error: &spb.Status{Code: int32(grpcCode(op.Err.Status)), Message: op.Err.Message}}
		return out, nil
	}
	var resp proto.Message = &emptypb.Empty{}
	if op.Verb != "delete" {
		resp = workflowPB(op.Workflow)
	}
	r, err := anypb.New(resp)
	if err != nil {
		return nil, fmt.Errorf("operation %s response: %w", op.Name, err)
	}
	out.Result = &longrunningpb.Operation_Response{Response: r}
	return out, nil
}
