// Package service is the emulator's core: workflows and their revisions,
// executions and the runner that moves them, callbacks, timers and
// persistence. The api package maps it onto REST and gRPC.
package service

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"time"

	"waooaw.dev/governance/infra/local/workflows/clock"
	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
	"waooaw.dev/governance/infra/local/workflows/store"
)

// Options configure a Service.
type Options struct {
	Store *store.Store // nil keeps everything in memory
	Clock clock.Clock  // clock.Real{} or *clock.Virtual
	// BaseURL is the emulator's own URL, for callback endpoints.
	BaseURL    func() string
	HTTPClient *http.Client
	Workers    int
	Logf       func(format string, args ...any)
	// Token mints bearer tokens for http.* calls with an auth argument
	// (nil: such calls carry no token).
	Token func(kind, audience string) (string, error)
	// OnAdvance is told where a virtual clock stands after each advance,
	// so that it can be kept across restarts.
	OnAdvance func(now time.Time)
	// InternalHosts are hosts ("host:port" or "host") that stand for Google Cloud services
	// (the local stack's functions): a request to one is an internal step, as a Cloud Run
	// functions invocation is. Google's own domains always are.
	InternalHosts []string
}

// Service holds every workflow and execution.
type Service struct {
	opts   Options
	timers *clock.Timers
	q      *runQueue

	mu        sync.RWMutex
	workflows map[string]*Workflow
	execs     map[string]*Execution
	byWF      map[string][]*Execution
	ops       map[string]*Operation

	advMu sync.Mutex

	usage usageTotals
}

// Operation is a finished long-running operation.
type Operation struct {
	Name     string
	Workflow *Workflow
	Err      *Error
	Verb     string
	Created  time.Time
}

// New builds a service, reloading what Store holds.
func New(opts Options) (*Service, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Workers <= 0 {
		opts.Workers = max(4, runtime.GOMAXPROCS(0)*2)
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	if opts.BaseURL == nil {
		opts.BaseURL = func() string { return "http://127.0.0.1" }
	}
	s := &Service{
		opts:      opts,
		workflows: map[string]*Workflow{},
		execs:     map[string]*Execution{},
		byWF:      map[string][]*Execution{},
		ops:       map[string]*Operation{},
	}
	s.q = newRunQueue()
	s.timers = clock.NewTimers(opts.Clock, s.fire)
	if err := s.load(); err != nil {
		s.timers.Close()
		return nil, err
	}
	for i := 0; i < opts.Workers; i++ {
		go s.worker()
	}
	return s, nil
}

// Close stops the workers and timers; state on disk stays as it is.
func (s *Service) Close() {
	s.q.close()
	s.timers.Close()
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.opts.Clock.Now() }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Advance moves a virtual clock forward, firing timers in order and
// letting woken executions reach their next wait point at each one.
func (s *Service) Advance(d time.Duration) (time.Time, error) {
	v, ok := s.opts.Clock.(*clock.Virtual)
	if !ok {
		return time.Time{}, precondition("the clock is real: start with --clock=virtual to advance it")
	}
	s.advMu.Lock()
	defer s.advMu.Unlock()
	target := v.Now().Add(d)
	s.q.waitIdle()
	for {
		due, ok := s.timers.Next()
		if !ok || due > target.UnixNano() {
			break
		}
		v.Set(time.Unix(0, due))
		for _, k := range s.timers.PopDue(due) {
			s.fire(k)
		}
		s.q.waitIdle()
	}
	v.Set(target)
	s.q.waitIdle()
	if s.opts.OnAdvance != nil {
		s.opts.OnAdvance(v.Now())
	}
	return v.Now(), nil
}

// WaitIdle blocks until no execution is runnable.
func (s *Service) WaitIdle() { s.q.waitIdle() }

func (s *Service) load() error {
	if s.opts.Store == nil {
		return nil
	}
	err := s.opts.Store.Workflows(func(data []byte) error {
		var w Workflow
		if err := json.Unmarshal(data, &w); err != nil {
			return fmt.Errorf("workflows: load workflow: %w", err)
		}
		w.progs = map[string]*lang.Program{}
		for rev, src := range w.Revisions {
			p, err := lang.Compile(src, stdlib.Signatures{})
			if err != nil {
				return fmt.Errorf("workflows: load %s revision %s: %w", w.Name, rev, err)
			}
			w.progs[rev] = p
		}
		s.workflows[w.Name] = &w
		return nil
	})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var all []*Execution
	err = s.opts.Store.Executions(func(data []byte) error {
		e := &Execution{}
		if err := json.Unmarshal(data, &e.record); err != nil {
			return fmt.Errorf("workflows: load execution: %w", err)
		}
		mu.Lock()
		all = append(all, e)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].StartTime.Before(all[j].StartTime) })
	for _, e := range all {
		s.execs[e.Name] = e
		s.byWF[e.Workflow] = append(s.byWF[e.Workflow], e)
		if e.State != StateActive {
			continue
		}
		switch {
		case e.Engine == nil || e.Runnable:
			s.q.push(e)
		case e.Deadline > 0:
			s.timers.Add(e.Name, e.Deadline)
		}
	}
	// A child that ended just before a crash may not have reached its
	// parent; delivering again is harmless (only a waiting thread takes it).
	for _, e := range all {
		if e.Parent != "" && e.State != StateActive {
			if p := s.execs[e.Parent]; p != nil && p.State == StateActive {
				s.notifyParent(e.Parent, e.Name)
			}
		}
	}
	return nil
}

// Counts reports executions per state (for the UI and tests).
func (s *Service) Counts() map[string]int {
	s.mu.RLock()
	list := make([]*Execution, 0, len(s.execs))
	for _, e := range s.execs {
		list = append(list, e)
	}
	s.mu.RUnlock()
	out := map[string]int{}
	for _, e := range list {
		e.mu.Lock()
		out[e.State]++
		e.mu.Unlock()
	}
	return out
}

// Workflows lists every workflow name.
func (s *Service) WorkflowNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.workflows))
	for n := range s.workflows {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
