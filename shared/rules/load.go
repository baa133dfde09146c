// Package rules evaluates the platform's YAML decision tables: conditions over
// facts, first-match or all-match, and a trace of every evaluation for the
// audit log. The tables live in the rules module (waooaw.dev/governance/rules);
// Load takes any fs.FS so tests can feed broken tables.
package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalidTable is wrapped by every *LoadError, for errors.Is.
var ErrInvalidTable = errors.New("invalid decision table")

// LoadError names the file and line of a table that cannot be loaded.
type LoadError struct {
	File string
	Line int
	Msg  string
}

func (e *LoadError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unwrap lets errors.Is(err, ErrInvalidTable) hold.
func (e *LoadError) Unwrap() error { return ErrInvalidTable }

// Type is the declared type of a fact or output.
type Type string

// The types a fact, param or output may have.
const (
	Number  Type = "number"
	String  Type = "string"
	Bool    Type = "bool"
	Strings Type = "strings" // a list of strings
)

// HitPolicy says whether a table stops at its first matching rule.
type HitPolicy string

// Hit policies.
const (
	First HitPolicy = "first"
	All   HitPolicy = "all"
)

// Set is every table loaded from one file system. It is immutable and safe
// for concurrent use.
type Set struct {
	tables map[string]*Table
}

// Table is one decision table.
type Table struct {
	Name        string
	Description string
	HitPolicy   HitPolicy
	Facts       map[string]Type
	Params      map[string]any
	Outputs     map[string]Type
	Rules       []*Rule
	File        string

	factIndex map[string]int
	nodes     int // condition nodes over all rules: sizes the trace arena
}

// Rule is one row: when its condition holds, its outputs apply.
type Rule struct {
	ID          string
	Description string
	Then        map[string]any
	Seed        *SeedMeta // precedent seeds only
	Line        int

	when *cond // nil: always holds
}

// SeedMeta is the lifecycle record of a precedent seed: its version, domain and authorship,
// what it supersedes, its status (draft → pending_review → approved → active → superseded or
// deprecated) and how many of its auto-approvals were vetoed.
type SeedMeta struct {
	Version            int       `yaml:"version" json:"version"`
	Domain             string    `yaml:"domain" json:"domain"`
	RuleText           string    `yaml:"rule_text" json:"rule_text"`
	CreatedBy          string    `yaml:"created_by" json:"created_by"`
	CreatedAt          time.Time `yaml:"created_at" json:"created_at"`
	Supersedes         string    `yaml:"supersedes" json:"supersedes,omitempty"`
	Status             string    `yaml:"status" json:"status"`
	FalsePositiveCount int       `yaml:"false_positive_count" json:"false_positive_count"`
}

var seedStatuses = map[string]bool{
	"draft": true, "pending_review": true, "approved": true, "active": true,
	"superseded": true, "deprecated": true,
}

// Load reads every *.yaml file at the root of fsys. Any unknown field, wrong
// type, unknown operator, bad regular expression or duplicate fails the load
// with a *LoadError naming file:line.
func Load(fsys fs.FS) (*Set, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("rules: glob: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("rules: no *.yaml tables found: %w", ErrInvalidTable)
	}
	s := &Set{tables: make(map[string]*Table, len(names))}
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("rules: read %s: %w", name, err)
		}
		t, err := parseTable(name, src)
		if err != nil {
			return nil, err
		}
		if prev, dup := s.tables[t.Name]; dup {
			return nil, &LoadError{File: name, Line: 1, Msg: fmt.Sprintf("table %q already defined in %s", t.Name, prev.File)}
		}
		s.tables[t.Name] = t
	}
	return s, nil
}

// Table returns the named table.
func (s *Set) Table(name string) (*Table, bool) {
	t, ok := s.tables[name]
	return t, ok
}

// Names lists the tables, sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.tables))
	for n := range s.tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type parser struct{ file string }

