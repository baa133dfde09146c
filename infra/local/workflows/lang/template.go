package lang

import (
	"fmt"
	"strings"
)

// Tmpl is a YAML value that may embed expressions anywhere inside it.
type Tmpl interface {
	Eval(env Env) (any, error)
}

type constTmpl struct{ v any }
type exprTmpl struct {
	e   Expr
	src string
}
type listTmpl []Tmpl
type mapTmpl map[string]Tmpl

func (t constTmpl) Eval(Env) (any, error) { return Copy(t.v), nil }
func (t exprTmpl) Eval(env Env) (any, error) {
	v, err := t.e.eval(env)
	if err != nil {
		return nil, err
	}
	return v, nil
}
func (t listTmpl) Eval(env Env) (any, error) {
	out := make([]any, len(t))
	for i, e := range t {
		v, err := e.Eval(env)
		if err != nil {
			return nil, err
		}
		out[i] = Copy(v)
	}
	return out, nil
}
func (t mapTmpl) Eval(env Env) (any, error) {
	out := make(map[string]any, len(t))
	for k, e := range t {
		v, err := e.Eval(env)
		if err != nil {
			return nil, err
		}
		out[k] = Copy(v)
	}
	return out, nil
}

// Const wraps a plain value as a template.
func Const(v any) Tmpl { return constTmpl{v} }

// ExprSource returns the expression text of a "${...}" string.
func ExprSource(s string) (string, bool) {
	s2 := strings.TrimSpace(s)
	if strings.HasPrefix(s2, "${") && strings.HasSuffix(s2, "}") {
		return s2[2 : len(s2)-1], true
	}
	return "", false
}

// CompileTmpl turns a decoded YAML value into a template.
func CompileTmpl(v any, fns Functions) (Tmpl, error) {
	switch x := v.(type) {
	case string:
		if src, ok := ExprSource(x); ok {
			e, err := ParseExpr(src, fns)
			if err != nil {
				return nil, err
			}
			if l, ok := e.(*litExpr); ok {
				return constTmpl{l.v}, nil
			}
			return exprTmpl{e, src}, nil
		}
		return constTmpl{x}, nil
	case []any:
		out := make(listTmpl, len(x))
		allConst := true
		for i, e := range x {
			t, err := CompileTmpl(e, fns)
			if err != nil {
				return nil, err
			}
			out[i] = t
			if _, ok := t.(constTmpl); !ok {
				allConst = false
			}
		}
		if allConst {
			return constTmpl{x}, nil
		}
		return out, nil
	case map[string]any:
		out := make(mapTmpl, len(x))
		allConst := true
		for k, e := range x {
			t, err := CompileTmpl(e, fns)
			if err != nil {
				return nil, err
			}
			out[k] = t
			if _, ok := t.(constTmpl); !ok {
				allConst = false
			}
		}
		if allConst {
			return constTmpl{x}, nil
		}
		return out, nil
	}
	return constTmpl{v}, nil
}

// Target is the left side of an assignment: a variable and a path of keys
// and indexes into it.
type Target struct {
	Root string
	Path []Expr
	Text string
}

// ParseTarget parses "a", "a.b", "a[0]", `a["k"].b`.
func ParseTarget(s string, fns Functions) (*Target, error) {
	src := s
	if inner, ok := ExprSource(s); ok {
		src = inner
	}
	e, err := ParseExpr(src, fns)
	if err != nil {
		return nil, err
	}
	t := &Target{Text: s}
	var walk func(Expr) error
	walk = func(x Expr) error {
		switch n := x.(type) {
		case *varExpr:
			t.Root = n.name
			return nil
		case *dotExpr:
			if err := walk(n.x); err != nil {
				return err
			}
			t.Path = append(t.Path, &litExpr{n.key})
			return nil
		case *indexExpr:
			if err := walk(n.x); err != nil {
				return err
			}
			t.Path = append(t.Path, n.i)
			return nil
		}
		return fmt.Errorf("cannot assign to %q", s)
	}
	if err := walk(e); err != nil {
		return nil, err
	}
	return t, nil
}

// Set stores v at the path under root, creating missing map keys; it
// returns the new root value.
func (t *Target) Set(env Env, root any, v any) (any, error) {
	if len(t.Path) == 0 {
		return v, nil
	}
	keys := make([]any, len(t.Path))
	for i, p := range t.Path {
		k, err := p.eval(env)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	if root == nil {
		root = map[string]any{}
	}
	cur := root
	for i, k := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case map[string]any:
			ks, ok := k.(string)
			if !ok {
				return nil, Errorf(TagType, "map key must be string, got %s", TypeName(k))
			}
			if last {
				c[ks] = v
				return root, nil
			}
			nxt, ok := c[ks]
			if !ok || nxt == nil {
				nxt = map[string]any{}
				c[ks] = nxt
			}
			cur = nxt
		case []any:
			n, ok := k.(int64)
			if !ok {
				return nil, Errorf(TagType, "list index must be integer, got %s", TypeName(k))
			}
			if n < 0 || n >= int64(len(c)) {
				return nil, Errorf(TagIndex, "list index out of range: %d", n)
			}
			if last {
				c[n] = v
				return root, nil
			}
			cur = c[n]
		default:
			return nil, Errorf(TagType, "cannot assign into %s", TypeName(cur))
		}
	}
	return root, nil
}
