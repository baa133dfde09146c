package lang

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// StepKind says what a step does.
type StepKind uint8

// Step kinds.
const (
	KNext StepKind = iota // only a next
	KAssign
	KCall
	KSwitch
	KFor
	KParallel
	KTry
	KRaise
	KReturn
	KSteps
)

// Program is a compiled workflow. Steps and lists are addressed by index
// so that an execution's frame stack serialises as small integers.
type Program struct {
	Subs  map[string]*Sub
	Lists []*List
	Steps []*Step
}

// Sub is a subworkflow (main included).
type Sub struct {
	Name   string
	Params []Param
	Body   int
}

// Param is a subworkflow parameter, with an optional default.
type Param struct {
	Name       string
	Default    Tmpl
	HasDefault bool
}

// List is an ordered block of steps.
type List struct {
	Steps []int
	Index map[string]int // step name -> position
	Loop  bool           // the body of a for loop (break/continue land here)
}

// Step is one compiled step.
type Step struct {
	Name string
	Line int // source line of the step's name (0 when unknown)
	Kind StepKind
	Next string

	Assign []Assignment

	Call   string
	Args   map[string]Tmpl
	Result string

	Switch []Cond

	For *ForSpec

	Parallel *ParSpec

	Try    int
	Retry  *RetrySpec
	Except *ExceptSpec

	Value Tmpl // raise / return
	Body  int  // KSteps
}

// Assignment is one "name: value" of an assign step.
type Assignment struct {
	Target *Target
	Value  Tmpl
}

// Cond is one switch condition; Body runs when it holds.
type Cond struct {
	Cond Tmpl
	Body int
}

// ForSpec is a for loop.
type ForSpec struct {
	Value, Index string
	In           Tmpl
	Range        [2]Tmpl
	HasRange     bool
	Body         int
}

// ParSpec is a parallel step: named branches or a for loop.
type ParSpec struct {
	Shared   []string
	Limit    Tmpl
	Policy   string
	Branches []Branch
	For      *ForSpec
}

// Branch is one named parallel branch.
type Branch struct {
	Name string
	Body int
}

// RetrySpec is a try step's retry policy: either a named built-in policy
// (Policy) or a predicate with a count and backoff.
type RetrySpec struct {
	Policy     string
	Predicate  string
	MaxRetries Tmpl
	Initial    Tmpl
	Max        Tmpl
	Multiplier Tmpl
}

// ExceptSpec handles an error raised in a try body.
type ExceptSpec struct {
	As   string
	Body int
}

// CompileError names the step where deploy-time validation failed.
type CompileError struct {
	Step string
	Line int
	Msg  string
}

func (e *CompileError) Error() string {
	switch {
	case e.Step == "":
		return e.Msg
	case e.Line > 0:
		return fmt.Sprintf("step %q (line %d): %s", e.Step, e.Line, e.Msg)
	}
	return fmt.Sprintf("step %q: %s", e.Step, e.Msg)
}

// Limits Google documents for workflow definitions.
const (
	MaxBranches      = 10
	MaxParallelDepth = 2
)

// Parse decodes YAML or JSON source into plain values.
func Parse(src string) (any, error) {
	v, _, err := parse(src)
	return v, err
}

func parse(src string) (any, map[string][]int, error) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		return nil, nil, &CompileError{Msg: fmt.Sprintf("parse: %v", err)}
	}
	if len(n.Content) == 0 {
		return nil, nil, &CompileError{Msg: "parse: empty workflow"}
	}
	v, err := fromNode(n.Content[0])
	if err != nil {
		return nil, nil, &CompileError{Msg: fmt.Sprintf("parse: %v", err)}
	}
	return v, stepLines(n.Content[0]), nil
}

var stepKinds = []string{"assign", "call", "switch", "for", "parallel", "try", "raise", "return", "next", "steps"}

