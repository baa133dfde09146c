// Package planeval evaluates OPA's intermediate representation: the plan
// `opa build -t plan` produces (https://www.openpolicyagent.org/docs/ir),
// which OPA's Wasm compiler also starts from. OPA plans the Rego; this
// package runs the plan on OPA's own values (ast.Value) and OPA's own
// built-in functions, without the tree-walking evaluator's per-query
// bindings, unification and caches. Statements follow the semantics the
// Wasm compiler gives them; the tests compare every result with OPA's
// evaluator.
package planeval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Plan plans entrypoints ("waooaw/rbac/denials": slash-separated paths
// under data) of the Rego v1 modules (file name to source) with OPA's
// planner.
func Plan(ctx context.Context, modules map[string][]byte, entrypoints ...string) (*ir.Policy, error) {
	b := &bundle.Bundle{Data: map[string]any{}}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		parsed, err := ast.ParseModuleWithOpts(name, string(modules[name]), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("planeval: parse: %w", err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: modules[name], Parsed: parsed})
	}
	c := compile.New().
		WithTarget(compile.TargetPlan).
		WithRegoVersion(ast.RegoV1).
		WithBundle(b).
		WithEntrypoints(entrypoints...).
		WithPruneUnused(true)
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("planeval: plan %v: %w", entrypoints, err)
	}
	out := c.Bundle()
	if out == nil || len(out.PlanModules) != 1 {
		return nil, fmt.Errorf("planeval: plan %v: no plan produced", entrypoints)
	}
	var p ir.Policy
	dec := json.NewDecoder(bytes.NewReader(out.PlanModules[0].Raw))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("planeval: decode plan: %w", err)
	}
	return &p, nil
}

// PlanQuery plans query against compiler's modules (compiled already) and
// names the plan name. Its result is an object of the query's variables.
//
// The planner is reached through the rego package's hook for evaluation
// targets, which hands a target the plan in memory: no second compilation
// of the modules and no round trip through the plan's JSON, which made
// Plan several times slower at start.
func PlanQuery(ctx context.Context, compiler *ast.Compiler, name string, query ast.Body) (*ir.Policy, error) {
	registerTarget()
	slot := &planSlot{}
	_, err := rego.New(
		rego.Compiler(compiler),
		rego.ParsedQuery(query),
		rego.Target(planTarget),
	).PrepareForEval(context.WithValue(ctx, planSlotKey{}, slot))
	if err != nil {
		return nil, fmt.Errorf("planeval: plan %s: %w", name, err)
	}
	if slot.policy == nil || slot.policy.Plans == nil || len(slot.policy.Plans.Plans) != 1 {
		return nil, fmt.Errorf("planeval: plan %s: the planner returned no plan", name)
	}
	slot.policy.Plans.Plans[0].Name = name
	return slot.policy, nil
}

// planTarget is the evaluation target PlanQuery registers with the rego
// package; it only receives plans.
const planTarget = "waooaw-planeval"

var registerTarget = sync.OnceFunc(func() { rego.RegisterPlugin(planTarget, planHook{}) })

type planSlot struct{ policy *ir.Policy }

type planSlotKey struct{}

type planHook struct{}

func (planHook) IsTarget(t string) bool { return t == planTarget }

func (planHook) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	slot, ok := ctx.Value(planSlotKey{}).(*planSlot)
	if !ok {
		return nil, errors.New("planeval: target " + planTarget + " only plans, for PlanQuery")
	}
	slot.policy = p
	return planHook{}, nil
}

func (planHook) Eval(context.Context, *rego.EvalContext, ast.Value) (ast.Value, error) {
	return nil, errors.New("planeval: evaluate a plan with Program.Eval")
}
