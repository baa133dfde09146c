package service

import (
	"encoding/json"
	"fmt"

	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/lang"
)

// ExecutionInput is what create accepts.
type ExecutionInput struct {
	Argument     string
	CallLogLevel string
	Labels       map[string]string
	// Parent names the execution waiting on this one (child executions).
	Parent string
}

// CreateExecution starts a run of the workflow's current revision.
func (s *Service) CreateExecution(wfName string, in ExecutionInput) (View, error) {
	s.mu.RLock()
	w, ok := s.workflows[wfName]
	var rev string
	if ok {
		rev = w.RevisionID
	}
	s.mu.RUnlock()
	if !ok {
		return View{}, notFound("workflow %s not found", wfName)
	}
	if len(in.Argument) > 32*1024 {
		return View{}, invalid("argument exceeds 32 KB")
	}
	if _, err := lang.ArgumentFromJSON(in.Argument); err != nil {
		return View{}, invalid("argument: %v", err)
	}
	e := &Execution{record: record{
		Name: wfName + "/executions/" + newID(), Workflow: wfName, Revision: rev, State: StateActive,
		Argument: in.Argument, StartTime: s.Now().UTC(), CallLogLevel: in.CallLogLevel, Labels: in.Labels,
		Parent: in.Parent,
	}}
	if e.CallLogLevel == "" {
		e.CallLogLevel = "CALL_LOG_LEVEL_UNSPECIFIED"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Persist before anything runs: a restart then re-runs it from the start.
	if err := s.persist(e); err != nil {
		return View{}, err
	}
	s.mu.Lock()
	s.execs[e.Name] = e
	s.byWF[wfName] = append(s.byWF[wfName], e)
	s.mu.Unlock()
	s.usage.started()
	s.q.push(e)
	return s.view(e), nil
}

func (s *Service) persist(e *Execution) error {
	data, err := json.Marshal(&e.record)
	if err != nil {
		return fmt.Errorf("workflows: persist %s: %w", e.Name, err)
	}
	if err := s.opts.Store.PutExecution(e.Name, data); err != nil {
		return fmt.Errorf("workflows: persist %s: %w", e.Name, err)
	}
	return nil
}

func (s *Service) view(e *Execution) View {
	v := View{Name: e.Name, Workflow: e.Workflow, Revision: e.Revision, State: e.State, Argument: e.Argument,
		Result: e.Result, Error: e.Error, StartTime: e.StartTime, EndTime: e.EndTime,
		CallLogLevel: e.CallLogLevel, Labels: e.Labels, Current: e.Current}
	if e.EndTime.IsZero() {
		v.Duration = s.Now().Sub(e.StartTime)
	} else {
		v.Duration = e.EndTime.Sub(e.StartTime)
	}
	return v
}

func (s *Service) exec(name string) (*Execution, error) {
	s.mu.RLock()
	e, ok := s.execs[name]
	s.mu.RUnlock()
	if !ok {
		return nil, notFound("execution %s not found", name)
	}
	return e, nil
}

// GetExecution returns a snapshot of an execution.
func (s *Service) GetExecution(name string) (View, error) {
	e, err := s.exec(name)
	if err != nil {
		return View{}, err
	}
	return s.snapshot(e), nil
}

// snapshot reads an execution without waiting for a running slice.
func (s *Service) snapshot(e *Execution) View {
	if e.mu.TryLock() {
		defer e.mu.Unlock()
		return s.view(e)
	}
	if p := e.snap.Load(); p != nil {
		v := *p
		v.Duration = s.Now().Sub(v.StartTime)
		return v
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return s.view(e)
}

// ListExecutions lists a workflow's executions, newest first; state
// filters when non-empty.
func (s *Service) ListExecutions(wfName string, pageSize int, pageToken, state string) ([]View, string, error) {
	s.mu.RLock()
	list := append([]*Execution(nil), s.byWF[wfName]...)
	_, wfOK := s.workflows[wfName]
	s.mu.RUnlock()
	if !wfOK && len(list) == 0 {
		return nil, "", notFound("workflow %s not found", wfName)
	}
	views := make([]View, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		if v := s.snapshot(list[i]); state == "" || v.State == state {
			views = append(views, v)
		}
	}
	return page(views, pageSize, pageToken, 1000)
}

// CancelExecution stops an execution; a waiting one is woken and ends
// CANCELLED, never FAILED.
func (s *Service) CancelExecution(name string) (View, error) {
	e, err := s.exec(name)
	if err != nil {
		return View{}, err
	}
	already := e.cancelled.Swap(true)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.State == StateCancelled && !already {
		// A running slice saw this call's flag first and cancelled it.
		return s.view(e), nil
	}
	if e.State != StateActive {
		return View{}, precondition("execution %s is %s, not ACTIVE", name, e.State)
	}
	if err := s.markCancelled(e); err != nil {
		return View{}, err
	}
	if e.Parent != "" {
		defer func() { go s.notifyParent(e.Parent, e.Name) }()
	}
	return s.view(e), nil
}

func (s *Service) markCancelled(e *Execution) error {
	if e.live != nil {
		e.History = e.live.St.History
		e.Logs = e.live.St.Logs
		e.Usage = e.live.St.Usage()
	} else if e.Engine != nil {
		if st, err := engine.DecodeState(e.Engine); err == nil {
			e.History = st.History
			e.Logs = st.Logs
			e.Usage = st.Usage()
		}
	}
	e.State = StateCancelled
	e.EndTime = s.Now().UTC()
	e.live, e.Engine, e.Current, e.Deadline, e.Runnable = nil, nil, nil, 0, false
	return s.persist(e)
}
