// Package api serves the emulator over Google's REST shapes (Workflows
// API v1, Executions API v1, callbacks) and the emulator's own clock API.
package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	workflowspb "cloud.google.com/go/workflows/apiv1/workflowspb"
	executionspb "cloud.google.com/go/workflows/executions/apiv1/executionspb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"waooaw.dev/governance/infra/local/workflows/service"
)

// Handler serves the REST API for svc.
type Handler struct {
	svc        *service.Service
	workflows  *wfServer
	executions *execServer
	ops        *opServer
}

// NewHandler returns the REST handler.
func NewHandler(svc *service.Service) *Handler {
	return &Handler{svc: svc, workflows: &wfServer{svc: svc}, executions: &execServer{svc: svc}, ops: &opServer{svc: svc}}
}

// WriteError writes Google's error shape.
func WriteError(w http.ResponseWriter, err error) {
	e := service.AsError(err)
	writeJSON(w, e.HTTP, map[string]any{"error": map[string]any{"code": e.HTTP, "message": e.Message, "status": e.Status}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func badRequest(format string, args ...any) error {
	return &service.Error{HTTP: http.StatusBadRequest, Status: "INVALID_ARGUMENT", Message: fmt.Sprintf(format, args...)}
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// jsonOut renders Google's resources as their REST API does: protojson's
// lowerCamelCase names, enum names, RFC 3339 times, "1.5s" durations and
// 64-bit integers as strings.
var jsonOut = protojson.MarshalOptions{Multiline: true, Indent: "  "}

// jsonIn accepts a resource body, ignoring fields the emulator has no use for.
var jsonIn = protojson.UnmarshalOptions{DiscardUnknown: true}

func writeProto(w http.ResponseWriter, m proto.Message) error {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return fmt.Errorf("render %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m, err := h.route(w, r)
	if err == nil && m != nil {
		err = writeProto(w, m)
	}
	if err != nil {
		WriteError(w, err)
	}
}

// readAll reads a request body of at most 4 MiB.
func readAll(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, badRequest("read body: %v", err)
	}
	return b, nil
}

// readBody decodes a JSON body into v, through protojson when v is a
// resource; an empty body leaves v as it is.
func readBody(r *http.Request, v any) error {
	b, err := readAll(r)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return err
	}
	if m, ok := v.(proto.Message); ok {
		err = jsonIn.Unmarshal(b, m)
	} else {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return badRequest("invalid JSON body: %v", err)
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// route dispatches on Google's resource paths:
// /v1/projects/P/locations/L/workflows[/W[/executions[/E[:cancel|/callbacks[/ID]|/stepEntries]]]]
// and /v1/projects/P/locations/L/operations/O. Resource calls become the
// gRPC requests they transcode to and go to the gRPC servers' methods.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) (proto.Message, error) {
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if path == r.URL.Path {
		return nil, &service.Error{HTTP: 404, Status: "NOT_FOUND", Message: "unknown path " + r.URL.Path}
	}
	verb := ""
	if i := strings.LastIndexByte(path, ':'); i > strings.LastIndexByte(path, '/') {
		path, verb = path[:i], path[i+1:]
	}
	seg := strings.Split(path, "/")
	if len(seg) < 5 || seg[0] != "projects" || seg[2] != "locations" {
		return nil, &service.Error{HTTP: 404, Status: "NOT_FOUND", Message: "unknown path " + r.URL.Path}
	}
	parent := strings.Join(seg[:min(len(seg), 6)], "/") // the location, or the workflow of executions
	if seg[4] == "workflows" && len(seg) == 5 {
		parent = strings.Join(seg[:4], "/")
	}
	ctx := r.Context()
	q := r.URL.Query()
	pageSize := int32(atoi(q.Get("pageSize")))
	switch {
	case len(seg) == 6 && seg[4] == "operations" && r.Method == http.MethodGet:
		return h.ops.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: path})
	case len(seg) == 5 && seg[4] == "workflows":
		switch r.Method {
		case http.MethodPost:
			wf := &workflowspb.Workflow{}
			if err := readBody(r, wf); err != nil {
				return nil, err
			}
			return h.workflows.CreateWorkflow(ctx, &workflowspb.CreateWorkflowRequest{
				Parent: parent, WorkflowId: q.Get("workflowId"), Workflow: wf})
		case http.MethodGet:
			return h.workflows.ListWorkflows(ctx, &workflowspb.ListWorkflowsRequest{
				Parent: parent, PageSize: pageSize, PageToken: q.Get("pageToken")})
		}
	case len(seg) == 6 && seg[4] == "workflows" && verb == "listRevisions" && r.Method == http.MethodGet:
		return h.workflows.ListWorkflowRevisions(ctx, &workflowspb.ListWorkflowRevisionsRequest{
			Name: path, PageSize: pageSize, PageToken: q.Get("pageToken")})
	case len(seg) == 6 && seg[4] == "workflows" && verb == "":
		switch r.Method {
		case http.MethodGet:
			return h.workflows.GetWorkflow(ctx, &workflowspb.GetWorkflowRequest{Name: path})
		case http.MethodPatch:
			wf := &workflowspb.Workflow{}
			if err := readBody(r, wf); err != nil {
				return nil, err
			}
			wf.Name = path
			var mask *fieldmaskpb.FieldMask
			if m := q.Get("updateMask"); m != "" {
				mask = &fieldmaskpb.FieldMask{Paths: strings.Split(m, ",")}
			}
			return h.workflows.UpdateWorkflow(ctx, &workflowspb.UpdateWorkflowRequest{Workflow: wf, UpdateMask: mask})
		case http.MethodDelete:
			return h.workflows.DeleteWorkflow(ctx, &workflowspb.DeleteWorkflowRequest{Name: path})
		}
	case len(seg) == 7 && seg[6] == "executions":
		switch r.Method {
		case http.MethodPost:
			ex := &executionspb.Execution{}
			if err := readBody(r, ex); err != nil {
				return nil, err
			}
			return h.executions.CreateExecution(ctx, &executionspb.CreateExecutionRequest{Parent: parent, Execution: ex})
		case http.MethodGet:
			return h.executions.ListExecutions(ctx, &executionspb.ListExecutionsRequest{
				Parent: parent, PageSize: pageSize, PageToken: q.Get("pageToken"), Filter: q.Get("filter")})
		}
	case len(seg) == 8 && seg[6] == "executions":
		switch {
		case verb == "cancel" && r.Method == http.MethodPost:
			return h.executions.CancelExecution(ctx, &executionspb.CancelExecutionRequest{Name: path})
		case verb == "" && r.Method == http.MethodGet:
			return h.executions.GetExecution(ctx, &executionspb.GetExecutionRequest{Name: path})
		}
	case len(seg) == 9 && seg[6] == "executions" && seg[8] == "callbacks" && r.Method == http.MethodGet:
		list, err := h.svc.ListCallbacks(strings.Join(seg[:8], "/"))
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, len(list))
		for _, c := range list {
			m := map[string]any{"name": path + "/" + c.ID, "method": c.Method, "waiters": "0", "attempts": strconv.Itoa(c.Queued)}
			if c.Waiting {
				m["waiters"] = "1"
				m["waitTime"] = ts(c.Since)
			}
			out = append(out, m)
		}
		writeJSON(w, 200, map[string]any{"callbacks": out})
		return nil, nil
	case len(seg) == 10 && seg[6] == "executions" && seg[8] == "callbacks":
		return nil, h.callback(w, r, strings.Join(seg[:8], "/"), seg[9])
	case len(seg) == 9 && seg[6] == "executions" && seg[8] == "stepEntries" && r.Method == http.MethodGet:
		entries, err := h.svc.StepEntries(strings.Join(seg[:8], "/"))
		if err != nil {
			return nil, err
		}
		out := make([]any, len(entries))
		for i, e := range entries {
			t := ts(time.Unix(0, e.Time))
			out[i] = map[string]any{"name": fmt.Sprintf("%s/%d", path, e.Seq), "entryId": strconv.FormatInt(e.Seq, 10),
				"step": e.Step, "routine": e.Routine, "createTime": t, "updateTime": t, "state": "STATE_SUCCEEDED"}
		}
		pg, next, err := pageAny(out, atoi(q.Get("pageSize")), q.Get("pageToken"))
		if err != nil {
			return nil, err
		}
		resp := map[string]any{"stepEntries": pg, "totalSize": len(out)}
		if next != "" {
			resp["nextPageToken"] = next
		}
		writeJSON(w, 200, resp)
		return nil, nil
	}
	return nil, &service.Error{HTTP: 404, Status: "NOT_FOUND", Message: fmt.Sprintf("no %s handler for %s", r.Method, r.URL.Path)}
}

func pageAny(all []any, size int, token string) ([]any, string, error) {
	off := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 {
			return nil, "", badRequest("invalid pageToken %q", token)
		}
		off = min(n, len(all))
	}
	if size <= 0 || size > 1000 {
		size = 1000
	}
	end := min(off+size, len(all))
	if end < len(all) {
		return all[off:end], strconv.Itoa(end), nil
	}
	return all[off:end], "", nil
}

