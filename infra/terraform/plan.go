package terraform

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"gopkg.in/yaml.v3"
)

// Plan is what the module would create, worked out without a provider: the locals evaluated
// over the real files, and every resource's instances with the attributes that depend only on
// the spec, variables and other resources' names. Attributes only the provider knows (ids,
// URLs) are stand-ins: a service account's email is <account_id>@<project>.iam.gserviceaccount.com,
// a function's URI https://<name>.run.test. It is enough to read who is granted what.
type Plan struct {
	Project string
	// Instances by resource address (type.name), then by instance key ("" without for_each).
	Instances map[string]map[string]cty.Value
	locals    map[string]cty.Value
}

// PlanOptions are the inputs of a plan.
type PlanOptions struct {
	Project string // var.project_id
	// Files replaces the content of files the HCL reads, by absolute path (a test's variant
	// of the spec).
	Files map[string][]byte
}

// Plan evaluates the module. A local or attribute that cannot be worked out is left unknown
// rather than failing the plan; the checks reading the plan refuse what they need unknown.
func (m *Module) Plan(o PlanOptions) (*Plan, error) {
	p := &Plan{Project: o.Project, Instances: map[string]map[string]cty.Value{}, locals: map[string]cty.Value{}}
	funcs := m.functions(o.Files)
	resources := m.Resources("")
	// Each pass evaluates what the previous one made known; the module's references are
	// acyclic, so as many passes as there are locals and resources reach the fixed point.
	passes := len(m.Locals()) + len(resources) + 1
	for range passes {
		before := p.snapshot()
		ctx := p.evalContext(m, funcs, o.Project)
		for name, expr := range m.Locals() {
			if v, diags := expr.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
				p.locals[name] = v
			}
		}
		ctx = p.evalContext(m, funcs, o.Project)
		for _, b := range resources {
			p.Instances[Address(b)] = instances(b, ctx)
		}
		if p.snapshot() == before {
			return p, nil
		}
	}
	return nil, fmt.Errorf("tfcheck: plan did not settle after %d passes", passes)
}

// Local is the evaluated local, unknown when it could not be worked out.
func (p *Plan) Local(name string) cty.Value {
	if v, ok := p.locals[name]; ok {
		return v
	}
	return cty.DynamicVal
}

func (p *Plan) snapshot() string {
	var b strings.Builder
	for _, k := range sortedKeys(p.locals) {
		fmt.Fprintf(&b, "%s=%#v;", k, p.locals[k])
	}
	for _, addr := range sortedKeys(p.Instances) {
		for _, k := range sortedKeys(p.Instances[addr]) {
			fmt.Fprintf(&b, "%s[%s]=%#v;", addr, k, p.Instances[addr][k])
		}
	}
	return b.String()
}

func (p *Plan) evalContext(m *Module, funcs map[string]function.Function, project string) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"path":  cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.Dir)}),
		"local": cty.ObjectVal(p.locals),
		"var": cty.ObjectVal(map[string]cty.Value{
			"project_id": cty.StringVal(project), "billing_account": cty.StringVal("000000-000000-000000"),
			"region": cty.NullVal(cty.String), "dist_dir": cty.NullVal(cty.String),
		}),
		"data": cty.ObjectVal(map[string]cty.Value{"google_project": cty.ObjectVal(map[string]cty.Value{
			"this": cty.ObjectVal(map[string]cty.Value{"number": cty.StringVal("123456789012"), "project_id": cty.StringVal(project)}),
		})}),
	}
	byType := map[string]map[string]cty.Value{}
	for _, b := range m.Resources("") {
		insts, ok := p.Instances[Address(b)]
		if byType[b.Labels[0]] == nil {
			byType[b.Labels[0]] = map[string]cty.Value{}
		}
		switch {
		case !ok:
			byType[b.Labels[0]][b.Labels[1]] = cty.DynamicVal
		case b.Body.Attributes["for_each"] != nil:
			byType[b.Labels[0]][b.Labels[1]] = cty.ObjectVal(insts)
		default:
			byType[b.Labels[0]][b.Labels[1]] = insts[""]
		}
	}
	for typ, named := range byType {
		vars[typ] = cty.ObjectVal(named)
	}
	return &hcl.EvalContext{Variables: vars, Functions: funcs}
}

