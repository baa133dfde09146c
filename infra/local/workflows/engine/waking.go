package engine

import (
	"errors"
	"sort"
	"strings"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

// ErrNoCallback is returned by Deliver for an unknown callback.
var ErrNoCallback = errors.New("engine: no such callback")

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
			st := x.Prog.Steps[t.Wait.Step]
			out = append(out, TraceElem{Step: st.Name, Routine: x.routine(t), Line: st.Line})
			continue
		}
		for i := len(t.Stack) - 1; i >= 0; i-- {
			f := t.Stack[i]
			if f.Kind == fBlock && f.PC > 0 {
				st := x.Prog.Steps[x.Prog.Lists[f.Index].Steps[f.PC-1]]
				name := st.Name
				if j := strings.IndexByte(name, '#'); j >= 0 {
					name = name[:j]
				}
				out = append(out, TraceElem{Step: name, Routine: x.routine(t), Line: st.Line})
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

// CallbackWait says which step awaits callback c and until when (unix nanos, 0 for
// no deadline); ok is false while no thread awaits it.
func (x *Exec) CallbackWait(c *Callback) (step TraceElem, until int64, ok bool) {
	if c.Waiter < 0 {
		return TraceElem{}, 0, false
	}
	t := x.thread(c.Waiter)
	if t == nil || t.Wait == nil || t.Wait.Kind != WCallback || t.Wait.Callback != c.ID {
		return TraceElem{}, 0, false
	}
	st := x.Prog.Steps[t.Wait.Step]
	return TraceElem{Step: st.Name, Routine: x.routine(t), Line: st.Line}, t.Wait.Until, true
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
