package service

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/lang"
)

type execHost struct {
	s *Service
	e *Execution
}

func (h execHost) Now() time.Time           { return h.s.Now() }
func (h execHost) HTTPClient() *http.Client { return h.s.opts.HTTPClient }
func (h execHost) CallbackURL(id string) string {
	return h.s.opts.BaseURL() + "/v1/" + h.e.Name + "/callbacks/" + id
}
func (h execHost) Log(sev string, v any) {
	h.s.opts.Logf("workflows: %s: %s: %s", h.e.Name, sev, lang.Repr(v))
}
func (h execHost) Getenv(name string) (string, bool) {
	n, _ := parseName(h.e.Name)
	switch name {
	case "GOOGLE_CLOUD_PROJECT_ID":
		return n.project, true
	case "GOOGLE_CLOUD_PROJECT_NUMBER":
		return "000000000000", true
	case "GOOGLE_CLOUD_LOCATION":
		return n.location, true
	case "GOOGLE_CLOUD_WORKFLOW_ID":
		return n.workflow, true
	case "GOOGLE_CLOUD_WORKFLOW_REVISION_ID":
		return h.e.Revision, true
	case "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID":
		return n.execution, true
	}
	h.s.mu.RLock()
	defer h.s.mu.RUnlock()
	if w := h.s.workflows[h.e.Workflow]; w != nil {
		v, ok := w.UserEnvVars[name]
		return v, ok
	}
	return "", false
}

// Checkpoint implements engine.Checkpointer: the running execution's state, already past
// the step that reached outside, is persisted as runnable; the live interpreter carries on.
// The caller (runLocked) holds e.mu.
func (h execHost) Checkpoint(x *engine.Exec) {
	b, err := x.St.Encode()
	if err != nil {
		h.s.logErr(fmt.Errorf("workflows: checkpoint %s: %w", h.e.Name, err))
		return
	}
	e := h.e
	saved, runnable := e.Engine, e.Runnable
	e.Engine, e.Runnable = b, true
	h.s.logErr(h.s.persist(e))
	e.Engine, e.Runnable = saved, runnable
}

// Token implements engine.TokenSource.
func (h execHost) Token(kind, audience string) (string, error) {
	if h.s.opts.Token == nil {
		return "", nil
	}
	return h.s.opts.Token(kind, audience)
}

// StartChild implements engine.ChildStarter.
func (h execHost) StartChild(workflow string, arg any) (string, error) {
	if !strings.Contains(workflow, "/") {
		workflow = h.e.Workflow[:strings.LastIndex(h.e.Workflow, "/")+1] + workflow
	}
	argument := ""
	if arg != nil {
		argument = string(lang.MarshalValue(arg))
	}
	v, err := h.s.CreateExecution(workflow, ExecutionInput{Argument: argument, Parent: h.e.Name})
	if err != nil {
		e := AsError(err)
		return "", &lang.Error{Value: map[string]any{"message": e.Message, "code": int64(e.HTTP), "tags": []any{lang.TagHTTP}}}
	}
	return v.Name, nil
}

// notifyParent hands a finished child's outcome to the execution waiting
// on it. Callers must not hold the child's lock.
func (s *Service) notifyParent(parent, child string) {
	c, err := s.exec(child)
	if err != nil {
		return
	}
	cv := s.snapshot(c)
	var result, errVal any
	failed := false
	switch cv.State {
	case StateSucceeded:
		result, _ = lang.UnmarshalValue([]byte(cv.Result))
	case StateFailed:
		failed = true
		if cv.Error != nil {
			errVal, _ = lang.UnmarshalValue([]byte(cv.Error.Payload))
		}
	case StateCancelled:
		failed = true
		errVal = map[string]any{"message": "child execution " + child + " was cancelled", "tags": []any{lang.TagCancelled}}
	default:
		return
	}
	p, err := s.exec(parent)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.State != StateActive {
		return
	}
	x, err := s.materialize(p)
	if err != nil || !x.DeliverChild(child, result, errVal, failed) {
		return
	}
	if p.live != nil {
		return // running or queued: it picks the wake-up up itself
	}
	b, err := x.St.Encode()
	if err != nil {
		s.logErr(err)
		return
	}
	p.Engine, p.Runnable = b, true
	if err := s.persist(p); err != nil {
		s.logErr(err)
		return
	}
	p.live, p.Engine = x, nil
	s.q.push(p)
}

// materialize returns the live interpreter, decoding or starting it.
// Callers hold e.mu.
func (s *Service) materialize(e *Execution) (*engine.Exec, error) {
	if e.live != nil {
		return e.live, nil
	}
	prog, _, err := s.program(e.Workflow, e.Revision)
	if err != nil {
		return nil, err
	}
	host := execHost{s, e}
	if e.Engine == nil {
		arg, err := lang.ArgumentFromJSON(e.Argument)
		if err != nil {
			return nil, err
		}
		return engine.New(prog, host, arg)
	}
	st, err := engine.DecodeState(e.Engine)
	if err != nil {
		return nil, err
	}
	return engine.Restore(prog, host, st), nil
}

