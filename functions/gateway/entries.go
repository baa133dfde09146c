package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/store"
)

// Paging of GET /v1/audit/streams/{stream}/entries.
const (
	DefaultEntries = 100
	MaxEntries     = 1000
)

func entriesTarget(req *request) (Access, *apiError) {
	stream := req.PathValue("stream")
	return Access{Action: ActionReadAudit, ResourceType: "audit_stream", ResourceID: stream, Engagement: stream, Bundles: []string{"rbac", "data_scope"}}, nil
}

// entriesPage is the answer: entries after seq `after`, in seq order; next_after is the
// after of the next page (the last seq answered, or after itself when none).
type entriesPage struct {
	Stream    string        `json:"stream"`
	Entries   []audit.Entry `json:"entries"`
	NextAfter int64         `json:"next_after"`
}

func (s *Server) serveEntries(w http.ResponseWriter, req *request) error {
	stream := req.PathValue("stream")
	if err := audit.CheckStream(stream); err != nil {
		return &apiError{code: http.StatusBadRequest, msg: "invalid stream name", cause: err}
	}
	q := req.URL.Query()
	after, limit := int64(0), DefaultEntries
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "query after: must be a seq, 0 or more")
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEntries {
			return errorf(http.StatusBadRequest, "query limit: must be 1 to %d", MaxEntries)
		}
		limit = n
	}
	ctx := req.Context()
	streamRef := s.opt.AuditLog.Collection(store.AuditStreams).Doc(stream)
	// Entry ids are the zero-padded seq, so id order is seq order and needs no index.
	docs, err := streamRef.Collection(store.AuditEntries).OrderBy(firestore.DocumentID, firestore.Asc).
		StartAfter(fmt.Sprintf("%020d", after)).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "audit store unavailable; retry", cause: err}
	}
	page := entriesPage{Stream: stream, Entries: make([]audit.Entry, 0, len(docs)), NextAfter: after}
	for _, d := range docs {
		var e audit.Entry
		if err := d.DataTo(&e); err != nil {
			return fmt.Errorf("read entry %s/%s: %w", stream, d.Ref.ID, err)
		}
		page.Entries = append(page.Entries, e)
		page.NextAfter = e.Seq
	}
	if len(docs) == 0 && after == 0 {
		if _, err := streamRef.Get(ctx); status.Code(err) == codes.NotFound {
			return errorf(http.StatusNotFound, "unknown audit stream %q", stream)
		} else if err != nil && !errors.Is(err, errDone) {
			return &apiError{code: http.StatusServiceUnavailable, msg: "audit store unavailable; retry", cause: err}
		}
	}
	req.log = append(req.log, "stream", stream, "entries", len(page.Entries))
	writeJSON(w, http.StatusOK, page)
	return nil
}
