// Package api serves the emulator over Google's REST shapes (Workflows
// API v1, Executions API v1, callbacks) and the emulator's own clock API.
package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/service"
)

// Handler serves the REST API for svc.
type Handler struct {
	svc *service.Service
}

// NewHandler returns the REST handler.
func NewHandler(svc *service.Service) *Handler { return &Handler{svc: svc} }

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

func dur(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// WorkflowJSON renders a workflow as the v1 API does.
func WorkflowJSON(w *service.Workflow) map[string]any {
	m := map[string]any{
		"name": w.Name, "state": w.State, "revisionId": w.RevisionID,
		"createTime": ts(w.CreateTime), "updateTime": ts(w.UpdateTime),
		"revisionCreateTime": ts(w.RevisionCreateTime), "sourceContents": w.SourceContents,
	}
	if w.Description != "" {
		m["description"] = w.Description
	}
	if len(w.Labels) > 0 {
		m["labels"] = w.Labels
	}
	if w.CallLogLevel != "" {
		m["callLogLevel"] = w.CallLogLevel
	}
	if w.ServiceAccount != "" {
		m["serviceAccount"] = w.ServiceAccount
	}
	if len(w.UserEnvVars) > 0 {
		m["userEnvVars"] = w.UserEnvVars
	}
	return m
}

// OperationJSON renders a finished operation.
func OperationJSON(op *service.Operation) map[string]any {
	m := map[string]any{
		"name": op.Name,
		"metadata": map[string]any{
			"@type":      "type.googleapis.com/google.cloud.workflows.v1.OperationMetadata",
			"createTime": ts(op.Created), "endTime": ts(op.Created),
			"target": op.Workflow.Name, "verb": op.Verb, "apiVersion": "v1",
		},
		"done": true,
	}
	if op.Err != nil {
		m["error"] = map[string]any{"code": grpcCode(op.Err.Status), "message": op.Err.Message}
		return m
	}
	if op.Verb == "delete" {
		m["response"] = map[string]any{"@type": "type.googleapis.com/google.protobuf.Empty"}
		return m
	}
	resp := WorkflowJSON(op.Workflow)
	resp["@type"] = "type.googleapis.com/google.cloud.workflows.v1.Workflow"
	m["response"] = resp
	return m
}

func grpcCode(status string) int {
	switch status {
	case "INVALID_ARGUMENT":
		return 3
	case "NOT_FOUND":
		return 5
	case "ALREADY_EXISTS":
		return 6
	case "FAILED_PRECONDITION":
		return 9
	}
	return 13
}

// ExecutionJSON renders an execution as the v1 Executions API does.
func ExecutionJSON(v service.View) map[string]any {
	m := map[string]any{
		"name": v.Name, "state": v.State, "startTime": ts(v.StartTime),
		"argument": v.Argument, "workflowRevisionId": v.Revision,
		"callLogLevel": v.CallLogLevel, "duration": dur(v.Duration),
	}
	if v.Argument == "" {
		m["argument"] = "null"
	}
	if !v.EndTime.IsZero() {
		m["endTime"] = ts(v.EndTime)
	}
	if v.State == service.StateSucceeded {
		m["result"] = v.Result
	}
	if v.Error != nil {
		elems := make([]any, 0, len(v.Error.StackTrace))
		for _, e := range v.Error.StackTrace {
			elems = append(elems, map[string]any{"step": e.Step, "routine": e.Routine,
				"position": map[string]any{"line": strconv.Itoa(e.Line), "column": "1", "length": strconv.Itoa(len(e.Step))}})
		}
		m["error"] = map[string]any{"payload": v.Error.Payload, "context": v.Error.Context,
			"stackTrace": map[string]any{"elements": elems}}
	}
	if len(v.Labels) > 0 {
		m["labels"] = v.Labels
	}
	steps := make([]any, 0, len(v.Current))
	for _, c := range v.Current {
		steps = append(steps, map[string]any{"routine": c.Routine, "step": c.Step})
	}
	if len(steps) > 0 {
		m["status"] = map[string]any{"currentSteps": steps}
	}
	return m
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.route(w, r); err != nil {
		WriteError(w, err)
	}
}

func readBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return badRequest("read body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
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
// and /v1/projects/P/locations/L/operations/O.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) error {
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if path == r.URL.Path {
		return &service.Error{HTTP: 404, Status: "NOT_FOUND", Message: "unknown path " + r.URL.Path}
	}
	verb := ""
	if i := strings.LastIndexByte(path, ':'); i > strings.LastIndexByte(path, '/') {
		path, verb = path[:i], path[i+1:]
	}
	seg := strings.Split(path, "/")
	if len(seg) < 5 || seg[0] != "projects" || seg[2] != "locations" {
		return &service.Error{HTTP: 404, Status: "NOT_FOUND", Message: "unknown path " + r.URL.Path}
	}
	parent := strings.Join(seg[:4], "/")
	q := r.URL.Query()
	switch {
	case len(seg) == 6 && seg[4] == "operations" && r.Method == http.MethodGet:
		op, err := h.svc.GetOperation(path)
		if err != nil {
			return err
		}
		writeJSON(w, 200, OperationJSON(op))
		return nil
	case len(seg) == 5 && seg[4] == "workflows":
		switch r.Method {
		case http.MethodPost:
			var in struct {
				SourceContents string            `json:"sourceContents"`
				Description    string            `json:"description"`
				Labels         map[string]string `json:"labels"`
				CallLogLevel   string            `json:"callLogLevel"`
				ServiceAccount string            `json:"serviceAccount"`
				UserEnvVars    map[string]string `json:"userEnvVars"`
			}
			if err := readBody(r, &in); err != nil {
				return err
			}
			op, err := h.svc.CreateWorkflow(parent, q.Get("workflowId"), service.WorkflowInput{
				SourceContents: in.SourceContents, Description: in.Description, Labels: in.Labels,
				CallLogLevel: in.CallLogLevel, ServiceAccount: in.ServiceAccount, UserEnvVars: in.UserEnvVars})
			if err != nil {
				return err
			}
			writeJSON(w, 200, OperationJSON(op))
			return nil
		case http.MethodGet:
			list, next, err := h.svc.ListWorkflows(parent, atoi(q.Get("pageSize")), q.Get("pageToken"))
			if err != nil {
				return err
			}
			writeWorkflowList(w, list, next)
			return nil
		}
	case len(seg) == 6 && seg[4] == "workflows" && verb == "listRevisions" && r.Method == http.MethodGet:
		list, next, err := h.svc.ListRevisions(path, atoi(q.Get("pageSize")), q.Get("pageToken"))
		if err != nil {
			return err
		}
		writeWorkflowList(w, list, next)
		return nil
	case len(seg) == 6 && seg[4] == "workflows" && verb == "":
		switch r.Method {
		case http.MethodGet:
			wf, err := h.svc.GetWorkflow(path)
			if err != nil {
				return err
			}
			writeJSON(w, 200, WorkflowJSON(wf))
			return nil
		case http.MethodPatch:
			var in struct {
				SourceContents string            `json:"sourceContents"`
				Description    string            `json:"description"`
				Labels         map[string]string `json:"labels"`
				CallLogLevel   string            `json:"callLogLevel"`
				UserEnvVars    map[string]string `json:"userEnvVars"`
			}
			if err := readBody(r, &in); err != nil {
				return err
			}
			var mask []string
			if m := q.Get("updateMask"); m != "" {
				mask = strings.Split(m, ",")
			}
			op, err := h.svc.UpdateWorkflow(path, service.WorkflowInput{SourceContents: in.SourceContents,
				Description: in.Description, Labels: in.Labels, CallLogLevel: in.CallLogLevel, UserEnvVars: in.UserEnvVars}, mask)
			if err != nil {
				return err
			}
			writeJSON(w, 200, OperationJSON(op))
			return nil
		case http.MethodDelete:
			op, err := h.svc.DeleteWorkflow(path)
			if err != nil {
				return err
			}
			writeJSON(w, 200, OperationJSON(op))
			return nil
		}
	case len(seg) == 7 && seg[6] == "executions":
		wfName := strings.Join(seg[:6], "/")
		switch r.Method {
		case http.MethodPost:
			var in struct {
				Argument     string            `json:"argument"`
				CallLogLevel string            `json:"callLogLevel"`
				Labels       map[string]string `json:"labels"`
			}
			if err := readBody(r, &in); err != nil {
				return err
			}
			v, err := h.svc.CreateExecution(wfName, service.ExecutionInput{Argument: in.Argument, CallLogLevel: in.CallLogLevel, Labels: in.Labels})
			if err != nil {
				return err
			}
			writeJSON(w, 200, ExecutionJSON(v))
			return nil
		case http.MethodGet:
			state, err := stateFilter(q.Get("filter"))
			if err != nil {
				return err
			}
			list, next, err := h.svc.ListExecutions(wfName, atoi(q.Get("pageSize")), q.Get("pageToken"), state)
			if err != nil {
				return err
			}
			out := make([]any, len(list))
			for i, v := range list {
				out[i] = ExecutionJSON(v)
			}
			resp := map[string]any{"executions": out}
			if next != "" {
				resp["nextPageToken"] = next
			}
			writeJSON(w, 200, resp)
			return nil
		}
	case len(seg) == 8 && seg[6] == "executions":
		switch {
		case verb == "cancel" && r.Method == http.MethodPost:
			v, err := h.svc.CancelExecution(path)
			if err != nil {
				return err
			}
			writeJSON(w, 200, ExecutionJSON(v))
			return nil
		case verb == "" && r.Method == http.MethodGet:
			v, err := h.svc.GetExecution(path)
			if err != nil {
				return err
			}
			writeJSON(w, 200, ExecutionJSON(v))
			return nil
		}
	case len(seg) == 9 && seg[6] == "executions" && seg[8] == "callbacks" && r.Method == http.MethodGet:
		list, err := h.svc.ListCallbacks(strings.Join(seg[:8], "/"))
		if err != nil {
			return err
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
		return nil
	case len(seg) == 10 && seg[6] == "executions" && seg[8] == "callbacks":
		return h.callback(w, r, strings.Join(seg[:8], "/"), seg[9])
	case len(seg) == 9 && seg[6] == "executions" && seg[8] == "stepEntries" && r.Method == http.MethodGet:
		entries, err := h.svc.StepEntries(strings.Join(seg[:8], "/"))
		if err != nil {
			return err
		}
		out := make([]any, len(entries))
		for i, e := range entries {
			t := ts(time.Unix(0, e.Time))
			out[i] = map[string]any{"name": fmt.Sprintf("%s/%d", path, e.Seq), "entryId": strconv.FormatInt(e.Seq, 10),
				"step": e.Step, "routine": e.Routine, "createTime": t, "updateTime": t, "state": "STATE_SUCCEEDED"}
		}
		pg, next, err := pageAny(out, atoi(q.Get("pageSize")), q.Get("pageToken"))
		if err != nil {
			return err
		}
		resp := map[string]any{"stepEntries": pg, "totalSize": len(out)}
		if next != "" {
			resp["nextPageToken"] = next
		}
		writeJSON(w, 200, resp)
		return nil
	}
	return &service.Error{HTTP: 404, Status: "NOT_FOUND", Message: fmt.Sprintf("no %s handler for %s", r.Method, r.URL.Path)}
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
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return badRequest("read body: %v", err)
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

// writeWorkflowList answers a list of workflows or of one workflow's revisions, which share
// Google's response shape.
func writeWorkflowList(w http.ResponseWriter, list []*service.Workflow, next string) {
	out := make([]any, len(list))
	for i, wf := range list {
		out[i] = WorkflowJSON(wf)
	}
	resp := map[string]any{"workflows": out}
	if next != "" {
		resp["nextPageToken"] = next
	}
	writeJSON(w, 200, resp)
}
