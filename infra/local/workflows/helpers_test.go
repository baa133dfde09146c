package workflows_test

import "waooaw.dev/governance/infra/local/workflows/service"

func serviceInput(src string) service.WorkflowInput {
	return service.WorkflowInput{SourceContents: src}
}
func execInput(arg string) service.ExecutionInput { return service.ExecutionInput{Argument: arg} }
