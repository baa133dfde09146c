package planeval

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// Env is what one evaluation reads: the input (nil: none), the data
// document, and the clock time.now_ns answers with.
type Env struct {
	Input *ast.Term
	Data  *ast.Term
	Time  time.Time
}

// Errors an evaluation can end with, for errors.Is.
var (
	ErrUnknownEntrypoint = errors.New("unknown entrypoint")
	ErrConflict          = errors.New("conflicting values")
)

// Eval runs the plan named entrypoint and returns the value it defines,
// or nil when it is undefined. A built-in that fails makes its call
// undefined, as OPA does unless asked for strict built-in errors.
func (p *Program) Eval(ctx context.Context, entrypoint string, env Env) (*ast.Term, error) {
	plan, ok := p.plans[entrypoint]
	if !ok {
		return nil, fmt.Errorf("planeval: %q: %w", entrypoint, ErrUnknownEntrypoint)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("planeval: %s: %w", entrypoint, err)
	}
	ev := p.evaluator()
	defer ev.release()
	ev.bctx.Context = ctx
	if !env.Time.IsZero() {
		ev.bctx.Time = ast.UIntNumberTerm(uint64(env.Time.UnixNano()))
	}
	frame := ev.push(plan.nlocals)
	frame[ir.Input], frame[ir.Data] = env.Input, env.Data
	ev.input, ev.data = env.Input, env.Data
	for _, b := range plan.blocks {
		if _, err := ev.run(frame, b); err != nil {
			return nil, fmt.Errorf("planeval: %s: %w", entrypoint, err)
		}
	}
	switch len(ev.results) {
	case 0:
		return nil, nil
	case 1:
		// `opa build -t plan` entrypoints bind their document to "result".
		if obj, ok := ev.results[0].Value.(ast.Object); ok {
			if r := obj.Get(resultKey); r != nil {
				return r, nil
			}
		}
		return ev.results[0], nil
	default:
		return nil, fmt.Errorf("planeval: %s: %d results: %w", entrypoint, len(ev.results), ErrConflict)
	}
}

var resultKey = ast.StringTerm("result")

// Results of running a block, besides k >= 0: the block was left with k
// enclosing blocks still to leave (0: only this one, on a break or an
// undefined statement).
const (
	completed = -1 // every statement ran
	returned  = -2 // a function returned; the value is in evaluator.ret
)

type evaluator struct {
	prog    *Program
	stack   []*ast.Term
	memo    []*ast.Term
	memoSet []bool
	results []*ast.Term
	args    []*ast.Term
	ret     *ast.Term
	out     *ast.Term
	input   *ast.Term
	data    *ast.Term
	bctx    topdown.BuiltinContext
	iter    func(*ast.Term) error // ev.capture, bound once
	steps   int                   // scan iterations, across nested scans, for cancellation
}

func (p *Program) evaluator() *evaluator {
	if ev, ok := p.pool.Get().(*evaluator); ok {
		return ev
	}
	ev := &evaluator{
		prog:    p,
		stack:   make([]*ast.Term, 0, p.maxStack),
		memo:    make([]*ast.Term, len(p.funcs)),
		memoSet: make([]bool, len(p.funcs)),
		bctx:    topdown.BuiltinContext{Seed: rand.Reader, Cache: builtins.Cache{}},
	}
	ev.iter = ev.capture
	return ev
}

func (ev *evaluator) release() {
	clear(ev.stack)
	ev.stack = ev.stack[:0]
	clear(ev.memo)
	clear(ev.memoSet)
	clear(ev.results)
	ev.results = ev.results[:0]
	clear(ev.args)
	ev.ret, ev.out, ev.input, ev.data = nil, nil, nil, nil
	ev.steps = 0
	ev.bctx.Context, ev.bctx.Time = nil, nil
	clear(ev.bctx.Cache)
	ev.prog.pool.Put(ev)
}

func (ev *evaluator) capture(t *ast.Term) error {
	if ev.out == nil {
		ev.out = t
	}
	return nil
}

// push allocates a frame of n undefined locals.
func (ev *evaluator) push(n int) []*ast.Term {
	base := len(ev.stack)
	if cap(ev.stack)-base < n {
		// Earlier frames keep the old array; only new frames use the new one.
		grown := make([]*ast.Term, base, 2*cap(ev.stack)+n)
		copy(grown, ev.stack)
		ev.stack = grown
	}
	ev.stack = ev.stack[:base+n]
	frame := ev.stack[base : base+n : base+n]
	clear(frame)
	return frame
}

