package engine

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

// Per-execution limits: Google's, except MaxHistory and MaxLogs, the emulator's
// own caps on the step entries and sys.log lines it keeps. An execution's whole
// state is written again at every wait, so what it keeps for reading stays small.
const (
	MaxSteps       = 100000
	MaxMemory      = 512 * 1024
	MaxCallDepth   = 20
	MaxConcurrency = 20 // branches or iterations of one parallel step at once
	MaxHistory     = 1000
	// MaxLogs keeps a whole agent creation's lines (one per stage transition, a few
	// dozen even with revisions and a compensation) with room to spare.
	MaxLogs = 100
	// MaxLogText bounds one kept line; a longer one is cut.
	MaxLogText     = 1024
	DefaultTimeout = 43200 // seconds an await_callback waits by default
)

// Host is what the engine needs from the server around it.
type Host interface {
	Now() time.Time
	Getenv(name string) (string, bool)
	CallbackURL(id string) string
	HTTPClient() *http.Client
	Log(severity string, v any)
}

// ChildStarter is implemented by hosts that can start child executions
// (the googleapis.workflowexecutions connector).
type ChildStarter interface {
	// StartChild starts workflow (a workflow id, or a full name) with arg
	// and returns the child execution's name.
	StartChild(workflow string, arg any) (string, error)
}

// Checkpointer is implemented by hosts that keep executions durable. The engine calls it
// after every step whose effect reaches outside the execution (an HTTP request answered, a
// callback endpoint created), with the state already past that step: an emulator that dies
// afterwards resumes after the effect instead of repeating it, as Cloud Workflows, which
// records each step, does. A replay that created a new callback endpoint would leave the
// URL an approval already holds pointing at nothing.
type Checkpointer interface {
	Checkpoint(x *Exec)
}

// URLClassifier is implemented by hosts that know which URLs stand for Google Cloud
// services locally (the local stack's functions); without it, GoogleInternal decides.
type URLClassifier interface {
	// InternalURL reports whether a request to u is billed as an internal step.
	InternalURL(u *url.URL) bool
}

// googleSuffixes are the domains whose requests Cloud Workflows bills as internal steps.
var googleSuffixes = []string{".googleapis.com", ".cloud.goog", ".appspot.com", ".run.app", ".cloudfunctions.net"}