func (p parser) errf(n *yaml.Node, format string, args ...any) error {
	return &LoadError{File: p.file, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// pairs walks a mapping node, rejecting keys outside allowed and duplicates.
func (p parser) pairs(n *yaml.Node, what string, allowed map[string]bool, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "%s: want a mapping", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if allowed != nil && !allowed[k.Value] {
			return p.errf(k, "%s: unknown field %q", what, k.Value)
		}
		if seen[k.Value] {
			return p.errf(k, "%s: duplicate field %q", what, k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

var (
	tableKeys = set("table", "description", "hit_policy", "facts", "params", "outputs", "rules")
	ruleKeys  = set("id", "description", "when", "then", "seed")
	seedKeys  = set("version", "domain", "rule_text", "created_by", "created_at", "supersedes", "status", "false_positive_count")
	condKeys  = set("fact", "op", "value", "param")
	tableName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

func parseTable(file string, src []byte) (*Table, error) {
	p := parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		// yaml.v3 syntax errors already carry "line N".
		return nil, &LoadError{File: file, Line: 0, Msg: err.Error()}
	}
	if len(doc.Content) != 1 {
		return nil, &LoadError{File: file, Line: 1, Msg: "want exactly one YAML document"}
	}
	root := doc.Content[0]
	t := &Table{File: file, Facts: map[string]Type{}, Params: map[string]any{}, Outputs: map[string]Type{}}
	var rulesNode *yaml.Node
	err := p.pairs(root, "table", tableKeys, func(key string, _, v *yaml.Node) error {
		switch key {
		case "table":
			if !tableName.MatchString(v.Value) {
				return p.errf(v, "table name %q: want lower_snake_case", v.Value)
			}
			t.Name = v.Value
		case "description":
			t.Description = v.Value
		case "hit_policy":
			switch HitPolicy(v.Value) {
			case First, All:
				t.HitPolicy = HitPolicy(v.Value)
			default:
				return p.errf(v, "hit_policy %q: want first or all", v.Value)
			}
		case "facts":
			return p.types(v, "facts", t.Facts)
		case "outputs":
			return p.types(v, "outputs", t.Outputs)
		case "params":
			return p.pairs(v, "params", nil, func(name string, _, pv *yaml.Node) error {
				val, err := p.value(pv)
				if err != nil {
					return err
				}
				t.Params[name] = val
				return nil
			})
		case "rules":
			rulesNode = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for key, missing := range map[string]bool{"table": t.Name == "", "hit_policy": t.HitPolicy == "", "rules": rulesNode == nil} {
		if missing {
			return nil, p.errf(root, "table: missing field %q", key)
		}
	}
	t.factIndex = make(map[string]int, len(t.Facts))
	for _, name := range sortedKeys(t.Facts) {
		t.factIndex[name] = len(t.factIndex)
	}
	if rulesNode.Kind != yaml.SequenceNode || len(rulesNode.Content) == 0 {
		return nil, p.errf(rulesNode, "rules: want a non-empty list")
	}
	ids := map[string]int{}
	for _, rn := range rulesNode.Content {
		r, err := p.rule(t, rn)
		if err != nil {
			return nil, err
		}
		if line, dup := ids[r.ID]; dup {
			return nil, p.errf(rn, "rule id %q already used at line %d", r.ID, line)
		}
		ids[r.ID] = rn.Line
		t.Rules = append(t.Rules, r)
	}
	return t, nil
}

func (p parser) types(n *yaml.Node, what string, into map[string]Type) error {
	return p.pairs(n, what, nil, func(name string, _, v *yaml.Node) error {
		switch ty := Type(v.Value); ty {
		case Number, String, Bool, Strings:
			into[name] = ty
			return nil
		default:
			return p.errf(v, "%s.%s: unknown type %q (want number, string, bool or strings)", what, name, v.Value)
		}
	})
}

// value decodes a scalar or a list of scalars, with numbers as float64.
func (p parser) value(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, p.errf(n, "%v", err)
		}
		switch x := v.(type) {
		case int:
			return float64(x), nil
		case float64, string, bool:
			return x, nil
		default:
			return nil, p.errf(n, "value %q: want a number, string or bool", n.Value)
		}
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, p.errf(c, "list element: want a scalar")
			}
			v, err := p.value(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	default:
		return nil, p.errf(n, "want a scalar or a list of scalars")
	}
}

func (p parser) rule(t *Table, n *yaml.Node) (*Rule, error) {
	r := &Rule{Line: n.Line}
	var thenNode *yaml.Node
	err := p.pairs(n, "rule", ruleKeys, func(key string, _, v *yaml.Node) error {
		switch key {
		case "id":
			r.ID = v.Value
		case "description":
			r.Description = v.Value
		case "when":
			c, err := p.cond(t, v)
			if err != nil {
				return err
			}
			r.when = c
		case "then":
			thenNode = v
		case "seed":
			if err := p.pairs(v, "seed", seedKeys, func(string, *yaml.Node, *yaml.Node) error { return nil }); err != nil {
				return err
			}
			var m SeedMeta
			if err := v.Decode(&m); err != nil {
				return p.errf(v, "seed: %v", err)
			}
			if !seedStatuses[m.Status] {
				return p.errf(v, "seed: unknown status %q", m.Status)
			}
			r.Seed = &m
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.ID == "" {
		return nil, p.errf(n, "rule: missing field \"id\"")
	}
	if r.Seed != nil && !strings.HasPrefix(r.ID, r.Seed.Domain+"-") {
		return nil, p.errf(n, "rule %s: seed domain %q does not match the id prefix", r.ID, r.Seed.Domain)
	}
	if thenNode == nil {
		return nil, p.errf(n, "rule %s: missing field \"then\"", r.ID)
	}
	r.Then = map[string]any{}
	err = p.pairs(thenNode, "then", nil, func(name string, k, v *yaml.Node) error {
		want, ok := t.Outputs[name]
		if !ok {
			return p.errf(k, "rule %s: unknown output %q", r.ID, name)
		}
		val, err := p.value(v)
		if err != nil {
			return err
		}
		if !hasType(val, want) {
			return p.errf(v, "rule %s: output %s: want %s, got %s", r.ID, name, want, typeOf(val))
		}
		r.Then[name] = val
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.nodes += r.when.count()
	return r, nil
}

func (p parser) cond(t *Table, n *yaml.Node) (*cond, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "condition: want a mapping")
	}
	if len(n.Content) == 2 {
		switch k, v := n.Content[0], n.Content[1]; k.Value {
		case "all", "any":
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				return nil, p.errf(v, "%s: want a non-empty list of conditions", k.Value)
			}
			c := &cond{kind: k.Value, expr: k.Value}
			for _, cn := range v.Content {
				child, err := p.cond(t, cn)
				if err != nil {
					return nil, err
				}
				c.children = append(c.children, child)
			}
			return c, nil
		case "not":
			child, err := p.cond(t, v)
			if err != nil {
				return nil, err
			}
			return &cond{kind: "not", expr: "not", children: []*cond{child}}, nil
		}
	}
	c := &cond{kind: "cmp"}
	var valueNode, paramNode, opNode *yaml.Node
	err := p.pairs(n, "condition", condKeys, func(key string, _, v *yaml.Node) error {
		switch key {
		case "fact":
			c.fact = v.Value
		case "op":
			opNode = v
		case "value":
			valueNode = v
		case "param":
			paramNode = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.fact == "" || opNode == nil {
		return nil, p.errf(n, "condition: want fact and op (or all/any/not)")
	}
	ft, ok := t.Facts[c.fact]
	if !ok {
		return nil, p.errf(n, "condition: unknown fact %q (declare it under facts)", c.fact)
	}
	c.factType, c.factIdx = ft, t.factIndex[c.fact]
	op, ok := operators[opNode.Value]
	if !ok {
		return nil, p.errf(opNode, "condition: unknown operator %q", opNode.Value)
	}
	c.op = op
	var operand string
	switch {
	case valueNode != nil && paramNode != nil:
		return nil, p.errf(n, "condition: value and param are exclusive")
	case valueNode != nil:
		v, err := p.value(valueNode)
		if err != nil {
			return nil, err
		}
		c.value = v
		operand = fmt.Sprint(render(v))
	case paramNode != nil:
		v, ok := t.Params[paramNode.Value]
		if !ok {
			return nil, p.errf(paramNode, "condition: unknown param %q", paramNode.Value)
		}
		c.value = v
		operand = fmt.Sprintf("%s(%v)", paramNode.Value, render(v))
	}
	at := n
	if valueNode != nil {
		at = valueNode
	} else if paramNode != nil {
		at = paramNode
	}
	if err := c.check(); err != nil {
		return nil, p.errf(at, "condition on %s (%s) %s: %v", c.fact, ft, opNode.Value, err)
	}
	c.expr = strings.TrimSpace(fmt.Sprintf("%s %s %s", c.fact, opNode.Value, operand))
	return c, nil
}

func render(v any) any {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return v
}

func hasType(v any, t Type) bool {
	switch t {
	case Number:
		_, ok := v.(float64)
		return ok
	case String:
		_, ok := v.(string)
		return ok
	case Bool:
		_, ok := v.(bool)
		return ok
	case Strings:
		l, ok := v.([]any)
		if !ok {
			return false
		}
		for _, e := range l {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}

func typeOf(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
