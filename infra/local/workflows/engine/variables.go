package engine

import (
	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

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
		St: &State{NextID: 1, StepCount: x.St.StepCount, Callbacks: x.St.Callbacks,
			Billed: x.St.Billed, HTTPCalls: x.St.HTTPCalls, ExtHTTPCalls: x.St.ExtHTTPCalls, Awaits: x.St.Awaits}}
	sx.St.Threads = []*Thread{{Parent: -1, Stack: []*Frame{{Kind: fCall, Sub: sub.Name, Vars: vars}, {Kind: fBlock, Index: sub.Body}}}}
	st := sx.Run(MaxSteps)
	x.St.StepCount = sx.St.StepCount
	x.St.Billed, x.St.HTTPCalls = sx.St.Billed, sx.St.HTTPCalls
	x.St.ExtHTTPCalls, x.St.Awaits = sx.St.ExtHTTPCalls, sx.St.Awaits
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

var _ lang.Env = (*Exec)(nil)
