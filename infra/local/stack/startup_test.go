package stack

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/infraspec"
)

const startupPkg = "waooaw.dev/governance/shared/startup"

// Imports a function's package may not have: registration, logging and exits all go
// through shared/startup, so that every function starts, fails and stops the same way.
var forbiddenInFunctions = map[string]string{
	"github.com/GoogleCloudPlatform/functions-framework-go/functions": "register through startup.HTTP or startup.CloudEvent",
	"log": "log through the *slog.Logger that startup gives (Cloud Logging JSON)",
}

// TestEveryFunctionStartsThroughStartup lists the functions in functions/ and fails on one
// that does not start through shared/startup: its package registers in init() with
// startup.HTTP or startup.CloudEvent under the entry point infrastructure.yaml names, never
// exits or logs on its own, and its cmd/main.go is the one call startup.Main.
func TestEveryFunctionStartsThroughStartup(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := infraspec.Load(filepath.Join(root, "infra", "infrastructure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	entry := map[string]string{}
	for _, f := range spec.Functions {
		entry[filepath.Clean(f.Source)] = f.EntryPoint
	}
	mods, err := filepath.Glob(filepath.Join(root, "functions", "*", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 3 {
		t.Fatalf("found %d functions under %s/functions; the listing is broken", len(mods), root)
	}
	for _, mod := range mods {
		dir := filepath.Dir(mod)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			want, ok := entry[filepath.Join("functions", name)]
			if !ok {
				t.Fatalf("infrastructure.yaml declares no function with source functions/%s", name)
			}
			checkFunctionPackage(t, dir, want)
			checkFunctionMain(t, filepath.Join(dir, "cmd", "main.go"))
		})
	}
}

func checkFunctionPackage(t *testing.T, dir, entryPoint string) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{} // constant name -> string value
	var registered []string       // first arguments of startup.HTTP / startup.CloudEvent in init
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		startupName := ""
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if why, bad := forbiddenInFunctions[p]; bad {
				t.Errorf("%s imports %s: %s", fset.Position(imp.Pos()), p, why)
			}
			if p == startupPkg {
				startupName = "startup"
				if imp.Name != nil {
					startupName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if i < len(n.Values) {
						if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[id.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "os" && sel.Sel.Name == "Exit" {
						t.Errorf("%s: os.Exit in a function's package; return a startup.Permanent error instead", fset.Position(n.Pos()))
					}
				}
			}
			return true
		})
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "init" || fn.Recv != nil || startupName == "" {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == startupName && (sel.Sel.Name == "HTTP" || sel.Sel.Name == "CloudEvent") && len(call.Args) > 0 {
					registered = append(registered, exprString(call.Args[0], consts))
				}
				return true
			})
		}
	}
	if !slices.Equal(registered, []string{entryPoint}) {
		t.Errorf("init registers %q through shared/startup; want exactly [%s], the entry point infrastructure.yaml names", registered, entryPoint)
	}
}

// exprString resolves a string literal or a constant of the package.
func exprString(e ast.Expr, consts map[string]string) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		s, _ := strconv.Unquote(e.Value)
		return s
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return v
		}
		return "<" + e.Name + ">"
	}
	return "<expression>"
}

func checkFunctionMain(t *testing.T, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("every function has a cmd/main.go that `make run` serves: %v", err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "main" {
			continue
		}
		if len(fn.Body.List) == 1 {
			if es, ok := fn.Body.List[0].(*ast.ExprStmt); ok {
				if call, ok := es.X.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Main" {
						if x, ok := sel.X.(*ast.Ident); ok && x.Name == "startup" {
							return
						}
					}
				}
			}
		}
		t.Errorf("%s: main must be the one call startup.Main(<entry point>)", fset.Position(fn.Pos()))
		return
	}
	t.Errorf("%s has no func main", path)
}