func (ev *evaluator) pop(n int) { ev.stack = ev.stack[:len(ev.stack)-n] }

func get(frame []*ast.Term, o operand) *ast.Term {
	if o.konst != nil {
		return o.konst
	}
	return frame[o.local]
}

func located(in *instr, err error) error {
	if in.loc == nil || in.loc.Row == 0 {
		return err
	}
	return fmt.Errorf("row %d col %d: %w", in.loc.Row, in.loc.Col, err)
}

// run executes the statements of b (see completed, returned).
func (ev *evaluator) run(frame []*ast.Term, b *block) (int, error) {
	for i := range b.stmts {
		in := &b.stmts[i]
		switch in.op {
		case opNop:
		case opReturn:
			ev.ret = frame[in.a.local]
			return returned, nil
		case opBreak:
			return int(in.n), nil
		case opDot:
			v := dot(get(frame, in.a), get(frame, in.b))
			if v == nil {
				return 0, nil
			}
			frame[in.target] = v
		case opCall:
			v, err := ev.call(in.fn, frame, in.args)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			frame[in.target] = v
		case opCallBuiltin:
			v, ok, err := ev.builtin(in, frame)
			if err != nil {
				return 0, located(in, err)
			}
			if !ok {
				return 0, nil
			}
			if in.builtin.relates {
				frame[in.target] = v
			}
		case opCallDynamic:
			v, err := ev.callDynamic(in, frame)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			frame[in.target] = v
		case opBlock:
			for _, child := range in.blocks {
				r, err := ev.run(frame, child)
				if err != nil || r == returned {
					return r, err
				}
				if r > 0 {
					return r - 1, nil
				}
			}
		case opNot:
			r, err := ev.run(frame, in.blocks[0])
			switch {
			case err != nil || r == returned:
				return r, err
			case r == completed: // the negated block held
				return 0, nil
			case r > 0:
				return r - 1, nil
			}
		case opScan:
			r, err := ev.scan(in, frame)
			if err != nil || r != completed {
				return r, err
			}
		case opWith:
			r, err := ev.with(in, frame)
			switch {
			case err != nil || r == returned:
				return r, err
			case r == 0: // the block was left: the statement is undefined
				return 0, nil
			case r > 0:
				return r - 1, nil
			}
		case opAssignInt:
			frame[in.target] = intTerm(in.n)
		case opAssignVar:
			frame[in.target] = get(frame, in.a)
		case opAssignVarOnce:
			v := get(frame, in.a)
			if cur := frame[in.target]; cur != nil {
				if cur != v && ast.Compare(cur.Value, v.Value) != 0 {
					return 0, located(in, fmt.Errorf("complete rules must not produce multiple outputs: %w", ErrConflict))
				}
				continue
			}
			frame[in.target] = v
		case opResetLocal:
			frame[in.target] = nil
		case opMakeNull:
			frame[in.target] = ast.NullTerm()
		case opMakeNumberInt:
			frame[in.target] = intTerm(in.n)
		case opMakeConst:
			frame[in.target] = in.a.konst
		case opMakeArray:
			frame[in.target] = ast.NewTerm(ast.NewArrayWithCapacity(int(in.n)))
		case opMakeObject:
			frame[in.target] = ast.NewTerm(ast.NewObject())
		case opMakeSet:
			frame[in.target] = ast.NewTerm(ast.NewSet())
		case opEqual, opNotEqual:
			a, b := get(frame, in.a), get(frame, in.b)
			if a == nil || b == nil {
				return 0, nil
			}
			equal := a == b || ast.Compare(a.Value, b.Value) == 0
			if equal != (in.op == opEqual) {
				return 0, nil
			}
		case opIsArray, opIsObject, opIsSet:
			if !isKind(in.op, get(frame, in.a)) {
				return 0, nil
			}
		case opIsDefined:
			if frame[in.a.local] == nil {
				return 0, nil
			}
		case opIsUndefined:
			if frame[in.a.local] != nil {
				return 0, nil
			}
		case opLen:
			n, ok := length(get(frame, in.a))
			if !ok {
				return 0, nil
			}
			frame[in.target] = intTerm(int64(n))
		case opArrayAppend:
			t := frame[in.target]
			arr, ok := t.Value.(*ast.Array)
			if !ok {
				return 0, located(in, fmt.Errorf("append to %s", ast.ValueName(t.Value)))
			}
			t.Value = arr.Append(get(frame, in.a))
		case opObjectInsert, opObjectInsertOnce:
			t := frame[in.target]
			obj, ok := t.Value.(ast.Object)
			if !ok {
				return 0, located(in, fmt.Errorf("insert into %s", ast.ValueName(t.Value)))
			}
			k, v := get(frame, in.a), get(frame, in.b)
			if in.op == opObjectInsertOnce {
				if cur := obj.Get(k); cur != nil {
					if ast.Compare(cur.Value, v.Value) != 0 {
						return 0, located(in, fmt.Errorf("object keys must be unique: %w", ErrConflict))
					}
					continue
				}
			}
			obj.Insert(k, v)
		case opObjectMerge:
			a, b := frame[in.locals[0]], frame[in.locals[1]]
			oa, okA := a.Value.(ast.Object)
			ob, okB := b.Value.(ast.Object)
			if !okA || !okB {
				return 0, located(in, fmt.Errorf("merge of %s and %s: %w", ast.ValueName(a.Value), ast.ValueName(b.Value), ErrConflict))
			}
			merged, ok := oa.Merge(ob)
			if !ok {
				return 0, located(in, fmt.Errorf("merge: %w", ErrConflict))
			}
			frame[in.target] = ast.NewTerm(merged)
		case opSetAdd:
			t := frame[in.target]
			set, ok := t.Value.(ast.Set)
			if !ok {
				return 0, located(in, fmt.Errorf("add to %s", ast.ValueName(t.Value)))
			}
			set.Add(get(frame, in.a))
		case opResultSetAdd:
			ev.results = append(ev.results, frame[in.a.local])
		default:
			return 0, fmt.Errorf("planeval: op %d not implemented", in.op)
		}
	}
	return completed, nil
}

