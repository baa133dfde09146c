package agentreq

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotFound is returned by Get and GetApproval for what does not exist.
var ErrNotFound = errors.New("agentreq: not found")

// Get reads a request's projection.
func Get(ctx context.Context, fs *firestore.Client, requestID string) (Request, error) {
	snap, err := fs.Collection(Requests).Doc(requestID).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Request{}, fmt.Errorf("%w: request %s", ErrNotFound, requestID)
	}
	if err != nil {
		return Request{}, fmt.Errorf("agentreq: get request %s: %w", requestID, err)
	}
	var r Request
	if err := snap.DataTo(&r); err != nil {
		return Request{}, fmt.Errorf("agentreq: read request %s: %w", requestID, err)
	}
	r.lists()
	return r, nil
}

// lists gives the projection's lists their empty value, not nil: Firestore hands an empty
// array back as nil, and readers show [] (the API's "reasons": [], "stages": []).
func (r *Request) lists() {
	if r.Stages == nil {
		r.Stages = []StageEntry{}
	}
	for i := range r.Stages {
		if r.Stages[i].Reasons == nil {
			r.Stages[i].Reasons = []string{}
		}
	}
	if r.Compensations == nil {
		r.Compensations = []Compensation{}
	}
}

// GetApproval reads an approval.
func GetApproval(ctx context.Context, fs *firestore.Client, approvalID string) (Approval, error) {
	snap, err := fs.Collection(Approvals).Doc(approvalID).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Approval{}, fmt.Errorf("%w: approval %s", ErrNotFound, approvalID)
	}
	if err != nil {
		return Approval{}, fmt.Errorf("agentreq: get approval %s: %w", approvalID, err)
	}
	var a Approval
	if err := snap.DataTo(&a); err != nil {
		return Approval{}, fmt.Errorf("agentreq: read approval %s: %w", approvalID, err)
	}
	return a, nil
}