// stateFilter accepts `state="ACTIVE"`, `state=ACTIVE` (the filters the
// Executions API documents for state).
func stateFilter(f string) (string, error) {
	f = strings.TrimSpace(f)
	if f == "" {
		return "", nil
	}
	k, v, ok := strings.Cut(f, "=")
	if !ok || strings.TrimSpace(k) != "state" {
		return "", badRequest("unsupported filter %q (supported: state=STATE)", f)
	}
	v = strings.Trim(strings.TrimSpace(v), `"`)
	switch v {
	case service.StateActive, service.StateSucceeded, service.StateFailed, service.StateCancelled, "QUEUED", "UNAVAILABLE":
		return v, nil
	}
	return "", badRequest("unknown state %q in filter", v)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request, execName, id string) error {
	body, err := readAll(r)
	if err != nil {
		return err
	}
	headers := map[string]string{}
	for k, v := range r.Header {
		headers[k] = strings.Join(v, ", ")
	}
	err = h.svc.Callback(execName, id, service.CallbackRequest{
		Method: r.Method, URL: r.URL.RequestURI(), Headers: headers, Query: r.URL.Query(), Body: body,
		JSON: strings.Contains(r.Header.Get("Content-Type"), "json"),
	})
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{})
	return nil
}

// ClockHandler serves /emulator/v1/clock and /emulator/v1/clock:advance.
func ClockHandler(svc *service.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/emulator/v1/clock" && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"now": ts(svc.Now())})
		case r.URL.Path == "/emulator/v1/clock:advance" && r.Method == http.MethodPost:
			var in struct {
				Seconds float64 `json:"seconds"`
			}
			if err := readBody(r, &in); err != nil {
				WriteError(w, err)
				return
			}
			if in.Seconds < 0 {
				WriteError(w, badRequest("seconds must not be negative"))
				return
			}
			now, err := svc.Advance(time.Duration(in.Seconds * float64(time.Second)))
			if err != nil {
				WriteError(w, err)
				return
			}
			writeJSON(w, 200, map[string]any{"now": ts(now)})
		default:
			WriteError(w, &service.Error{HTTP: 404, Status: "NOT_FOUND", Message: "unknown path " + r.URL.Path})
		}
	}
}
