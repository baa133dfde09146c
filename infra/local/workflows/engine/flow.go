package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

// ErrNoCallback is returned by Deliver for an unknown callback.
var ErrNoCallback = errors.New("engine: no such callback")

// ---- variables (lang.Env) ----

// Lookup implements lang.Env: the innermost scope outwards, up to the
// subworkflow boundary; a branch reads its parent's scopes too.
func (x *Exec) Lookup(name string) (any, bool) {
	t := x.cur
	for t != nil {
		next := (*Thread)(nil)
		for i := len(t.Stack) - 1; i >= 0; i-- {
			f := t.Stack[i]
			if f.Vars != nil {
				if v, ok := f.Vars[name]; ok {
					return v, true
				}
			}
			if f.Kind == fCall {
				return nil, false
			}
			if f.Kind == fBranch {
				next = x.thread(t.Parent)
				break
			}
		}
		t = next
	}
	return nil, false
}

// scopeOf finds the scope holding name that t may write: crossing into a
// parent thread only for the branch's shared variables.
func (x *Exec) scopeOf(t *Thread, name string) Vars {
	for t != nil {
		next := (*Thread)(nil)
		for i := len(t.Stack) - 1; i >= 0; i-- {
			f := t.Stack[i]
			if f.Vars != nil {
				if _, ok := f.Vars[name]; ok {
					return f.Vars
				}
			}
			if f.Kind == fCall {
				return nil
			}
			if f.Kind == fBranch {
				shared := false
				for _, s := range f.Shared {
					shared = shared || s == name
				}
				if shared {
					next = x.thread(t.Parent)
				}
				break
			}
		}
		t = next
	}
	return nil
}

func innermost(t *Thread) Vars {
	for i := len(t.Stack) - 1; i >= 0; i-- {
		if t.Stack[i].Vars != nil {
			return t.Stack[i].Vars
		}
	}
	f := t.Stack[0]
	f.Vars = Vars{}
	return f.Vars
}

func (x *Exec) setVar(t *Thread, name string, v any) error {
	v = lang.Copy(v) // value semantics: no two variables share a map or list
	sc := x.scopeOf(t, name)
	if sc == nil {
		sc = innermost(t)
	}
	sc[name] = v
	return nil
}

func (x *Exec) assign(t *Thread, tg *lang.Target, v any) error {
	if len(tg.Path) == 0 {
		return x.setVar(t, tg.Root, v)
	}
	v = lang.Copy(v)
	sc := x.scopeOf(t, tg.Root)
	if sc == nil {
		sc = innermost(t)
	}
	nv, err := tg.Set(x, sc[tg.Root], v)
	if err != nil {
		return err
	}
	sc[tg.Root] = nv
	return nil
}

// Call implements lang.Env for function calls inside expressions.
func (x *Exec) Call(name string, args []any) (any, error) {
	if sub := x.Prog.Subs[name]; sub != nil {
		return x.callSubSync(sub, args)
	}
	fn, ok := stdlib.Lookup(name)
	if !ok {
		return nil, lang.Errorf(lang.TagValue, "unknown function %q", name)
	}
	if fn.Blocking {
		return nil, lang.Errorf(lang.TagValue, "%s can only be called in a call step", name)
	}
	return fn.Fn(x, args)
}

