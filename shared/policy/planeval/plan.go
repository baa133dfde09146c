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
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
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
		WithEntrypoints(entrypoints...)
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
