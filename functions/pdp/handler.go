package pdp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"waooaw.dev/governance/shared/policy"
)

// maxBody bounds a request body; decision inputs are small.
const maxBody = 1 << 20

// Decider is the part of *policy.Engine the handler needs.
type Decider interface {
	Query(ctx context.Context, bundle, rule string, input any, meta policy.Meta) (policy.Answer, error)
}

// Handler serves OPA's data API for the waooaw bundles.
type Handler struct{ eng Decider }

// NewHandler serves decisions from eng.
func NewHandler(eng Decider) *Handler { return &Handler{eng: eng} }

const dataPrefix = "/v1/data/waooaw/"

// ServeHTTP routes GET /health and POST /v1/data/waooaw/<bundle>/<rule>.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/health":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET /health")
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	case strings.HasPrefix(r.URL.Path, dataPrefix):
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST "+dataPrefix+"<bundle>/<rule>")
			return
		}
		h.decide(w, r)
	default:
		writeError(w, http.StatusNotFound, "resource_not_found", "no such path: "+r.URL.Path)
	}
}

func (h *Handler) decide(w http.ResponseWriter, r *http.Request) {
	bundle, rule, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, dataPrefix), "/")
	if !ok || bundle == "" || rule == "" || strings.Contains(rule, "/") {
		writeError(w, http.StatusNotFound, "resource_not_found", "want "+dataPrefix+"<bundle>/<rule>")
		return
	}
	input, err := readInput(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return
	}
	meta := policy.Meta{EnforcementPoint: "pdp", CorrelationID: r.Header.Get("X-Correlation-ID")}
	a, err := h.eng.Query(r.Context(), bundle, rule, input, meta)
	switch {
	case errors.Is(err, policy.ErrUnknownBundle), errors.Is(err, policy.ErrUnknownRule):
		writeError(w, http.StatusNotFound, "resource_not_found", err.Error())
		return
	case errors.Is(err, policy.ErrBadInput):
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return
	case err != nil:
		log.Printf("pdp: %s/%s: %v", bundle, rule, err)
		writeError(w, http.StatusInternalServerError, "internal_error", "decision failed")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Result     any    `json:"result"`
		DecisionID string `json:"decision_id"`
	}{a.Result, a.DecisionID})
}

// readInput decodes {"input": <value>}; numbers stay json.Number so the
// policies see them exactly as OPA would.
func readInput(w http.ResponseWriter, r *http.Request) (any, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var req struct {
		Input *any `json:"input"`
	}
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("body holds more than one JSON value")
	}
	if req.Input == nil {
		return nil, errors.New(`body has no "input"`)
	}
	return *req.Input, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // reasons hold "<="; keep them readable
	_ = enc.Encode(v)        // an error means the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, msg})
}
