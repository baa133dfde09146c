package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/store"
)

// ReportMaxAge is how long a verification report is answered again while its stream's head
// is unchanged. The head moves with every append, so a growing stream is walked again; a
// stream that stays still is walked again after this long, so that damage below an
// unchanged head is found.
const ReportMaxAge = 10 * time.Minute

// maxCachedReports bounds the report cache (one report per stream).
const maxCachedReports = 1024

func verifyTarget(req *request) (Access, *apiError) {
	stream := req.PathValue("stream")
	return Access{Action: ActionVerify, ResourceType: "audit_stream", ResourceID: stream, Engagement: stream, Bundles: []string{"rbac", "data_scope"}}, nil
}

// verification is the answer: the report, whether it was answered from the cache (only the
// stream's head read), and when the walk behind it ran.
type verification struct {
	audit.Report
	Cached     bool   `json:"cached"`
	VerifiedAt string `json:"verified_at"`
}

func (s *Server) serveVerify(w http.ResponseWriter, req *request) error {
	stream := req.PathValue("stream")
	if err := audit.CheckStream(stream); err != nil {
		return &apiError{code: http.StatusBadRequest, msg: "invalid stream name", cause: err}
	}
	ctx := req.Context()
	headHash, err := s.headHash(ctx, stream)
	if err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "audit store unavailable; retry", cause: err}
	}
	now := s.opt.Now()
	if v, ok := s.reports.get(stream, headHash, now); ok {
		v.Cached = true
		req.log = append(req.log, "stream", stream, "ok", v.OK, "entries", v.Entries, "cached", true)
		writeJSON(w, http.StatusOK, v)
		return nil
	}
	if wait, ok := s.walks.take(req.principal.Actor(), now); !ok {
		return &apiError{code: http.StatusTooManyRequests, retryAfter: wait, limit: s.walks.describe("verify_walks"),
			msg: "too many audit stream walks; an unchanged stream's report is answered from the cache meanwhile"}
	}
	rep, err := s.opt.VerifyStream(ctx, stream)
	switch {
	case errors.Is(err, audit.ErrUnknownStream):
		// Nothing was walked (no head, no entry): the caller keeps its walk, so waiting for
		// a stream's first entry costs no allowance.
		s.walks.refund(req.principal.Actor())
		return errorf(http.StatusNotFound, "unknown audit stream %q", stream)
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "audit store unavailable; retry", cause: err}
	}
	v := verification{Report: rep, VerifiedAt: now.UTC().Format(time.RFC3339Nano)}
	s.reports.put(stream, v, now)
	req.log = append(req.log, "stream", stream, "ok", rep.OK, "entries", rep.Entries, "cached", false)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// headHash reads the hash a stream's head records: one document read ("" if none).
func (s *Server) headHash(ctx context.Context, stream string) (string, error) {
	snap, err := s.opt.AuditLog.Collection(store.AuditStreams).Doc(stream).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	h, _ := snap.DataAt("hash") // a head of the wrong shape never matches a report
	hash, _ := h.(string)
	return hash, nil
}

// reportCache keeps the last report of each stream, valid while the head hash it verified
// is the stream's head and for at most ReportMaxAge.
type reportCache struct {
	mu  sync.Mutex
	max int
	m   map[string]cachedReport
}

type cachedReport struct {
	v  verification
	at time.Time
}

func newReportCache(max int) *reportCache {
	return &reportCache{max: max, m: map[string]cachedReport{}}
}

func (c *reportCache) get(stream, headHash string, now time.Time) (verification, bool) {
	if headHash == "" {
		return verification{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[stream]
	if !ok || r.v.HeadHash != headHash || now.Sub(r.at) >= ReportMaxAge {
		return verification{}, false
	}
	return r.v, true
}

func (c *reportCache) put(stream string, v verification, now time.Time) {
	if v.HeadHash == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[stream]; !ok && len(c.m) >= c.max {
		// The oldest report goes: a scan of at most max entries, only when the cache is full.
		oldest, first := "", true
		for k, r := range c.m {
			if first || r.at.Before(c.m[oldest].at) {
				oldest, first = k, false
			}
		}
		delete(c.m, oldest)
	}
	c.m[stream] = cachedReport{v: v, at: now}
}
