package pdp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/server/handlers"
	"github.com/open-policy-agent/opa/v1/server/types"
	"github.com/open-policy-agent/opa/v1/server/writer"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/policy"
)

// maxBody bounds a request body, compressed or not; decision inputs are small.
const maxBody = 1 << 20

// Decider is the part of *policy.Engine the handler needs.
type Decider interface {
	Query(ctx context.Context, bundle, rule string, input any, meta policy.Meta) (policy.Answer, error)
	Document(ctx context.Context, path []string, in *policy.Input, meta policy.Meta) (policy.DocumentAnswer, error)
}

// Handler serves the read side of OPA's data API over the waooaw policies,
// answering as `opa run --server` does: GET and POST /v1/data and
// /v1/data/<path>, any rule, a whole package, data.platform, data itself;
// input as {"input": ...} in a POST body or ?input=<JSON> on a GET; ?pretty;
// no "result" when the document is undefined; OPA's error shape. GET /health
// answers {}. Writing data (PUT, PATCH, DELETE) is refused with 405: the
// policies' data changes only with a deploy.
type Handler struct {
	eng    Decider
	routes http.Handler
	log    *slog.Logger
}

// NewHandler serves decisions from eng, logging to slog.Default().
func NewHandler(eng Decider) *Handler {
	h := &Handler{eng: eng, log: slog.Default()}
	// OPA's routes and OPA's wrapper (HEAD refused, a trailing slash
	// redirected), so that paths, methods, 404s, 405s and redirects answer
	// alike.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { writer.JSONOK(w, struct{}{}, false) })
	for _, p := range []string{"/v1/data", "/v1/data/{path...}"} {
		mux.HandleFunc("GET "+p, h.get)
		mux.HandleFunc("POST "+p, h.post)
		mux.Handle(p, writer.HTTPStatus(http.StatusMethodNotAllowed))
	}
	h.routes = handlers.DefaultHandler(mux)
	return h
}

// ServeHTTP routes a request as OPA's server does. A POST of a bundle's
// decision or allow, the common request, goes straight to its handler: its
// path is one the routes take as it is.
//
// A correlation id longer than an event may carry (events.MaxIDLen) is refused with 400
// before anything is decided: it becomes the attestation's ordering key, which Pub/Sub would
// refuse after the decision had been handed out.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if corr := r.Header.Get(logging.HeaderCorrelationID); len(corr) > events.MaxIDLen {
		writer.ErrorString(w, http.StatusBadRequest, types.CodeInvalidParameter,
			fmt.Errorf("header %s is %d bytes, more than %d", logging.HeaderCorrelationID, len(corr), events.MaxIDLen))
		return
	}
	if r.Method == http.MethodPost {
		if _, _, ok := decisionRule(r); ok {
			h.post(w, r)
			return
		}
	}
	h.routes.ServeHTTP(w, r)
}

// decisionPath leads to the bundles' documents.
const decisionPath = "/v1/data/" + policy.Package + "/"

func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writer.ErrorString(w, http.StatusBadRequest, types.CodeInvalidParameter, err)
		return
	}
	// The common request, a bundle's decision or allow with an input, is
	// answered by the planned decision; everything else by the data API's
	// evaluation of the document.
	if bundle, rule, ok := decisionRule(r); ok {
		// Numbers stay json.Number, as OPA reads them.
		var req struct {
			Input *any `json:"input"`
		}
		if util.NewJSONDecoder(bytes.NewReader(body)).Decode(&req) == nil && req.Input != nil {
			if h.query(w, r, bundle, rule, *req.Input) {
				return
			}
		}
	}
	var req types.DataRequestV1
	if err := util.NewJSONDecoder(bytes.NewReader(body)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writer.ErrorString(w, http.StatusBadRequest, types.CodeInvalidParameter, fmt.Errorf("body contains malformed input document: %w", err))
		return
	}
	var warning *types.Warning
	if req.Input == nil {
		warning = types.NewWarning(types.CodeAPIUsageWarn, types.MsgInputKeyMissing)
	}
	h.document(w, r, req.Input, warning)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	var input *any
	if inputs := r.URL.Query()["input"]; len(inputs) > 0 {
		var v any
		if err := util.UnmarshalJSON([]byte(inputs[len(inputs)-1]), &v); err != nil {
			writer.ErrorString(w, http.StatusBadRequest, types.CodeInvalidParameter, fmt.Errorf("parameter contains malformed input document: %w", err))
			return
		}
		input = &v
	}
	h.document(w, r, input, nil)
}

