package rules_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"waooaw.dev/governance/shared/rules"
)

// hundredRules is a first-match table whose only matching row is the last,
// so every evaluation walks and traces all 100 rules (two conditions each).
func hundredRules(tb testing.TB) *rules.Set {
	var b strings.Builder
	b.WriteString("table: hundred\nhit_policy: first\nfacts: {kind: string, n: number, tags: strings}\noutputs: {row: number}\nrules:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  - id: R%03d\n    when:\n      all:\n        - {fact: kind, op: \"==\", value: k%d}\n        - {fact: n, op: \">=\", value: %d}\n    then: {row: %d}\n", i, i, i, i)
	}
	s, err := rules.Load(fstest.MapFS{"hundred.yaml": {Data: []byte(b.String())}})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestHundredRuleTableFiresLastRow(t *testing.T) {
	res, err := hundredRules(t).Evaluate("hundred", map[string]any{"kind": "k99", "n": 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Trace.Rules) != 100 || res.Trace.Fired[0] != "R099" || res.Matches[0].Then["row"] != 99.0 {
		t.Fatalf("rules traced %d, fired %v", len(res.Trace.Rules), res.Trace.Fired)
	}
}

func BenchmarkEvaluate100Rules(b *testing.B) {
	s := hundredRules(b)
	facts := map[string]any{"kind": "k99", "n": 100, "tags": []string{"a"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Evaluate("hundred", facts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApprovalTimeout(b *testing.B) {
	s := load(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.ApprovalTimeout("deployment"); err != nil {
			b.Fatal(err)
		}
	}
}