// instances evaluates a resource's for_each and, for each instance, its body.
func instances(b *hclsyntax.Block, ctx *hcl.EvalContext) map[string]cty.Value {
	out := map[string]cty.Value{}
	fe, ok := b.Body.Attributes["for_each"]
	if !ok {
		out[""] = withStandIns(b.Labels[0], evalBody(b.Body, ctx))
		return out
	}
	coll, diags := fe.Expr.Value(ctx)
	if diags.HasErrors() || !coll.IsWhollyKnown() || coll.IsNull() || !coll.CanIterateElements() {
		return out
	}
	for it := coll.ElementIterator(); it.Next(); {
		k, v := it.Element()
		if coll.Type().IsSetType() {
			k = v
		}
		if k.Type() != cty.String {
			continue
		}
		child := ctx.NewChild()
		child.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
		out[k.AsString()] = withStandIns(b.Labels[0], evalBody(b.Body, child))
	}
	return out
}

// evalBody evaluates a block body to an object: each attribute (unknown when it fails), each
// nested block type as a tuple of its blocks, dynamic blocks expanded. Meta-arguments and
// lifecycle are left out.
func evalBody(body *hclsyntax.Body, ctx *hcl.EvalContext) cty.Value {
	attrs := map[string]cty.Value{}
	for name, a := range body.Attributes {
		switch name {
		case "for_each", "depends_on", "count", "provider":
			continue
		}
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			v = cty.DynamicVal
		}
		attrs[name] = v
	}
	blocks := map[string][]cty.Value{}
	for _, nb := range body.Blocks {
		switch nb.Type {
		case "lifecycle":
		case "dynamic":
			if len(nb.Labels) != 1 {
				continue
			}
			blocks[nb.Labels[0]] = append(blocks[nb.Labels[0]], expandDynamic(nb, ctx)...)
		default:
			blocks[nb.Type] = append(blocks[nb.Type], evalBody(nb.Body, ctx))
		}
	}
	for typ, bs := range blocks {
		attrs[typ] = cty.TupleVal(bs)
		if len(bs) == 0 {
			attrs[typ] = cty.EmptyTupleVal
		}
	}
	return cty.ObjectVal(attrs)
}

func expandDynamic(b *hclsyntax.Block, ctx *hcl.EvalContext) []cty.Value {
	iter := b.Labels[0]
	var content *hclsyntax.Block
	for _, nb := range b.Body.Blocks {
		if nb.Type == "content" {
			content = nb
		}
	}
	fe, ok := b.Body.Attributes["for_each"]
	if !ok || content == nil {
		return nil
	}
	coll, diags := fe.Expr.Value(ctx)
	if diags.HasErrors() || !coll.IsWhollyKnown() || !coll.CanIterateElements() {
		return []cty.Value{cty.DynamicVal}
	}
	var out []cty.Value
	for it := coll.ElementIterator(); it.Next(); {
		k, v := it.Element()
		child := ctx.NewChild()
		child.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
		out = append(out, evalBody(content.Body, child))
	}
	return out
}

