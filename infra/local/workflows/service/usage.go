package service

import (
	"net/url"
	"slices"
	"sync"

	"waooaw.dev/governance/infra/local/workflows/engine"
)

// Totals is the usage of every execution run by this process since it started: what a
// benchmark reads before and after a run to know the steps it cost.
type Totals struct {
	Executions int64 `json:"executions"` // executions created
	engine.Usage
}

type usageTotals struct {
	mu sync.Mutex
	t  Totals
}

func (u *usageTotals) started() {
	u.mu.Lock()
	u.t.Executions++
	u.mu.Unlock()
}

func (u *usageTotals) add(d engine.Usage) {
	u.mu.Lock()
	u.t.Usage = u.t.Usage.Add(d)
	u.mu.Unlock()
}

// TotalUsage returns the steps executed by every execution since the service started,
// counted as each run slice ends.
func (s *Service) TotalUsage() Totals {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	return s.usage.t
}

// ExecutionUsage returns the steps one execution has executed so far.
func (s *Service) ExecutionUsage(name string) (engine.Usage, error) {
	e, err := s.exec(name)
	if err != nil {
		return engine.Usage{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.live != nil:
		return e.live.St.Usage(), nil
	case e.Engine != nil:
		st, err := engine.DecodeState(e.Engine)
		if err != nil {
			return engine.Usage{}, err
		}
		return st.Usage(), nil
	}
	return e.Usage, nil
}

// InternalURL implements engine.URLClassifier with Options.InternalHosts.
func (h execHost) InternalURL(u *url.URL) bool {
	hosts := h.s.opts.InternalHosts
	return slices.Contains(hosts, u.Host) || slices.Contains(hosts, u.Hostname())
}
