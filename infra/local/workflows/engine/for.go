package engine

import (
	"sort"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

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
