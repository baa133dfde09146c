package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
)

// ErrUnknownTable is returned by Evaluate for a table the set does not hold.
var ErrUnknownTable = errors.New("unknown decision table")

// ErrBadFact is returned by Evaluate for a fact the table does not declare or
// whose value has the wrong type: a typo must not silently make a rule miss.
var ErrBadFact = errors.New("bad fact")

type op int

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opIn
	opContains
	opMatches
	opEmpty
)

var operators = map[string]op{
	"==": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe,
	"in": opIn, "contains": opContains, "matches": opMatches, "empty": opEmpty,
}

type cond struct {
	kind     string // all, any, not, cmp
	children []*cond
	expr     string // precomputed so evaluation never formats

	fact     string
	factType Type
	factIdx  int
	op       op
	value    any // float64, string, bool or []any of those
	re       *regexp.Regexp
}

func (c *cond) count() int {
	if c == nil {
		return 0
	}
	n := 1
	for _, ch := range c.children {
		n += ch.count()
	}
	return n
}

// check validates operand types at load time so evaluation cannot meet them.
func (c *cond) check() error {
	scalar := c.factType == Number || c.factType == String || c.factType == Bool
	if c.op == opEmpty {
		if c.value != nil {
			return errors.New("empty takes no value")
		}
		return nil
	}
	if c.value == nil {
		return errors.New("missing value or param")
	}
	switch c.op {
	case opEq, opNe:
		if !scalar {
			return errors.New("== and != need a scalar fact")
		}
		if !hasType(c.value, c.factType) {
			return fmt.Errorf("wrong type: value %v is %s", c.value, typeOf(c.value))
		}
	case opLt, opLe, opGt, opGe:
		if c.factType != Number || !hasType(c.value, Number) {
			return fmt.Errorf("wrong type: ordering needs a number fact and a number value, got %s", typeOf(c.value))
		}
	case opIn:
		l, ok := c.value.([]any)
		if !scalar || !ok {
			return errors.New("wrong type: in needs a scalar fact and a list value")
		}
		for _, e := range l {
			if !hasType(e, c.factType) {
				return fmt.Errorf("wrong type: list element %v is %s", e, typeOf(e))
			}
		}
	case opContains:
		if (c.factType != Strings && c.factType != String) || !hasType(c.value, String) {
			return errors.New("wrong type: contains needs a strings or string fact and a string value")
		}
	case opMatches:
		s, ok := c.value.(string)
		if c.factType != String || !ok {
			return errors.New("wrong type: matches needs a string fact and a string pattern")
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return fmt.Errorf("bad pattern: %w", err)
		}
		c.re = re
	}
	return nil
}

// Match is a rule that fired and its outputs. Then is shared with the table:
// read it, do not modify it.
type Match struct {
	RuleID string         `json:"rule_id"`
	Then   map[string]any `json:"then"`
	Seed   *SeedMeta      `json:"seed,omitempty"`
}

// Result is the outcome of one evaluation with its trace.
type Result struct {
	Table   string  `json:"table"`
	Matches []Match `json:"matches"`
	Trace   Trace   `json:"trace"`
}

// Trace records, for the audit log, every rule evaluated and every condition
// with whether it held. First-match tables stop at the rule that fired.
type Trace struct {
	Table     string      `json:"table"`
	HitPolicy HitPolicy   `json:"hit_policy"`
	Fired     []string    `json:"fired"`
	Rules     []RuleTrace `json:"rules"`
}

// RuleTrace is one rule's evaluation. A rule without conditions always holds.
type RuleTrace struct {
	ID         string      `json:"id"`
	Matched    bool        `json:"matched"`
	Conditions []CondTrace `json:"conditions,omitempty"`
}

// CondTrace is one condition; Fact is the value seen, Missing when absent.
type CondTrace struct {
	Expr     string      `json:"expr"`
	Held     bool        `json:"held"`
	Fact     any         `json:"fact,omitempty"`
	Missing  bool        `json:"missing,omitempty"`
	Children []CondTrace `json:"children,omitempty"`
}

// JSON renders the trace for the audit log.
func (t Trace) JSON() ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("rules: marshal trace: %w", err)
	}
	return b, nil
}

type fval struct {
	present bool
	raw     any
	num     float64
	str     string
	b       bool
	list    []string
}

// Evaluate runs the named table over facts. A missing fact makes each
// condition on it not hold; an undeclared or wrongly typed fact is an error.
func (s *Set) Evaluate(table string, facts map[string]any) (Result, error) {
	t, ok := s.tables[table]
	if !ok {
		return Result{}, fmt.Errorf("rules: evaluate %q: %w", table, ErrUnknownTable)
	}
	return t.Evaluate(facts)
}

