// Package terraform holds the checks that keep the Terraform in this folder honest without a
// provider: no provider can be downloaded here, so `terraform validate` cannot run, and the
// tests parse the HCL with hashicorp/hcl instead and hold it to infra/infrastructure.yaml
// (see docs/deploy.md).
package terraform

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Module is the parsed .tf files of one folder.
type Module struct {
	Dir   string
	Files map[string]*hclsyntax.Body // by file name
}

// LoadModule parses every .tf file in dir. Any diagnostic, warnings included, is an error.
func LoadModule(dir string) (*Module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, fmt.Errorf("tfcheck: glob: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("tfcheck: no .tf files in %s", dir)
	}
	src := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("tfcheck: %w", err)
		}
		src[filepath.Base(p)] = b
	}
	return ParseModule(dir, src)
}

// ParseModule parses the given files as the module in dir (dir is what path.module means).
func ParseModule(dir string, files map[string][]byte) (*Module, error) {
	p := hclparse.NewParser()
	m := &Module{Dir: dir, Files: map[string]*hclsyntax.Body{}}
	for _, name := range sortedKeys(files) {
		f, diags := p.ParseHCL(files[name], name)
		if len(diags) > 0 {
			return nil, fmt.Errorf("tfcheck: parse %s: %w", name, diags)
		}
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			return nil, fmt.Errorf("tfcheck: %s: not native HCL syntax", name)
		}
		m.Files[name] = body
	}
	return m, nil
}

// Blocks returns the top-level blocks of type typ, in file order.
func (m *Module) Blocks(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, name := range sortedKeys(m.Files) {
		for _, b := range m.Files[name].Blocks {
			if b.Type == typ {
				out = append(out, b)
			}
		}
	}
	return out
}

// Resources returns the resource blocks of the given type (every type when typ is "").
func (m *Module) Resources(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.Blocks("resource") {
		if len(b.Labels) == 2 && (typ == "" || b.Labels[0] == typ) {
			out = append(out, b)
		}
	}
	return out
}

// Locals returns every local value's expression by name.
func (m *Module) Locals() map[string]hclsyntax.Expression {
	out := map[string]hclsyntax.Expression{}
	for _, b := range m.Blocks("locals") {
		for name, a := range b.Body.Attributes {
			out[name] = a.Expr
		}
	}
	return out
}

// evalContext knows only path.module: what a path needs to be resolved without a plan.
func (m *Module) evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.Dir)}),
	}}
}

// StaticPath evaluates a path expression that depends on path.module alone; ok is false for
// anything else (a path built from each.value or a local is resolved only at plan time).
func (m *Module) StaticPath(expr hclsyntax.Expression) (string, bool) {
	v, diags := expr.Value(m.evalContext())
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return filepath.Clean(v.AsString()), true
}

// FileCall is a call of a file-reading function with the path expression it reads.
type FileCall struct {
	Func string // file, filemd5, ...
	Path hclsyntax.Expression
	// Decoded is the decoding function wrapped around it, when there is one (yamldecode).
	Decoded string
}

// FileCalls lists the calls of file-reading functions in expr.
func FileCalls(node hclsyntax.Node) []FileCall {
	var out []FileCall
	decodedBy := map[hclsyntax.Expression]string{}
	_ = hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok {
			return nil
		}
		switch call.Name {
		case "yamldecode", "jsondecode":
			if len(call.Args) == 1 {
				decodedBy[call.Args[0]] = call.Name
			}
		case "file", "filemd5", "filesha256", "fileexists", "filebase64":
			if len(call.Args) == 1 {
				out = append(out, FileCall{Func: call.Name, Path: call.Args[0], Decoded: decodedBy[call]})
			}
		}
		return nil
	})
	return out
}

// DecodedFiles maps each local whose value is yamldecode(file(P)) with a static P to P.
func (m *Module) DecodedFiles() map[string]string {
	out := map[string]string{}
	for name, expr := range m.Locals() {
		call, ok := expr.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "yamldecode" || len(call.Args) != 1 {
			continue
		}
		inner, ok := call.Args[0].(*hclsyntax.FunctionCallExpr)
		if !ok || inner.Name != "file" || len(inner.Args) != 1 {
			continue
		}
		if p, ok := m.StaticPath(inner.Args[0]); ok {
			out[name] = p
		}
	}
	return out
}