// stepLines finds the source line of every step, keyed by subworkflow and
// step name, in document order: the compiler visits steps in that same
// order and takes them from the front.
func stepLines(root *yaml.Node) map[string][]int {
	out := map[string][]int{}
	var walk func(sub string, n *yaml.Node, inSeq bool)
	walk = func(sub string, n *yaml.Node, inSeq bool) {
		switch n.Kind {
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(sub, c, true)
			}
		case yaml.MappingNode:
			if inSeq && len(n.Content) == 2 && n.Content[1].Kind == yaml.MappingNode {
				body := n.Content[1]
				for i := 0; i+1 < len(body.Content); i += 2 {
					if slices.Contains(stepKinds, body.Content[i].Value) {
						key := sub + "\x00" + n.Content[0].Value
						out[key] = append(out[key], n.Content[0].Line)
						break
					}
				}
			}
			for i := 1; i < len(n.Content); i += 2 {
				walk(sub, n.Content[i], false)
			}
		}
	}
	switch root.Kind {
	case yaml.SequenceNode:
		walk("main", root, false)
	case yaml.MappingNode:
		for i := 0; i+1 < len(root.Content); i += 2 {
			sub := root.Content[i].Value
			body := root.Content[i+1]
			if body.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(body.Content); j += 2 {
				if body.Content[j].Value == "steps" {
					walk(sub, body.Content[j+1], false)
				}
			}
		}
	}
	return out
}

func fromNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return fromNode(n.Alias)
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				var f float64
				if err2 := n.Decode(&f); err2 != nil {
					return nil, fmt.Errorf("line %d: %w", n.Line, err)
				}
				return f, nil
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return f, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return b, nil
		case "!!null":
			return nil, nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.MappingNode && k.Tag == "!!merge" {
				continue
			}
			v, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return fromNode(n.Content[0])
		}
	}
	return nil, nil
}

type compiler struct {
	p        *Program
	fns      Functions
	sub      string
	parDepth int
	lines    map[string][]int
}

// subFns resolves functions first among the workflow's subworkflows.
type subFns struct {
	c *compiler
}

func (s subFns) Signature(name string) ([]string, int, bool, bool) {
	if sub, ok := s.c.p.Subs[name]; ok {
		names := make([]string, len(sub.Params))
		req := 0
		for i, p := range sub.Params {
			names[i] = p.Name
			if !p.HasDefault {
				req = i + 1
			}
		}
		return names, req, false, true
	}
	if s.c.fns == nil {
		return nil, 0, true, true
	}
	return s.c.fns.Signature(name)
}