// call runs fn with args; nil means undefined. A function of (input, data)
// alone runs once per evaluation.
func (ev *evaluator) call(fn *function, frame []*ast.Term, args []operand) (*ast.Term, error) {
	memo := fn.memo && get(frame, args[0]) == ev.input && get(frame, args[1]) == ev.data
	if memo && ev.memoSet[fn.index] {
		return ev.memo[fn.index], nil
	}
	callee := ev.push(fn.nlocals)
	for i, p := range fn.params {
		callee[p] = get(frame, args[i])
	}
	v, err := ev.body(fn, callee)
	ev.pop(fn.nlocals)
	if err != nil {
		return nil, err
	}
	if memo {
		ev.memo[fn.index], ev.memoSet[fn.index] = v, true
	}
	return v, nil
}

func (ev *evaluator) body(fn *function, frame []*ast.Term) (*ast.Term, error) {
	for _, b := range fn.blocks {
		r, err := ev.run(frame, b)
		if err != nil {
			return nil, err
		}
		switch {
		case r == returned:
			v := ev.ret
			ev.ret = nil
			return v, nil
		case r > 0:
			return nil, fmt.Errorf("function %s: break out of its body", fn.name)
		}
	}
	return nil, nil
}

func (ev *evaluator) callDynamic(in *instr, frame []*ast.Term) (*ast.Term, error) {
	var key []byte
	for i, o := range in.args {
		s, ok := get(frame, o).Value.(ast.String)
		if !ok {
			return nil, nil
		}
		if i > 0 {
			key = append(key, 0)
		}
		key = append(key, s...)
	}
	fn, ok := ev.prog.dynamic[string(key)]
	if !ok || len(fn.params) != len(in.locals) {
		return nil, nil
	}
	args := make([]operand, len(in.locals))
	for i, l := range in.locals {
		args[i] = operand{local: l}
	}
	return ev.call(fn, frame, args)
}

// builtin calls one of OPA's built-in functions. ok is false when the call
// is undefined: no output, or an error OPA would not halt on.
func (ev *evaluator) builtin(in *instr, frame []*ast.Term) (*ast.Term, bool, error) {
	args := ev.args[:0]
	for _, o := range in.args {
		args = append(args, get(frame, o))
	}
	ev.args = args
	ev.out = nil
	ev.bctx.Location = nil
	var out *ast.Term
	var err error
	if in.builtin.relation {
		out, err = ev.relation(in.builtin, args)
	} else {
		err = in.builtin.f(ev.bctx, args, ev.iter)
		out = ev.out
	}
	ev.out = nil
	clear(args)
	if err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, false, fmt.Errorf("%s: %w", in.builtin.name, halt.Err)
		}
		return nil, false, nil
	}
	if in.builtin.relates && out == nil {
		return nil, false, nil
	}
	return out, true, nil
}