// DerivedLocals returns the locals computed, directly or through other locals, from the
// locals named in roots.
func (m *Module) DerivedLocals(roots ...string) map[string]bool {
	locals := m.Locals()
	derived := map[string]bool{}
	for _, r := range roots {
		derived[r] = true
	}
	for changed := true; changed; {
		changed = false
		for name, expr := range locals {
			if derived[name] {
				continue
			}
			for _, ref := range LocalRefs(expr) {
				if derived[ref] {
					derived[name], changed = true, true
					break
				}
			}
		}
	}
	return derived
}

// LocalRefs returns the names of the locals expr refers to.
func LocalRefs(expr hclsyntax.Expression) []string {
	var out []string
	for _, t := range expr.Variables() {
		if t.RootName() != "local" || len(t) < 2 {
			continue
		}
		if a, ok := t[1].(hcl.TraverseAttr); ok {
			out = append(out, a.Name)
		}
	}
	return out
}

// LocalAttrRefs returns, for references of the form local.<name>.<attr>, the attr names.
func LocalAttrRefs(node hclsyntax.Node, name string) []string {
	var out []string
	_ = hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		st, ok := n.(*hclsyntax.ScopeTraversalExpr)
		if !ok || len(st.Traversal) < 3 || st.Traversal.RootName() != "local" {
			return nil
		}
		if a, ok := st.Traversal[1].(hcl.TraverseAttr); !ok || a.Name != name {
			return nil
		}
		if a, ok := st.Traversal[2].(hcl.TraverseAttr); ok {
			out = append(out, a.Name)
		}
		return nil
	})
	return out
}

// Word is a piece of text written in the HCL: a string literal (or a literal part of a
// template), a block type or label, an attribute name, an object key, a traversal step or
// index key, or a for-expression variable.
type Word struct {
	Text  string
	Range hcl.Range
}

// Words lists every word written in node.
func Words(node hclsyntax.Node) []Word {
	var out []Word
	add := func(s string, r hcl.Range) {
		if s != "" {
			out = append(out, Word{Text: s, Range: r})
		}
	}
	addTraversal := func(t hcl.Traversal, r hcl.Range) {
		for _, step := range t {
			switch s := step.(type) {
			case hcl.TraverseRoot:
				add(s.Name, r)
			case hcl.TraverseAttr:
				add(s.Name, r)
			case hcl.TraverseIndex:
				if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
					add(s.Key.AsString(), r)
				}
			}
		}
	}
	_ = hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		switch x := n.(type) {
		case *hclsyntax.Block:
			add(x.Type, x.TypeRange)
			for i, l := range x.Labels {
				add(l, x.LabelRanges[i])
			}
		case *hclsyntax.Attribute:
			add(x.Name, x.NameRange)
		case *hclsyntax.LiteralValueExpr:
			if x.Val.Type() == cty.String && x.Val.IsKnown() && !x.Val.IsNull() {
				add(x.Val.AsString(), x.SrcRange)
			}
		case *hclsyntax.ScopeTraversalExpr:
			addTraversal(x.Traversal, x.SrcRange)
		case *hclsyntax.RelativeTraversalExpr:
			addTraversal(x.Traversal, x.SrcRange)
		case *hclsyntax.ObjectConsKeyExpr:
			// A bare key (`{ name = ... }`) is not walked as an expression.
			add(hcl.ExprAsKeyword(x.Wrapped), x.Range())
		case *hclsyntax.ForExpr:
			add(x.KeyVar, x.OpenRange)
			add(x.ValVar, x.OpenRange)
		}
		return nil
	})
	return out
}

// NameHit is a word that writes one of the forbidden names.
type NameHit struct {
	Name string
	Word Word
}

func (h NameHit) String() string {
	return fmt.Sprintf("%s: %q writes %q", h.Word.Range, h.Word.Text, h.Name)
}

// FindNames reports the words of m that contain one of names as a whole token: bounded by
// the text's ends or by characters outside [A-Za-z0-9_] ("fn-x" and "x-dlq" contain "x",
// "x_url" does not).
func FindNames(m *Module, names []string) []NameHit {
	res := make([]*regexp.Regexp, len(names))
	for i, n := range names {
		res[i] = regexp.MustCompile(`(^|[^A-Za-z0-9_])` + regexp.QuoteMeta(n) + `([^A-Za-z0-9_]|$)`)
	}
	var hits []NameHit
	for _, file := range sortedKeys(m.Files) {
		for _, w := range Words(m.Files[file]) {
			for i, re := range res {
				if re.MatchString(w.Text) {
					hits = append(hits, NameHit{Name: names[i], Word: w})
				}
			}
		}
	}
	return hits
}