// callSubSync runs a subworkflow called from an expression to completion;
// it may not wait.
func (x *Exec) callSubSync(sub *lang.Sub, args []any) (any, error) {
	if x.nested >= MaxCallDepth {
		return nil, lang.Errorf(lang.TagRecursion, "maximum call depth %d exceeded", MaxCallDepth)
	}
	vars := Vars{}
	for i, p := range sub.Params {
		switch {
		case i < len(args):
			vars[p.Name] = lang.Copy(args[i])
		case p.HasDefault:
			v, err := p.Default.Eval(x)
			if err != nil {
				return nil, err
			}
			vars[p.Name] = v
		default:
			return nil, lang.Errorf(lang.TagType, "%s: missing argument %q", sub.Name, p.Name)
		}
	}
	sx := &Exec{Prog: x.Prog, Host: x.Host, Interrupt: x.Interrupt, nested: x.nested + 1,
		St: &State{NextID: 1, StepCount: x.St.StepCount, Callbacks: x.St.Callbacks}}
	sx.St.Threads = []*Thread{{Parent: -1, Stack: []*Frame{{Kind: fCall, Sub: sub.Name, Vars: vars}, {Kind: fBlock, Index: sub.Body}}}}
	st := sx.Run(MaxSteps)
	x.St.StepCount = sx.St.StepCount
	x.St.Callbacks = sx.St.Callbacks
	if st != Done {
		return nil, lang.Errorf(lang.TagValue, "subworkflow %s called in an expression cannot wait", sub.Name)
	}
	if sx.St.Failed {
		v, _ := lang.UnmarshalValue(sx.St.ErrVal)
		return nil, &lang.Error{Value: v}
	}
	return lang.UnmarshalValue(sx.St.Result)
}

// ---- calls ----

func (x *Exec) callDepth(t *Thread) int {
	n := 0
	for _, f := range t.Stack {
		if f.Kind == fCall {
			n++
		}
	}
	return n + x.nested
}

func (x *Exec) call(t *Thread, s *lang.Step, sid int) {
	if sub := x.Prog.Subs[s.Call]; sub != nil {
		if x.callDepth(t) >= MaxCallDepth {
			x.raise(t, lang.Errorf(lang.TagRecursion, "RecursionError: maximum call depth %d exceeded", MaxCallDepth).Value, true)
			return
		}
		vars := Vars{}
		for _, p := range sub.Params {
			if a, ok := s.Args[p.Name]; ok {
				v, err := a.Eval(x)
				if err != nil {
					x.raiseErr(t, err)
					return
				}
				vars[p.Name] = lang.Copy(v)
				continue
			}
			if p.HasDefault {
				v, err := p.Default.Eval(x)
				if err != nil {
					x.raiseErr(t, err)
					return
				}
				vars[p.Name] = v
				continue
			}
			x.raise(t, lang.Errorf(lang.TagType, "%s: missing argument %q", sub.Name, p.Name).Value, true)
			return
		}
		push(t, &Frame{Kind: fCall, Sub: sub.Name, Vars: vars, Ret: s.Result, Owner: sid + 1})
		push(t, &Frame{Kind: fBlock, Index: sub.Body})
		return
	}
	fn, ok := stdlib.Lookup(s.Call)
	if !ok {
		x.raise(t, lang.Errorf(lang.TagValue, "unknown function %q", s.Call).Value, true)
		return
	}
	args := make([]any, 0, len(fn.Params))
	named := map[string]any{}
	for name, a := range s.Args {
		v, err := a.Eval(x)
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		named[name] = v
	}
	last := -1
	for i, p := range fn.Params {
		if _, ok := named[p]; ok {
			last = i
		}
	}
	for i := 0; i <= last; i++ {
		args = append(args, named[fn.Params[i]])
	}
	if fn.Blocking {
		x.blocking(t, s, sid, args)
		return
	}
	v, err := fn.Fn(x, args)
	if err != nil {
		x.raiseErr(t, err)
		return
	}
	if s.Result != "" {
		_ = x.setVar(t, s.Result, v)
	}
	x.afterStep(t, s)
}