// Compile parses and validates workflow source. fns checks function names
// and arity; errors are *CompileError naming the step.
func Compile(src string, fns Functions) (*Program, error) {
	doc, lines, err := parse(src)
	if err != nil {
		return nil, err
	}
	c := &compiler{p: &Program{Subs: map[string]*Sub{}}, fns: fns, lines: lines}
	type rawSub struct {
		name   string
		params []any
		steps  []any
	}
	var raws []rawSub
	switch d := doc.(type) {
	case []any:
		raws = append(raws, rawSub{name: "main", steps: d})
	case map[string]any:
		names := make([]string, 0, len(d))
		for k := range d {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			m, ok := d[name].(map[string]any)
			if !ok {
				return nil, &CompileError{Msg: fmt.Sprintf("subworkflow %q: must be a map with steps", name)}
			}
			for k := range m {
				if k != "params" && k != "steps" {
					return nil, &CompileError{Msg: fmt.Sprintf("subworkflow %q: unexpected key %q", name, k)}
				}
			}
			steps, ok := m["steps"].([]any)
			if !ok {
				return nil, &CompileError{Msg: fmt.Sprintf("subworkflow %q: steps must be a list", name)}
			}
			var params []any
			if p, ok := m["params"]; ok {
				if params, ok = p.([]any); !ok {
					return nil, &CompileError{Msg: fmt.Sprintf("subworkflow %q: params must be a list", name)}
				}
			}
			raws = append(raws, rawSub{name: name, params: params, steps: steps})
		}
	default:
		return nil, &CompileError{Msg: "workflow must be a list of steps or a map of subworkflows"}
	}
	// Declare every subworkflow before compiling bodies so calls resolve.
	for _, r := range raws {
		sub := &Sub{Name: r.name}
		for _, p := range r.params {
			switch x := p.(type) {
			case string:
				sub.Params = append(sub.Params, Param{Name: x})
			case map[string]any:
				if len(x) != 1 {
					return nil, &CompileError{Msg: fmt.Sprintf("subworkflow %q: a parameter with a default has one key", r.name)}
				}
				for k, v := range x {
					t, err := CompileTmpl(v, nil)
					if err != nil {
						return nil, &CompileError{Msg: fmt.Sprintf("subworkflow %q: param %q: %v", r.name, k, err)}
					}
					sub.Params = append(sub.Params, Param{Name: k, Default: t, HasDefault: true})
				}
			default:
				return nil, &CompileError{Msg: fmt.Sprintf("subworkflow %q: bad parameter %v", r.name, p)}
			}
		}
		c.p.Subs[r.name] = sub
	}
	main, ok := c.p.Subs["main"]
	if !ok {
		return nil, &CompileError{Msg: "missing main workflow"}
	}
	if len(main.Params) > 1 {
		return nil, &CompileError{Msg: "main workflow takes at most one parameter (the execution argument)"}
	}
	for _, r := range raws {
		c.sub = r.name
		id, err := c.list(r.steps, false, "")
		if err != nil {
			return nil, err
		}
		c.p.Subs[r.name].Body = id
	}
	for name, sub := range c.p.Subs {
		if err := c.checkJumps(sub.Body, nil, false); err != nil {
			return nil, fmt.Errorf("subworkflow %q: %w", name, err)
		}
	}
	return c.p, nil
}

func (c *compiler) list(raw []any, loop bool, owner string) (int, error) {
	if len(raw) == 0 {
		if owner == "" {
			return 0, &CompileError{Msg: fmt.Sprintf("subworkflow %q: steps must not be empty", c.sub)}
		}
		return 0, c.fail(owner, "steps must not be empty")
	}
	l := &List{Index: map[string]int{}, Loop: loop}
	id := len(c.p.Lists)
	c.p.Lists = append(c.p.Lists, l)
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok || len(m) != 1 {
			return 0, &CompileError{Msg: fmt.Sprintf("in %q: a step is a map with exactly one key (its name)", c.sub)}
		}
		for name, body := range m {
			bm, ok := body.(map[string]any)
			if !ok {
				return 0, &CompileError{Step: name, Msg: "step body must be a map"}
			}
			sid, err := c.step(name, bm)
			if err != nil {
				return 0, err
			}
			if _, dup := l.Index[name]; dup {
				return 0, c.fail(name, "duplicate step name")
			}
			l.Index[name] = len(l.Steps)
			l.Steps = append(l.Steps, sid)
		}
	}
	return id, nil
}

func (c *compiler) fail(step, format string, args ...any) error {
	e := &CompileError{Step: step, Msg: fmt.Sprintf(format, args...)}
	for _, s := range c.p.Steps {
		if s.Name == step && s.Line > 0 {
			e.Line = s.Line
		}
	}
	return e
}

func (c *compiler) tmpl(step string, v any) (Tmpl, error) {
	t, err := CompileTmpl(v, subFns{c})
	if err != nil {
		return nil, c.fail(step, "%v", err)
	}
	return t, nil
}

var stepKeys = map[string]bool{"assign": true, "call": true, "args": true, "result": true, "switch": true,
	"for": true, "parallel": true, "try": true, "retry": true, "except": true, "raise": true,
	"return": true, "next": true, "steps": true}