// relation calls a built-in with many outputs (walk): its plan scans the
// array of all of them, not the first.
func (ev *evaluator) relation(bi *builtinCall, args []*ast.Term) (*ast.Term, error) {
	var all []*ast.Term
	err := bi.f(ev.bctx, args, func(t *ast.Term) error {
		all = append(all, t)
		return nil
	})
	return ast.ArrayTerm(all...), err
}

// errStopScan ends an iteration early; it never leaves scan.
var errStopScan = errors.New("stop scan")

// scan runs the block once per element of the source: Break 0 (or an
// undefined statement) moves to the next element, Break 1 ends the scan.
func (ev *evaluator) scan(in *instr, frame []*ast.Term) (int, error) {
	src := frame[in.locals[0]]
	if src == nil {
		return completed, nil
	}
	keyL, valL, body := in.locals[1], in.locals[2], in.blocks[0]
	result := completed
	each := func(k, v *ast.Term) error {
		// Counted per evaluation: nested short scans must see cancellation too.
		if ev.steps++; ev.steps%1024 == 0 {
			if err := ev.bctx.Context.Err(); err != nil {
				return err
			}
		}
		frame[keyL], frame[valL] = k, v
		r, err := ev.run(frame, body)
		switch {
		case err != nil:
			return err
		case r == returned:
			result = returned
			return errStopScan
		case r == 1:
			return errStopScan
		case r > 1:
			result = r - 2
			return errStopScan
		}
		return nil
	}
	var err error
	switch v := src.Value.(type) {
	case *ast.Array:
		for i := 0; i < v.Len() && err == nil; i++ {
			err = each(intTerm(int64(i)), v.Elem(i))
		}
	case ast.Object:
		err = v.Iter(each)
	case ast.Set:
		err = v.Iter(func(t *ast.Term) error { return each(t, t) })
	}
	if err != nil && !errors.Is(err, errStopScan) {
		return 0, err
	}
	return result, nil
}

// with runs its block with a local (input or data) replaced, or with a
// value upserted at a path inside it, and restores the local after.
func (ev *evaluator) with(in *instr, frame []*ast.Term) (int, error) {
	saved := frame[in.target]
	value := get(frame, in.a)
	if len(in.path) > 0 {
		value = upsert(saved, in.path, value)
	}
	frame[in.target] = value
	savedInput, savedData := ev.input, ev.data
	switch in.target {
	case int(ir.Input):
		ev.input = value
	case int(ir.Data):
		ev.data = value
	}
	// Memoised rules of the replaced document are recomputed inside.
	memo, memoSet := ev.memo, ev.memoSet
	ev.memo, ev.memoSet = make([]*ast.Term, len(memo)), make([]bool, len(memoSet))
	r, err := ev.run(frame, in.blocks[0])
	ev.memo, ev.memoSet = memo, memoSet
	ev.input, ev.data = savedInput, savedData
	frame[in.target] = saved
	return r, err
}

// upsert returns a copy of root with value at path, creating objects on
// the way; root itself is not modified.
func upsert(root *ast.Term, path []*ast.Term, value *ast.Term) *ast.Term {
	obj := ast.NewObject()
	if root != nil {
		if cur, ok := root.Value.(ast.Object); ok {
			cur.Foreach(func(k, v *ast.Term) { obj.Insert(k, v) })
		}
	}
	if len(path) == 1 {
		obj.Insert(path[0], value)
	} else {
		obj.Insert(path[0], upsert(obj.Get(path[0]), path[1:], value))
	}
	return ast.NewTerm(obj)
}

func dot(src, key *ast.Term) *ast.Term {
	if src == nil || key == nil {
		return nil
	}
	switch v := src.Value.(type) {
	case ast.Object:
		return v.Get(key)
	case *ast.Array:
		return v.Get(key)
	case ast.Set:
		if v.Contains(key) {
			return key
		}
	}
	return nil
}

func isKind(o op, t *ast.Term) bool {
	if t == nil {
		return false
	}
	switch t.Value.(type) {
	case *ast.Array:
		return o == opIsArray
	case ast.Object:
		return o == opIsObject
	case ast.Set:
		return o == opIsSet
	}
	return false
}

func length(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	switch v := t.Value.(type) {
	case *ast.Array:
		return v.Len(), true
	case ast.Object:
		return v.Len(), true
	case ast.Set:
		return v.Len(), true
	case ast.String:
		return utf8.RuneCountInString(string(v)), true
	}
	return 0, false
}

// intTerm shares OPA's interned terms for small integers.
func intTerm(n int64) *ast.Term { return ast.InternedTerm(int(n)) }