func seconds(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func (x *Exec) blocking(t *Thread, s *lang.Step, sid int, args []any) {
	arg := func(i int) any {
		if i < len(args) {
			return args[i]
		}
		return nil
	}
	now := x.Host.Now()
	switch s.Call {
	case "sys.sleep":
		d, ok := seconds(arg(0))
		if !ok || d < 0 {
			x.raise(t, lang.Errorf(lang.TagValue, "sys.sleep: seconds must be a non-negative number").Value, true)
			return
		}
		t.Wait = &Wait{Kind: WSleep, Until: now.Add(time.Duration(d * float64(time.Second))).UnixNano(), Result: s.Result, Step: sid}
	case "sys.sleep_until":
		ts, _ := arg(0).(string)
		when, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			x.raise(t, lang.Errorf(lang.TagValue, "sys.sleep_until: bad time %q", ts).Value, true)
			return
		}
		t.Wait = &Wait{Kind: WSleep, Until: max(when.UnixNano(), now.UnixNano()), Result: s.Result, Step: sid}
	case RunChild:
		cs, ok := x.Host.(ChildStarter)
		if !ok {
			x.raise(t, lang.Errorf(lang.TagSystem, "%s is not available here", RunChild).Value, true)
			return
		}
		wf, _ := arg(0).(string)
		if p, ok := arg(3).(string); ok && p != "" && !strings.Contains(wf, "/") {
			loc, _ := arg(2).(string)
			if loc == "" {
				loc, _ = x.Host.Getenv("GOOGLE_CLOUD_LOCATION")
			}
			wf = "projects/" + p + "/locations/" + loc + "/workflows/" + wf
		}
		child, err := cs.StartChild(wf, arg(1))
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		t.Wait = &Wait{Kind: WChild, Callback: child, Result: s.Result, Step: sid}
	case "events.await_callback":
		id, err := x.callbackID(arg(0))
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		cb := x.St.Callbacks[id]
		if len(cb.Queue) > 0 {
			v := cb.Queue[0]
			cb.Queue = cb.Queue[1:]
			if s.Result != "" {
				_ = x.setVar(t, s.Result, v)
			}
			x.afterStep(t, s)
			return
		}
		timeout := float64(DefaultTimeout)
		if v, ok := seconds(arg(1)); ok {
			timeout = v
		}
		cb.Waiter = t.ID
		cb.Since = now.UnixNano()
		t.Wait = &Wait{Kind: WCallback, Callback: id, Until: now.Add(time.Duration(timeout * float64(time.Second))).UnixNano(), Result: s.Result, Step: sid}
	}
}

func (x *Exec) callbackID(v any) (string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", lang.Errorf(lang.TagType, "events.await_callback: callback must be the map from create_callback_endpoint")
	}
	u, _ := m["url"].(string)
	i := strings.LastIndex(u, "/callbacks/")
	if i < 0 {
		return "", lang.Errorf(lang.TagValue, "events.await_callback: not a callback url %q", u)
	}
	id := u[i+len("/callbacks/"):]
	if x.St.Callbacks[id] == nil {
		return "", lang.Errorf(lang.TagValue, "events.await_callback: callback %q belongs to another execution", id)
	}
	return id, nil
}

// ---- for ----

func (x *Exec) startFor(t *Thread, s *lang.Step, sid int) {
	f := &Frame{Kind: fFor, Index: sid, Vars: Vars{}}
	items, rng, err := x.iteration(s.For)
	if err != nil {
		x.raiseErr(t, err)
		return
	}
	f.Items, f.Range = items, rng
	push(t, f)
	x.forNext(t)
}

func (x *Exec) iteration(fs *lang.ForSpec) ([]any, []any, error) {
	if fs.HasRange {
		var a, b any
		if fs.Range[1] == nil {
			v, err := fs.Range[0].Eval(x)
			if err != nil {
				return nil, nil, err
			}
			l, ok := v.([]any)
			if !ok || len(l) != 2 {
				return nil, nil, lang.Errorf(lang.TagType, "for: range must be [start, end]")
			}
			a, b = l[0], l[1]
		} else {
			var err error
			if a, err = fs.Range[0].Eval(x); err != nil {
				return nil, nil, err
			}
			if b, err = fs.Range[1].Eval(x); err != nil {
				return nil, nil, err
			}
		}
		if _, ok := seconds(a); !ok {
			return nil, nil, lang.Errorf(lang.TagType, "for: range start must be a number")
		}
		if _, ok := seconds(b); !ok {
			return nil, nil, lang.Errorf(lang.TagType, "for: range end must be a number")
		}
		return nil, []any{a, b}, nil
	}
	v, err := fs.In.Eval(x)
	if err != nil {
		return nil, nil, err
	}
	switch c := v.(type) {
	case []any:
		return c, nil, nil
	case map[string]any:
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil, nil
	}
	return nil, nil, lang.Errorf(lang.TagType, "for: in must be a list or map, got %s", lang.TypeName(v))
}