func (c *compiler) step(name string, m map[string]any) (int, error) {
	s := &Step{Name: name, Try: -1, Body: -1}
	if q := c.lines[c.sub+"\x00"+name]; len(q) > 0 {
		s.Line = q[0]
		c.lines[c.sub+"\x00"+name] = q[1:]
	}
	id := len(c.p.Steps)
	c.p.Steps = append(c.p.Steps, s)
	for k := range m {
		if !stepKeys[k] {
			return 0, c.fail(name, "unknown key %q", k)
		}
	}
	if n, ok := m["next"]; ok {
		ns, ok := n.(string)
		if !ok {
			return 0, c.fail(name, "next must be a step name")
		}
		s.Next = ns
	}
	kinds := 0
	for _, k := range []string{"assign", "call", "switch", "for", "parallel", "try", "raise", "return", "steps"} {
		if _, ok := m[k]; ok {
			kinds++
		}
	}
	if kinds > 1 {
		return 0, c.fail(name, "a step has one of assign, call, switch, for, parallel, try, raise, return, steps")
	}
	var err error
	switch {
	case m["assign"] != nil:
		s.Kind = KAssign
		err = c.assign(s, m["assign"])
	case m["call"] != nil:
		s.Kind = KCall
		err = c.call(s, m)
	case m["switch"] != nil:
		s.Kind = KSwitch
		err = c.switchStep(s, m["switch"])
	case m["for"] != nil:
		s.Kind = KFor
		s.For, err = c.forSpec(name, m["for"])
	case m["parallel"] != nil:
		s.Kind = KParallel
		err = c.parallel(s, m["parallel"])
	case m["try"] != nil:
		s.Kind = KTry
		err = c.try(s, m)
	case hasKey(m, "raise"):
		s.Kind = KRaise
		s.Value, err = c.tmpl(name, m["raise"])
	case hasKey(m, "return"):
		s.Kind = KReturn
		s.Value, err = c.tmpl(name, m["return"])
	case m["steps"] != nil:
		s.Kind = KSteps
		raw, ok := m["steps"].([]any)
		if !ok {
			return 0, c.fail(name, "steps must be a list")
		}
		s.Body, err = c.list(raw, false, name)
	default:
		if s.Next == "" {
			return 0, c.fail(name, "empty step")
		}
		s.Kind = KNext
	}
	if err != nil {
		return 0, err
	}
	if s.Kind != KCall && (hasKey(m, "args") || hasKey(m, "result")) {
		return 0, c.fail(name, "args and result belong to a call step")
	}
	if s.Kind != KTry && (hasKey(m, "retry") || hasKey(m, "except")) {
		return 0, c.fail(name, "retry and except belong to a try step")
	}
	return id, nil
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func (c *compiler) assign(s *Step, v any) error {
	l, ok := v.([]any)
	if !ok {
		return c.fail(s.Name, "assign must be a list of single-key maps")
	}
	if len(l) > 50 {
		return c.fail(s.Name, "an assign step takes at most 50 assignments")
	}
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok || len(m) != 1 {
			return c.fail(s.Name, "each assignment is a map with one key")
		}
		for k, val := range m {
			t, err := ParseTarget(k, subFns{c})
			if err != nil {
				return c.fail(s.Name, "%v", err)
			}
			vt, err := c.tmpl(s.Name, val)
			if err != nil {
				return err
			}
			s.Assign = append(s.Assign, Assignment{Target: t, Value: vt})
		}
	}
	return nil
}

