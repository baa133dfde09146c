package rules_test

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"waooaw.dev/governance/rules"
)

var tableLine = regexp.MustCompile(`(?m)^table: ([a-z_]+)$`)

// Each file holds the table of its name, so a load error's file:line leads
// straight to the table. The tables' contents are tested in shared/rules.
func TestEachFileHoldsTheTableOfItsName(t *testing.T) {
	names, err := fs.Glob(rules.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 16 {
		t.Fatalf("embedded tables %v, want the sixteen of the platform", names)
	}
	for _, n := range names {
		src, err := fs.ReadFile(rules.FS, n)
		if err != nil {
			t.Fatal(err)
		}
		m := tableLine.FindSubmatch(src)
		if m == nil || string(m[1]) != strings.TrimSuffix(n, ".yaml") {
			t.Errorf("%s: table line %q, want %q", n, m, strings.TrimSuffix(n, ".yaml"))
		}
	}
}