// item returns iteration i's value, or false past the end.
func item(items, rng []any, i int) (any, bool) {
	if rng != nil {
		start, end := rng[0], rng[1]
		cur, err := lang.Binary("+", start, int64(i))
		if err != nil {
			return nil, false
		}
		le, err := lang.Binary("<=", cur, end)
		if err != nil || le != true {
			return nil, false
		}
		return cur, true
	}
	if i < len(items) {
		return items[i], true
	}
	return nil, false
}

func (x *Exec) forNext(t *Thread) {
	f := top(t)
	s := x.Prog.Steps[f.Index]
	v, ok := item(f.Items, f.Range, f.PC)
	if !ok {
		pop(t)
		x.afterStep(t, s)
		return
	}
	f.Vars[s.For.Value] = v
	if s.For.Index != "" {
		f.Vars[s.For.Index] = int64(f.PC)
	}
	f.PC++
	push(t, &Frame{Kind: fBlock, Index: s.For.Body})
}

// ---- parallel ----

func (x *Exec) startParallel(t *Thread, s *lang.Step, sid int) {
	p := s.Parallel
	f := &Frame{Kind: fPar, Index: sid, Shared: p.Shared, Limit: MaxConcurrency}
	if p.Limit != nil {
		v, err := p.Limit.Eval(x)
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		n, ok := v.(int64)
		if !ok || n < 1 {
			x.raise(t, lang.Errorf(lang.TagValue, "concurrency_limit must be a positive integer").Value, true)
			return
		}
		f.Limit = int(min(n, MaxConcurrency))
	}
	for _, name := range p.Shared {
		if _, ok := x.Lookup(name); !ok {
			x.raise(t, lang.Errorf(lang.TagKey, "shared variable %q must be declared before the parallel step", name).Value, true)
			return
		}
	}
	if p.For != nil {
		items, rng, err := x.iteration(p.For)
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		f.Items, f.Range = items, rng
		if rng != nil {
			a, _ := seconds(rng[0])
			b, _ := seconds(rng[1])
			n := math.Floor(b-a) + 1
			if n > MaxSteps {
				x.raise(t, lang.Errorf(lang.TagResourceLimit, "ResourceLimitError: parallel for over %.0f iterations", n).Value, true)
				return
			}
			f.Total = int(max(n, 0))
		} else {
			f.Total = len(items)
		}
	} else {
		f.Total = len(p.Branches)
	}
	push(t, f)
	if f.Total == 0 {
		pop(t)
		x.afterStep(t, s)
		return
	}
	x.spawn(t, f)
	t.Wait = &Wait{Kind: WJoin, Step: sid}
}

func (x *Exec) spawn(t *Thread, f *Frame) {
	p := x.Prog.Steps[f.Index].Parallel
	for len(f.Kids) < f.Limit && f.Next < f.Total {
		i := f.Next
		f.Next++
		b := &Frame{Kind: fBranch, Index: f.Index, Vars: Vars{}, Shared: p.Shared}
		var body int
		if p.For != nil {
			v, _ := item(f.Items, f.Range, i)
			b.Vars[p.For.Value] = lang.Copy(v)
			if p.For.Index != "" {
				b.Vars[p.For.Index] = int64(i)
			}
			b.BranchID = strconv.Itoa(i)
			body = p.For.Body
		} else {
			b.BranchID = p.Branches[i].Name
			body = p.Branches[i].Body
		}
		kid := &Thread{ID: x.St.NextID, Parent: t.ID, Stack: []*Frame{b, {Kind: fBlock, Index: body}}}
		x.St.NextID++
		x.St.Threads = append(x.St.Threads, kid)
		f.Kids = append(f.Kids, kid.ID)
	}
}

