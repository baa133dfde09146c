// Package engine runs compiled workflows. An execution's whole state is an
// explicit set of threads, each a stack of small frames (step positions and
// variable scopes), so an execution suspends at a wait point by simply
// returning: nothing is on a Go stack, and the state serialises to bytes.
package engine

import (
	"encoding/json"
	"fmt"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

// frameKind says what a frame runs.
type frameKind uint8

// Frame kinds.
const (
	fBlock  frameKind = iota // running a list of steps
	fCall                    // a subworkflow call: the variable scope boundary
	fFor                     // a for loop (its own scope)
	fTry                     // a try step
	fPar                     // a parallel step waiting on its branch threads
	fBranch                  // the root of a branch thread (its own scope)
)

// Try phases.
const (
	phBody uint8 = iota
	phPredicate
	phExcept
)

// Frame is one entry of a thread's stack. Fields are shared between kinds
// to keep the serialised form flat and small.
type Frame struct {
	// The short JSON names keep encoded states small and stay as they are so
	// that states written by earlier builds still decode.
	Kind  frameKind `json:"k"`
	Index int       `json:"l"`            // Prog.Lists index (block) or Prog.Steps index (others)
	PC    int       `json:"pc,omitempty"` // block: next step; for: iteration; try: attempt

	Owner int `json:"o,omitempty"` // block: step id+1 whose next applies when the block ends

	Vars Vars   `json:"v,omitempty"` // call, for, branch scopes
	Sub  string `json:"s,omitempty"` // call: subworkflow name
	Ret  string `json:"r,omitempty"` // call: result variable in the caller
	Pred bool   `json:"p,omitempty"` // call: a retry predicate

	Items []any   `json:"-"` // for / parallel for: the materialised list
	Range []any   `json:"-"` // for over a range: [cur, end]
	Err   any     `json:"-"` // try: error being handled
	Delay float64 `json:"d,omitempty"`
	Phase uint8   `json:"ph,omitempty"`

	Kids     []int    `json:"kids,omitempty"` // parallel: live branch threads
	Next     int      `json:"nx,omitempty"`   // parallel: next branch/iteration to start
	Total    int      `json:"n,omitempty"`    // parallel: branch/iteration count
	Limit    int      `json:"lim,omitempty"`
	Errs     []any    `json:"-"` // parallel: branch errors
	Shared   []string `json:"sh,omitempty"`
	BranchID string   `json:"b,omitempty"`
}

type frameJSON struct {
	Items json.RawMessage `json:"it,omitempty"`
	Range json.RawMessage `json:"rg,omitempty"`
	Err   json.RawMessage `json:"e,omitempty"`
	Errs  json.RawMessage `json:"es,omitempty"`
}

// MarshalJSON keeps integer and double kinds apart in value fields.
func (f *Frame) MarshalJSON() ([]byte, error) {
	type plain Frame
	base, err := json.Marshal((*plain)(f))
	if err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	var extra frameJSON
	if f.Items != nil {
		extra.Items = lang.MarshalValue(f.Items)
	}
	if f.Range != nil {
		extra.Range = lang.MarshalValue(f.Range)
	}
	if f.Err != nil {
		extra.Err = lang.MarshalValue(f.Err)
	}
	if f.Errs != nil {
		extra.Errs = lang.MarshalValue(f.Errs)
	}
	if extra.Items == nil && extra.Range == nil && extra.Err == nil && extra.Errs == nil {
		return base, nil
	}
	ex, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	// Splice the two objects: {base..., extra...}.
	out := append(base[:len(base)-1:len(base)-1], ',')
	return append(out, ex[1:]...), nil
}

// UnmarshalJSON is MarshalJSON's inverse.
func (f *Frame) UnmarshalJSON(b []byte) error {
	type plain Frame
	if err := json.Unmarshal(b, (*plain)(f)); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	var extra frameJSON
	if err := json.Unmarshal(b, &extra); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	dec := func(raw json.RawMessage) (any, error) {
		if raw == nil {
			return nil, nil
		}
		return lang.UnmarshalValue(raw)
	}
	var err error
	var v any
	if v, err = dec(extra.Items); err != nil {
		return err
	}
	f.Items, _ = v.([]any)
	if v, err = dec(extra.Range); err != nil {
		return err
	}
	f.Range, _ = v.([]any)
	if f.Err, err = dec(extra.Err); err != nil {
		return err
	}
	if v, err = dec(extra.Errs); err != nil {
		return err
	}
	f.Errs, _ = v.([]any)
	return nil
}

// Vars is a variable scope.
type Vars map[string]any

// MarshalJSON encodes with lang's kind-preserving encoder.
func (v Vars) MarshalJSON() ([]byte, error) {
	return lang.MarshalValue(map[string]any(v)), nil
}

// UnmarshalJSON decodes with lang's kind-preserving decoder.
func (v *Vars) UnmarshalJSON(b []byte) error {
	x, err := lang.UnmarshalValue(b)
	if err != nil {
		return err
	}
	m, _ := x.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	*v = m
	return nil
}

// Wait kinds.
const (
	WSleep    = "sleep"
	WCallback = "callback"
	WBackoff  = "backoff"
	WJoin     = "join"
	WChild    = "child" // a child execution started by the workflowexecutions connector
)

// Wait says what a blocked thread waits for.
type Wait struct {
	Kind     string `json:"k"`
	Until    int64  `json:"u,omitempty"`  // unix nanos; 0 = no deadline
	Callback string `json:"cb,omitempty"` // callback id
	Result   string `json:"r,omitempty"`  // variable receiving the result
	Step     int    `json:"s"`            // the waiting step (for currentSteps)
}

// Thread is one line of control: main, or a parallel branch/iteration.
type Thread struct {
	ID     int      `json:"id"`
	Parent int      `json:"par"` // -1 for main
	Stack  []*Frame `json:"st"`
	Wait   *Wait    `json:"w,omitempty"`
	// Resume holds what a woken thread must do first.
	Resume *Resume `json:"rs,omitempty"`
}

// Resume is a delivered wake-up: a value for the waiting step's result or
// an error to raise there.
type Resume struct {
	Kind   string          `json:"k"`
	Value  any             `json:"-"`
	Err    any             `json:"-"`
	IsErr  bool            `json:"e,omitempty"`
	Result string          `json:"r,omitempty"`
	Step   int             `json:"s"`
	Raw    json.RawMessage `json:"v,omitempty"`
}

// Callback is an endpoint created by events.create_callback_endpoint.
type Callback struct {
	ID     string          `json:"id"`
	Method string          `json:"m"`
	Queue  []any           `json:"-"` // requests received and not yet awaited
	Raw    json.RawMessage `json:"q,omitempty"`
	Waiter int             `json:"w"` // thread id awaiting it, or -1
	Since  int64           `json:"t,omitempty"`
}

// StepEntry is one step started, for the stepEntries API and the UI.
type StepEntry struct {
	Seq     int64  `json:"n"`
	Step    string `json:"s"`
	Routine string `json:"r"`
	Time    int64  `json:"t"`
	// Top, on the entry that starts a run of steps under one step of main (that step
	// itself, or the first entry kept), names that step; the entries after it without
	// one ran under the same step. A history then reads as main does: stage by stage.
	Top string `json:"g,omitempty"`
}

// LogEntry is one sys.log call, kept for the UI.
type LogEntry struct {
	Seq      int64  `json:"n"` // the step count when it was written
	Time     int64  `json:"t"`
	Severity string `json:"sv,omitempty"`
	Text     string `json:"x"`
}

// State is everything an execution needs to continue.
type State struct {
	Threads   []*Thread            `json:"th"`
	NextID    int                  `json:"nid"`
	StepCount int64                `json:"sc"`
	Callbacks map[string]*Callback `json:"cbs,omitempty"`
	History   []StepEntry          `json:"h,omitempty"`
	Logs      []LogEntry           `json:"lg,omitempty"` // the last MaxLogs sys.log lines
	Top       string               `json:"tp,omitempty"` // the step of main the last entry ran under
	// Outcome, once finished.
	Done    bool            `json:"done,omitempty"`
	Failed  bool            `json:"failed,omitempty"`
	Result  json.RawMessage `json:"res,omitempty"`
	ErrVal  json.RawMessage `json:"err,omitempty"`
	ErrCtx  string          `json:"ectx,omitempty"`
	Trace   []TraceElem     `json:"tr,omitempty"`
	LogSeq  int64           `json:"ls,omitempty"`
	LastLog string          `json:"ll,omitempty"`
	// What the steps were, for Usage: steps billed (StepCount less the steps the compiler
	// adds, plus each retry of a try's call), http.* requests made (to any host, and to
	// hosts outside Google Cloud) and events.await_callback steps.
	Billed       int64 `json:"bs,omitempty"`
	HTTPCalls    int64 `json:"hc,omitempty"`
	ExtHTTPCalls int64 `json:"xh,omitempty"`
	Awaits       int64 `json:"aw,omitempty"`
}

// Usage is what Cloud Workflows bills an execution for: every step executed, failed ones
// and each retry attempt included, split as its pricing splits them. External steps are
// http.* requests to hosts outside Google Cloud and steps that wait for a callback; every
// other step is internal (assignments, conditions, calls to subworkflows, the standard
// library and connectors, requests to Google APIs and to Cloud Run functions).
type Usage struct {
	Steps             int64 `json:"steps"`
	InternalSteps     int64 `json:"internalSteps"`
	ExternalSteps     int64 `json:"externalSteps"`
	HTTPCalls         int64 `json:"httpCalls"`         // http.* requests made, to any host
	ExternalHTTPCalls int64 `json:"externalHttpCalls"` // of which to hosts outside Google Cloud
	CallbackWaits     int64 `json:"callbackWaits"`     // events.await_callback steps
}

// Usage returns the state's usage so far.
func (s *State) Usage() Usage {
	ext := s.ExtHTTPCalls + s.Awaits
	return Usage{Steps: s.Billed, InternalSteps: s.Billed - ext, ExternalSteps: ext,
		HTTPCalls: s.HTTPCalls, ExternalHTTPCalls: s.ExtHTTPCalls, CallbackWaits: s.Awaits}
}

// Add returns u + v, field by field.
func (u Usage) Add(v Usage) Usage {
	return Usage{u.Steps + v.Steps, u.InternalSteps + v.InternalSteps, u.ExternalSteps + v.ExternalSteps,
		u.HTTPCalls + v.HTTPCalls, u.ExternalHTTPCalls + v.ExternalHTTPCalls, u.CallbackWaits + v.CallbackWaits}
}

// Sub returns u − v, field by field.
func (u Usage) Sub(v Usage) Usage {
	return Usage{u.Steps - v.Steps, u.InternalSteps - v.InternalSteps, u.ExternalSteps - v.ExternalSteps,
		u.HTTPCalls - v.HTTPCalls, u.ExternalHTTPCalls - v.ExternalHTTPCalls, u.CallbackWaits - v.CallbackWaits}
}

// TraceElem is one element of an error's stackTrace.
type TraceElem struct {
	Step    string `json:"step"`
	Routine string `json:"routine"`
	Line    int    `json:"line,omitempty"`
}

// Encode serialises the state.
func (s *State) Encode() ([]byte, error) {
	for _, t := range s.Threads {
		if t.Resume != nil {
			v := t.Resume.Value
			if t.Resume.IsErr {
				v = t.Resume.Err
			}
			t.Resume.Raw = lang.MarshalValue(v)
		}
	}
	for _, c := range s.Callbacks {
		c.Raw = lang.MarshalValue(c.Queue)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("engine: encode state: %w", err)
	}
	return b, nil
}

// DecodeState is Encode's inverse.
func DecodeState(b []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("engine: decode state: %w", err)
	}
	for _, t := range s.Threads {
		if t.Resume != nil && t.Resume.Raw != nil {
			v, err := lang.UnmarshalValue(t.Resume.Raw)
			if err != nil {
				return nil, fmt.Errorf("engine: decode state: %w", err)
			}
			if t.Resume.IsErr {
				t.Resume.Err = v
			} else {
				t.Resume.Value = v
			}
			t.Resume.Raw = nil
		}
	}
	for _, c := range s.Callbacks {
		if c.Raw != nil {
			v, err := lang.UnmarshalValue(c.Raw)
			if err != nil {
				return nil, fmt.Errorf("engine: decode state: %w", err)
			}
			c.Queue, _ = v.([]any)
			c.Raw = nil
		}
	}
	return &s, nil
}
