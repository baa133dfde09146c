package service

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/lang"
)

// Execution states, as Google names them.
const (
	StateActive    = "ACTIVE"
	StateSucceeded = "SUCCEEDED"
	StateFailed    = "FAILED"
	StateCancelled = "CANCELLED"
)

// Workflow is a deployed workflow and its revisions.
type Workflow struct {
	Name               string            `json:"name"`
	Description        string            `json:"description,omitempty"`
	Labels             map[string]string `json:"labels,omitempty"`
	State              string            `json:"state"`
	RevisionID         string            `json:"revisionId"`
	CreateTime         time.Time         `json:"createTime"`
	UpdateTime         time.Time         `json:"updateTime"`
	RevisionCreateTime time.Time         `json:"revisionCreateTime"`
	SourceContents     string            `json:"sourceContents"`
	CallLogLevel       string            `json:"callLogLevel,omitempty"`
	ServiceAccount     string            `json:"serviceAccount,omitempty"`
	UserEnvVars        map[string]string `json:"userEnvVars,omitempty"`
	// Revisions keeps every revision's source: executions of an older
	// revision must resume after a restart.
	Revisions     map[string]string    `json:"revisions"`
	RevisionTimes map[string]time.Time `json:"revisionTimes,omitempty"`
	RevSeq        int                  `json:"revSeq"`

	progs map[string]*lang.Program
}

// ExecError is Google's execution error: the raised value as JSON text,
// a readable context and the stack trace.
type ExecError struct {
	Payload    string             `json:"payload"`
	Context    string             `json:"context"`
	StackTrace []engine.TraceElem `json:"stackTrace,omitempty"`
}

// record is the persisted form of an execution.
type record struct {
	Name         string             `json:"name"`
	Workflow     string             `json:"workflow"`
	Revision     string             `json:"revision"`
	State        string             `json:"state"`
	Argument     string             `json:"argument,omitempty"`
	Result       string             `json:"result,omitempty"`
	Error        *ExecError         `json:"error,omitempty"`
	StartTime    time.Time          `json:"startTime"`
	EndTime      time.Time          `json:"endTime,omitzero"`
	CallLogLevel string             `json:"callLogLevel,omitempty"`
	Labels       map[string]string  `json:"labels,omitempty"`
	Current      []engine.TraceElem `json:"current,omitempty"`
	Deadline     int64              `json:"deadline,omitempty"`
	Runnable     bool               `json:"runnable,omitempty"`
	Engine       json.RawMessage    `json:"engine,omitempty"`
	Parent       string             `json:"parent,omitempty"` // the execution waiting on this one
	History      []engine.StepEntry `json:"history,omitempty"`
	Logs         []engine.LogEntry  `json:"logs,omitempty"` // once ended, as History
	Usage        engine.Usage       `json:"usage,omitzero"` // once ended
}

// Execution is one run. While it waits it holds only its serialised
// engine state (Engine), never a goroutine or a live interpreter.
type Execution struct {
	mu sync.Mutex
	record
	live      *engine.Exec
	cancelled atomic.Bool
	// snap is the view published when a run slice starts, for readers that
	// must not wait while the execution is busy (a slow http.* call).
	snap   atomic.Pointer[View]
	queued bool // guarded by the run queue's lock
}

// View is a consistent snapshot of an execution for the API.
type View struct {
	Name, Workflow, Revision, State, Argument, Result string
	Error                                             *ExecError
	StartTime, EndTime                                time.Time
	Duration                                          time.Duration
	CallLogLevel                                      string
	Labels                                            map[string]string
	Current                                           []engine.TraceElem
}

// names splits "projects/P/locations/L/workflows/W[/executions/E]".
type names struct{ project, location, workflow, execution string }

func parseName(n string) (names, bool) {
	p := strings.Split(n, "/")
	if len(p) < 6 || p[0] != "projects" || p[2] != "locations" || p[4] != "workflows" {
		return names{}, false
	}
	out := names{project: p[1], location: p[3], workflow: p[5]}
	if len(p) == 8 && p[6] == "executions" {
		out.execution = p[7]
	} else if len(p) != 6 {
		return names{}, false
	}
	return out, true
}
