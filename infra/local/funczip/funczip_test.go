package funczip

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/infraspec"
)

// TestMakePackageBuildsAlone runs `make package` and builds each zip the way Cloud Functions
// would: unpacked in a folder outside the repository, no workspace, vendored modules only.
func TestMakePackageBuildsAlone(t *testing.T) {
	root, err := infraspec.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	if out, err := exec.Command("make", "-C", root, "--no-print-directory", "package", "DIST="+dist).CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	spec, _, err := infraspec.LoadRepo()
	if err != nil {
		t.Fatal(err)
	}
	// Every function of the spec is deployed, so every zip must build alone.
	for _, fn := range spec.Functions {
		name := fn.Name
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if strings.HasPrefix(dir, root+string(filepath.Separator)) {
				t.Fatalf("temporary folder %s is inside the repository", dir)
			}
			if out, err := exec.Command("unzip", "-q", filepath.Join(dist, name+".zip"), "-d", dir).CombinedOutput(); err != nil {
				t.Fatalf("unzip: %v\n%s", err, out)
			}
			for _, f := range []string{"go.mod", "go.sum", "vendor/modules.txt", "cmd/main.go"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("package lacks %s: %v", f, err)
				}
			}
			// -trimpath keeps the build cache independent of the temporary folder's name, so
			// repeated runs reuse compiled packages; it does not change what has to resolve.
			build := exec.Command("go", "build", "-trimpath", "-mod=vendor", "./...")
			build.Dir = dir
			// GOPROXY=off: a package that still needed the network would fail here.
			build.Env = append(goEnv(), "GOPROXY=off", "GOFLAGS=-mod=vendor")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("GOWORK=off go build -mod=vendor ./... in %s: %v\n%s", dir, err, out)
			}
		})
	}
}

// writeFiles creates files (relative path -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStage covers the rewrite of local replaces on a throwaway function, and the check that
// refuses a package Cloud Functions could not build.
func TestStage(t *testing.T) {
	lib := map[string]string{
		"lib/go.mod": "module example.dev/lib\n\ngo 1.26\n",
		"lib/lib.go": "package lib\n\nfunc Hello() string { return \"hi\" }\n",
	}
	fn := map[string]string{
		"functions/hello/go.mod":      "module example.dev/hello\n\ngo 1.26\n\nrequire example.dev/lib v0.0.0\n\nreplace example.dev/lib => ../../lib\n",
		"functions/hello/hello.go":    "package hello\n\nimport \"example.dev/lib\"\n\nvar Greeting = lib.Hello()\n",
		"functions/hello/vendor/x.go": "package stale // an old vendor folder must not be carried over\n",
	}
	// testlib is needed only by tests: of the function, and of lib.
	testlib := map[string]string{
		"testlib/go.mod":     "module example.dev/testlib\n\ngo 1.26\n",
		"testlib/testlib.go": "package testlib\n\nconst Fixture = \"f\"\n",
		"lib/lib_test.go":    "package lib_test\n\nimport (\n\t\"testing\"\n\n\t\"example.dev/testlib\"\n)\n\nfunc TestX(t *testing.T) { _ = testlib.Fixture }\n",
		"lib/testdata/x.txt": "x",
	}
	withTests := map[string]string{
		"functions/hello/go.mod":           "module example.dev/hello\n\ngo 1.26\n\nrequire (\n\texample.dev/lib v0.0.0\n\texample.dev/testlib v0.0.0\n)\n\nreplace (\n\texample.dev/lib => ../../lib\n\texample.dev/testlib => ../../testlib\n)\n",
		"functions/hello/hello.go":         "package hello\n\nimport \"example.dev/lib\"\n\nvar Greeting = lib.Hello()\n",
		"functions/hello/hello_test.go":    "package hello\n\nimport (\n\t\"testing\"\n\n\t\"example.dev/testlib\"\n)\n\nfunc TestHello(t *testing.T) { _ = testlib.Fixture }\n",
		"functions/hello/testdata/in.json": "{}",
	}
	// lacking: the code imports lib, the go.mod does not require it yet.
	lacking := map[string]string{
		"functions/hello/go.mod":   "module example.dev/hello\n\ngo 1.26\n\nreplace example.dev/lib => ../../lib\n",
		"functions/hello/hello.go": "package hello\n\nimport \"example.dev/lib\"\n\nvar Greeting = lib.Hello()\n",
	}
	const noFramework = "functions-framework-go/funcframework is not vendored"
	cases := []struct {
		name       string
		files      []map[string]string
		wantErr    string // "" = success
		wantTidied bool
		check      func(t *testing.T, work string)
	}{
		{
			name:    "local replace copied and rewritten, framework missing refused",
			files:   []map[string]string{lib, fn},
			wantErr: noFramework,
			check: func(t *testing.T, work string) {
				mod, err := readGoMod(context.Background(), work)
				if err != nil {
					t.Fatal(err)
				}
				if len(mod.Replace) != 1 || mod.Replace[0].New.Path != "./_deps/lib" {
					t.Errorf("replace = %+v, want example.dev/lib => ./_deps/lib", mod.Replace)
				}
				for _, f := range []string{"_deps/lib/go.mod", "vendor/example.dev/lib/lib.go"} {
					if _, err := os.Stat(filepath.Join(work, f)); err != nil {
						t.Errorf("missing %s: %v", f, err)
					}
				}
				if _, err := os.Stat(filepath.Join(work, "vendor/x.go")); err == nil {
					t.Error("stale vendor file copied into the package")
				}
			},
		},
		{
			name:    "replace target missing",
			files:   []map[string]string{fn},
			wantErr: "copy",
		},
		{
			name:    "tests, testdata and test-only modules left out",
			files:   []map[string]string{lib, testlib, withTests},
			wantErr: noFramework,
			check: func(t *testing.T, work string) {
				mod, err := readGoMod(context.Background(), work)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range mod.Require {
					if r.Path == "example.dev/testlib" {
						t.Errorf("go.mod still requires %s, which only tests import", r.Path)
					}
				}
				if len(mod.Replace) != 1 || mod.Replace[0].Old.Path != "example.dev/lib" {
					t.Errorf("replace = %+v, want only example.dev/lib", mod.Replace)
				}
				for _, f := range []string{"hello_test.go", "testdata", "_deps/testlib", "_deps/lib/lib_test.go", "_deps/lib/testdata"} {
					if _, err := os.Stat(filepath.Join(work, f)); err == nil {
						t.Errorf("package holds %s", f)
					}
				}
				if _, err := os.Stat(filepath.Join(work, "_deps/lib/lib.go")); err != nil {
					t.Errorf("package lacks lib's source: %v", err)
				}
			},
		},
		{
			name:       "requirement the go.mod lacked is added and reported",
			files:      []map[string]string{lib, lacking},
			wantErr:    noFramework,
			wantTidied: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			for _, f := range c.files {
				writeFiles(t, src, f)
			}
			work := filepath.Join(t.TempDir(), "hello")
			res, err := Stage(context.Background(), filepath.Join(src, "functions", "hello"), work)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Stage: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("Stage error = %v, want one containing %q", err, c.wantErr)
			}
			if err == nil || c.wantErr == noFramework { // staging got as far as tidying
				if res.Tidied != c.wantTidied {
					t.Errorf("Tidied = %v, want %v", res.Tidied, c.wantTidied)
				}
			}
			if c.check != nil {
				c.check(t, work)
			}
		})
	}
}
