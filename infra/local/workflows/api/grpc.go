package api

import (
	"context"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	workflowspb "cloud.google.com/go/workflows/apiv1/workflowspb"
	executionspb "cloud.google.com/go/workflows/executions/apiv1/executionspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/infra/local/workflows/service"
)

// NewGRPC returns a gRPC server with the Executions, Workflows and
// long-running Operations services, for cloud.google.com/go/workflows
// clients (served on the REST port through HTTP/2 cleartext).
func NewGRPC(svc *service.Service) *grpc.Server {
	s := grpc.NewServer(grpc.UnaryInterceptor(statusErrors))
	executionspb.RegisterExecutionsServer(s, &execServer{svc: svc})
	workflowspb.RegisterWorkflowsServer(s, &wfServer{svc: svc})
	longrunningpb.RegisterOperationsServer(s, &opServer{svc: svc})
	return s
}

// statusErrors turns the service errors the servers below return into gRPC
// statuses. The servers keep service errors so that REST, which calls the
// same methods, answers them with their HTTP code.
func statusErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		e := service.AsError(err)
		return nil, status.Error(grpcCode(e.Status), e.Message)
	}
	return resp, nil
}

type execServer struct {
	executionspb.UnimplementedExecutionsServer
	svc *service.Service
}

func (s *execServer) CreateExecution(_ context.Context, r *executionspb.CreateExecutionRequest) (*executionspb.Execution, error) {
	v, err := s.svc.CreateExecution(r.GetParent(), executionInput(r.GetExecution()))
	if err != nil {
		return nil, err
	}
	return executionPB(v), nil
}

func (s *execServer) GetExecution(_ context.Context, r *executionspb.GetExecutionRequest) (*executionspb.Execution, error) {
	v, err := s.svc.GetExecution(r.GetName())
	if err != nil {
		return nil, err
	}
	return executionPB(v), nil
}

func (s *execServer) CancelExecution(_ context.Context, r *executionspb.CancelExecutionRequest) (*executionspb.Execution, error) {
	v, err := s.svc.CancelExecution(r.GetName())
	if err != nil {
		return nil, err
	}
	return executionPB(v), nil
}

func (s *execServer) ListExecutions(_ context.Context, r *executionspb.ListExecutionsRequest) (*executionspb.ListExecutionsResponse, error) {
	state, err := stateFilter(r.GetFilter())
	if err != nil {
		return nil, err
	}
	list, next, err := s.svc.ListExecutions(r.GetParent(), int(r.GetPageSize()), r.GetPageToken(), state)
	if err != nil {
		return nil, err
	}
	out := &executionspb.ListExecutionsResponse{NextPageToken: next}
	for _, v := range list {
		out.Executions = append(out.Executions, executionPB(v))
	}
	return out, nil
}

type wfServer struct {
	workflowspb.UnimplementedWorkflowsServer
	svc *service.Service
}

func (s *wfServer) GetWorkflow(_ context.Context, r *workflowspb.GetWorkflowRequest) (*workflowspb.Workflow, error) {
	w, err := s.svc.GetWorkflow(r.GetName())
	if err != nil {
		return nil, err
	}
	return workflowPB(w), nil
}

func (s *wfServer) ListWorkflows(_ context.Context, r *workflowspb.ListWorkflowsRequest) (*workflowspb.ListWorkflowsResponse, error) {
	list, next, err := s.svc.ListWorkflows(r.GetParent(), int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &workflowspb.ListWorkflowsResponse{Workflows: workflowPBs(list), NextPageToken: next}, nil
}

func (s *wfServer) ListWorkflowRevisions(_ context.Context, r *workflowspb.ListWorkflowRevisionsRequest) (*workflowspb.ListWorkflowRevisionsResponse, error) {
	list, next, err := s.svc.ListRevisions(r.GetName(), int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &workflowspb.ListWorkflowRevisionsResponse{Workflows: workflowPBs(list), NextPageToken: next}, nil
}

func (s *wfServer) CreateWorkflow(_ context.Context, r *workflowspb.CreateWorkflowRequest) (*longrunningpb.Operation, error) {
	op, err := s.svc.CreateWorkflow(r.GetParent(), r.GetWorkflowId(), workflowInput(r.GetWorkflow()))
	if err != nil {
		return nil, err
	}
	return operationPB(op)
}

func (s *wfServer) UpdateWorkflow(_ context.Context, r *workflowspb.UpdateWorkflowRequest) (*longrunningpb.Operation, error) {
	var mask []string
	for _, p := range r.GetUpdateMask().GetPaths() {
		// The service names fields as JSON does; gRPC masks name them as
		// the proto does, REST masks either way.
		mask = append(mask, snakeToCamel(p))
	}
	op, err := s.svc.UpdateWorkflow(r.GetWorkflow().GetName(), workflowInput(r.GetWorkflow()), mask)
	if err != nil {
		return nil, err
	}
	return operationPB(op)
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
		return nil, err
	}
	return operationPB(op)
}

type opServer struct {
	longrunningpb.UnimplementedOperationsServer
	svc *service.Service
}

func (s *opServer) GetOperation(_ context.Context, r *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	op, err := s.svc.GetOperation(r.GetName())
	if err != nil {
		return nil, err
	}
	return operationPB(op)
}
