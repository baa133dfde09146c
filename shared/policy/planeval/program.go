package planeval

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Program is a plan made ready to run: statements resolved to their
// operands, constants, functions and built-ins. It is immutable and safe
// for concurrent use.
type Program struct {
	plans    map[string]*function
	funcs    []*function
	dynamic  map[string]*function // by path, for CallDynamicStmt
	maxStack int                  // locals of the deepest possible call chain
	pool     sync.Pool            // *evaluator: an evaluation's stack, memo and buffers
}

type function struct {
	name    string
	index   int
	params  []int
	ret     int
	blocks  []*block
	nlocals int
	memo    bool // (input, data) only: one value per evaluation
}

type block struct{ stmts []instr }

type op uint8

const (
	opNop op = iota
	opReturn
	opCall
	opCallBuiltin
	opCallDynamic
	opBlock
	opBreak
	opDot
	opLen
	opScan
	opNot
	opAssignInt
	opAssignVar
	opAssignVarOnce
	opResetLocal
	opMakeNull
	opMakeNumberInt
	opMakeConst // MakeNumberRefStmt: a number constant
	opMakeArray
	opMakeObject
	opMakeSet
	opEqual
	opNotEqual
	opIsArray
	opIsObject
	opIsSet
	opIsDefined
	opIsUndefined
	opArrayAppend
	opObjectInsert
	opObjectInsertOnce
	opObjectMerge
	opSetAdd
	opWith
	opResultSetAdd
)

// operand is a local or a constant.
type operand struct {
	local int
	konst *ast.Term // when set, the operand is this constant
}

// instr is one statement. Which fields mean what depends on op; the
// interpreter switches on op alone.
type instr struct {
	op      op
	a, b    operand
	target  int
	n       int64 // AssignInt, MakeNumberInt, MakeArray capacity, Break index
	args    []operand
	locals  []int // Scan: source, key, value; CallDynamic: args; ObjectMerge: a, b
	blocks  []*block
	fn      *function
	builtin *builtinCall
	path    []*ast.Term // With
	loc     *ir.Location
}

type builtinCall struct {
	name     string
	f        topdown.BuiltinFunc
	relates  bool // the declaration has a result
	relation bool // many outputs (walk): the plan scans an array of them
}

// Compile resolves a plan. A statement or built-in this package does not
// know fails here, not during an evaluation.
func Compile(p *ir.Policy) (*Program, error) {
	if p == nil || p.Static == nil || p.Plans == nil {
		return nil, fmt.Errorf("planeval: empty plan")
	}
	c := &compiler{policy: p, byName: map[string]*function{}, builtins: map[string]*builtinCall{}}
	prog := &Program{plans: map[string]*function{}, dynamic: map[string]*function{}}
	for _, bf := range p.Static.BuiltinFuncs {
		f := topdown.GetBuiltin(bf.Name)
		if f == nil {
			return nil, fmt.Errorf("planeval: built-in %s has no implementation", bf.Name)
		}
		// The IR declaration has no relation flag; OPA's own declaration has.
		relation := ast.BuiltinMap[bf.Name] != nil && ast.BuiltinMap[bf.Name].Relation
		c.builtins[bf.Name] = &builtinCall{name: bf.Name, f: f, relates: bf.Decl == nil || bf.Decl.Result() != nil, relation: relation}
	}
	if p.Funcs != nil {
		// Declare first: functions call each other in any order.
		for i, f := range p.Funcs.Funcs {
			fn := &function{name: f.Name, index: i, ret: int(f.Return), memo: len(f.Params) == 2}
			for _, l := range f.Params {
				fn.params = append(fn.params, int(l))
			}
			c.byName[f.Name] = fn
			prog.funcs = append(prog.funcs, fn)
			if len(f.Path) > 0 {
				prog.dynamic[strings.Join(f.Path, "\x00")] = fn
			}
		}
		for i, f := range p.Funcs.Funcs {
			fn := prog.funcs[i]
			c.max = fn.ret
			for _, l := range fn.params {
				c.max = max(c.max, l)
			}
			blocks, err := c.blocks(f.Blocks)
			if err != nil {
				return nil, fmt.Errorf("planeval: function %s: %w", f.Name, err)
			}
			fn.blocks, fn.nlocals = blocks, c.max+1
		}
	}
	for _, pl := range p.Plans.Plans {
		c.max = int(ir.Data)
		blocks, err := c.blocks(pl.Blocks)
		if err != nil {
			return nil, fmt.Errorf("planeval: plan %s: %w", pl.Name, err)
		}
		prog.plans[pl.Name] = &function{name: pl.Name, index: -1, blocks: blocks, nlocals: c.max + 1}
	}
	// Rego forbids recursion, so no chain is longer than every frame at once.
	for _, fn := range prog.funcs {
		prog.maxStack += fn.nlocals
	}
	for _, fn := range prog.plans {
		prog.maxStack += fn.nlocals
	}
	return prog, nil
}

