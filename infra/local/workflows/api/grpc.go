package api

import (
	"context"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	workflowspb "cloud.google.com/go/workflows/apiv1/workflowspb"
	executionspb "cloud.google.com/go/workflows/executions/apiv1/executionspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	spb "google.golang.org/genproto/googleapis/rpc/status"

	"waooaw.dev/governance/infra/local/workflows/service"
)

// NewGRPC returns a gRPC server with the Executions, Workflows and
// long-running Operations services, for cloud.google.com/go/workflows
// clients (served on the REST port through HTTP/2 cleartext).
func NewGRPC(svc *service.Service) *grpc.Server {
	s := grpc.NewServer()
	executionspb.RegisterExecutionsServer(s, &execServer{svc: svc})
	workflowspb.RegisterWorkflowsServer(s, &wfServer{svc: svc})
	longrunningpb.RegisterOperationsServer(s, &opServer{svc: svc})
	return s
}

func grpcErr(err error) error {
	e := service.AsError(err)
	c := codes.Internal
	switch e.Status {
	case "INVALID_ARGUMENT":
		c = codes.InvalidArgument
	case "NOT_FOUND":
		c = codes.NotFound
	case "ALREADY_EXISTS":
		c = codes.AlreadyExists
	case "FAILED_PRECONDITION":
		c = codes.FailedPrecondition
	}
	return status.Error(c, e.Message)
}

type execServer struct {
	executionspb.UnimplementedExecutionsServer
	svc *service.Service
}