// Evaluate runs the table over facts; see Set.Evaluate.
func (t *Table) Evaluate(facts map[string]any) (Result, error) {
	vals := make([]fval, len(t.factIndex))
	for name, raw := range facts {
		i, ok := t.factIndex[name]
		if !ok {
			return Result{}, fmt.Errorf("rules: table %s: fact %q is not declared: %w", t.Name, name, ErrBadFact)
		}
		v, err := normalize(raw, t.Facts[name])
		if err != nil {
			return Result{}, fmt.Errorf("rules: table %s: fact %q: %v: %w", t.Name, name, err, ErrBadFact)
		}
		vals[i] = v
	}
	res := Result{Table: t.Name, Trace: Trace{Table: t.Name, HitPolicy: t.HitPolicy, Fired: []string{}}}
	res.Trace.Rules = make([]RuleTrace, 0, len(t.Rules))
	arena := make([]CondTrace, t.nodes) // one allocation for every condition's trace
	for _, r := range t.Rules {
		rt := RuleTrace{ID: r.ID, Matched: true}
		if r.when != nil {
			root := arena[:1:1]
			arena = arena[1:]
			rt.Matched = r.when.eval(vals, &root[0], &arena)
			rt.Conditions = root
		}
		res.Trace.Rules = append(res.Trace.Rules, rt)
		if rt.Matched {
			res.Matches = append(res.Matches, Match{RuleID: r.ID, Then: r.Then, Seed: r.Seed})
			res.Trace.Fired = append(res.Trace.Fired, r.ID)
			if t.HitPolicy == First {
				break
			}
		}
	}
	return res, nil
}

// eval fills tr and takes child traces from arena. Children are all evaluated
// (no short-circuit) so the trace shows every condition.
func (c *cond) eval(vals []fval, tr *CondTrace, arena *[]CondTrace) bool {
	tr.Expr = c.expr
	if c.kind != "cmp" {
		kids := (*arena)[:len(c.children):len(c.children)]
		*arena = (*arena)[len(c.children):]
		all, any := true, false
		for i, ch := range c.children {
			h := ch.eval(vals, &kids[i], arena)
			all, any = all && h, any || h
		}
		tr.Children = kids
		switch c.kind {
		case "all":
			tr.Held = all
		case "any":
			tr.Held = any
		default: // not
			tr.Held = !all
		}
		return tr.Held
	}
	v := vals[c.factIdx]
	tr.Fact, tr.Missing = v.raw, !v.present
	tr.Held = c.holds(v)
	return tr.Held
}

func (c *cond) holds(v fval) bool {
	if c.op == opEmpty {
		return !v.present || (c.factType == Strings && len(v.list) == 0) || (c.factType == String && v.str == "")
	}
	if !v.present {
		return false
	}
	switch c.op {
	case opEq, opNe:
		eq := scalarEq(v, c.factType, c.value)
		return eq == (c.op == opEq)
	case opLt:
		return v.num < c.value.(float64)
	case opLe:
		return v.num <= c.value.(float64)
	case opGt:
		return v.num > c.value.(float64)
	case opGe:
		return v.num >= c.value.(float64)
	case opIn:
		for _, e := range c.value.([]any) {
			if scalarEq(v, c.factType, e) {
				return true
			}
		}
		return false
	case opContains:
		want := c.value.(string)
		if c.factType == String {
			return strings.Contains(v.str, want)
		}
		for _, s := range v.list {
			if s == want {
				return true
			}
		}
		return false
	case opMatches:
		return c.re.MatchString(v.str)
	}
	return false
}

func scalarEq(v fval, t Type, want any) bool {
	switch t {
	case Number:
		return v.num == want.(float64)
	case String:
		return v.str == want.(string)
	default:
		return v.b == want.(bool)
	}
}

func normalize(raw any, t Type) (fval, error) {
	v := fval{present: raw != nil, raw: raw}
	if raw == nil {
		return v, nil
	}
	bad := func() (fval, error) { return fval{}, fmt.Errorf("want %s, got %T", t, raw) }
	switch t {
	case Number:
		switch x := raw.(type) {
		case float64:
			v.num = x
		case float32:
			v.num = float64(x)
		case int:
			v.num = float64(x)
		case int64:
			v.num = float64(x)
		case int32:
			v.num = float64(x)
		case uint:
			v.num = float64(x)
		case uint64:
			v.num = float64(x)
		case json.Number:
			f, err := x.Float64()
			if err != nil {
				return fval{}, fmt.Errorf("want number: %w", err)
			}
			v.num = f
		default:
			return bad()
		}
		if math.IsNaN(v.num) {
			return fval{}, errors.New("NaN is not a number here")
		}
	case String:
		s, ok := raw.(string)
		if !ok {
			return bad()
		}
		v.str = s
	case Bool:
		b, ok := raw.(bool)
		if !ok {
			return bad()
		}
		v.b = b
	case Strings:
		switch x := raw.(type) {
		case []string:
			v.list = x
		case []any:
			v.list = make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return fval{}, fmt.Errorf("want strings, element %d is %T", i, e)
				}
				v.list[i] = s
			}
		default:
			return bad()
		}
	}
	return v, nil
}