// withStandIns adds the attributes the provider would compute that the module reads.
func withStandIns(typ string, v cty.Value) cty.Value {
	attrs := v.AsValueMap()
	if attrs == nil {
		attrs = map[string]cty.Value{}
	}
	str := func(name string) (string, bool) {
		a, ok := attrs[name]
		if !ok || !a.IsKnown() || a.IsNull() || a.Type() != cty.String {
			return "", false
		}
		return a.AsString(), true
	}
	switch typ {
	case "google_service_account":
		if id, ok := str("account_id"); ok {
			attrs["email"] = cty.StringVal(id + "@" + standInProject + ".iam.gserviceaccount.com")
			attrs["name"] = cty.StringVal("projects/" + standInProject + "/serviceAccounts/" + id + "@" + standInProject + ".iam.gserviceaccount.com")
		} else {
			attrs["email"], attrs["name"] = cty.UnknownVal(cty.String), cty.UnknownVal(cty.String)
		}
	case "google_secret_manager_secret":
		if id, ok := str("secret_id"); ok {
			attrs["id"] = cty.StringVal("projects/" + standInProject + "/secrets/" + id)
		}
	case "google_cloudfunctions2_function":
		if name, ok := str("name"); ok {
			sc := map[string]cty.Value{}
			if s, ok := attrs["service_config"]; ok && s.Type().IsTupleType() && s.LengthInt() == 1 {
				sc = s.Index(cty.NumberIntVal(0)).AsValueMap()
			}
			sc["uri"] = cty.StringVal("https://" + name + ".run.test")
			attrs["service_config"] = cty.TupleVal([]cty.Value{cty.ObjectVal(sc)})
		}
	}
	if _, ok := attrs["id"]; !ok {
		if name, ok := str("name"); ok {
			attrs["id"] = cty.StringVal(name)
		} else {
			attrs["id"] = cty.UnknownVal(cty.String)
		}
	}
	return cty.ObjectVal(attrs)
}

// standInProject is the project in stand-in service account emails; the project id proper
// is the plan's.
const standInProject = "project"

// ServiceAccountEmail is the stand-in email of the account with this account_id.
func ServiceAccountEmail(accountID string) string {
	return accountID + "@" + standInProject + ".iam.gserviceaccount.com"
}

// functions are the Terraform functions the module calls, over its real files (or the
// replacements given).
func (m *Module) functions(replace map[string][]byte) map[string]function.Function {
	read := func(path string) ([]byte, error) {
		abs := filepath.Clean(path)
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(m.Dir, abs)
		}
		if b, ok := replace[abs]; ok {
			return b, nil
		}
		return os.ReadFile(abs)
	}
	fileFunc := func(transform func([]byte) string) function.Function {
		return function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				b, err := read(args[0].AsString())
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(transform(b)), nil
			},
		})
	}
	return map[string]function.Function{
		"file":    fileFunc(func(b []byte) string { return string(b) }),
		"filemd5": fileFunc(func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }),
		"basename": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.StringVal(filepath.Base(args[0].AsString())), nil
			},
		}),
		"yamldecode": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "src", Type: cty.String}},
			Type:   function.StaticReturnType(cty.DynamicPseudoType),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				var doc any
				if err := yaml.Unmarshal([]byte(args[0].AsString()), &doc); err != nil {
					return cty.NilVal, fmt.Errorf("yamldecode: %w", err)
				}
				return toCty(doc)
			},
		}),
		"one": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
			Type:   function.StaticReturnType(cty.DynamicPseudoType),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				switch n := args[0].LengthInt(); n {
				case 0:
					return cty.NullVal(cty.DynamicPseudoType), nil
				case 1:
					return args[0].Index(cty.NumberIntVal(0)), nil
				default:
					return cty.NilVal, fmt.Errorf("one: %d elements", n)
				}
			},
		}),
		"coalesce":   stdlib.CoalesceFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"distinct":   stdlib.DistinctFunc,
		"flatten":    stdlib.FlattenFunc,
		"keys":       stdlib.KeysFunc,
		"values":     stdlib.ValuesFunc,
		"merge":      stdlib.MergeFunc,
		"min":        stdlib.MinFunc,
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"tostring":   stdlib.MakeToFunc(cty.String),
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"trimsuffix": stdlib.TrimSuffixFunc,
		"try":        tryfunc.TryFunc,
	}
}

