package lang

import (
	"strings"
	"testing"
)

type mapEnv map[string]any

func (m mapEnv) Lookup(n string) (any, bool) { v, ok := m[n]; return v, ok }
func (m mapEnv) Call(fn string, args []any) (any, error) {
	if fn == "len" {
		return Len(args[0])
	}
	return nil, Errorf(TagValue, "no function %s", fn)
}

func TestEval(t *testing.T) {
	env := mapEnv{"x": int64(7), "d": 2.5, "s": "héllo", "m": map[string]any{"a": map[string]any{"b": []any{int64(1), int64(2)}}}, "l": []any{"p", "q"}}
	cases := []struct {
		src  string
		want string // Repr of the value, or "!Tag" for an error tag
	}{
		{`1 + 2 * 3 - 4`, `3`},
		{`(1 + 2) * 3`, `9`},
		{`7 / 2`, `3.5`},
		{`8 / 2`, `4.0`},
		{`7 // 2`, `3`},
		{`-7 // 2`, `-4`},
		{`-7 % 3`, `2`},
		{`7.5 // 2`, `3.0`},
		{`x * d`, `17.5`},
		{`1 == 1.0`, `true`},
		{`"a" < "b"`, `true`},
		{`"a" + "b"`, `"ab"`},
		{`"tab\there"`, `"tab\there"`},
		{`'single \'q\''`, `"single 'q'"`},
		{`"\u00e9"`, `"é"`},
		{`m.a.b[1]`, `2`},
		{`m["a"]["b"][0]`, `1`},
		{`"a" in m`, `true`},
		{`"q" in l`, `true`},
		{`"z" not in l`, `true`},
		{`not true or true`, `true`},
		{`true and false or true`, `true`},
		{`false and (1 / 0 == 1)`, `false`},
		{`true or (1 / 0 == 1)`, `true`},
		{`NOT false AND true OR false`, `true`},
		{`len(s)`, `5`},
		{`[1, "a", null, true]`, `[1,"a",null,true]`},
		{`{"k": x}`, `{"k":7}`},
		{`1 / 0`, `!ZeroDivisionError`},
		{`1 // 0`, `!ZeroDivisionError`},
		{`"a" + 1`, `!TypeError`},
		{`1 < "a"`, `!TypeError`},
		{`m.nope`, `!KeyError`},
		{`l[5]`, `!IndexError`},
		{`l["a"]`, `!TypeError`},
		{`undefined_var`, `!KeyError`},
		{`9223372036854775807 + 1`, `!ValueError`},
		{`1 and true`, `!TypeError`},
		{`not 1`, `!TypeError`},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			e, err := ParseExpr(c.src, nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			v, err := Eval(e, env)
			if strings.HasPrefix(c.want, "!") {
				le, ok := err.(*Error)
				if !ok || !le.HasTag(c.want[1:]) {
					t.Fatalf("want %s, got %v (%v)", c.want[1:], err, v)
				}
				return
			}
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if got := Repr(v); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{`1 +`, `(1`, `[1, 2`, `"open`, `a.`, `1 2`, `"\q"`, `#`, `f(`, `and`} {
		if _, err := ParseExpr(src, nil); err == nil {
			t.Errorf("%q parsed without error", src)
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	cases := []any{int64(3), 3.0, 2.5, "s", nil, true, []any{int64(1), 1.0}, map[string]any{"a": []any{map[string]any{"b": 0.5}}}}
	for _, v := range cases {
		got, err := UnmarshalValue(MarshalValue(v))
		if err != nil {
			t.Fatal(err)
		}
		if !Equal(got, v) || TypeName(got) != TypeName(v) || Repr(got) != Repr(v) {
			t.Fatalf("%s came back as %s", Repr(v), Repr(got))
		}
	}
}

func TestTargets(t *testing.T) {
	env := mapEnv{"i": int64(1)}
	root := map[string]any{"l": []any{int64(0), int64(0)}}
	for _, c := range []struct {
		target string
		want   string
	}{
		{`m.a.b`, `{"a":{"b":9},"l":[0,0]}`},
		{`m["l"][i]`, `{"a":{"b":9},"l":[0,9]}`},
	} {
		tg, err := ParseTarget(c.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tg.Set(env, root, int64(9))
		if err != nil {
			t.Fatal(err)
		}
		if Repr(out) != c.want {
			t.Fatalf("%s: %s", c.target, Repr(out))
		}
	}
	if _, err := ParseTarget("1 + 2", nil); err == nil {
		t.Fatal("an expression was accepted as a target")
	}
}

func TestCompileShapes(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"two kinds in a step", "- a:\n    assign:\n      - x: 1\n    return: 1\n", `step "a" (line 1): a step has one of`},
		{"unknown key", "- a:\n    asign:\n      - x: 1\n", `step "a": unknown key "asign"`},
		{"duplicate step", "- a:\n    return: 1\n- a:\n    return: 2\n", `step "a" (line 3): duplicate step name`},
		{"for without steps", "- a:\n    for:\n      value: v\n      in: [1]\n", `step "a" (line 1): for: steps must be a list`},
		{"parallel with one branch", "- p:\n    parallel:\n      branches:\n        - b:\n            steps:\n              - x:\n                  return: 1\n", `step "p" (line 1): branches must list at least two`},
		{"try without handler", "- t:\n    try:\n      return: 1\n", `step "t" (line 1): try needs retry or except`},
		{"unknown retry predicate", "- t:\n    try:\n      return: 1\n    retry:\n      predicate: ${nope}\n      max_retries: 1\n", `step "t" (line 1): retry: unknown predicate "nope"`},
		{"nested parallel too deep", `
- p:
    parallel:
      for:
        value: a
        in: [1]
        steps:
          - q:
              parallel:
                for:
                  value: b
                  in: [1]
                  steps:
                    - r:
                        parallel:
                          for:
                            value: c
                            in: [1]
                            steps:
                              - x:
                                  assign:
                                    - y: 1
`, `step "r" (line 14): parallel steps nest at most 2 deep`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.src, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