func (c *compiler) call(s *Step, m map[string]any) error {
	fn, ok := m["call"].(string)
	if !ok || fn == "" {
		return c.fail(s.Name, "call must name a function or subworkflow")
	}
	s.Call = fn
	if r, ok := m["result"]; ok {
		rs, ok := r.(string)
		if !ok {
			return c.fail(s.Name, "result must be a variable name")
		}
		s.Result = rs
	}
	args := map[string]any{}
	if a, ok := m["args"]; ok && a != nil {
		am, ok := a.(map[string]any)
		if !ok {
			return c.fail(s.Name, "args must be a map")
		}
		args = am
	}
	s.Args = map[string]Tmpl{}
	for k, v := range args {
		t, err := c.tmpl(s.Name, v)
		if err != nil {
			return err
		}
		s.Args[k] = t
	}
	params, req, variadic, ok := subFns{c}.Signature(fn)
	if !ok {
		return c.fail(s.Name, "unknown function or subworkflow %q", fn)
	}
	if c.fns == nil {
		return nil
	}
	if sub, isSub := c.p.Subs[fn]; isSub {
		for k := range args {
			found := false
			for _, p := range sub.Params {
				found = found || p.Name == k
			}
			if !found {
				return c.fail(s.Name, "subworkflow %q has no parameter %q", fn, k)
			}
		}
		for _, p := range sub.Params {
			if _, ok := args[p.Name]; !ok && !p.HasDefault {
				return c.fail(s.Name, "subworkflow %q: missing argument %q", fn, p.Name)
			}
		}
		return nil
	}
	if variadic {
		return nil
	}
	known := map[string]bool{}
	for _, p := range params {
		known[p] = true
	}
	for k := range args {
		if !known[k] {
			return c.fail(s.Name, "function %q has no argument %q (takes %s)", fn, k, strings.Join(params, ", "))
		}
	}
	for _, p := range params[:req] {
		if _, ok := args[p]; !ok {
			return c.fail(s.Name, "function %q: missing argument %q", fn, p)
		}
	}
	return nil
}

func (c *compiler) switchStep(s *Step, v any) error {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return c.fail(s.Name, "switch must be a non-empty list of conditions")
	}
	if len(l) > 50 {
		return c.fail(s.Name, "switch takes at most 50 conditions")
	}
	for i, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return c.fail(s.Name, "switch condition %d must be a map", i)
		}
		cv, ok := m["condition"]
		if !ok {
			return c.fail(s.Name, "switch condition %d has no condition", i)
		}
		ct, err := c.tmpl(s.Name, cv)
		if err != nil {
			return err
		}
		rest := map[string]any{}
		for k, v := range m {
			if k != "condition" {
				rest[k] = v
			}
		}
		if len(rest) == 0 {
			return c.fail(s.Name, "switch condition %d does nothing (add next, steps, assign, return, raise or call)", i)
		}
		// The action becomes a one-step block so that the interpreter treats
		// it like any nested step.
		body, err := c.list([]any{map[string]any{fmt.Sprintf("%s#%d", s.Name, i): rest}}, false, s.Name)
		if err != nil {
			return err
		}
		s.Switch = append(s.Switch, Cond{Cond: ct, Body: body})
	}
	return nil
}

func (c *compiler) forSpec(name string, v any) (*ForSpec, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, c.fail(name, "for must be a map")
	}
	f := &ForSpec{}
	for k := range m {
		switch k {
		case "value", "index", "in", "range", "steps":
		default:
			return nil, c.fail(name, "for: unknown key %q", k)
		}
	}
	f.Value, _ = m["value"].(string)
	f.Index, _ = m["index"].(string)
	if f.Value == "" {
		return nil, c.fail(name, "for: value is required")
	}
	_, hasIn := m["in"]
	r, hasRange := m["range"]
	if hasIn == hasRange {
		return nil, c.fail(name, "for: exactly one of in and range")
	}
	var err error
	if hasIn {
		if f.In, err = c.tmpl(name, m["in"]); err != nil {
			return nil, err
		}
	} else {
		f.HasRange = true
		switch rv := r.(type) {
		case []any:
			if len(rv) != 2 {
				return nil, c.fail(name, "for: range is [start, end]")
			}
			for i := 0; i < 2; i++ {
				if f.Range[i], err = c.tmpl(name, rv[i]); err != nil {
					return nil, err
				}
			}
		case string:
			t, err := c.tmpl(name, rv)
			if err != nil {
				return nil, err
			}
			f.Range[0], f.Range[1] = t, nil
		default:
			return nil, c.fail(name, "for: range is [start, end]")
		}
	}
	steps, ok := m["steps"].([]any)
	if !ok {
		return nil, c.fail(name, "for: steps must be a list")
	}
	if f.Body, err = c.list(steps, true, name); err != nil {
		return nil, err
	}
	return f, nil
}

