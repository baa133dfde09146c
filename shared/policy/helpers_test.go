package policy_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"waooaw.dev/governance/policies"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/rules"
)

func mustRules(t testing.TB) *rules.Set {
	t.Helper()
	s, err := rules.Load(tables.FS)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func regoModules(t testing.TB) map[string]string {
	t.Helper()
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.rego") {
			continue
		}
		b, err := fs.ReadFile(policies.FS, n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(b)
	}
	return out
}

func storeOf(platform map[string]any) storage.Store {
	return inmem.NewFromObject(map[string]any{"platform": platform})
}
