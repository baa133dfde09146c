package workflowexec

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/api/googleapi"
	executions "google.golang.org/api/workflowexecutions/v1"
)

// ErrNotActive is returned by Cancel for an execution that already ended.
var ErrNotActive = errors.New("workflowexec: execution is not active")

// Cancel stops an active execution (state CANCELLED). An execution that already ended
// answers FAILED_PRECONDITION, returned as ErrNotActive; one the API does not know, as
// ErrNotFound.
func (c *Client) Cancel(ctx context.Context, execution string) error {
	_, err := c.svc.Projects.Locations.Workflows.Executions.Cancel(execution, &executions.CancelExecutionRequest{}).Context(ctx).Do()
	var ge *googleapi.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, execution)
	case errors.As(err, &ge) && ge.Code == http.StatusBadRequest || errors.As(err, &ge) && ge.Code == http.StatusConflict:
		return fmt.Errorf("%w: %s: %s", ErrNotActive, execution, ge.Message)
	}
	return fmt.Errorf("workflowexec: cancel %s: %w", execution, err)
}