// toCty converts a decoded YAML document as Terraform's yamldecode does: mappings become
// objects, sequences tuples.
func toCty(v any) (cty.Value, error) {
	switch x := v.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType), nil
	case string:
		return cty.StringVal(x), nil
	case bool:
		return cty.BoolVal(x), nil
	case int:
		return cty.NumberIntVal(int64(x)), nil
	case float64:
		return cty.NumberFloatVal(x), nil
	case []any:
		elems := make([]cty.Value, len(x))
		for i, e := range x {
			c, err := toCty(e)
			if err != nil {
				return cty.NilVal, err
			}
			elems[i] = c
		}
		if len(elems) == 0 {
			return cty.EmptyTupleVal, nil
		}
		return cty.TupleVal(elems), nil
	case map[string]any:
		attrs := map[string]cty.Value{}
		for k, e := range x {
			c, err := toCty(e)
			if err != nil {
				return cty.NilVal, err
			}
			attrs[k] = c
		}
		if len(attrs) == 0 {
			return cty.EmptyObjectVal, nil
		}
		return cty.ObjectVal(attrs), nil
	default:
		return cty.NilVal, fmt.Errorf("yamldecode: unsupported %T", v)
	}
}

// Grant is one IAM binding the plan makes: member holds role on resource, where the
// condition holds when there is one.
type Grant struct {
	Resource string // "project", "function:<name>", "topic:<name>", "secret:<id>", ...
	Role     string
	Member   string
	// Condition is the binding's CEL expression, "" for an unconditional binding.
	Condition string
}

// grantResources maps an IAM member resource type to how its target is named.
var grantResources = map[string]func(v cty.Value) string{
	"google_project_iam_member": func(cty.Value) string { return "project" },
	// Gen 2 functions are Cloud Run services named as the function.
	"google_cloud_run_service_iam_member":   func(v cty.Value) string { return "function:" + attrString(v, "service") },
	"google_pubsub_topic_iam_member":        func(v cty.Value) string { return "topic:" + attrString(v, "topic") },
	"google_pubsub_subscription_iam_member": func(v cty.Value) string { return "subscription:" + attrString(v, "subscription") },
	"google_service_account_iam_member":     func(v cty.Value) string { return "service_account:" + attrString(v, "service_account_id") },
	// secret_id is the secret's id, projects/<p>/secrets/<secret>.
	"google_secret_manager_secret_iam_member": func(v cty.Value) string {
		id := attrString(v, "secret_id")
		return "secret:" + id[strings.LastIndex(id, "/")+1:]
	},
}

// Grants lists every IAM binding of the plan; an instance whose role, member or target is not
// known is an error, since a check could not tell what it grants.
func (p *Plan) Grants() ([]Grant, error) {
	var out []Grant
	for _, addr := range sortedKeys(p.Instances) {
		target, ok := grantResources[strings.SplitN(addr, ".", 2)[0]]
		if !ok {
			continue
		}
		for _, k := range sortedKeys(p.Instances[addr]) {
			v := p.Instances[addr][k]
			g := Grant{Resource: target(v), Role: attrString(v, "role"), Member: attrString(v, "member")}
			if g.Role == "" || g.Member == "" || strings.HasSuffix(g.Resource, ":") {
				return nil, fmt.Errorf("tfcheck: %s[%q]: role, member or target not known without a provider", addr, k)
			}
			cond, ok := condition(v)
			if !ok {
				return nil, fmt.Errorf("tfcheck: %s[%q]: condition not known without a provider", addr, k)
			}
			g.Condition = cond
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return fmt.Sprint(out[i]) < fmt.Sprint(out[j])
	})
	return out, nil
}

// condition is the expression of an IAM member's condition block ("" without one); ok is
// false when the block is there but its expression is not known.
func condition(v cty.Value) (string, bool) {
	if !v.Type().IsObjectType() || !v.Type().HasAttribute("condition") {
		return "", true
	}
	c := v.GetAttr("condition")
	if !c.IsKnown() || c.IsNull() || !c.Type().IsTupleType() {
		return "", false
	}
	switch c.LengthInt() {
	case 0:
		return "", true
	case 1:
		e := attrString(c.Index(cty.NumberIntVal(0)), "expression")
		return e, e != ""
	default:
		return "", false
	}
}

// attrString is v's attribute name when it is a known string, "" otherwise.
func attrString(v cty.Value, name string) string {
	if !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() || !v.Type().HasAttribute(name) {
		return ""
	}
	a := v.GetAttr(name)
	if !a.IsKnown() || a.IsNull() || a.Type() != cty.String {
		return ""
	}
	return a.AsString()
}
