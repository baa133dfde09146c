package gateway

import (
	"errors"
	"net/http"

	"waooaw.dev/governance/shared/audit"
)

func verifyTarget(req *request) (Access, *apiError) {
	return Access{Action: ActionVerify, ResourceType: "audit_stream", ResourceID: req.PathValue("stream")}, nil
}

func (s *Server) serveVerify(w http.ResponseWriter, req *request) error {
	stream := req.PathValue("stream")
	if err := audit.CheckStream(stream); err != nil {
		return &apiError{code: http.StatusBadRequest, msg: "invalid stream name", cause: err}
	}
	rep, err := s.opt.VerifyStream(req.Context(), stream)
	switch {
	case errors.Is(err, audit.ErrUnknownStream):
		return errorf(http.StatusNotFound, "unknown audit stream %q", stream)
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "audit store unavailable; retry", cause: err}
	}
	req.log = append(req.log, "stream", stream, "ok", rep.OK, "entries", rep.Entries)
	writeJSON(w, http.StatusOK, rep)
	return nil
}