// sliceSteps bounds one run slice so that a busy execution cannot starve
// the others sharing the workers.
const sliceSteps = 50000

func (s *Service) run(e *Execution) {
	if s.runLocked(e) && e.Parent != "" {
		s.notifyParent(e.Parent, e.Name)
	}
}

// runLocked runs one slice; it reports whether the execution ended.
func (s *Service) runLocked(e *Execution) (ended bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.State != StateActive {
		return false
	}
	defer func() { ended = e.State != StateActive }()
	// An interpreter bug must fail one execution, not the emulator.
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logf("workflows: %s: internal error: %v\n%s", e.Name, r, debug.Stack())
			s.finishFailed(e, map[string]any{"message": fmt.Sprintf("internal error: %v", r), "tags": []any{lang.TagSystem}}, "internal error")
		}
	}()
	if e.cancelled.Load() {
		s.logErr(s.markCancelled(e))
		return
	}
	x, err := s.materialize(e)
	if err != nil {
		s.finishFailed(e, map[string]any{"message": err.Error(), "tags": []any{lang.TagSystem}}, err.Error())
		return
	}
	x.Interrupt = e.cancelled.Load
	before := x.St.Usage()
	defer func() { s.usage.add(x.St.Usage().Sub(before)) }()
	v := s.view(e)
	e.snap.Store(&v)
	defer e.snap.Store(nil) // only needed while the slice runs
	st := x.Run(sliceSteps)
	for i := 0; st == engine.Waiting && i < 100; i++ {
		// A wait already due (a zero sleep; any sleep under a virtual clock
		// that stands still) continues at once rather than at the next tick.
		now := s.Now().UnixNano()
		if d := x.NextDeadline(); d == 0 || d > now || !x.Wake(now) {
			break
		}
		st = x.Run(sliceSteps)
	}
	if e.cancelled.Load() {
		e.live = x
		s.logErr(s.markCancelled(e))
		return
	}
	switch st {
	case engine.Done:
		e.live = nil
		e.Engine = nil
		e.History = x.St.History
		e.Logs = x.St.Logs
		e.Usage = x.St.Usage()
		e.Current = nil
		e.Deadline = 0
		e.EndTime = s.Now().UTC()
		if x.St.Failed {
			e.State = StateFailed
			e.Error = &ExecError{Payload: string(x.St.ErrVal), Context: x.St.ErrCtx, StackTrace: x.St.Trace}
		} else {
			e.State = StateSucceeded
			e.Result = string(x.St.Result)
		}
		s.logErr(s.persist(e))
	case engine.Waiting:
		s.suspend(e, x)
	case engine.Yield:
		e.live = x
		e.Current = x.CurrentSteps()
		s.q.push(e)
	}
	return
}

// suspend serialises a waiting execution, persists it and arms its timer.
func (s *Service) suspend(e *Execution, x *engine.Exec) {
	b, err := x.St.Encode()
	if err != nil {
		s.finishFailed(e, map[string]any{"message": err.Error(), "tags": []any{lang.TagSystem}}, err.Error())
		return
	}
	e.live = nil
	e.Engine = b
	e.Current = x.CurrentSteps()
	e.Deadline = x.NextDeadline()
	e.Runnable = false
	s.logErr(s.persist(e))
	if e.Deadline > 0 {
		s.timers.Add(e.Name, e.Deadline)
	}
}

func (s *Service) finishFailed(e *Execution, v any, ctx string) {
	e.live, e.Engine, e.Current, e.Deadline = nil, nil, nil, 0
	e.State = StateFailed
	e.EndTime = s.Now().UTC()
	e.Error = &ExecError{Payload: lang.Repr(v), Context: ctx}
	s.logErr(s.persist(e))
}

func (s *Service) logErr(err error) {
	if err != nil {
		s.opts.Logf("%v", err)
	}
}

// fire wakes an execution whose timer fell due.
func (s *Service) fire(name string) {
	e, err := s.exec(name)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.State != StateActive || e.live != nil || e.Engine == nil {
		return
	}
	now := s.Now().UnixNano()
	if e.Deadline == 0 || e.Deadline > now {
		return
	}
	x, err := s.materialize(e)
	if err != nil {
		s.finishFailed(e, map[string]any{"message": err.Error(), "tags": []any{lang.TagSystem}}, err.Error())
		return
	}
	if x.Wake(now) {
		e.live = x
		e.Engine = nil
		s.q.push(e)
		return
	}
	if d := x.NextDeadline(); d > 0 {
		e.Deadline = d
		s.timers.Add(e.Name, d)
	}
}