// ForEachProblem says why a resource does not iterate over the spec.
func (m *Module) ForEachProblem(b *hclsyntax.Block, derived map[string]bool) string {
	a, ok := b.Body.Attributes["for_each"]
	if !ok {
		return "has no for_each"
	}
	refs := LocalRefs(a.Expr)
	for _, r := range refs {
		if derived[r] {
			return ""
		}
	}
	return fmt.Sprintf("for_each refers to no local decoded from the spec (refers to locals %v)", refs)
}

// NestedBlocks returns the blocks of type typ directly inside b.
func NestedBlocks(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, nb := range b.Body.Blocks {
		if nb.Type == typ {
			out = append(out, nb)
		}
	}
	return out
}

// Address is type.name of a resource block, or the block type and labels otherwise.
func Address(b *hclsyntax.Block) string {
	if b.Type == "resource" {
		return strings.Join(b.Labels, ".")
	}
	return strings.Join(append([]string{b.Type}, b.Labels...), ".")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UndeclaredRefs lists the references to locals, variables, data sources and resources that
// the module does not declare: the part of `terraform validate` that needs no provider.
func (m *Module) UndeclaredRefs() []string {
	declared := map[string]bool{}
	for name := range m.Locals() {
		declared["local."+name] = true
	}
	for _, b := range m.Blocks("variable") {
		declared["var."+strings.Join(b.Labels, ".")] = true
	}
	for _, b := range m.Blocks("data") {
		declared["data."+strings.Join(b.Labels, ".")] = true
	}
	for _, b := range m.Resources("") {
		declared[strings.Join(b.Labels, ".")] = true
	}
	var out []string
	for _, file := range sortedKeys(m.Files) {
		_ = hclsyntax.VisitAll(m.Files[file], func(n hclsyntax.Node) hcl.Diagnostics {
			st, ok := n.(*hclsyntax.ScopeTraversalExpr)
			if !ok {
				return nil
			}
			ref, ok := reference(st.Traversal)
			if ok && !declared[ref] {
				out = append(out, fmt.Sprintf("%s: %s is not declared", st.SrcRange, ref))
			}
			return nil
		})
	}
	return out
}

// reference names what a traversal refers to (local.x, var.x, data.t.n, t.n); ok is false
// for the other roots (each, path, iterators of dynamic blocks and for expressions).
func reference(t hcl.Traversal) (string, bool) {
	attrs := []string{t.RootName()}
	for _, step := range t[1:] {
		a, ok := step.(hcl.TraverseAttr)
		if !ok {
			break
		}
		attrs = append(attrs, a.Name)
	}
	need := 0
	switch root := attrs[0]; {
	case root == "local" || root == "var":
		need = 2
	case root == "data":
		need = 3
	case strings.HasPrefix(root, "google_"):
		need = 2
	default:
		return "", false
	}
	if len(attrs) < need {
		return strings.Join(attrs, "."), true
	}
	return strings.Join(attrs[:need], "."), true
}

// EachValueAttrs returns the attributes a resource reads as each.value.<attr>, split into
// those read unguarded and those read inside try() (optional in the spec).
func EachValueAttrs(b *hclsyntax.Block) (required, optional map[string]bool) {
	required, optional = map[string]bool{}, map[string]bool{}
	guarded := map[hcl.Range]bool{}
	_ = hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
		if call, ok := n.(*hclsyntax.FunctionCallExpr); ok && call.Name == "try" {
			for _, arg := range call.Args {
				for _, t := range arg.Variables() {
					guarded[t.SourceRange()] = true
				}
			}
		}
		return nil
	})
	_ = hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
		st, ok := n.(*hclsyntax.ScopeTraversalExpr)
		if !ok || len(st.Traversal) < 3 || st.Traversal.RootName() != "each" {
			return nil
		}
		if a, ok := st.Traversal[1].(hcl.TraverseAttr); !ok || a.Name != "value" {
			return nil
		}
		attr, ok := st.Traversal[2].(hcl.TraverseAttr)
		if !ok {
			return nil
		}
		if guarded[st.Traversal.SourceRange()] {
			optional[attr.Name] = true
		} else {
			required[attr.Name] = true
		}
		return nil
	})
	return required, optional
}

// ForEachLocal is the local a resource's for_each is, when it is exactly local.<name>.
func ForEachLocal(b *hclsyntax.Block) (string, bool) {
	a, ok := b.Body.Attributes["for_each"]
	if !ok {
		return "", false
	}
	st, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(st.Traversal) != 2 || st.Traversal.RootName() != "local" {
		return "", false
	}
	attr, ok := st.Traversal[1].(hcl.TraverseAttr)
	return attr.Name, ok
}