func (c *compiler) parallel(s *Step, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return c.fail(s.Name, "parallel must be a map")
	}
	c.parDepth++
	defer func() { c.parDepth-- }()
	if c.parDepth > MaxParallelDepth {
		return c.fail(s.Name, "parallel steps nest at most %d deep", MaxParallelDepth)
	}
	p := &ParSpec{Policy: "continueAll"}
	for k, val := range m {
		switch k {
		case "shared":
			l, ok := val.([]any)
			if !ok {
				return c.fail(s.Name, "shared must be a list of variable names")
			}
			for _, e := range l {
				n, ok := e.(string)
				if !ok {
					return c.fail(s.Name, "shared must be a list of variable names")
				}
				p.Shared = append(p.Shared, n)
			}
		case "concurrency_limit":
			t, err := c.tmpl(s.Name, val)
			if err != nil {
				return err
			}
			p.Limit = t
		case "exception_policy":
			pol, _ := val.(string)
			if pol != "continueAll" {
				return c.fail(s.Name, "exception_policy: only continueAll is supported")
			}
		case "branches":
			l, ok := val.([]any)
			if !ok || len(l) < 2 {
				return c.fail(s.Name, "branches must list at least two branches")
			}
			if len(l) > MaxBranches {
				return c.fail(s.Name, "at most %d branches", MaxBranches)
			}
			for _, b := range l {
				bm, ok := b.(map[string]any)
				if !ok || len(bm) != 1 {
					return c.fail(s.Name, "a branch is a map with one key (its name)")
				}
				for bn, bb := range bm {
					bbm, _ := bb.(map[string]any)
					steps, ok := bbm["steps"].([]any)
					if !ok {
						return c.fail(s.Name, "branch %q: steps must be a list", bn)
					}
					id, err := c.list(steps, false, s.Name)
					if err != nil {
						return err
					}
					p.Branches = append(p.Branches, Branch{Name: bn, Body: id})
				}
			}
		case "for":
			f, err := c.forSpec(s.Name, val)
			if err != nil {
				return err
			}
			p.For = f
		default:
			return c.fail(s.Name, "parallel: unknown key %q", k)
		}
	}
	if (p.For == nil) == (len(p.Branches) == 0) {
		return c.fail(s.Name, "parallel needs exactly one of branches and for")
	}
	s.Parallel = p
	return nil
}

func (c *compiler) try(s *Step, m map[string]any) error {
	tb, ok := m["try"].(map[string]any)
	if !ok {
		return c.fail(s.Name, "try must be a step body or steps")
	}
	var err error
	if steps, ok := tb["steps"].([]any); ok && len(tb) == 1 {
		s.Try, err = c.list(steps, false, s.Name)
	} else {
		s.Try, err = c.list([]any{map[string]any{s.Name + "#try": tb}}, false, s.Name)
	}
	if err != nil {
		return err
	}
	if r, ok := m["retry"]; ok {
		s.Retry, err = c.retry(s.Name, r)
		if err != nil {
			return err
		}
	}
	if e, ok := m["except"]; ok {
		em, ok := e.(map[string]any)
		if !ok {
			return c.fail(s.Name, "except must be a map with as and steps")
		}
		ex := &ExceptSpec{}
		ex.As, _ = em["as"].(string)
		steps, ok := em["steps"].([]any)
		if !ok {
			return c.fail(s.Name, "except: steps must be a list")
		}
		if ex.Body, err = c.list(steps, false, s.Name); err != nil {
			return err
		}
		s.Except = ex
	}
	if s.Retry == nil && s.Except == nil {
		return c.fail(s.Name, "try needs retry or except")
	}
	return nil
}

// Built-in retry policies and predicates.
var (
	builtinPolicies   = map[string]bool{"http.default_retry": true, "http.default_retry_non_idempotent": true}
	builtinPredicates = map[string]bool{"http.default_retry_predicate": true, "http.default_retry_predicate_non_idempotent": true, "retry.always": true, "retry.never": true}
)

