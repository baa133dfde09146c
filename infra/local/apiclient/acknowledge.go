package apiclient

import (
	"context"
	"net/http"
	"net/url"
)

// Acknowledged is the gateway's answer to an acknowledgement.
type Acknowledged struct {
	ApprovalID     string `json:"approval_id"`
	AcknowledgedBy string `json:"acknowledged_by"`
	Status         string `json:"status"` // stopped, already_acknowledged, ended
}

// Acknowledge stops an approval's notification cascade (POST
// /v1/approvals/{id}/acknowledge); it decides nothing.
func (c *Client) Acknowledge(ctx context.Context, approvalID string) (Acknowledged, error) {
	var out Acknowledged
	_, err := c.do(ctx, http.MethodPost, c.Gateway+"/v1/approvals/"+url.PathEscape(approvalID)+"/acknowledge", nil, nil, &out)
	return out, err
}
