package stack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/infraspec"
)

// TestBuildFunctionsSkipsUnwritten builds a throwaway workspace of two functions, one
// without a cmd yet: the stack must build the first and name the second as skipped.
func TestBuildFunctionsSkipsUnwritten(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.work":                     "go 1.26\n\nuse ./functions/ready\n",
		"functions/ready/go.mod":      "module example.dev/ready\n\ngo 1.26\n",
		"functions/ready/cmd/m.go":    "package main\n\nfunc main() {}\n",
		"functions/pending/go.mod":    "module example.dev/pending\n\ngo 1.26\n",
		"functions/pending/cmd/.keep": "",
	}
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := &infraspec.Spec{Functions: []infraspec.Function{
		{Name: "ready", Source: "functions/ready", EntryPoint: "Ready"},
		{Name: "pending", Source: "functions/pending", EntryPoint: "Pending"},
	}}
	var out bytes.Buffer
	r := &run{o: Options{Root: root, StateDir: filepath.Join(root, ".local"), Out: &out}}
	fns, err := r.buildFunctions(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 1 || fns[0].spec.Name != "ready" {
		t.Fatalf("built %+v, want only ready", fns)
	}
	if info, err := os.Stat(fns[0].bin); err != nil || info.Mode()&0o111 == 0 {
		t.Errorf("binary %s: %v", fns[0].bin, err)
	}
	if !strings.Contains(out.String(), "skipped") || !strings.Contains(out.String(), "pending") {
		t.Errorf("output does not name the skipped function: %q", out.String())
	}
}

func TestMergeEnv(t *testing.T) {
	cases := []struct {
		name string
		base []string
		set  map[string]string
		want []string
	}{
		{"adds", []string{"A=1"}, map[string]string{"B": "2"}, []string{"A=1", "B=2"}},
		{"replaces, never duplicates", []string{"PORT=1", "A=1"}, map[string]string{"PORT": "9"}, []string{"A=1", "PORT=9"}},
		{"keeps values with =", []string{"X=a=b"}, nil, []string{"X=a=b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mergeEnv(c.base, c.set)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("mergeEnv = %v, want %v", got, c.want)
			}
		})
	}
}