func (c *compiler) retry(name string, v any) (*RetrySpec, error) {
	if s, ok := v.(string); ok {
		src, isExpr := ExprSource(s)
		src = strings.TrimSpace(src)
		if !isExpr || !builtinPolicies[src] {
			return nil, c.fail(name, "retry: unknown policy %q", s)
		}
		return &RetrySpec{Policy: src}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, c.fail(name, "retry must be a policy or a map")
	}
	r := &RetrySpec{}
	ps, _ := m["predicate"].(string)
	src, isExpr := ExprSource(ps)
	src = strings.TrimSpace(src)
	switch {
	case !isExpr:
		return nil, c.fail(name, "retry: predicate must be ${name}")
	case builtinPredicates[src]:
	case c.p.Subs[src] != nil:
		if len(c.p.Subs[src].Params) < 1 {
			return nil, c.fail(name, "retry: predicate %q must take the error as a parameter", src)
		}
	default:
		return nil, c.fail(name, "retry: unknown predicate %q", src)
	}
	r.Predicate = src
	for k := range m {
		switch k {
		case "predicate", "max_retries", "backoff":
		default:
			return nil, c.fail(name, "retry: unknown key %q", k)
		}
	}
	var err error
	if r.MaxRetries, err = c.tmpl(name, m["max_retries"]); err != nil {
		return nil, err
	}
	b := map[string]any{}
	if bv, ok := m["backoff"]; ok {
		if b, ok = bv.(map[string]any); !ok {
			return nil, c.fail(name, "retry: backoff must be a map")
		}
	}
	for k := range b {
		switch k {
		case "initial_delay", "max_delay", "multiplier":
		default:
			return nil, c.fail(name, "retry: backoff: unknown key %q", k)
		}
	}
	if r.Initial, err = c.tmpl(name, b["initial_delay"]); err != nil {
		return nil, err
	}
	if r.Max, err = c.tmpl(name, b["max_delay"]); err != nil {
		return nil, err
	}
	if r.Multiplier, err = c.tmpl(name, b["multiplier"]); err != nil {
		return nil, err
	}
	return r, nil
}

// checkJumps verifies every next target: a step of the same block or an
// enclosing one (within the subworkflow), end, break or continue in loops.
func (c *compiler) checkJumps(list int, outer []int, inLoop bool) error {
	l := c.p.Lists[list]
	scope := append([]int{list}, outer...)
	inLoop = inLoop || l.Loop
	for _, sid := range l.Steps {
		s := c.p.Steps[sid]
		switch s.Next {
		case "":
		case "end", "return":
		case "break", "continue":
			if !inLoop {
				return c.fail(s.Name, "next: %s outside a for loop", s.Next)
			}
		default:
			found := false
			for _, lid := range scope {
				if _, ok := c.p.Lists[lid].Index[s.Next]; ok {
					found = true
					break
				}
			}
			if !found {
				return c.fail(s.Name, "next: unknown step %q", s.Next)
			}
		}
		var kids []int
		loopKids := map[int]bool{}
		switch s.Kind {
		case KSwitch:
			for _, cd := range s.Switch {
				kids = append(kids, cd.Body)
			}
		case KFor:
			kids = append(kids, s.For.Body)
			loopKids[s.For.Body] = true
		case KTry:
			kids = append(kids, s.Try)
			if s.Except != nil {
				kids = append(kids, s.Except.Body)
			}
		case KSteps:
			kids = append(kids, s.Body)
		case KParallel:
			// A branch is its own scope: no jumps out of it.
			if s.Parallel.For != nil {
				if err := c.checkJumps(s.Parallel.For.Body, nil, true); err != nil {
					return err
				}
			}
			for _, b := range s.Parallel.Branches {
				if err := c.checkJumps(b.Body, nil, false); err != nil {
					return err
				}
			}
		}
		for _, k := range kids {
			// A jump may leave a loop body for an enclosing block (the loop
			// ends there), never enter one.
			if err := c.checkJumps(k, scope, inLoop || loopKids[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// ArgumentFromJSON decodes an execution argument.
func ArgumentFromJSON(s string) (any, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("argument is not valid JSON")
	}
	return UnmarshalValue([]byte(s))
}