// GoogleInternal reports whether Cloud Workflows bills a request to u as an internal step:
// Google APIs, App Engine, Cloud Run and Cloud Run functions by their Google domains.
func GoogleInternal(u *url.URL) bool {
	h := strings.ToLower(u.Hostname())
	for _, s := range googleSuffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// TokenSource is implemented by hosts that can mint tokens for http.*
// calls with an auth argument.
type TokenSource interface {
	Token(kind, audience string) (string, error)
}

// RunChild is the connector that starts a child execution and waits for it.
const RunChild = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run"

// Status is what Run reports.
type Status int

// Run outcomes.
const (
	Done    Status = iota // succeeded or failed: see State
	Waiting               // every thread waits on a timer, callback or join
	Yield                 // the step budget ran out; call Run again
)

// Exec is a live execution: a program, its state and a host.
type Exec struct {
	Prog *lang.Program
	St   *State
	Host Host
	// Interrupt, when set, is polled between steps; true stops the run.
	Interrupt func() bool

	cur      *Thread
	lastStep int
	nested   int
	effect   bool // the step just run reached outside the execution (see Checkpointer)
}

// New starts an execution of prog's main with the given argument.
func New(prog *lang.Program, host Host, arg any) (*Exec, error) {
	main := prog.Subs["main"]
	vars := Vars{}
	if len(main.Params) == 1 {
		vars[main.Params[0].Name] = arg
	}
	x := &Exec{Prog: prog, Host: host, St: &State{}}
	x.St.Threads = []*Thread{{ID: 0, Parent: -1, Stack: []*Frame{
		{Kind: fCall, Sub: "main", Vars: vars},
		{Kind: fBlock, Index: main.Body},
	}}}
	x.St.NextID = 1
	return x, nil
}

// Restore wraps a decoded state.
func Restore(prog *lang.Program, host Host, st *State) *Exec {
	return &Exec{Prog: prog, Host: host, St: st}
}

func (x *Exec) thread(id int) *Thread {
	for _, t := range x.St.Threads {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func top(t *Thread) *Frame { return t.Stack[len(t.Stack)-1] }
func pop(t *Thread) *Frame {
	f := t.Stack[len(t.Stack)-1]
	t.Stack[len(t.Stack)-1] = nil
	t.Stack = t.Stack[:len(t.Stack)-1]
	return f
}
func push(t *Thread, f *Frame) { t.Stack = append(t.Stack, f) }

// Run executes until every thread waits, the execution ends, or budget
// steps have run.
func (x *Exec) Run(budget int) Status {
	for budget > 0 {
		progressed := false
		for i := 0; i < len(x.St.Threads) && budget > 0; i++ {
			t := x.St.Threads[i]
			if t.Wait != nil || len(t.Stack) == 0 {
				continue
			}
			progressed = true
			budget -= x.runThread(t, budget)
			if x.St.Done {
				return Done
			}
		}
		if !progressed {
			// Waiting is where the state is persisted: enforce the variable
			// limit here too, not only every 1024 steps.
			if sz := x.memory(); sz > MaxMemory && len(x.St.Threads) > 0 {
				t := x.St.Threads[0]
				t.Wait = nil
				x.raise(t, lang.Errorf(lang.TagResourceLimit, "ResourceLimitError: Memory usage limit exceeded (%d bytes of variables, limit %d)", sz, MaxMemory).Value, true)
				continue
			}
			return Waiting
		}
		if x.Interrupt != nil && x.Interrupt() {
			return Yield
		}
	}
	if x.St.Done {
		return Done
	}
	return Yield
}

func (x *Exec) runThread(t *Thread, budget int) int {
	x.cur = t
	n := 0
	// ops bounds work that runs no step (entering and leaving blocks), so a
	// slice always ends.
	ops := 0
	for n < budget && ops < 4*budget && t.Wait == nil && len(t.Stack) > 0 && !x.St.Done {
		ops++
		if r := t.Resume; r != nil {
			t.Resume = nil
			x.resume(t, r)
			continue
		}
		f := top(t)
		switch f.Kind {
		case fBlock:
			l := x.Prog.Lists[f.Index]
			if f.PC >= len(l.Steps) {
				x.endBlock(t)
				continue
			}
			sid := l.Steps[f.PC]
			f.PC++
			n++
			x.execStep(t, sid)
			if x.effect {
				x.effect = false
				if cp, ok := x.Host.(Checkpointer); ok && !x.St.Done {
					cp.Checkpoint(x)
				}
			}
			if n&1023 == 0 {
				if x.Interrupt != nil && x.Interrupt() {
					return n
				}
				if sz := x.memory(); sz > MaxMemory {
					x.raise(t, lang.Errorf(lang.TagResourceLimit, "ResourceLimitError: Memory usage limit exceeded (%d bytes of variables, limit %d)", sz, MaxMemory).Value, true)
				}
			}
		default:
			// Only blocks run steps; a bare frame on top means its body ended.
			x.endBlockFrame(t, f)
		}
	}
	return max(n, 1)
}

func (x *Exec) routine(t *Thread) string {
	for i := len(t.Stack) - 1; i >= 0; i-- {
		if t.Stack[i].Kind == fCall {
			return t.Stack[i].Sub
		}
	}
	if t.Parent >= 0 {
		if p := x.thread(t.Parent); p != nil {
			return x.routine(p)
		}
	}
	return "main"
}

// topStep names the step of main's own list that t runs under (main's body is the
// second frame of the first thread, its PC already past the step running) and says
// whether the step t runs is that one itself.
func (x *Exec) topStep(t *Thread) (name string, own bool) {
	own = t.Parent < 0 && len(t.Stack) == 2
	for t.Parent >= 0 {
		p := x.thread(t.Parent)
		if p == nil {
			return "", false
		}
		t = p
	}
	if len(t.Stack) < 2 || t.Stack[0].Kind != fCall || t.Stack[0].Sub != "main" || t.Stack[1].Kind != fBlock {
		return "", false
	}
	f := t.Stack[1]
	l := x.Prog.Lists[f.Index]
	if f.PC < 1 || f.PC > len(l.Steps) {
		return "", false
	}
	name = x.Prog.Steps[l.Steps[f.PC-1]].Name
	if i := strings.IndexByte(name, '#'); i >= 0 {
		name = name[:i]
	}
	return name, own
}

func (x *Exec) record(t *Thread, s *lang.Step) {
	x.St.StepCount++
	if strings.IndexByte(s.Name, '#') >= 0 {
		// A step the compiler made (a switch condition's action, a try's inline call) is
		// part of the step written, which is billed once.
		return
	}
	x.St.Billed++
	h := StepEntry{Seq: x.St.StepCount, Step: s.Name, Routine: x.routine(t), Time: x.Host.Now().UnixNano()}
	// Only the entry starting a run under a step of main names it: naming it on every
	// entry would add a third to the history each wait writes again.
	if top, own := x.topStep(t); own || top != x.St.Top {
		h.Top, x.St.Top = top, top
	}
	if len(x.St.History) >= MaxHistory {
		// The first entry kept names the step of main it ran under, as a run's first does.
		if kept := &x.St.History[MaxHistory/2]; kept.Top == "" {
			for i := MaxHistory/2 - 1; i >= 0; i-- {
				if x.St.History[i].Top != "" {
					kept.Top = x.St.History[i].Top
					break
				}
			}
		}
		copy(x.St.History, x.St.History[MaxHistory/2:])
		x.St.History = x.St.History[:len(x.St.History)-MaxHistory/2]
	}
	x.St.History = append(x.St.History, h)
}

func (x *Exec) execStep(t *Thread, sid int) {
	s := x.Prog.Steps[sid]
	x.lastStep = sid
	x.record(t, s)
	if x.St.StepCount > MaxSteps {
		x.raise(t, lang.Errorf(lang.TagResourceLimit, "ResourceLimitError: Maximum number of steps (%d) exceeded", MaxSteps).Value, true)
		return
	}
	switch s.Kind {
	case lang.KNext:
		x.jump(t, s.Next)
	case lang.KAssign:
		for _, a := range s.Assign {
			v, err := a.Value.Eval(x)
			if err == nil {
				err = x.assign(t, a.Target, v)
			}
			if err != nil {
				x.raiseErr(t, err)
				return
			}
		}
		x.afterStep(t, s)
	case lang.KCall:
		x.call(t, s, sid)
	case lang.KSwitch:
		for _, c := range s.Switch {
			v, err := c.Cond.Eval(x)
			if err != nil {
				x.raiseErr(t, err)
				return
			}
			b, err := lang.Truthy(v)
			if err != nil {
				x.raiseErr(t, err)
				return
			}
			if b {
				push(t, &Frame{Kind: fBlock, Index: c.Body, Owner: sid + 1})
				return
			}
		}
		x.afterStep(t, s)
	case lang.KFor:
		x.startFor(t, s, sid)
	case lang.KParallel:
		x.startParallel(t, s, sid)
	case lang.KTry:
		push(t, &Frame{Kind: fTry, Index: sid})
		push(t, &Frame{Kind: fBlock, Index: s.Try})
	case lang.KRaise:
		v, err := s.Value.Eval(x)
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		x.raise(t, v, true)
	case lang.KReturn:
		v, err := s.Value.Eval(x)
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		x.doReturn(t, v)
	case lang.KSteps:
		push(t, &Frame{Kind: fBlock, Index: s.Body, Owner: sid + 1})
	}
}

// afterStep follows a finished step's next, if any.
func (x *Exec) afterStep(t *Thread, s *lang.Step) {
	if s.Next != "" {
		x.jump(t, s.Next)
	}
}

func (x *Exec) endBlock(t *Thread) {
	b := pop(t)
	if len(t.Stack) == 0 {
		return
	}
	if b.Owner > 0 && top(t).Kind == fBlock {
		x.afterStep(t, x.Prog.Steps[b.Owner-1])
		return
	}
	x.endBlockFrame(t, top(t))
}

// endBlockFrame handles a frame whose body block has just finished.
func (x *Exec) endBlockFrame(t *Thread, f *Frame) {
	switch f.Kind {
	case fBlock:
	case fCall:
		x.doReturn(t, nil)
	case fFor:
		x.forNext(t)
	case fTry:
		pop(t)
		x.afterStep(t, x.Prog.Steps[f.Index])
	case fBranch:
		x.branchDone(t, nil, false)
	case fPar:
		// Waiting for branches; nothing runs here.
		t.Wait = &Wait{Kind: WJoin, Step: f.Index}
	}
}

func (x *Exec) jump(t *Thread, target string) {
	switch target {
	case "end":
		for i := len(t.Stack) - 1; i >= 0; i-- {
			if t.Stack[i].Kind == fCall {
				x.doReturn(t, nil)
				return
			}
			if t.Stack[i].Kind == fBranch {
				t.Stack = t.Stack[:i+1]
				x.branchDone(t, nil, false)
				return
			}
		}
		return
	case "break", "continue":
		for len(t.Stack) > 0 {
			f := top(t)
			switch f.Kind {
			case fFor:
				if target == "continue" {
					x.forNext(t)
				} else {
					pop(t)
					x.afterStep(t, x.Prog.Steps[f.Index])
				}
				return
			case fBranch:
				x.branchDone(t, nil, false)
				return
			case fCall:
				x.raise(t, lang.Errorf(lang.TagValue, "%s outside a for loop", target).Value, true)
				return
			}
			pop(t)
		}
		return
	}
	for len(t.Stack) > 0 {
		f := top(t)
		switch f.Kind {
		case fBlock:
			if i, ok := x.Prog.Lists[f.Index].Index[target]; ok {
				f.PC = i
				return
			}
			pop(t)
		case fTry, fFor:
			pop(t)
		default:
			x.raise(t, lang.Errorf(lang.TagValue, "next: step %q not reachable", target).Value, true)
			return
		}
	}
}

func (x *Exec) doReturn(t *Thread, v any) {
	for len(t.Stack) > 0 {
		f := pop(t)
		switch f.Kind {
		case fCall:
			if len(t.Stack) == 0 {
				x.finish(v)
				return
			}
			if f.Pred {
				x.predicateResult(t, v)
				return
			}
			if f.Ret != "" {
				if err := x.setVar(t, f.Ret, lang.Copy(v)); err != nil {
					x.raiseErr(t, err)
					return
				}
			}
			if f.Owner > 0 {
				x.afterStep(t, x.Prog.Steps[f.Owner-1])
			}
			return
		case fBranch:
			push(t, f)
			x.raise(t, lang.Errorf(lang.TagValue, "return is not allowed in a parallel branch").Value, true)
			return
		}
	}
}

func (x *Exec) finish(v any) {
	x.St.Done = true
	x.St.Result = lang.MarshalValue(v)
	x.St.Threads = nil
}

func (x *Exec) fail(err any) {
	x.St.Done = true
	x.St.Failed = true
	x.St.ErrVal = lang.MarshalValue(err)
	if len(x.St.Trace) > 0 {
		e := x.St.Trace[0]
		x.St.ErrCtx = fmt.Sprintf("RuntimeError: %s\nin step %q, routine %q, line: %d", (&lang.Error{Value: err}).Error(), e.Step, e.Routine, e.Line)
	} else {
		x.St.ErrCtx = fmt.Sprintf("RuntimeError: %s", (&lang.Error{Value: err}).Error())
	}
	x.St.Threads = nil
}

// raiseErr raises a Go error from evaluation as a Workflows error.
func (x *Exec) raiseErr(t *Thread, err error) {
	var le *lang.Error
	if errors.As(err, &le) {
		x.raise(t, le.Value, true)
		return
	}
	x.raise(t, lang.Errorf(lang.TagSystem, "%v", err).Value, true)
}

func (x *Exec) trace(t *Thread) []TraceElem {
	var out []TraceElem
	routine := x.routine(t)
	for i := len(t.Stack) - 1; i >= 0; i-- {
		f := t.Stack[i]
		switch f.Kind {
		case fBlock:
			if f.PC > 0 {
				l := x.Prog.Lists[f.Index]
				st := x.Prog.Steps[l.Steps[f.PC-1]]
				name := st.Name
				if j := strings.IndexByte(name, '#'); j >= 0 {
					name = name[:j]
				}
				if len(out) == 0 || out[len(out)-1].Step != name {
					out = append(out, TraceElem{Step: name, Routine: routine, Line: st.Line})
				} else if out[len(out)-1].Line == 0 {
					out[len(out)-1].Line = st.Line
				}
			}
		case fCall:
			if i > 0 {
				routine = x.routineBelow(t, i)
			}
		}
	}
	return out
}

func (x *Exec) routineBelow(t *Thread, i int) string {
	for j := i - 1; j >= 0; j-- {
		if t.Stack[j].Kind == fCall {
			return t.Stack[j].Sub
		}
	}
	return "main"
}

// raise unwinds t until a try step handles v.
func (x *Exec) raise(t *Thread, v any, fresh bool) {
	if fresh {
		x.St.Trace = x.trace(t)
	}
	for len(t.Stack) > 0 {
		f := top(t)
		switch f.Kind {
		case fTry:
			if f.Phase == phBody && x.handleTry(t, f, v) {
				return
			}
			pop(t)
		case fBranch:
			x.branchDone(t, v, true)
			return
		case fPar:
			// A raise while joined can only come from the join itself.
			pop(t)
		default:
			pop(t)
		}
	}
	if t.Parent < 0 {
		x.fail(v)
	}
}

type retryPolicy struct {
	pred                     string
	max                      int64
	initial, maxDelay, multi float64
}

func (x *Exec) policy(r *lang.RetrySpec) (retryPolicy, error) {
	switch r.Policy {
	case "http.default_retry":
		return retryPolicy{"http.default_retry_predicate", 5, 1, 60, 1.25}, nil
	case "http.default_retry_non_idempotent":
		return retryPolicy{"http.default_retry_predicate_non_idempotent", 5, 1, 60, 1.25}, nil
	}
	p := retryPolicy{pred: r.Predicate}
	num := func(t lang.Tmpl, def float64) (float64, error) {
		if t == nil {
			return def, nil
		}
		v, err := t.Eval(x)
		if err != nil {
			return 0, err
		}
		if v == nil {
			return def, nil
		}
		switch n := v.(type) {
		case int64:
			return float64(n), nil
		case float64:
			return n, nil
		}
		return 0, lang.Errorf(lang.TagType, "retry: expected a number, got %s", lang.TypeName(v))
	}
	m, err := num(r.MaxRetries, 0)
	if err != nil {
		return p, err
	}
	p.max = int64(m)
	if p.initial, err = num(r.Initial, 1); err != nil {
		return p, err
	}
	if p.maxDelay, err = num(r.Max, 60); err != nil {
		return p, err
	}
	if p.multi, err = num(r.Multiplier, 2); err != nil {
		return p, err
	}
	return p, nil
}

// handleTry decides retry or except for an error raised in f's body.
func (x *Exec) handleTry(t *Thread, f *Frame, v any) bool {
	s := x.Prog.Steps[f.Index]
	if s.Retry != nil {
		p, err := x.policy(s.Retry)
		if err != nil {
			return x.except(t, f, v)
		}
		if int64(f.PC) < p.max {
			if sub := x.Prog.Subs[p.pred]; sub != nil {
				f.Phase = phPredicate
				f.Err = v
				vars := Vars{sub.Params[0].Name: lang.Copy(v)}
				push(t, &Frame{Kind: fCall, Sub: sub.Name, Vars: vars, Pred: true})
				push(t, &Frame{Kind: fBlock, Index: sub.Body})
				return true
			}
			fn, _ := stdlib.Lookup(p.pred)
			ok := false
			if fn != nil && fn.Fn != nil {
				r, err := fn.Fn(x, []any{v})
				ok = err == nil && r == true
			}
			if ok {
				x.backoff(t, f, p)
				return true
			}
		}
	}
	return x.except(t, f, v)
}

func (x *Exec) backoff(t *Thread, f *Frame, p retryPolicy) {
	if f.PC == 0 {
		f.Delay = p.initial
	} else {
		f.Delay = math.Min(f.Delay*p.multi, p.maxDelay)
	}
	f.PC++
	f.Phase = phBody
	f.Err = nil
	until := x.Host.Now().Add(time.Duration(f.Delay * float64(time.Second))).UnixNano()
	t.Wait = &Wait{Kind: WBackoff, Until: until, Step: f.Index}
}

func (x *Exec) except(t *Thread, f *Frame, v any) bool {
	s := x.Prog.Steps[f.Index]
	if s.Except == nil {
		return false
	}
	f.Phase = phExcept
	f.Err = nil
	if s.Except.As != "" {
		if err := x.setVar(t, s.Except.As, v); err != nil {
			return false
		}
	}
	push(t, &Frame{Kind: fBlock, Index: s.Except.Body})
	return true
}

func (x *Exec) predicateResult(t *Thread, v any) {
	f := top(t)
	if f.Kind != fTry {
		x.raise(t, lang.Errorf(lang.TagSystem, "predicate returned outside a try").Value, true)
		return
	}
	err := f.Err
	b, ok := v.(bool)
	if !ok {
		x.raise(t, lang.Errorf(lang.TagType, "retry predicate must return a boolean, got %s", lang.TypeName(v)).Value, true)
		return
	}
	if b {
		p, perr := x.policy(x.Prog.Steps[f.Index].Retry)
		if perr == nil {
			x.backoff(t, f, p)
			return
		}
	}
	f.Phase = phBody
	if x.except(t, f, err) {
		return
	}
	pop(t)
	x.raise(t, err, false)
}

// resume applies a wake-up to a thread that was waiting.
func (x *Exec) resume(t *Thread, r *Resume) {
	if r.IsErr {
		st := x.Prog.Steps[r.Step]
		x.St.Trace = []TraceElem{{Step: st.Name, Routine: x.routine(t), Line: st.Line}}
		x.raise(t, r.Err, false)
		return
	}
	switch r.Kind {
	case WBackoff:
		f := top(t)
		try := x.Prog.Lists[x.Prog.Steps[f.Index].Try]
		if len(try.Steps) == 1 && strings.HasSuffix(x.Prog.Steps[try.Steps[0]].Name, "#try") {
			// Each retry of a try's inline call is billed as a step; a try over named
			// steps bills those steps again instead.
			x.St.Billed++
		}
		push(t, &Frame{Kind: fBlock, Index: x.Prog.Steps[f.Index].Try})
	case WJoin:
		f := pop(t)
		if len(f.Errs) > 0 {
			x.raise(t, map[string]any{
				"message":  "UnhandledBranchError: One or more branches or iterations encountered an unhandled runtime error",
				"tags":     []any{lang.TagUnhandled},
				"branches": f.Errs,
			}, true)
			return
		}
		x.afterStep(t, x.Prog.Steps[f.Index])
	default:
		if r.Result != "" {
			if err := x.setVar(t, r.Result, r.Value); err != nil {
				x.raiseErr(t, err)
				return
			}
		}
		x.afterStep(t, x.Prog.Steps[r.Step])
	}
}