// branchDone retires a branch thread and wakes its parent when it was the
// last one.
func (x *Exec) branchDone(t *Thread, errVal any, failed bool) {
	for i, th := range x.St.Threads {
		if th == t {
			x.St.Threads = append(x.St.Threads[:i], x.St.Threads[i+1:]...)
			break
		}
	}
	root := t.Stack[0]
	t.Stack = nil
	p := x.thread(t.Parent)
	if p == nil || len(p.Stack) == 0 {
		return
	}
	f := top(p)
	for i, id := range f.Kids {
		if id == t.ID {
			f.Kids = append(f.Kids[:i], f.Kids[i+1:]...)
			break
		}
	}
	if failed {
		f.Errs = append(f.Errs, map[string]any{"id": root.BranchID, "error": errVal})
	}
	x.spawn(p, f)
	if len(f.Kids) == 0 && f.Next >= f.Total {
		p.Wait = nil
		p.Resume = &Resume{Kind: WJoin, Step: f.Index}
	}
}

// ---- waking ----

// NextDeadline is the earliest timer among waiting threads (0 if none).
func (x *Exec) NextDeadline() int64 {
	var d int64
	for _, t := range x.St.Threads {
		if t.Wait != nil && t.Wait.Until > 0 && (d == 0 || t.Wait.Until < d) {
			d = t.Wait.Until
		}
	}
	return d
}

// Wake fires every timer due at now; it reports whether a thread woke.
func (x *Exec) Wake(now int64) bool {
	woke := false
	for _, t := range x.St.Threads {
		w := t.Wait
		if w == nil || w.Until == 0 || w.Until > now {
			continue
		}
		t.Wait = nil
		woke = true
		switch w.Kind {
		case WCallback:
			if cb := x.St.Callbacks[w.Callback]; cb != nil {
				cb.Waiter = -1
			}
			t.Resume = &Resume{Kind: w.Kind, Step: w.Step, IsErr: true, Err: map[string]any{
				"message": "Timeout waiting for callback",
				"tags":    []any{lang.TagTimeout},
			}}
		default:
			t.Resume = &Resume{Kind: w.Kind, Step: w.Step, Result: w.Result}
		}
	}
	return woke
}

// Deliver hands a callback request to the execution: to the thread
// awaiting it, or to the callback's queue for a later await.
func (x *Exec) Deliver(id string, req any) error {
	cb := x.St.Callbacks[id]
	if cb == nil {
		return ErrNoCallback
	}
	if cb.Waiter >= 0 {
		if t := x.thread(cb.Waiter); t != nil && t.Wait != nil && t.Wait.Callback == id {
			w := t.Wait
			t.Wait = nil
			t.Resume = &Resume{Kind: WCallback, Value: req, Result: w.Result, Step: w.Step}
			cb.Waiter = -1
			return nil
		}
	}
	cb.Queue = append(cb.Queue, req)
	return nil
}

// CallbackMethod returns the HTTP method a callback accepts.
func (x *Exec) CallbackMethod(id string) (string, bool) {
	cb := x.St.Callbacks[id]
	if cb == nil {
		return "", false
	}
	return cb.Method, true
}