func execPB(v service.View) *executionspb.Execution {
	e := &executionspb.Execution{
		Name: v.Name, StartTime: timestamppb.New(v.StartTime), Duration: durationpb.New(v.Duration),
		State:    executionspb.Execution_State(executionspb.Execution_State_value[v.State]),
		Argument: v.Argument, WorkflowRevisionId: v.Revision, Labels: v.Labels,
		CallLogLevel: executionspb.Execution_CallLogLevel(executionspb.Execution_CallLogLevel_value[v.CallLogLevel]),
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

func (s *execServer) CreateExecution(_ context.Context, r *executionspb.CreateExecutionRequest) (*executionspb.Execution, error) {
	in := service.ExecutionInput{}
	if e := r.GetExecution(); e != nil {
		in.Argument = e.GetArgument()
		in.Labels = e.GetLabels()
		if e.GetCallLogLevel() != 0 {
			in.CallLogLevel = e.GetCallLogLevel().String()
		}
	}
	v, err := s.svc.CreateExecution(r.GetParent(), in)
	if err != nil {
		return nil, grpcErr(err)
	}
	return execPB(v), nil
}

func (s *execServer) GetExecution(_ context.Context, r *executionspb.GetExecutionRequest) (*executionspb.Execution, error) {
	v, err := s.svc.GetExecution(r.GetName())
	if err != nil {
		return nil, grpcErr(err)
	}
	return execPB(v), nil
}

func (s *execServer) CancelExecution(_ context.Context, r *executionspb.CancelExecutionRequest) (*executionspb.Execution, error) {
	v, err := s.svc.CancelExecution(r.GetName())
	if err != nil {
		return nil, grpcErr(err)
	}
	return execPB(v), nil
}

func (s *execServer) ListExecutions(_ context.Context, r *executionspb.ListExecutionsRequest) (*executionspb.ListExecutionsResponse, error) {
	state, err := stateFilter(r.GetFilter())
	if err != nil {
		return nil, grpcErr(err)
	}
	list, next, err := s.svc.ListExecutions(r.GetParent(), int(r.GetPageSize()), r.GetPageToken(), state)
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &executionspb.ListExecutionsResponse{NextPageToken: next}
	for _, v := range list {
		out.Executions = append(out.Executions, execPB(v))
	}
	return out, nil
}

type wfServer struct {
	workflowspb.UnimplementedWorkflowsServer
	svc *service.Service
}

func wfPB(w *service.Workflow) *workflowspb.Workflow {
	return &workflowspb.Workflow{
		Name: w.Name, Description: w.Description, State: workflowspb.Workflow_ACTIVE, RevisionId: w.RevisionID,
		CreateTime: timestamppb.New(w.CreateTime), UpdateTime: timestamppb.New(w.UpdateTime),
		RevisionCreateTime: timestamppb.New(w.RevisionCreateTime), Labels: w.Labels,
		ServiceAccount: w.ServiceAccount, UserEnvVars: w.UserEnvVars,
		SourceCode: &workflowspb.Workflow_SourceContents{SourceContents: w.SourceContents},
	}
}

func opPB(op *service.Operation) (*longrunningpb.Operation, error) {
	md, err := anypb.New(&workflowspb.OperationMetadata{CreateTime: timestamppb.New(op.Created),
		EndTime: timestamppb.New(op.Created), Target: op.Workflow.Name, Verb: op.Verb, ApiVersion: "v1"})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	out := &longrunningpb.Operation{Name: op.Name, Metadata: md, Done: true}
	switch {
	case op.Err != nil:
		out.Result = &longrunningpb.Operation_Error{Error: &spb.Status{Code: int32(grpcCode(op.Err.Status)), Message: op.Err.Message}}
	case op.Verb == "delete":
		resp, err := anypb.New(&emptypb.Empty{})
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		out.Result = &longrunningpb.Operation_Response{Response: resp}
	default:
		resp, err := anypb.New(wfPB(op.Workflow))
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		out.Result = &longrunningpb.Operation_Response{Response: resp}
	}
	return out, nil
}

func (s *wfServer) GetWorkflow(_ context.Context, r *workflowspb.GetWorkflowRequest) (*workflowspb.Workflow, error) {
	w, err := s.svc.GetWorkflow(r.GetName())
	if err != nil {
		return nil, grpcErr(err)
	}
	return wfPB(w), nil
}

func (s *wfServer) ListWorkflows(_ context.Context, r *workflowspb.ListWorkflowsRequest) (*workflowspb.ListWorkflowsResponse, error) {
	list, next, err := s.svc.ListWorkflows(r.GetParent(), int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &workflowspb.ListWorkflowsResponse{NextPageToken: next}
	for _, w := range list {
		out.Workflows = append(out.Workflows, wfPB(w))
	}
	return out, nil
}

func (s *wfServer) CreateWorkflow(_ context.Context, r *workflowspb.CreateWorkflowRequest) (*longrunningpb.Operation, error) {
	w := r.GetWorkflow()
	op, err := s.svc.CreateWorkflow(r.GetParent(), r.GetWorkflowId(), service.WorkflowInput{
		SourceContents: w.GetSourceContents(), Description: w.GetDescription(), Labels: w.GetLabels(),
		ServiceAccount: w.GetServiceAccount(), UserEnvVars: w.GetUserEnvVars()})
	if err != nil {
		return nil, grpcErr(err)
	}
	return opPB(op)
}

func (s *wfServer) UpdateWorkflow(_ context.Context, r *workflowspb.UpdateWorkflowRequest) (*longrunningpb.Operation, error) {
	w := r.GetWorkflow()
	var mask []string
	for _, p := range r.GetUpdateMask().GetPaths() {
		// Field masks arrive in proto names; the service uses JSON names.
		mask = append(mask, snakeToCamel(p))
	}
	op, err := s.svc.UpdateWorkflow(w.GetName(), service.WorkflowInput{SourceContents: w.GetSourceContents(),
		Description: w.GetDescription(), Labels: w.GetLabels(), UserEnvVars: w.GetUserEnvVars()}, mask)
	if err != nil {
		return nil, grpcErr(err)
	}
	return opPB(op)
}

func snakeToCamel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

func (s *wfServer) DeleteWorkflow(_ context.Context, r *workflowspb.DeleteWorkflowRequest) (*longrunningpb.Operation, error) {
	op, err := s.svc.DeleteWorkflow(r.GetName())
	if err != nil {
		return nil, grpcErr(err)
	}
	return opPB(op)
}

func (s *wfServer) ListWorkflowRevisions(_ context.Context, r *workflowspb.ListWorkflowRevisionsRequest) (*workflowspb.ListWorkflowRevisionsResponse, error) {
	list, next, err := s.svc.ListRevisions(r.GetName(), int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &workflowspb.ListWorkflowRevisionsResponse{NextPageToken: next}
	for _, w := range list {
		out.Workflows = append(out.Workflows, wfPB(w))
	}
	return out, nil
}

type opServer struct {
	longrunningpb.UnimplementedOperationsServer
	svc *service.Service
}

func (s *opServer) GetOperation(_ context.Context, r *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	op, err := s.svc.GetOperation(r.GetName())
	if err != nil {
		return nil, grpcErr(err)
	}
	return opPB(op)
}
