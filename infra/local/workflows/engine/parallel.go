package engine

import (
	"math"
	"strconv"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

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
