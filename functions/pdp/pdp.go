// Package pdp is the OPA-compatible policy decision point for callers that
// are not Go: POST /v1/data/waooaw/<bundle>/<rule> with {"input": ...}
// answers {"result": ..., "decision_id": "..."}, as `opa run --server` does
// for the same policies, and GET /health answers 200. Every decision is
// attested, like the in-process enforcement point's.
package pdp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
	"waooaw.dev/governance/shared/shutdown"
)

// maxBody bounds a request body; decision inputs are small.
const maxBody = 1 << 20

// Source names this function in the events it publishes.
const Source = "//waooaw/pdp"

var (
	attester  *policy.Attester
	closeSink = func() {}
)

func init() {
	sink, closer, err := newSink(context.Background())
	if err != nil {
		log.Fatalf("pdp: %v", err)
	}
	attester, closeSink = policy.NewAttester(sink), closer
	opts, err := envOptions()
	if err != nil {
		log.Fatalf("pdp: %v", err)
	}
	h, err := Setup(append(opts, policy.WithAttester(attester))...)
	if err != nil {
		// A policy that does not compile stops the function at start; the
		// error names file:line.
		log.Fatalf("pdp: %v", err)
	}
	functions.HTTP("PDP", h.ServeHTTP)
	shutdown.OnSIGTERM(slog.Default(), Shutdown)
}

// newSink publishes attestations on policy_attestations when
// GOOGLE_CLOUD_PROJECT is set (the emulator's when PUBSUB_EMULATOR_HOST is);
// otherwise it writes them to stdout as JSON lines.
func newSink(ctx context.Context) (policy.AttestationSink, func(), error) {
	project := os.Getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		return policy.NewWriterSink(os.Stdout), func() {}, nil
	}
	c, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	ps := events.NewPubSub(c)
	return eventsink.New(ps, Source), func() {
		ps.Close()
		_ = c.Close()
	}, nil
}

// envOptions reads the optional settings: PDP_DATA_FILE, a JSON object
// whose keys replace those of data.platform (for example "engagements"), and
// PDP_CACHE_SIZE, the decision cache bound (0 disables it).
func envOptions() ([]policy.Option, error) {
	var opts []policy.Option
	if f := os.Getenv("PDP_DATA_FILE"); f != "" {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("PDP_DATA_FILE: %w", err)
		}
		var data map[string]any
		if err := json.Unmarshal(raw, &data); err != nil {
			return nil, fmt.Errorf("PDP_DATA_FILE %s: %w", f, err)
		}
		opts = append(opts, policy.WithData(data))
	}
	if v := os.Getenv("PDP_CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("PDP_CACHE_SIZE %q: want a count >= 0", v)
		}
		opts = append(opts, policy.WithCacheSize(n))
	}
	return opts, nil
}

// Setup builds the handler over a new policy engine.
func Setup(opts ...policy.Option) (*Handler, error) {
	eng, err := policy.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("policy.New: %w", err)
	}
	return NewHandler(eng), nil
}

// Shutdown flushes every queued attestation, then the publisher; the
// SIGTERM handler calls it.
func Shutdown(ctx context.Context) error {
	err := attester.Close(ctx)
	closeSink()
	return err
}

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