type compiler struct {
	policy   *ir.Policy
	byName   map[string]*function
	builtins map[string]*builtinCall
	max      int // highest local seen in the current function
}

func (c *compiler) blocks(in []*ir.Block) ([]*block, error) {
	out := make([]*block, len(in))
	for i, b := range in {
		var err error
		if out[i], err = c.block(b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *compiler) block(b *ir.Block) (*block, error) {
	out := &block{stmts: make([]instr, 0, len(b.Stmts))}
	for _, s := range b.Stmts {
		in, err := c.stmt(s)
		if err != nil {
			if loc := s.GetLocation(); loc != nil {
				return nil, fmt.Errorf("%s:%d:%d: %w", c.file(loc.File), loc.Row, loc.Col, err)
			}
			return nil, err
		}
		out.stmts = append(out.stmts, in)
	}
	return out, nil
}

func (c *compiler) file(i int) string {
	if i >= 0 && i < len(c.policy.Static.Files) {
		return c.policy.Static.Files[i].Value
	}
	return "?"
}

func (c *compiler) local(l ir.Local) int {
	c.max = max(c.max, int(l))
	return int(l)
}

func (c *compiler) operand(o ir.Operand) (operand, error) {
	v := o.Value
	// A decoded plan holds pointers; a plan built in memory holds values.
	switch p := v.(type) {
	case *ir.Local:
		v = *p
	case *ir.Bool:
		v = *p
	case *ir.StringIndex:
		v = *p
	}
	switch v := v.(type) {
	case ir.Local:
		return operand{local: c.local(v)}, nil
	case ir.Bool:
		return operand{konst: ast.InternedTerm(bool(v))}, nil
	case ir.StringIndex:
		s, err := c.str(int(v))
		if err != nil {
			return operand{}, err
		}
		return operand{konst: ast.StringTerm(s)}, nil
	default:
		return operand{}, fmt.Errorf("unknown operand %T", v)
	}
}

func (c *compiler) str(i int) (string, error) {
	if i < 0 || i >= len(c.policy.Static.Strings) {
		return "", fmt.Errorf("string constant %d out of range", i)
	}
	return c.policy.Static.Strings[i].Value, nil
}

func (c *compiler) operands(os []ir.Operand) ([]operand, error) {
	out := make([]operand, len(os))
	for i, o := range os {
		var err error
		if out[i], err = c.operand(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *compiler) stmt(s ir.Stmt) (instr, error) {
	in := instr{loc: s.GetLocation()}
	var err error
	two := func(a, b ir.Operand) {
		if in.a, err = c.operand(a); err == nil {
			in.b, err = c.operand(b)
		}
	}
	switch s := s.(type) {
	case *ir.NopStmt:
		in.op = opNop
	case *ir.ReturnLocalStmt:
		in.op, in.a = opReturn, operand{local: c.local(s.Source)}
	case *ir.CallStmt:
		in.target = c.local(s.Result)
		if in.args, err = c.operands(s.Args); err != nil {
			return in, err
		}
		if fn, ok := c.byName[s.Func]; ok {
			in.op, in.fn = opCall, fn
			if len(in.args) != len(fn.params) {
				return in, fmt.Errorf("call %s: %d arguments for %d parameters", s.Func, len(in.args), len(fn.params))
			}
		} else if bi, ok := c.builtins[s.Func]; ok {
			in.op, in.builtin = opCallBuiltin, bi
		} else {
			return in, fmt.Errorf("call of unknown function %s", s.Func)
		}
	case *ir.CallDynamicStmt:
		in.op, in.target = opCallDynamic, c.local(s.Result)
		if in.args, err = c.operands(s.Path); err != nil {
			return in, err
		}
		for _, l := range s.Args {
			in.locals = append(in.locals, c.local(l))
		}
	case *ir.BlockStmt:
		in.op = opBlock
		in.blocks, err = c.blocks(s.Blocks)
	case *ir.BreakStmt:
		in.op, in.n = opBreak, int64(s.Index)
	case *ir.DotStmt:
		in.op, in.target = opDot, c.local(s.Target)
		two(s.Source, s.Key)
	case *ir.LenStmt:
		in.op, in.target = opLen, c.local(s.Target)
		in.a, err = c.operand(s.Source)
	case *ir.ScanStmt:
		in.op = opScan
		in.locals = []int{c.local(s.Source), c.local(s.Key), c.local(s.Value)}
		in.blocks, err = c.blocks([]*ir.Block{s.Block})
	case *ir.NotStmt:
		in.op = opNot
		in.blocks, err = c.blocks([]*ir.Block{s.Block})
	case *ir.AssignIntStmt:
		in.op, in.n, in.target = opAssignInt, s.Value, c.local(s.Target)
	case *ir.AssignVarStmt:
		in.op, in.target = opAssignVar, c.local(s.Target)
		in.a, err = c.operand(s.Source)
	case *ir.AssignVarOnceStmt:
		in.op, in.target = opAssignVarOnce, c.local(s.Target)
		in.a, err = c.operand(s.Source)
	case *ir.ResetLocalStmt:
		in.op, in.target = opResetLocal, c.local(s.Target)
	case *ir.MakeNullStmt:
		in.op, in.target = opMakeNull, c.local(s.Target)
	case *ir.MakeNumberIntStmt:
		in.op, in.n, in.target = opMakeNumberInt, s.Value, c.local(s.Target)
	case *ir.MakeNumberRefStmt:
		in.op, in.target = opMakeConst, c.local(s.Target)
		var num string
		if num, err = c.str(s.Index); err == nil {
			in.a.konst = ast.NumberTerm(json.Number(num))
		}
	case *ir.MakeArrayStmt:
		in.op, in.n, in.target = opMakeArray, int64(s.Capacity), c.local(s.Target)
	case *ir.MakeObjectStmt:
		in.op, in.target = opMakeObject, c.local(s.Target)
	case *ir.MakeSetStmt:
		in.op, in.target = opMakeSet, c.local(s.Target)
	case *ir.EqualStmt:
		in.op = opEqual
		two(s.A, s.B)
	case *ir.NotEqualStmt:
		in.op = opNotEqual
		two(s.A, s.B)
	case *ir.IsArrayStmt:
		in.op = opIsArray
		in.a, err = c.operand(s.Source)
	case *ir.IsObjectStmt:
		in.op = opIsObject
		in.a, err = c.operand(s.Source)
	case *ir.IsSetStmt:
		in.op = opIsSet
		in.a, err = c.operand(s.Source)
	case *ir.IsDefinedStmt:
		in.op, in.a = opIsDefined, operand{local: c.local(s.Source)}
	case *ir.IsUndefinedStmt:
		in.op, in.a = opIsUndefined, operand{local: c.local(s.Source)}
	case *ir.ArrayAppendStmt:
		in.op, in.target = opArrayAppend, c.local(s.Array)
		in.a, err = c.operand(s.Value)
	case *ir.ObjectInsertStmt:
		in.op, in.target = opObjectInsert, c.local(s.Object)
		two(s.Key, s.Value)
	case *ir.ObjectInsertOnceStmt:
		in.op, in.target = opObjectInsertOnce, c.local(s.Object)
		two(s.Key, s.Value)
	case *ir.ObjectMergeStmt:
		in.op, in.target = opObjectMerge, c.local(s.Target)
		in.locals = []int{c.local(s.A), c.local(s.B)}
	case *ir.SetAddStmt:
		in.op, in.target = opSetAdd, c.local(s.Set)
		in.a, err = c.operand(s.Value)
	case *ir.WithStmt:
		in.op, in.target = opWith, c.local(s.Local)
		for _, i := range s.Path {
			var seg string
			if seg, err = c.str(i); err != nil {
				return in, err
			}
			in.path = append(in.path, ast.StringTerm(seg))
		}
		if in.a, err = c.operand(s.Value); err == nil {
			in.blocks, err = c.blocks([]*ir.Block{s.Block})
		}
	case *ir.ResultSetAddStmt:
		in.op, in.a = opResultSetAdd, operand{local: c.local(s.Value)}
	default:
		return in, fmt.Errorf("statement %T is not supported", s)
	}
	return in, err
}