// decisionRule reports whether r asks for a bundle's decision or allow
// rule: /v1/data/waooaw/<bundle>/<rule>, a clean path with nothing escaped.
func decisionRule(r *http.Request) (bundle, rule string, ok bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, decisionPath)
	if !ok || r.URL.RawPath != "" {
		return "", "", false
	}
	bundle, rule, ok = strings.Cut(rest, "/")
	if !ok || bundle == "" || bundle == "." || bundle == ".." || (rule != policy.RuleDecision && rule != policy.RuleAllow) {
		return "", "", false
	}
	return bundle, rule, true
}

// query answers a bundle's decision or allow rule from the planned
// decision. It reports false, having written nothing, when the bundle is
// not one of the engine's: the data API's evaluation answers that.
func (h *Handler) query(w http.ResponseWriter, r *http.Request, bundle, rule string, input any) bool {
	a, err := h.eng.Query(r.Context(), bundle, rule, input, meta(r))
	switch {
	case errors.Is(err, policy.ErrUnknownBundle):
		return false
	case errors.Is(err, policy.ErrBadInput):
		writer.ErrorString(w, http.StatusBadRequest, types.CodeInvalidParameter, err)
		return true
	case err != nil:
		h.internalError(w, r, err)
		return true
	}
	writeData(w, r, dataResponse{DecisionID: a.DecisionID, Result: &a.Result})
	return true
}

// document answers the document at the request's path.
func (h *Handler) document(w http.ResponseWriter, r *http.Request, input *any, warning *types.Warning) {
	path, err := dataPath(r)
	if err != nil {
		// OPA answers this one as an internal error, its message the error's.
		writer.ErrorAuto(w, types.NewErrorV1(types.CodeInvalidParameter, "invalid path: %v", err))
		return
	}
	var in *policy.Input
	if input != nil {
		if in, err = policy.NewInput(*input); err != nil {
			writer.ErrorString(w, http.StatusBadRequest, types.CodeInvalidParameter, err)
			return
		}
	}
	a, err := h.eng.Document(r.Context(), path, in, meta(r))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	resp := dataResponse{DecisionID: a.DecisionID, Warning: warning}
	if a.Defined {
		resp.Result = &a.Result
	}
	writeData(w, r, resp)
}

// dataPath is the document's path below data: the escaped URL path's
// segments after /v1/data, each unescaped, empty ones dropped, as OPA
// reads it (so %2F stays inside a segment).
func dataPath(r *http.Request) ([]string, error) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/data")
	var path []string
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" {
			continue
		}
		if s, err := url.PathUnescape(seg); err == nil {
			seg = s
		}
		if strings.Contains(seg, `"`) {
			return nil, fmt.Errorf("invalid ref term '%s'", seg)
		}
		path = append(path, seg)
	}
	return path, nil
}

func meta(r *http.Request) policy.Meta {
	return policy.Meta{EnforcementPoint: "pdp", CorrelationID: r.Header.Get(logging.HeaderCorrelationID)}
}

// internalError answers an evaluation error as OPA's server does; an
// attestation that could not be queued is an internal error too: an
// unattested decision is not handed out.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	// The policies' own errors (a function asked as a document, a conflict)
	// are the caller's to read; others are the operator's too.
	var astErrs ast.Errors
	if !errors.As(err, &astErrs) && !topdown.IsError(err) {
		h.log.ErrorContext(r.Context(), "pdp: decision failed", "path", r.URL.Path, "error", err.Error())
	}
	writer.ErrorAuto(w, err)
}

// dataResponse is OPA's types.DataResponseV1 with the fields the pdp
// answers, in its order.
type dataResponse struct {
	DecisionID string         `json:"decision_id,omitempty"`
	Result     *any           `json:"result,omitempty"`
	Warning    *types.Warning `json:"warning,omitempty"`
}

func writeData(w http.ResponseWriter, r *http.Request, resp dataResponse) {
	writer.JSONOK(w, resp, boolParam(r.URL, "pretty"))
}

// boolParam reads a flag as OPA does: present without a value, or any of
// its values "true" in any case.
func boolParam(u *url.URL, name string) bool {
	if u.RawQuery == "" {
		return false
	}
	vs, ok := u.Query()[name]
	if !ok {
		return false
	}
	if len(vs) == 1 && vs[0] == "" {
		return true
	}
	for _, v := range vs {
		if strings.EqualFold(v, "true") {
			return true
		}
	}
	return false
}

// readBody reads the request body, gunzipped when it says it is gzip.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("body exceeds %d bytes", maxBody)
	}
	if !strings.Contains(r.Header.Get("Content-Encoding"), "gzip") {
		return body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("could not decompress the body: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(zr, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("could not decompress the body: %w", err)
	}
	if len(plain) > maxBody {
		return nil, fmt.Errorf("decompressed body exceeds %d bytes", maxBody)
	}
	return plain, nil
}
