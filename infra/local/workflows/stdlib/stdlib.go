// Package stdlib implements the Workflows standard library functions that
// run to completion inside one step. Blocking calls that suspend an
// execution (sys.sleep, events.await_callback) are the engine's.
package stdlib

import (
	"net/http"
	"sort"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

// Ctx is what a function may ask of the running execution.
type Ctx interface {
	Now() time.Time
	Getenv(name string) (string, bool)
	NewCallback(method string) (url string, err error)
	Log(severity string, v any)
	HTTPClient() *http.Client
	// Token returns a bearer token for an http.* call's auth argument
	// (kind "OIDC" or "OAuth2"); "" sends none.
	Token(kind, audience string) (string, error)
}

// Fn is a standard library function over positional arguments; missing
// optional arguments arrive as absent (len(args) shorter).
type Fn func(c Ctx, args []any) (any, error)

// Func describes a function for deploy-time checks and named-argument calls.
type Func struct {
	Params   []string
	Required int
	Variadic bool
	Fn       Fn
	// Blocking functions are only valid in call steps and may suspend; the
	// engine implements them itself.
	Blocking bool
}

var registry = map[string]*Func{}

func reg(name string, required int, fn Fn, params ...string) {
	registry[name] = &Func{Params: params, Required: required, Fn: fn}
}

// Lookup finds a function by its dotted name.
func Lookup(name string) (*Func, bool) {
	f, ok := registry[name]
	return f, ok
}

// Names lists every function, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Signatures satisfies lang.Functions over the registry.
type Signatures struct{}

// Signature implements lang.Functions.
func (Signatures) Signature(name string) ([]string, int, bool, bool) {
	f, ok := registry[name]
	if !ok {
		return nil, 0, false, false
	}
	return f.Params, f.Required, f.Variadic, true
}

var _ lang.Functions = Signatures{}

func arg(a []any, i int) any {
	if i < len(a) {
		return a[i]
	}
	return nil
}

func has(a []any, i int) bool { return i < len(a) && a[i] != nil }

func typeErr(fn string, want string, got any) error {
	return lang.Errorf(lang.TagType, "%s: expected %s, got %s", fn, want, lang.TypeName(got))
}

func str(fn string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", typeErr(fn, "string", v)
	}
	return s, nil
}

func integer(fn string, v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case float64:
		if n == float64(int64(n)) {
			return int64(n), nil
		}
	}
	return 0, typeErr(fn, "integer", v)
}

func number(fn string, v any) (float64, error) {
	switch n := v.(type) {
	case int64:
		return float64(n), nil
	case float64:
		return n, nil
	}
	return 0, typeErr(fn, "number", v)
}
