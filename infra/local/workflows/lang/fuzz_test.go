package lang

import (
	"testing"
)

type fuzzEnv struct{}

func (fuzzEnv) Lookup(name string) (any, bool) {
	switch name {
	case "x":
		return int64(3), true
	case "m":
		return map[string]any{"a": []any{int64(1), 2.5, "s"}}, true
	}
	return nil, false
}

func (fuzzEnv) Call(fn string, args []any) (any, error) {
	if fn == "len" && len(args) == 1 {
		return Len(args[0])
	}
	return nil, Errorf(TagValue, "no %s", fn)
}

// FuzzParseExpr checks that parsing and evaluating arbitrary expression
// text never panics.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		`1 + 2 * 3`, `"a\"b" + 'c'`, `m.a[1] // 2`, `not x in [1, 2, 3] or x > 2 and true`,
		`{"k": [1, {"z": null}]}`, `-9223372036854775808 - 1`, `len(m.a) % 0`, `"\u00e9" < "z"`,
		`((((((1))))))`, `x.y.z(1, 2)`, `1e309 * 1e309`, `9223372036854775807 + 1`, `[1, 2][-1]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ParseExpr(src, nil)
		if err != nil {
			return
		}
		v, err := Eval(e, fuzzEnv{})
		if err == nil {
			_ = Repr(v)
			if _, err := UnmarshalValue(MarshalValue(v)); err != nil && !containsNonFinite(v) {
				t.Fatalf("value of %q does not round-trip: %v", src, err)
			}
		}
	})
}

func containsNonFinite(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x || x > 1.7976931348623157e308 || x < -1.7976931348623157e308
	case []any:
		for _, e := range x {
			if containsNonFinite(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if containsNonFinite(e) {
				return true
			}
		}
	}
	return false
}

// FuzzCompile checks that compiling arbitrary workflow source never panics.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"- a:\n    assign:\n      - x: ${1 + 2}\n- b:\n    return: ${x}\n",
		"main:\n  params: [a]\n  steps:\n    - s:\n        switch:\n          - condition: ${a}\n            next: end\n",
		"- p:\n    parallel:\n      shared: [x]\n      for:\n        value: v\n        range: [1, 3]\n        steps:\n          - a:\n              assign:\n                - x: ${v}\n",
		"- t:\n    try:\n      call: http.get\n      args:\n        url: x\n    retry: ${http.default_retry}\n    except:\n      as: e\n      steps:\n        - r:\n            raise: ${e}\n",
		`[{"a": {"return": "${len([1])}"}}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src, nil)
		if err == nil && p.Subs["main"] == nil {
			t.Fatalf("compiled without main: %q", src)
		}
	})
}