// CurrentSteps lists where each thread is.
func (x *Exec) CurrentSteps() []TraceElem {
	var out []TraceElem
	for _, t := range x.St.Threads {
		if t.Wait != nil {
			if t.Wait.Kind == WJoin {
				continue
			}
			out = append(out, TraceElem{Step: x.Prog.Steps[t.Wait.Step].Name, Routine: x.routine(t)})
			continue
		}
		for i := len(t.Stack) - 1; i >= 0; i-- {
			f := t.Stack[i]
			if f.Kind == fBlock && f.PC > 0 {
				name := x.Prog.Steps[x.Prog.Lists[f.Index].Steps[f.PC-1]].Name
				if j := strings.IndexByte(name, '#'); j >= 0 {
					name = name[:j]
				}
				out = append(out, TraceElem{Step: name, Routine: x.routine(t)})
				break
			}
		}
	}
	return out
}

// memory approximates the bytes held by variables, for the 512 KB limit.
func (x *Exec) memory() int {
	n := 0
	for _, t := range x.St.Threads {
		for _, f := range t.Stack {
			for k, v := range f.Vars {
				n += len(k) + size(v)
			}
		}
	}
	return n
}

// Memory is the variable footprint Google's 512 KB limit counts.
func (x *Exec) Memory() int { return x.memory() }

func size(v any) int {
	switch x := v.(type) {
	case string:
		return len(x) + 2
	case lang.Bytes:
		return len(x)
	case []any:
		n := 2
		for _, e := range x {
			n += size(e) + 1
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range x {
			n += len(k) + 4 + size(e)
		}
		return n
	}
	return 8
}

// ---- stdlib.Ctx ----

// Now implements stdlib.Ctx.
func (x *Exec) Now() time.Time { return x.Host.Now() }

// Getenv implements stdlib.Ctx.
func (x *Exec) Getenv(name string) (string, bool) { return x.Host.Getenv(name) }

// HTTPClient implements stdlib.Ctx.
func (x *Exec) HTTPClient() *http.Client { return x.Host.HTTPClient() }

// Log implements stdlib.Ctx.
func (x *Exec) Log(severity string, v any) {
	x.St.LogSeq++
	s, ok := v.(string)
	if !ok {
		s = lang.Repr(v)
	}
	if len(s) > 512 {
		s = s[:512]
	}
	x.St.LastLog = severity + ": " + s
	x.Host.Log(severity, v)
}

// Token implements stdlib.Ctx: the host's token, or none.
func (x *Exec) Token(kind, audience string) (string, error) {
	if ts, ok := x.Host.(TokenSource); ok {
		return ts.Token(kind, audience)
	}
	return "", nil
}

// NewCallback implements stdlib.Ctx.
func (x *Exec) NewCallback(method string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("engine: callback id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if x.St.Callbacks == nil {
		x.St.Callbacks = map[string]*Callback{}
	}
	x.St.Callbacks[id] = &Callback{ID: id, Method: method, Waiter: -1}
	return x.Host.CallbackURL(id), nil
}

var _ stdlib.Ctx = (*Exec)(nil)
var _ lang.Env = (*Exec)(nil)

// DeliverChild wakes the thread waiting on a child execution with its
// result, or raises its error there. It reports whether a thread waited.
func (x *Exec) DeliverChild(child string, result any, errVal any, failed bool) bool {
	for _, t := range x.St.Threads {
		w := t.Wait
		if w == nil || w.Kind != WChild || w.Callback != child {
			continue
		}
		t.Wait = nil
		if failed {
			t.Resume = &Resume{Kind: WChild, Step: w.Step, IsErr: true, Err: errVal}
		} else {
			t.Resume = &Resume{Kind: WChild, Step: w.Step, Result: w.Result, Value: result}
		}
		return true
	}
	return false
}

// Runnable reports whether some thread can run now.
func (x *Exec) Runnable() bool {
	for _, t := range x.St.Threads {
		if t.Wait == nil && len(t.Stack) > 0 {
			return true
		}
	}
	return false
}

// PendingCallbacks lists callbacks created and not yet delivered-and-awaited.
func (x *Exec) PendingCallbacks() []*Callback {
	out := make([]*Callback, 0, len(x.St.Callbacks))
	for _, c := range x.St.Callbacks {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
