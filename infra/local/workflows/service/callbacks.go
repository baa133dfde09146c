package service

import (
	"errors"
	"time"

	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/lang"
)

// CallbackRequest is an HTTP request to a callback URL.
type CallbackRequest struct {
	Method  string
	URL     string
	Headers map[string]string
	Query   map[string][]string
	Body    []byte
	JSON    bool
}

// Callback hands a request to a waiting (or later awaiting) execution.
// The delivery is persisted before it is acknowledged.
func (s *Service) Callback(execName, id string, r CallbackRequest) error {
	e, err := s.exec(execName)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.State != StateActive {
		return notFound("execution %s is %s: callback %s no longer accepts requests", execName, e.State, id)
	}
	x, err := s.materialize(e)
	if err != nil {
		return err
	}
	m, ok := x.CallbackMethod(id)
	if !ok {
		return notFound("callback %s not found", id)
	}
	if m != r.Method {
		return notFound("callback %s accepts %s, not %s", id, m, r.Method)
	}
	headers := map[string]any{}
	for k, v := range r.Headers {
		headers[k] = v
	}
	query := map[string]any{}
	for k, vs := range r.Query {
		l := make([]any, len(vs))
		for i, v := range vs {
			l[i] = v
		}
		query[k] = l
	}
	var body any
	if len(r.Body) > 0 {
		body = string(r.Body)
		if r.JSON {
			if v, err := lang.UnmarshalValue(r.Body); err == nil {
				body = v
			}
		}
	}
	req := map[string]any{
		"http_request": map[string]any{
			"method": r.Method, "url": r.URL, "headers": headers, "query": query, "body": body,
		},
		"received_time": s.Now().UTC().Format(time.RFC3339Nano),
		"type":          "HTTP",
	}
	if err := x.Deliver(id, req); err != nil {
		if errors.Is(err, engine.ErrNoCallback) {
			return notFound("callback %s not found", id)
		}
		return err
	}
	b, err := x.St.Encode()
	if err != nil {
		return internal("%v", err)
	}
	runnable := x.Runnable()
	if e.live == nil {
		e.Engine = b
		e.Runnable = runnable
		if err := s.persist(e); err != nil {
			return err
		}
		if runnable {
			e.live = x
			e.Engine = nil
			s.q.push(e)
		}
		return nil
	}
	// Running or queued: persist a snapshot so the delivery survives a
	// crash, and keep the live state.
	saved := e.Engine
	e.Engine, e.Runnable = b, true
	err = s.persist(e)
	e.Engine = saved
	return err
}

// CallbackInfo describes a callback endpoint of an execution.
type CallbackInfo struct {
	ID       string
	Method   string
	Waiting  bool
	Queued   int
	Since    time.Time
	Execname string
	// Step is the step awaiting it and Deadline when that wait times out, on the
	// emulator's clock (zero: no step awaits it, or no timeout).
	Step     engine.TraceElem
	Deadline time.Time
}

// ListCallbacks lists an execution's callback endpoints.
func (s *Service) ListCallbacks(execName string) ([]CallbackInfo, error) {
	e, err := s.exec(execName)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.State != StateActive {
		return nil, nil
	}
	x, err := s.materialize(e)
	if err != nil {
		return nil, err
	}
	var out []CallbackInfo
	for _, c := range x.PendingCallbacks() {
		ci := CallbackInfo{ID: c.ID, Method: c.Method, Waiting: c.Waiter >= 0, Queued: len(c.Queue), Execname: execName}
		if c.Since > 0 {
			ci.Since = time.Unix(0, c.Since).UTC()
		}
		if step, until, ok := x.CallbackWait(c); ok {
			ci.Step = step
			if until > 0 {
				ci.Deadline = time.Unix(0, until).UTC()
			}
		}
		out = append(out, ci)
	}
	return out, nil
}

// Logs returns the sys.log lines an execution kept (the last engine.MaxLogs), oldest first.
func (s *Service) Logs(execName string) ([]engine.LogEntry, error) {
	e, err := s.exec(execName)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.live != nil:
		return append([]engine.LogEntry(nil), e.live.St.Logs...), nil
	case e.Engine != nil:
		st, err := engine.DecodeState(e.Engine)
		if err != nil {
			return nil, err
		}
		return st.Logs, nil
	}
	return append([]engine.LogEntry(nil), e.Logs...), nil
}

// StepEntries returns the steps an execution has started, oldest first.
func (s *Service) StepEntries(execName string) ([]engine.StepEntry, error) {
	e, err := s.exec(execName)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.live != nil:
		return append([]engine.StepEntry(nil), e.live.St.History...), nil
	case e.Engine != nil:
		st, err := engine.DecodeState(e.Engine)
		if err != nil {
			return nil, err
		}
		return st.History, nil
	}
	return append([]engine.StepEntry(nil), e.History...), nil
}
