package funczip

import (
	"errors"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/infraspec"
)

// forbidden names the packages a deployed function must never link, and why. A function's
// build graph is what Cloud Functions compiles and what its zip vendors; test support pulled
// into it costs cold-start size at best and, at worst, a gcloud launcher in production.
//
//   - testing, testing/... and net/http/httptest exist only for tests.
//   - Anything under waooaw.dev/governance/infra/: the local stand-in for GCP (the emulator
//     launcher and provisioning, the infrastructure.yaml reader, the dev token issuer, the
//     Workflows emulator) is never deployed.
//   - Any package named emulators, wherever it lives: the gcloud emulator launcher.
//   - Our own test-support packages, named for what they support plus "test" (policytest).
//   - Our own packages that import os/exec: a function never starts a process, so the only
//     reason would be a helper that runs gcloud. os/exec itself stays allowed, because Google's
//     credential libraries (executable-sourced external accounts, certificate providers) and
//     OPA link it and are not ours to change.
func forbidden(pkg string, imports []string) string {
	const ours = "waooaw.dev/governance/"
	switch {
	case pkg == "testing" || strings.HasPrefix(pkg, "testing/") || pkg == "net/http/httptest":
		return "test-only standard library package"
	case strings.HasPrefix(pkg, ours+"infra/"):
		return "infra/ is the local stand-in for GCP, never deployed"
	case pkg == "emulators" || strings.HasSuffix(pkg, "/emulators") || strings.Contains(pkg, "/emulators/"):
		return "emulator launcher"
	case strings.HasPrefix(pkg, ours) && strings.HasSuffix(path.Base(pkg), "test"):
		return "test-support package"
	}
	if strings.HasPrefix(pkg, ours) {
		for _, imp := range imports {
			if imp == "os/exec" {
				return "our package imports os/exec (process launching has no place in a function)"
			}
		}
	}
	return ""
}

func TestForbiddenRules(t *testing.T) {
	cases := []struct {
		pkg     string
		imports []string
		bad     bool
	}{
		{"testing", nil, true},
		{"testing/fstest", nil, true},
		{"net/http/httptest", nil, true},
		{"internal/synctest", nil, false}, // the runtime's, linked by every binary
		{"waooaw.dev/governance/infra/local/emulators", nil, true},
		{"waooaw.dev/governance/infra/local/devauth", nil, true},
		{"waooaw.dev/governance/shared/emulators", nil, true},
		{"example.com/anything/emulators/pubsub", nil, true},
		{"waooaw.dev/governance/shared/policy/policytest", nil, true},
		{"waooaw.dev/governance/shared/policy", []string{"context", "sync"}, false},
		{"waooaw.dev/governance/shared/runner", []string{"os/exec"}, true},
		{"golang.org/x/oauth2/google/externalaccount", []string{"os/exec"}, false},
		{"os/exec", nil, false},
	}
	for _, c := range cases {
		if got := forbidden(c.pkg, c.imports) != ""; got != c.bad {
			t.Errorf("forbidden(%s, %v) = %v, want %v", c.pkg, c.imports, got, c.bad)
		}
	}
}

// TestFunctionsLinkNoTestSupport lists every function (a folder of functions/ with a go.mod)
// and fails when the build graph of its packages, cmd/ included and tests excluded, holds a
// forbidden package.
func TestFunctionsLinkNoTestSupport(t *testing.T) {
	root, err := infraspec.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := Functions(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatalf("no function with a go.mod under %s", filepath.Join(root, "functions"))
	}
	for _, dir := range dirs {
		if !HasSource(dir) {
			t.Logf("%s: no Go source yet, nothing links", dir) // as make package passes it by
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps ./... in %s: %v\n%s", dir, err, stderr(err))
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 10 {
				t.Fatalf("go list -deps listed %d packages, a function links more: %q", len(lines), lines)
			}
			for _, l := range lines {
				f := strings.Fields(l)
				if why := forbidden(f[0], f[1:]); why != "" {
					t.Errorf("%s links %s: %s (see `go list -deps` in %s)", filepath.Base(dir), f[0], why, dir)
				}
			}
		})
	}
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
