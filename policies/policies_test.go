package policies_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"waooaw.dev/governance/policies"
)

// minCoverage is the share of policy lines the Rego tests must cover.
const minCoverage = 90.0

func modules(t *testing.T) (all, policy map[string]*ast.Module) {
	t.Helper()
	all, policy = map[string]*ast.Module{}, map[string]*ast.Module{}
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		src, err := fs.ReadFile(policies.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		all[name] = m
		if !strings.HasSuffix(name, "_test.rego") {
			policy[name] = m
		}
	}
	return all, policy
}

// testData is data/platform.json overlaid with testdata/limits.json, whose
// limits differ from the rules tables' on purpose: the tests prove the
// policies read their numbers from data.
func testData(t *testing.T) map[string]any {
	t.Helper()
	var base, limits map[string]any
	for file, into := range map[string]*map[string]any{policies.DataFile: &base} {
		b, err := fs.ReadFile(policies.FS, file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	b, err := readTestdata("testdata/limits.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &limits); err != nil {
		t.Fatal(err)
	}
	maps.Copy(base, limits)
	return map[string]any{"platform": base}
}

func TestRegoUnitTests(t *testing.T) {
	all, policy := modules(t)
	cov := cover.New()
	ctx := context.Background()
	ch, err := tester.NewRunner().
		SetStore(inmem.NewFromObject(testData(t))).
		SetModules(all).
		SetCoverageQueryTracer(cov).
		SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).
		RunTests(ctx, nil)
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	ran := map[string]int{}
	for r := range ch {
		ran[r.Package]++
		if r.Error != nil || r.Fail {
			t.Errorf("%s.%s (%s): fail=%v err=%v", r.Package, r.Name, r.Location, r.Fail, r.Error)
		}
	}
	if len(ran) == 0 {
		t.Fatal("no Rego test ran")
	}
	for _, b := range append([]string{"lib"}, policies.Bundles...) {
		if ran["data.waooaw."+b+"_test"] == 0 {
			t.Errorf("bundle %s has no Rego tests", b)
		}
	}
	// The report also counts test files; coverage is computed over policy files only.
	rep := cov.Report(policy)
	covered, total := 0, 0
	for _, f := range sortedKeys(policy) {
		fr, ok := rep.Files[f]
		if !ok {
			t.Errorf("%s: no coverage recorded", f)
			continue
		}
		covered += fr.CoveredLines
		total += fr.CoveredLines + fr.NotCoveredLines
		t.Logf("coverage %-18s %3d/%3d lines, not covered: %v", f, fr.CoveredLines, fr.CoveredLines+fr.NotCoveredLines, fr.NotCovered)
	}
	if total == 0 {
		t.Fatal("coverage saw no policy lines")
	}
	pct := 100 * float64(covered) / float64(total)
	t.Logf("Rego tests per package: %v; policy line coverage %.2f%% (%d/%d)", ran, pct, covered, total)
	if pct < minCoverage {
		t.Fatalf("policy coverage %.2f%% < %.0f%%", pct, minCoverage)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The numbers of the domain live in rules/ and data documents, never in Rego.
// Zero is allowed: it is a count or a neutral default.
func TestPoliciesHoldNoNumberLiterals(t *testing.T) {
	_, policy := modules(t)
	for name, m := range policy {
		ast.WalkTerms(m, func(term *ast.Term) bool {
			if n, ok := term.Value.(ast.Number); ok && n.String() != "0" {
				t.Errorf("%s:%d: number literal %v; put it in a data document", name, term.Location.Row, term)
			}
			return false
		})
	}
}

func TestEveryBundleHasDecisionAndAllow(t *testing.T) {
	_, policy := modules(t)
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(policy); c.Failed() {
		t.Fatalf("compile: %v", c.Errors)
	}
	for _, b := range policies.Bundles {
		for _, rule := range []string{"decision", "allow", "grants", "denials", "obligations", "fallback"} {
			ref := ast.MustParseRef("data.waooaw." + b + "." + rule)
			if len(c.GetRules(ref)) == 0 {
				t.Errorf("bundle %s has no rule %s", b, rule)
			}
		}
	}
}
