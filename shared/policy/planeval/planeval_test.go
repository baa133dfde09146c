package planeval_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"waooaw.dev/governance/shared/policy/planeval"
)

// noInput marks an evaluation without any input document (as opposed to
// a JSON null input).
type noInputT struct{}

var noInput any = noInputT{}

// fixedTime is the clock of every evaluation, for time.now_ns.
var fixedTime = time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)

// diffCase is one differential test: modules, data, inputs, entrypoints.
type diffCase struct {
	name        string
	modules     map[string]string // file name -> Rego v1 source; see mod
	data        map[string]any
	inputs      []any
	entrypoints []string
}

// mod is the usual single-module case.
func mod(src string) map[string]string { return map[string]string{"test.rego": src} }

// js decodes JSON text keeping number literals exact.
func js(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(fmt.Sprintf("bad JSON %q: %v", s, err))
	}
	return v
}

// roundTrip normalises a Go value to what JSON decoding yields, so both
// evaluators see exactly the same document.
func roundTrip(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return js(string(b))
}

// outcome is one evaluator's answer, canonicalised.
type outcome struct {
	undefined bool
	value     any    // UseNumber-decoded JSON of the value
	text      string // canonical JSON text, for messages
	err       error
}

func (o outcome) String() string {
	switch {
	case o.err != nil:
		return "error: " + o.err.Error()
	case o.undefined:
		return "undefined"
	}
	return o.text
}

func canonical(t testing.TB, v any) (any, string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal result %v: %v", v, err)
	}
	c := js(string(b))
	cb, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal canonical %v: %v", c, err)
	}
	return c, string(cb)
}

func query(entrypoint string) string {
	return "data." + strings.ReplaceAll(entrypoint, "/", ".")
}

// opaPrepare prepares the OPA (topdown) evaluation of one entrypoint.
func opaPrepare(t testing.TB, modules map[string]string, data map[string]any, entrypoint string) rego.PreparedEvalQuery {
	t.Helper()
	opts := []func(*rego.Rego){
		rego.Query(query(entrypoint)),
		rego.Store(inmem.NewFromObject(data)),
	}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		opts = append(opts, rego.Module(name, modules[name]))
	}
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("rego prepare %s: %v", entrypoint, err)
	}
	return pq
}

func opaEval(t testing.TB, pq rego.PreparedEvalQuery, input any) outcome {
	t.Helper()
	opts := []rego.EvalOption{rego.EvalTime(fixedTime)}
	if input != noInput {
		opts = append(opts, rego.EvalInput(input))
	}
	rs, err := pq.Eval(context.Background(), opts...)
	if err != nil {
		return outcome{err: err}
	}
	if len(rs) == 0 {
		return outcome{undefined: true}
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("rego: unexpected result set shape %v", rs)
	}
	v, text := canonical(t, rs[0].Expressions[0].Value)
	return outcome{value: v, text: text}
}

// compileProgram plans and compiles modules for the entrypoints.
func compileProgram(t testing.TB, modules map[string]string, entrypoints ...string) *planeval.Program {
	t.Helper()
	src := map[string][]byte{}
	for name, m := range modules {
		src[name] = []byte(m)
	}
	plan, err := planeval.Plan(context.Background(), src, entrypoints...)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	prog, err := planeval.Compile(plan)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return prog
}

// compileModules compiles Rego v1 modules as the engine does before
// PlanQuery.
func compileModules(t testing.TB, modules map[string]string) *ast.Compiler {
	t.Helper()
	parsed := map[string]*ast.Module{}
	for name, src := range modules {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		parsed[name] = m
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(parsed); c.Failed() {
		t.Fatalf("compile: %v", c.Errors)
	}
	return c
}

// planQuery plans `result = data.<entrypoint>` as a plan named "q".
func planQuery(t testing.TB, c *ast.Compiler, entrypoint string) *planeval.Program {
	t.Helper()
	body := ast.MustParseBody("result = " + query(entrypoint))
	plan, err := planeval.PlanQuery(context.Background(), c, "q", body)
	if err != nil {
		t.Fatalf("PlanQuery %s: %v", entrypoint, err)
	}
	prog, err := planeval.Compile(plan)
	if err != nil {
		t.Fatalf("Compile %s: %v", entrypoint, err)
	}
	return prog
}

func toTerm(t testing.TB, v any) *ast.Term {
	t.Helper()
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatalf("InterfaceToValue(%v): %v", v, err)
	}
	return ast.NewTerm(val)
}

func env(t testing.TB, data map[string]any, input any) planeval.Env {
	t.Helper()
	e := planeval.Env{Data: toTerm(t, data), Time: fixedTime}
	if input != noInput {
		e.Input = toTerm(t, input)
	}
	return e
}

func planevalEval(t testing.TB, prog *planeval.Program, entrypoint string, e planeval.Env) outcome {
	t.Helper()
	term, err := prog.Eval(context.Background(), entrypoint, e)
	if err != nil {
		return outcome{err: err}
	}
	if term == nil {
		return outcome{undefined: true}
	}
	raw, err := ast.JSON(term.Value)
	if err != nil {
		t.Fatalf("ast.JSON(%v): %v", term, err)
	}
	// A set must come out as an array in ast.Compare order, the order rego
	// sorts it in.
	if set, ok := term.Value.(ast.Set); ok {
		arr, isArr := raw.([]any)
		if !isArr || len(arr) != set.Len() {
			t.Fatalf("ast.JSON of set %v gave %#v", term, raw)
		}
		for i := range arr {
			el, err := ast.InterfaceToValue(arr[i])
			if err != nil {
				t.Fatalf("InterfaceToValue(%v): %v", arr[i], err)
			}
			if i > 0 {
				prev, _ := ast.InterfaceToValue(arr[i-1])
				if ast.Compare(prev, el) >= 0 {
					t.Fatalf("ast.JSON of set %v is not sorted: %v", term, arr)
				}
			}
		}
	}
	v, text := canonical(t, raw)
	return outcome{value: v, text: text}
}

// compare asserts that both outcomes agree: both errors, both undefined, or
// equal values (same JSON, numbers compared by their text, arrays by order).
func compare(t testing.TB, label string, want, got outcome) {
	t.Helper()
	switch {
	case (want.err != nil) != (got.err != nil):
		t.Errorf("%s: OPA %v, planeval %v", label, want, got)
	case want.err != nil:
	case want.undefined != got.undefined:
		t.Errorf("%s: OPA %v, planeval %v", label, want, got)
	case !reflect.DeepEqual(want.value, got.value):
		t.Errorf("%s: OPA %s, planeval %s", label, want.text, got.text)
	}
}

func largeData() map[string]any {
	users := map[string]any{}
	for i := range 1000 {
		users[fmt.Sprintf("u%04d", i)] = map[string]any{
			"id":    i,
			"admin": i%97 == 0,
			"dept":  fmt.Sprintf("d%d", i%7),
			"score": float64(i) / 4,
		}
	}
	return map[string]any{"users": users}
}

func diffCases() []diffCase {
	return []diffCase{
		{
			name: "complete rule",
			modules: mod(`package test
allow if input.user == "admin"
`),
			inputs:      []any{map[string]any{"user": "admin"}, map[string]any{"user": "bob"}, map[string]any{}, nil, noInput, "admin"},
			entrypoints: []string{"test/allow"},
		},
		{
			name: "default",
			modules: mod(`package test
default allow := false
allow if input.role in {"admin", "owner"}
default level := 0
level := 3 if input.role == "owner"
`),
			inputs:      []any{map[string]any{"role": "owner"}, map[string]any{"role": "admin"}, map[string]any{"role": 1}, noInput},
			entrypoints: []string{"test/allow", "test/level"},
		},
		{
			name: "else chain",
			modules: mod(`package test
grade := "high" if {
	input.score > 80
} else := "mid" if {
	input.score > 50
} else := "low" if {
	is_number(input.score)
}
default tier := "none"
tier := "gold" if input.gold
else := "silver" if input.silver
`),
			inputs:      []any{map[string]any{"score": 90}, map[string]any{"score": 60.5}, map[string]any{"score": 10}, map[string]any{"score": "x"}, map[string]any{"silver": true}, map[string]any{"gold": true, "silver": true}, map[string]any{"gold": false}, noInput},
			entrypoints: []string{"test/grade", "test/tier"},
		},
		{
			name: "not",
			modules: mod(`package test
deny if not input.ok
deny if input.banned
allow if not deny
none_admin if not "admin" in input.roles
`),
			inputs:      []any{map[string]any{"ok": true}, map[string]any{"ok": false}, map[string]any{"ok": true, "banned": true}, map[string]any{"ok": 0, "roles": []any{"user"}}, map[string]any{"roles": []any{"admin"}}, noInput, nil},
			entrypoints: []string{"test/deny", "test/allow", "test/none_admin"},
		},
		{
			name: "partial set",
			modules: mod(`package test
names contains u.name if {
	some u in input.users
	u.active
}
ids contains {"id": u.id, "n": count(u.name)} if some u in input.users
empty contains x if {
	some x in input.users
	false
}
`),
			inputs: []any{
				map[string]any{"users": []any{map[string]any{"name": "zed", "active": true, "id": 2}, map[string]any{"name": "amy", "active": true, "id": 1}, map[string]any{"name": "bob", "active": false, "id": 3}}},
				map[string]any{"users": []any{}},
				map[string]any{"users": "nope"},
				noInput,
			},
			entrypoints: []string{"test/names", "test/ids", "test/empty"},
		},
		{
			name: "partial object",
			modules: mod(`package test
roles[u.name] := u.role if some u in input.users
by_role[r] := names if {
	some u in input.users
	r := u.role
	names := {n | some v in input.users; v.role == r; n := v.name}
}
`),
			inputs: []any{
				map[string]any{"users": []any{map[string]any{"name": "a", "role": "x"}, map[string]any{"name": "b", "role": "y"}, map[string]any{"name": "c", "role": "x"}}},
				map[string]any{"users": []any{map[string]any{"name": "a", "role": "x"}, map[string]any{"name": "a", "role": "y"}}}, // key conflict
				map[string]any{"users": []any{map[string]any{"name": "a", "role": "x"}, map[string]any{"name": "a", "role": "x"}}}, // same value: fine
				map[string]any{},
			},
			entrypoints: []string{"test/roles", "test/by_role"},
		},
		{
			name: "multi-key ref head",
			modules: mod(`package test
p[x][y] := v if {
	some x, obj in input.m
	some y, v in obj
	v > 0
}
q.fixed.deep := 1
q.fixed.other := input.o
q.dyn[input.k] := true
`),
			inputs: []any{
				map[string]any{"m": map[string]any{"a": map[string]any{"b": 1, "c": 0}, "d": map[string]any{"e": 5}}, "o": "x", "k": "kk"},
				map[string]any{"m": map[string]any{}},
				map[string]any{"m": map[string]any{"a": []any{3, 0, 4}}, "k": 7},
				noInput,
			},
			entrypoints: []string{"test/p", "test/q", "test/q/fixed", "test/q/fixed/deep"},
		},
		{
			name: "functions with arguments",
			modules: mod(`package test
add(a, b) := a + b
greet(name, punct) := concat("", ["hi ", name, punct])
r1 := add(input.x, 2)
r2 := greet(input.name, "!")
r3 := add(add(1, 2), add(input.x, input.x))
is_big(n) if n > 100
big if is_big(input.x)
`),
			inputs:      []any{map[string]any{"x": 5, "name": "ann"}, map[string]any{"x": 500}, map[string]any{"x": "s"}, map[string]any{"name": 3}, noInput},
			entrypoints: []string{"test/r1", "test/r2", "test/r3", "test/big"},
		},
		{
			name: "function multiple definitions",
			modules: mod(`package test
sign(x) := "neg" if x < 0
sign(x) := "pos" if x > 0
sign(0) := "zero"
kind(x) := "string" if is_string(x)
kind(x) := "number" if is_number(x)
kind(x) := "other" if {
	not is_string(x)
	not is_number(x)
}
s := sign(input.n)
k := kind(input.n)
all_signs := [sign(v) | some v in input.ns]
`),
			inputs:      []any{map[string]any{"n": -3}, map[string]any{"n": 0}, map[string]any{"n": 2.5}, map[string]any{"n": "q", "ns": []any{1, -1, 0}}, map[string]any{"n": nil}, noInput},
			entrypoints: []string{"test/s", "test/k", "test/all_signs"},
		},
		{
			name: "function conflict",
			modules: mod(`package test
f(x) := 1 if x > 0
f(x) := 2 if x > 10
r := f(input.n)
`),
			inputs:      []any{map[string]any{"n": 5}, map[string]any{"n": 50}, map[string]any{"n": -1}},
			entrypoints: []string{"test/r"},
		},
		{
			name: "function else",
			modules: mod(`package test
bucket(x) := "large" if {
	x > 10
} else := "medium" if {
	x > 5
} else := "small"
default safe(_) := "default"
safe(x) := "known" if x == "a"
b := bucket(input.n)
s := safe(input.n)
`),
			inputs:      []any{map[string]any{"n": 11}, map[string]any{"n": 6}, map[string]any{"n": 1}, map[string]any{"n": "a"}, map[string]any{}},
			entrypoints: []string{"test/b", "test/s"},
		},
		{
			name: "some in array",
			modules: mod(`package test
has_admin if {
	some x in input.xs
	x == "admin"
}
idx contains i if {
	some i, x in input.xs
	x == "admin"
}
old_style contains i if {
	input.xs[i] == "admin"
}
`),
			inputs:      []any{map[string]any{"xs": []any{"a", "admin", "b", "admin"}}, map[string]any{"xs": []any{}}, map[string]any{"xs": "admin"}, map[string]any{"xs": map[string]any{"k": "admin"}}, noInput},
			entrypoints: []string{"test/has_admin", "test/idx", "test/old_style"},
		},
		{
			name: "some k v in object",
			modules: mod(`package test
pairs contains [k, v] if some k, v in input.obj
keys_with_true contains k if {
	some k, v in input.obj
	v == true
}
total := sum([v | some _, v in input.obj; is_number(v)])
`),
			inputs:      []any{map[string]any{"obj": map[string]any{"b": true, "a": 2, "c": 3.5}}, map[string]any{"obj": map[string]any{}}, map[string]any{"obj": []any{true, 1}}, map[string]any{}},
			entrypoints: []string{"test/pairs", "test/keys_with_true", "test/total"},
		},
		{
			name: "some in set",
			modules: mod(`package test
tags := {t | some t in input.tags}
upper_tags contains upper(t) if some t in tags
set_kv contains [k, v] if some k, v in tags
sizes := {n | some t in tags; n := count(t)}
`),
			inputs:      []any{map[string]any{"tags": []any{"b", "a", "b", "ccc"}}, map[string]any{"tags": []any{}}, map[string]any{"tags": []any{1, "x"}}},
			entrypoints: []string{"test/tags", "test/upper_tags", "test/set_kv", "test/sizes"},
		},
		{
			name: "every",
			modules: mod(`package test
all_pos if every x in input.xs { x > 0 }
all_match if every k, v in input.m { startswith(v, k) }
nested if every x in input.xs {
	some y in input.ys
	y == x
}
`),
			inputs: []any{
				map[string]any{"xs": []any{1, 2, 3}, "m": map[string]any{"a": "abc"}, "ys": []any{1, 2, 3, 4}},
				map[string]any{"xs": []any{1, -2, 3}, "m": map[string]any{"a": "xbc"}, "ys": []any{1}},
				map[string]any{"xs": []any{}, "m": map[string]any{}},
				map[string]any{"xs": "str", "m": 3},
				noInput,
			},
			entrypoints: []string{"test/all_pos", "test/all_match", "test/nested"},
		},
		{
			name: "comprehensions",
			modules: mod(`package test
arr := [y | some x in input.xs; x > 1; y := x * 2]
st := {m | some x in input.xs; m := x % 3}
obj := {k: v | some i, x in input.xs; k := sprintf("k%d", [i]); v := x}
empty_arr := [x | some x in input.xs; x > 1000]
`),
			inputs:      []any{map[string]any{"xs": []any{1, 2, 3, 4, 5}}, map[string]any{"xs": []any{}}, map[string]any{"xs": []any{"a"}}, noInput},
			entrypoints: []string{"test/arr", "test/st", "test/obj", "test/empty_arr"},
		},
		{
			name: "object comprehension key conflict",
			modules: mod(`package test
by_name := {u.name: u.age | some u in input.users}
`),
			inputs: []any{
				map[string]any{"users": []any{map[string]any{"name": "a", "age": 1}, map[string]any{"name": "b", "age": 2}}},
				map[string]any{"users": []any{map[string]any{"name": "a", "age": 1}, map[string]any{"name": "a", "age": 2}}},
			},
			entrypoints: []string{"test/by_name"},
		},
		{
			name: "nested comprehensions",
			modules: mod(`package test
matrix := [row | some x in input.xs; row := [p | some y in input.xs; p := x * y]]
groups := {g: members |
	some u in input.users
	g := u.group
	members := sort([m.name | some m in input.users; m.group == g])
}
flat := {z | some row in matrix; some z in row}
`),
			inputs: []any{
				map[string]any{"xs": []any{1, 2, 3}, "users": []any{map[string]any{"name": "b", "group": "g1"}, map[string]any{"name": "a", "group": "g1"}, map[string]any{"name": "c", "group": "g2"}}},
				map[string]any{"xs": []any{}},
			},
			entrypoints: []string{"test/matrix", "test/groups", "test/flat"},
		},
		{
			name: "with input",
			modules: mod(`package test
allow if input.user == "admin"
check_admin if allow with input as {"user": "admin"}
check_other := r if r := allow with input as {"user": "x"}
neg if not allow with input as {"user": input.alt}
deep := input.a.b.c
patched := v if v := deep with input.a.b as {"c": "patched"}
kept := v if v := input.a with input.a.b.c as "new"
`),
			inputs:      []any{map[string]any{"user": "admin", "alt": "bob", "a": map[string]any{"b": map[string]any{"c": 1}, "x": 2}}, map[string]any{"alt": "admin"}, map[string]any{"a": 5}, noInput},
			entrypoints: []string{"test/check_admin", "test/check_other", "test/neg", "test/patched", "test/deep", "test/kept"},
		},
		{
			name: "with data",
			modules: mod(`package test
limit := data.config.limit
ok if input.n <= limit
ok_strict if ok with data.config.limit as 1
ok_loose if ok with data.config as {"limit": 1000}
cfg_seen := v if v := data.config with data.config.extra as true
`),
			data:        map[string]any{"config": map[string]any{"limit": 10, "name": "c"}},
			inputs:      []any{map[string]any{"n": 5}, map[string]any{"n": 50}, map[string]any{"n": 0}, noInput},
			entrypoints: []string{"test/ok", "test/ok_strict", "test/ok_loose", "test/cfg_seen"},
		},
		{
			name: "array destructuring",
			modules: mod(`package test
sum2 := a + b if [a, b] := input.pair
first := a if [a, _, _] := input.triple
nested := c if [_, [c, _]] := input.nested
same if [x, x] = input.pair
`),
			inputs:      []any{map[string]any{"pair": []any{1, 2}, "triple": []any{"a", "b", "c"}, "nested": []any{0, []any{9, 8}}}, map[string]any{"pair": []any{3, 3}, "triple": []any{1, 2}}, map[string]any{"pair": "ab", "nested": []any{0, []any{1}}}, map[string]any{"pair": map[string]any{"0": 1, "1": 2}}, noInput},
			entrypoints: []string{"test/sum2", "test/first", "test/nested", "test/same"},
		},
		{
			name: "object patterns",
			modules: mod(`package test
who := sprintf("%s/%d", [n, a]) if {"name": n, "age": a} := input.person
kind := k if {"kind": k} = input.obj
exact if {
	{"a": 1, "b": x} = input.obj
	x > 0
}
`),
			inputs:      []any{map[string]any{"person": map[string]any{"name": "ann", "age": 30}, "obj": map[string]any{"kind": "k1"}}, map[string]any{"person": map[string]any{"name": "ann"}, "obj": map[string]any{"a": 1, "b": 2}}, map[string]any{"person": map[string]any{"name": "x", "age": 1, "extra": true}}, map[string]any{"person": []any{1}}},
			entrypoints: []string{"test/who", "test/kind", "test/exact"},
		},
		{
			name: "membership",
			modules: mod(`package test
in_arr if input.x in ["a", "b", 1]
in_set if input.x in {"a", 2}
in_obj if input.x in {"k": "a", "j": 3}
kv if "k", "a" in input.o
idx if 1, "b" in input.arr
not_in if not input.x in input.arr
`),
			inputs:      []any{map[string]any{"x": "a", "o": map[string]any{"k": "a"}, "arr": []any{"a", "b"}}, map[string]any{"x": 1, "o": map[string]any{"k": "b"}, "arr": []any{"b"}}, map[string]any{"x": 2.0}, map[string]any{"x": 3, "arr": 5}, noInput},
			entrypoints: []string{"test/in_arr", "test/in_set", "test/in_obj", "test/kv", "test/idx", "test/not_in"},
		},
		{
			name: "numbers",
			modules: mod(`package test
ints := [1, -2, 0, 42]
floats := [1.5, -0.25, 1e3, 2.0]
big := 123456789012345678901234567890
big_sum := big + 1
eq_int_float if 1 == 1.0
eq_input if input.n == 1
arith := [input.n * 2, input.n / 4, input.n - 0.5, input.n % 3]
cmp := [input.n < 2, input.n >= 1.0, input.n != 1]
huge_in := input.huge + 0
round_trip := input.huge
rounded := [round(2.5), ceil(1.2), floor(-1.2), abs(-3)]
`),
			inputs:      []any{map[string]any{"n": 1, "huge": json.Number("99999999999999999999999")}, map[string]any{"n": 1.0}, map[string]any{"n": json.Number("1.0")}, map[string]any{"n": 7.25, "huge": json.Number("1e400")}, map[string]any{"n": -4}, map[string]any{"n": 0}},
			entrypoints: []string{"test/ints", "test/floats", "test/big", "test/big_sum", "test/eq_int_float", "test/eq_input", "test/arith", "test/cmp", "test/huge_in", "test/round_trip", "test/rounded"},
		},
		{
			name: "null and booleans",
			modules: mod(`package test
is_null if input.x == null
null_val := null
not_false if input.flag != false
truthy if input.flag
f := false
t_and := [true, false, null]
explicit_false := input.flag == false
`),
			inputs:      []any{map[string]any{"x": nil, "flag": false}, map[string]any{"flag": true}, map[string]any{"flag": nil}, map[string]any{"flag": 0}, map[string]any{}, nil, noInput},
			entrypoints: []string{"test/is_null", "test/null_val", "test/not_false", "test/truthy", "test/f", "test/t_and", "test/explicit_false"},
		},
		{
			name: "string builtins",
			modules: mod(`package test
msg := sprintf("user %s has %d roles (%v)", [input.user, count(input.roles), input.roles])
joined := concat(",", input.roles)
joined_set := concat("|", {r | some r in input.roles})
is_svc if startswith(input.user, "svc-")
ends if endswith(input.user, "-bot")
lowered := lower(input.user)
parts := split(input.path, "/")
re if regex.match("^[a-z]+-[0-9]+$", input.user)
misc := [upper(input.user), trim_space("  x "), replace(input.user, "-", "_"), substring(input.user, 1, 3), indexof(input.user, "-"), contains(input.user, "vc"), format_int(255, 16), strings.reverse("abc")]
`),
			inputs:      []any{map[string]any{"user": "svc-12", "roles": []any{"b", "a"}, "path": "/a/b/c"}, map[string]any{"user": "Ann-bot", "roles": []any{}, "path": ""}, map[string]any{"user": 5, "roles": []any{1}, "path": 3}, map[string]any{"user": "üñî-çødé", "roles": []any{"x"}}},
			entrypoints: []string{"test/msg", "test/joined", "test/joined_set", "test/is_svc", "test/ends", "test/lowered", "test/parts", "test/re", "test/misc"},
		},
		{
			name: "aggregates",
			modules: mod(`package test
n := count(input.xs)
total := sum(input.xs)
biggest := max(input.xs)
smallest := min(input.xs)
sorted := sort(input.xs)
n_str := count(input.s)
prod := product(input.xs)
`),
			inputs:      []any{map[string]any{"xs": []any{3, 1, 2.5, 10}, "s": "héllo"}, map[string]any{"xs": []any{}}, map[string]any{"xs": []any{"b", "a"}}, map[string]any{"xs": "abc"}, map[string]any{"xs": []any{1, "a"}}},
			entrypoints: []string{"test/n", "test/total", "test/biggest", "test/smallest", "test/sorted", "test/n_str", "test/prod"},
		},
		{
			name: "object builtins",
			modules: mod(`package test
dept := object.get(input, ["user", "dept"], "none")
tier := object.get(input.user, "tier", 0)
keys := object.keys(input.user)
merged := object.union(input.user, {"extra": 1})
removed := object.remove(input.user, ["dept"])
filtered := object.filter(input.user, ["dept", "nope"])
`),
			inputs:      []any{map[string]any{"user": map[string]any{"dept": "eng", "tier": 2}}, map[string]any{"user": map[string]any{}}, map[string]any{"user": "str"}, map[string]any{}},
			entrypoints: []string{"test/dept", "test/tier", "test/keys", "test/merged", "test/removed", "test/filtered"},
		},
		{
			name: "json builtins",
			modules: mod(`package test
enc := json.marshal(input)
enc_set := json.marshal({3, 1, 2})
dec := json.unmarshal(input.raw)
valid if json.is_valid(input.raw)
b64 := base64.encode(input.raw)
`),
			inputs:      []any{map[string]any{"raw": `{"a":[1,2.5,"x"]}`, "z": nil}, map[string]any{"raw": "{not json"}, map[string]any{"raw": 3}},
			entrypoints: []string{"test/enc", "test/enc_set", "test/dec", "test/valid", "test/b64"},
		},
		{
			name: "builtin errors are undefined",
			modules: mod(`package test
num := to_number(input.s)
bad_re if regex.match("(", input.s)
quot := 1 / input.d
fallback := x if {
	x := to_number(input.s)
} else := "nan"
still_true if {
	not to_number(input.s)
}
`),
			inputs:      []any{map[string]any{"s": "x", "d": 0}, map[string]any{"s": "12.5", "d": 4}, map[string]any{"s": true, "d": "a"}},
			entrypoints: []string{"test/num", "test/bad_re", "test/quot", "test/fallback", "test/still_true"},
		},
		{
			name: "dynamic data refs",
			modules: map[string]string{
				"a.rego": `package pkgs.alpha
allow if input.level > 1
`,
				"b.rego": `package pkgs.beta
allow if input.level > 5
`,
				"test.rego": `package test
decision := data.pkgs[input.name].allow
default safe := false
safe if data.pkgs[input.name].allow
`,
			},
			inputs:      []any{map[string]any{"name": "alpha", "level": 3}, map[string]any{"name": "beta", "level": 3}, map[string]any{"name": "beta", "level": 9}, map[string]any{"name": "gamma", "level": 9}, map[string]any{"name": 1}, noInput},
			entrypoints: []string{"test/decision", "test/safe"},
		},
		{
			name: "dynamic data refs reaching base data",
			modules: map[string]string{
				"a.rego": `package pkgs.alpha
allow if input.level > 1
`,
				"b.rego": `package pkgs.beta
allow if input.level > 5
deny contains "low" if input.level < 3
`,
				"test.rego": `package test
decision := data.pkgs[input.name].allow
denies := data.pkgs[input.name].deny
names contains n if some n, _ in data.pkgs
swapped := d if d := data.pkgs[input.name].allow with data.pkgs.gamma.allow as "mocked"
`,
			},
			data:        map[string]any{"pkgs": map[string]any{"gamma": map[string]any{"allow": "from-data"}}},
			inputs:      []any{map[string]any{"name": "alpha", "level": 3}, map[string]any{"name": "beta", "level": 1}, map[string]any{"name": "gamma"}, map[string]any{"name": "delta"}},
			entrypoints: []string{"test/decision", "test/denies", "test/names", "test/swapped"},
		},
		{
			name: "base data beside virtual documents one level down",
			modules: mod(`package test
cfg.b := input.b
cfg.set contains x if some x in input.xs
cfg_a := data.test.cfg.a
`),
			data:        map[string]any{"test": map[string]any{"cfg": map[string]any{"a": 1, "nested": map[string]any{"z": []any{1}}}, "other": true}},
			inputs:      []any{map[string]any{"b": "x", "xs": []any{"a"}}, map[string]any{}},
			entrypoints: []string{"test", "test/cfg", "test/cfg/b", "test/cfg_a"},
		},
		{
			name: "time",
			modules: mod(`package test
now := time.now_ns()
year := time.date(time.now_ns())[0]
fresh if time.now_ns() - input.ts < 1000000000
parsed := time.parse_rfc3339_ns(input.when)
`),
			inputs:      []any{map[string]any{"ts": json.Number("1700000000000000000"), "when": "2024-01-02T03:04:05Z"}, map[string]any{"ts": 0, "when": "bad"}},
			entrypoints: []string{"test/now", "test/year", "test/fresh", "test/parsed"},
		},
		{
			name: "multi-key ref head conflicts",
			modules: mod(`package test
grid[r][c] := v if {
	some cell in input.cells
	r := cell.r
	c := cell.c
	v := cell.v
}
`),
			inputs: []any{
				map[string]any{"cells": []any{map[string]any{"r": "a", "c": "x", "v": 1}, map[string]any{"r": "a", "c": "y", "v": 2}, map[string]any{"r": "b", "c": "x", "v": 3}}},
				map[string]any{"cells": []any{map[string]any{"r": "a", "c": "x", "v": 1}, map[string]any{"r": "a", "c": "x", "v": 2}}},
				map[string]any{"cells": []any{map[string]any{"r": 1, "c": []any{1}, "v": nil}}},
			},
			entrypoints: []string{"test/grid"},
		},
		{
			name: "print is inert",
			modules: mod(`package test
allow if {
	print("checking", input.user, input.missing)
	input.user == "a"
}
`),
			inputs:      []any{map[string]any{"user": "a"}, map[string]any{"user": "b"}, noInput},
			entrypoints: []string{"test/allow"},
		},
		{
			name: "iteration order",
			modules: mod(`package test
from_set := [x | some x in {"b", "a", "c", 3, [1], null}]
lit := {"z": 1, "a": 2, "m": 3}
from_obj := [k | some k, _ in lit]
from_input := [[k, v] | some k, v in input.o]
built := {k: i | some i, k in input.ks}
from_built := [k | some k, _ in built]
first_key := k if {
	some k, _ in input.o
	k > "a"
}
`),
			inputs:      []any{map[string]any{"o": map[string]any{"q": 1, "b": 2, "x": 3, "a": 4}, "ks": []any{"y", "b", "q"}}, map[string]any{"o": map[string]any{"b": 1}}},
			entrypoints: []string{"test/from_set", "test/from_obj", "test/from_input", "test/from_built", "test/first_key"},
		},
		{
			name: "strings with escapes and odd keys",
			modules: mod(`package test
s := "a\nb\t\"q\" \u00e9 \u2603 \\"
raw := ` + "`raw \\n string`" + `
keys := {"": 1, " ": 2, "a.b": 3, "\u0000": 4}
got := keys[input.k]
num_key := {1: "one", 2.5: "two and a half"}[input.n]
idx := input.xs[input.n]
str_key := input.o[input.n]
`),
			inputs:      []any{map[string]any{"k": "a.b", "n": 1, "xs": []any{"x", "y"}, "o": map[string]any{"1": "s1"}}, map[string]any{"k": "", "n": json.Number("1.0"), "xs": []any{"x", "y"}}, map[string]any{"k": "\u0000", "n": 2.5}, map[string]any{"k": " ", "n": "1", "o": map[string]any{"1": "s1"}}},
			entrypoints: []string{"test/s", "test/raw", "test/keys", "test/got", "test/num_key", "test/idx", "test/str_key"},
		},
		{
			name: "base data merged with virtual documents",
			modules: mod(`package test
virt := input.v
cfg_limit := data.test.limit
`),
			data:        map[string]any{"test": map[string]any{"limit": 5, "nested": map[string]any{"a": 1}}},
			inputs:      []any{map[string]any{"v": "x"}, map[string]any{}, noInput},
			entrypoints: []string{"test", "test/cfg_limit", "test/virt"},
		},
		{
			name: "package entrypoint",
			modules: mod(`package test
a := 1
b contains x if some x in input.xs
c[k] := true if some k in input.xs
f(x) := x
`),
			inputs:      []any{map[string]any{"xs": []any{"q", "p"}}, noInput},
			entrypoints: []string{"test"},
		},
		{
			name: "complete rule conflict",
			modules: mod(`package test
x := 1 if input.a
x := 2 if input.b
y := v if some v in input.vs
`),
			inputs:      []any{map[string]any{"a": true}, map[string]any{"b": true}, map[string]any{"a": true, "b": true}, map[string]any{}, map[string]any{"vs": []any{1, 1}}, map[string]any{"vs": []any{1, 2}}},
			entrypoints: []string{"test/x", "test/y"},
		},
		{
			name: "undefined entrypoints",
			modules: mod(`package test
never if false
never_input if input.nothing.here
none := x if {
	some x in []
}
empty_body_ref := data.test.missing
`),
			inputs:      []any{map[string]any{"a": 1}, noInput},
			entrypoints: []string{"test/never", "test/never_input", "test/none", "test/empty_body_ref"},
		},
		{
			name: "deep data lookups",
			modules: mod(`package test
leaf := data.a.b.c.d[input.k].e
path_leaf := data.a.b.c.d[input.k][input.f]
arr_elem := data.a.list[input.i]
exists if data.a.b.c
whole_d := data.a.b.c.d
`),
			data: map[string]any{"a": map[string]any{
				"b":    map[string]any{"c": map[string]any{"d": map[string]any{"x": map[string]any{"e": "deep-x", "f": 1}, "y": map[string]any{"e": []any{1, 2}}}}},
				"list": []any{"zero", "one"},
			}},
			inputs:      []any{map[string]any{"k": "x", "f": "f", "i": 1}, map[string]any{"k": "y", "f": "e", "i": 0}, map[string]any{"k": "z", "i": 5}, map[string]any{"k": 1, "i": 1.5}, noInput},
			entrypoints: []string{"test/leaf", "test/path_leaf", "test/arr_elem", "test/exists", "test/whole_d"},
		},
		{
			name: "large data",
			modules: mod(`package test
admins contains name if {
	some name, u in data.users
	u.admin
}
dept_counts[d] := n if {
	some u in data.users
	d := u.dept
	n := count([1 | some v in data.users; v.dept == d])
}
score := data.users[input.name].score
high := count([u | some u in data.users; u.score > input.min])
`),
			data:        largeData(),
			inputs:      []any{map[string]any{"name": "u0500", "min": 200}, map[string]any{"name": "u9999", "min": 0}, map[string]any{"min": "x"}},
			entrypoints: []string{"test/admins", "test/dept_counts", "test/score", "test/high"},
		},
		{
			name: "rules referencing rules",
			modules: mod(`package test
user := data.users[input.user]
is_admin if user.admin
perms contains p if {
	some p in user.perms
}
perms contains "admin:*" if is_admin
allow if "write" in perms
allow if is_admin
`),
			data:        map[string]any{"users": map[string]any{"ann": map[string]any{"admin": true, "perms": []any{"read"}}, "bob": map[string]any{"admin": false, "perms": []any{"read", "write"}}, "cy": map[string]any{"perms": []any{}}}},
			inputs:      []any{map[string]any{"user": "ann"}, map[string]any{"user": "bob"}, map[string]any{"user": "cy"}, map[string]any{"user": "zz"}, noInput},
			entrypoints: []string{"test/is_admin", "test/perms", "test/allow", "test/user"},
		},
		{
			name: "set operations",
			modules: mod(`package test
a := {x | some x in input.a}
b := {x | some x in input.b}
u := a | b
i := a & b
d := a - b
un := union({a, b})
same_set if a == b
arr := array.concat(input.a, input.b)
sl := array.slice(input.a, 1, 3)
rng := numbers.range(1, 4)
`),
			inputs:      []any{map[string]any{"a": []any{1, 2, 3}, "b": []any{3, 4}}, map[string]any{"a": []any{1, 2}, "b": []any{2, 1, 1}}, map[string]any{"a": []any{}, "b": []any{}}},
			entrypoints: []string{"test/u", "test/i", "test/d", "test/un", "test/same_set", "test/arr", "test/sl", "test/rng"},
		},
		{
			name: "cross-type comparisons and types",
			modules: mod(`package test
less if input.a < input.b
same if input.a == input.b
tn := type_name(input.a)
ordered := sort([input.a, input.b, null, true, "s", 1, [1], {"k": 1}])
`),
			inputs:      []any{map[string]any{"a": 1, "b": "1"}, map[string]any{"a": "b", "b": "a"}, map[string]any{"a": []any{1, 2}, "b": []any{1, 3}}, map[string]any{"a": map[string]any{"x": 1}, "b": map[string]any{"x": 1}}, map[string]any{"a": nil, "b": false}},
			entrypoints: []string{"test/less", "test/same", "test/tn", "test/ordered"},
		},
		{
			name: "walk relation",
			modules: mod(`package test
paths contains p if {
	walk(input, [p, v])
	is_number(v)
}
leaves := [v | walk(input.t, [_, v]); is_string(v)]
has_walk if walk(input)
`),
			inputs:      []any{map[string]any{"t": map[string]any{"a": []any{"x", 1, map[string]any{"b": "y"}}}, "n": 2}, map[string]any{"t": "s"}, map[string]any{}},
			entrypoints: []string{"test/paths", "test/leaves", "test/has_walk"},
		},
		{
			name: "glob and misc builtins",
			modules: mod(`package test
g if glob.match("api.*.example.com", ["."], input.host)
h := crypto.sha256(input.host)
u := urlquery.encode(input.host)
semver_ok if semver.compare(input.v, "1.2.0") >= 0
size_bytes := units.parse_bytes(input.size)
`),
			inputs:      []any{map[string]any{"host": "api.v1.example.com", "v": "1.3.0", "size": "10KiB"}, map[string]any{"host": "x.com", "v": "bad", "size": "nope"}},
			entrypoints: []string{"test/g", "test/h", "test/u", "test/semver_ok", "test/size_bytes"},
		},
		{
			name: "whole input and composite values",
			modules: mod(`package test
echo := input
obj := {"a": input.x, "b": [1, {"c": input.y}], "s": {input.x}}
eq_obj if input.o == {"k": [1, 2]}
eq_set if {x | some x in input.arr} == {1, 2}
`),
			inputs:      []any{map[string]any{"x": 1, "y": "z", "o": map[string]any{"k": []any{1, 2}}, "arr": []any{2, 1, 2}}, map[string]any{"x": 1}, "scalar", []any{1, 2}, nil, noInput},
			entrypoints: []string{"test/echo", "test/obj", "test/eq_obj", "test/eq_set"},
		},
		{
			name: "nested rule paths",
			modules: mod(`package test
a.b.c := 1
a.b.d := input.d
a.e contains x if some x in input.es
`),
			inputs:      []any{map[string]any{"d": "dd", "es": []any{"y", "x"}}, map[string]any{}},
			entrypoints: []string{"test/a", "test/a/b", "test/a/b/c", "test/a/b/d", "test/a/e"},
		},
		{
			name: "every with some and not",
			modules: mod(`package test
all_allowed if every r in input.requests {
	some g in input.grants
	g.action == r.action
	not g.revoked
}
none_bad if every r in input.requests { not r.bad }
`),
			inputs: []any{
				map[string]any{"requests": []any{map[string]any{"action": "read"}}, "grants": []any{map[string]any{"action": "read"}}},
				map[string]any{"requests": []any{map[string]any{"action": "read", "bad": true}}, "grants": []any{map[string]any{"action": "read", "revoked": true}}},
				map[string]any{"requests": []any{}, "grants": []any{}},
				map[string]any{"requests": map[string]any{"x": map[string]any{"action": "w"}}, "grants": []any{map[string]any{"action": "w"}}},
			},
			entrypoints: []string{"test/all_allowed", "test/none_bad"},
		},
		{
			name: "unification between refs",
			modules: mod(`package test
match contains [i, j] if {
	input.a[i] == input.b[j]
}
shared_key contains k if {
	input.x[k]
	input.y[k]
}
same_len if count(input.a) == count(input.b)
`),
			inputs:      []any{map[string]any{"a": []any{1, 2, 3}, "b": []any{3, 1}, "x": map[string]any{"p": true, "q": false}, "y": map[string]any{"p": 1, "q": 1}}, map[string]any{"a": []any{}, "b": []any{}}},
			entrypoints: []string{"test/match", "test/shared_key", "test/same_len"},
		},
		{
			name: "strings and arrays in function arguments",
			modules: mod(`package test
pick(arr, i) := arr[i]
pair([a, b]) := {"a": a, "b": b}
at := pick(input.xs, input.i)
pr := pair(input.xs)
named({"n": n}) := n
nm := named(input.o)
`),
			inputs:      []any{map[string]any{"xs": []any{"p", "q"}, "i": 1, "o": map[string]any{"n": "N"}}, map[string]any{"xs": []any{"p", "q", "r"}, "i": 9, "o": map[string]any{"m": 1}}, map[string]any{"xs": "pq", "i": "0"}},
			entrypoints: []string{"test/at", "test/pr", "test/nm"},
		},
		{
			name: "default with else and conflict-free partial merge",
			modules: mod(`package test
default decision := {"allow": false, "reasons": []}
decision := {"allow": true, "reasons": reasons} if {
	count(reasons) > 0
	input.ok
}
reasons := [r | some r in input.reasons]
`),
			inputs:      []any{map[string]any{"ok": true, "reasons": []any{"a"}}, map[string]any{"ok": true, "reasons": []any{}}, map[string]any{"reasons": []any{"a"}}, noInput},
			entrypoints: []string{"test/decision", "test/reasons"},
		},
	}
}

// planStmtKinds collects the statement types a plan uses.
func planStmtKinds(p *ir.Policy, into map[string]bool) {
	var walkBlocks func([]*ir.Block)
	walkBlocks = func(bs []*ir.Block) {
		for _, b := range bs {
			for _, s := range b.Stmts {
				into[strings.TrimPrefix(fmt.Sprintf("%T", s), "*ir.")] = true
				switch s := s.(type) {
				case *ir.BlockStmt:
					walkBlocks(s.Blocks)
				case *ir.ScanStmt:
					walkBlocks([]*ir.Block{s.Block})
				case *ir.NotStmt:
					walkBlocks([]*ir.Block{s.Block})
				case *ir.WithStmt:
					walkBlocks([]*ir.Block{s.Block})
				}
			}
		}
	}
	for _, pl := range p.Plans.Plans {
		walkBlocks(pl.Blocks)
	}
	if p.Funcs != nil {
		for _, f := range p.Funcs.Funcs {
			walkBlocks(f.Blocks)
		}
	}
}

func TestMatchesOPA(t *testing.T) {
	cases := diffCases()
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	kinds := map[string]bool{}
	ran := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ran++
			data := map[string]any{}
			if tc.data != nil {
				data = roundTrip(t, tc.data).(map[string]any)
			}
			src := map[string][]byte{}
			for name, m := range tc.modules {
				src[name] = []byte(m)
			}
			plan, err := planeval.Plan(context.Background(), src, tc.entrypoints...)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			planStmtKinds(plan, kinds)
			prog, err := planeval.Compile(plan)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			compiler := compileModules(t, tc.modules)
			for _, ep := range tc.entrypoints {
				pq := opaPrepare(t, tc.modules, data, ep)
				// The same document planned in memory from compiled modules,
				// the engine's route (PlanQuery).
				single := planQuery(t, compiler, ep)
				for i, raw := range tc.inputs {
					input := raw
					if raw != noInput {
						input = roundTrip(t, raw)
					}
					want := opaEval(t, pq, input)
					e := env(t, data, input)
					got := planevalEval(t, prog, ep, e)
					label := fmt.Sprintf("%s input#%d %s", ep, i, describe(raw))
					compare(t, label, want, got)
					compare(t, label+" (PlanQuery)", want, planevalEval(t, single, "q", e))
					// Evaluation must not modify its documents: a second run on
					// the same Env gives the same answer, and Env is unchanged.
					compare(t, label+" (again)", want, planevalEval(t, prog, ep, e))
					if ast.Compare(e.Data.Value, toTerm(t, data).Value) != 0 {
						t.Errorf("%s: evaluation modified data", label)
					}
					if input != noInput && ast.Compare(e.Input.Value, toTerm(t, input).Value) != 0 {
						t.Errorf("%s: evaluation modified input", label)
					}
				}
			}
		})
	}
	if ran < len(cases) {
		return // a -run filter selected some cases: coverage is not theirs alone
	}
	// Every statement kind the planner emits for these constructs was run.
	for _, k := range []string{
		"ArrayAppendStmt", "AssignIntStmt", "AssignVarOnceStmt", "AssignVarStmt", "BlockStmt", "BreakStmt",
		"CallDynamicStmt", "CallStmt", "DotStmt", "EqualStmt", "IsArrayStmt", "IsDefinedStmt", "IsObjectStmt",
		"IsSetStmt", "IsUndefinedStmt", "LenStmt", "MakeArrayStmt", "MakeNullStmt", "MakeNumberIntStmt",
		"MakeNumberRefStmt", "MakeObjectStmt", "MakeSetStmt", "NotEqualStmt", "NotStmt", "ObjectInsertOnceStmt",
		"ObjectInsertStmt", "ObjectMergeStmt", "ResetLocalStmt", "ResultSetAddStmt", "ReturnLocalStmt",
		"ScanStmt", "SetAddStmt", "WithStmt",
	} {
		if !kinds[k] {
			t.Errorf("no case plans a %s", k)
		}
	}
	t.Logf("statement kinds covered: %v", slices.Sorted(maps.Keys(kinds)))
}

func describe(v any) string {
	if v == noInput {
		return "<no input>"
	}
	b, _ := json.Marshal(v)
	if len(b) > 120 {
		b = append(b[:120], "..."...)
	}
	return string(b)
}

const randomPolicy = `package test

default allow := false

allow if {
	input.user.role == "admin"
	not input.user.suspended
}

allow if {
	input.action in {"read", "list"}
	some g in input.user.groups
	startswith(g, "team-")
}

reasons contains msg if {
	not input.user.role
	msg := "no role"
}

reasons contains sprintf("bad action %v", [input.action]) if {
	not input.action in {"read", "list", "write"}
}

reasons contains concat(":", ["group", g]) if {
	some g in input.user.groups
	is_string(g)
	not startswith(g, "team-")
}

score := s if {
	s := sum([n | some n in input.weights; is_number(n)]) * count(input.user.groups)
} else := -1

limits[k] := v if {
	some k, v in input.limits
	is_number(v)
	v >= 0
}

summary := {
	"allow": allow,
	"n_reasons": count(reasons),
	"tier": tier,
}

tier := "gold" if input.user.level >= 10
else := "silver" if input.user.level >= 5
else := "bronze"
`

func randomScalar(r *rand.Rand) any {
	switch r.IntN(7) {
	case 0:
		return nil
	case 1:
		return r.IntN(3) == 0
	case 2:
		return r.IntN(21) - 5
	case 3:
		return float64(r.IntN(1000)) / 8
	case 4:
		return []any{"read", "write", "team-a", "x", "admin", "", "list", "team-"}[r.IntN(8)]
	case 5:
		return []any{r.IntN(3), "team-b"}
	default:
		return map[string]any{"k": r.IntN(4)}
	}
}

func randomInput(r *rand.Rand) any {
	if r.IntN(40) == 0 {
		return noInput
	}
	if r.IntN(40) == 0 {
		return randomScalar(r)
	}
	in := map[string]any{}
	if r.IntN(5) != 0 {
		user := map[string]any{}
		if r.IntN(4) != 0 {
			if r.IntN(2) == 0 {
				user["role"] = []any{"admin", "dev", "viewer"}[r.IntN(3)]
			} else {
				user["role"] = randomScalar(r)
			}
		}
		if r.IntN(3) == 0 {
			user["suspended"] = randomScalar(r)
		}
		if r.IntN(4) != 0 {
			if r.IntN(4) == 0 {
				user["groups"] = randomScalar(r)
			} else {
				var gs []any
				for range r.IntN(4) {
					if r.IntN(3) == 0 {
						gs = append(gs, randomScalar(r))
					} else {
						gs = append(gs, []any{"team-a", "team-b", "ops", "x"}[r.IntN(4)])
					}
				}
				user["groups"] = gs
			}
		}
		if r.IntN(2) == 0 {
			user["level"] = randomScalar(r)
		}
		in["user"] = user
		if r.IntN(10) == 0 {
			in["user"] = randomScalar(r)
		}
	}
	if r.IntN(5) != 0 {
		if r.IntN(2) == 0 {
			in["action"] = []any{"read", "list", "write", "delete"}[r.IntN(4)]
		} else {
			in["action"] = randomScalar(r)
		}
	}
	if r.IntN(2) == 0 {
		var ws []any
		for range r.IntN(5) {
			ws = append(ws, randomScalar(r))
		}
		in["weights"] = ws
	}
	if r.IntN(2) == 0 {
		lim := map[string]any{}
		for i := range r.IntN(4) {
			lim[fmt.Sprintf("l%d", i)] = randomScalar(r)
		}
		in["limits"] = lim
		if r.IntN(5) == 0 {
			in["limits"] = randomScalar(r)
		}
	}
	return in
}

func TestRandomInputsMatchOPA(t *testing.T) {
	modules := mod(randomPolicy)
	entrypoints := []string{"test/allow", "test/reasons", "test/score", "test/limits", "test/summary", "test/tier"}
	prog := compileProgram(t, modules, entrypoints...)
	data := map[string]any{}
	pqs := map[string]rego.PreparedEvalQuery{}
	for _, ep := range entrypoints {
		pqs[ep] = opaPrepare(t, modules, data, ep)
	}
	r := rand.New(rand.NewPCG(20240611, 7))
	const n = 600
	seen := map[string]map[string]bool{} // entrypoint -> distinct outcomes
	for i := range n {
		raw := randomInput(r)
		input := raw
		if raw != noInput {
			input = roundTrip(t, raw)
		}
		e := env(t, data, input)
		for _, ep := range entrypoints {
			want := opaEval(t, pqs[ep], input)
			got := planevalEval(t, prog, ep, e)
			compare(t, fmt.Sprintf("#%d %s %s", i, ep, describe(raw)), want, got)
			if seen[ep] == nil {
				seen[ep] = map[string]bool{}
			}
			seen[ep][want.String()] = true
		}
	}
	// The generator must exercise more than one outcome per rule.
	for _, ep := range entrypoints {
		if len(seen[ep]) < 2 {
			t.Errorf("%s: only outcomes %v over %d inputs", ep, seen[ep], n)
		}
	}
}

type bogusStmt struct{ ir.Location }

func minimalPolicy(stmts ...ir.Stmt) *ir.Policy {
	return &ir.Policy{
		Static: &ir.Static{Strings: []*ir.StringConst{{Value: "result"}}},
		Plans:  &ir.Plans{Plans: []*ir.Plan{{Name: "test/p", Blocks: []*ir.Block{{Stmts: stmts}}}}},
		Funcs:  &ir.Funcs{},
	}
}

func TestCompileRejects(t *testing.T) {
	t.Run("unknown builtin", func(t *testing.T) {
		p := minimalPolicy(&ir.CallStmt{Func: "no.such.builtin", Args: []ir.Operand{{Value: ir.Local(0)}}, Result: 2})
		p.Static.BuiltinFuncs = []*ir.BuiltinFunc{{Name: "no.such.builtin"}}
		_, err := planeval.Compile(p)
		if err == nil || !strings.Contains(err.Error(), "no.such.builtin") {
			t.Fatalf("Compile = %v, want an error naming no.such.builtin", err)
		}
	})
	t.Run("call of undeclared function", func(t *testing.T) {
		p := minimalPolicy(&ir.CallStmt{Func: "g0.data.nope", Args: []ir.Operand{{Value: ir.Local(0)}}, Result: 2})
		_, err := planeval.Compile(p)
		if err == nil || !strings.Contains(err.Error(), "g0.data.nope") {
			t.Fatalf("Compile = %v, want an error naming g0.data.nope", err)
		}
	})
	t.Run("unknown statement", func(t *testing.T) {
		p := minimalPolicy(&ir.MakeObjectStmt{Target: 2}, &bogusStmt{})
		_, err := planeval.Compile(p)
		if err == nil || !strings.Contains(err.Error(), "bogusStmt") || !strings.Contains(err.Error(), "not supported") {
			t.Fatalf("Compile = %v, want an error naming the unsupported statement", err)
		}
	})
	t.Run("empty plan", func(t *testing.T) {
		if _, err := planeval.Compile(&ir.Policy{}); err == nil {
			t.Fatal("Compile of an empty policy succeeded")
		}
	})
	t.Run("hand-built plan runs", func(t *testing.T) {
		// Sanity check of the hand-built shape: result := {"result": 7}.
		p := minimalPolicy(
			&ir.MakeNumberIntStmt{Value: 7, Target: 2},
			&ir.MakeObjectStmt{Target: 3},
			&ir.ObjectInsertStmt{Key: ir.Operand{Value: ir.StringIndex(0)}, Value: ir.Operand{Value: ir.Local(2)}, Object: 3},
			&ir.ResultSetAddStmt{Value: 3},
		)
		prog, err := planeval.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := prog.Eval(context.Background(), "test/p", planeval.Env{Data: ast.ObjectTerm()})
		if err != nil || got == nil || !got.Equal(ast.IntNumberTerm(7)) {
			t.Fatalf("Eval = %v, %v; want 7", got, err)
		}
	})
}

// countdownCtx is a context whose Err turns to context.Canceled after a
// number of calls.
type countdownCtx struct {
	context.Context
	left atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestEvalErrors(t *testing.T) {
	prog := compileProgram(t, mod(`package test
allow if input.x == 1
slow := count([1 | some a in numbers.range(1, 400); some b in numbers.range(1, 400)])
`), "test/allow", "test/slow")
	e := planeval.Env{Input: ast.ObjectTerm(ast.Item(ast.StringTerm("x"), ast.IntNumberTerm(1))), Data: ast.ObjectTerm()}

	got, err := prog.Eval(context.Background(), "test/allow", e)
	if err != nil || got == nil || !got.Equal(ast.BooleanTerm(true)) {
		t.Fatalf("Eval(test/allow) = %v, %v; want true", got, err)
	}

	_, err = prog.Eval(context.Background(), "test/nope", e)
	if !errors.Is(err, planeval.ErrUnknownEntrypoint) {
		t.Fatalf("Eval(unknown) = %v, want ErrUnknownEntrypoint", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err = prog.Eval(ctx, "test/allow", e)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Eval(cancelled) = %v, %v; want context.Canceled", got, err)
	}
	// Cancelled part way through a long iteration: the context reports
	// cancellation only after the evaluation has started.
	cd := &countdownCtx{Context: context.Background()}
	cd.left.Store(2)
	if got, err := prog.Eval(cd, "test/slow", e); !errors.Is(err, context.Canceled) {
		t.Fatalf("Eval(cancelled while running) = %v, %v; want context.Canceled", got, err)
	}
	// And an uncancelled run of the same plan completes.
	got, err = prog.Eval(context.Background(), "test/slow", e)
	if err != nil || got == nil || !got.Equal(ast.IntNumberTerm(400*400)) {
		t.Fatalf("Eval(slow) = %v, %v", got, err)
	}
}

func TestConcurrentEval(t *testing.T) {
	modules := mod(randomPolicy)
	entrypoints := []string{"test/allow", "test/reasons", "test/score", "test/limits", "test/summary", "test/tier"}
	prog := compileProgram(t, modules, entrypoints...)
	r := rand.New(rand.NewPCG(1, 2))
	type job struct {
		ep  string
		env planeval.Env
	}
	var jobs []job
	for range 60 {
		raw := randomInput(r)
		input := raw
		if raw != noInput {
			input = roundTrip(t, raw)
		}
		for _, ep := range entrypoints {
			jobs = append(jobs, job{ep, env(t, map[string]any{}, input)})
		}
	}
	want := make([]outcome, len(jobs))
	for i, j := range jobs {
		want[i] = planevalEval(t, prog, j.ep, j.env)
	}
	const workers = 8
	results := make([][]outcome, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out := make([]outcome, len(jobs))
			for k := range 5 {
				// Each worker walks the jobs in its own order.
				for i := range jobs {
					idx := (i + w*37 + k*11) % len(jobs)
					term, err := prog.Eval(context.Background(), jobs[idx].ep, jobs[idx].env)
					o := outcome{err: err, undefined: term == nil && err == nil}
					if term != nil {
						raw, jerr := ast.JSON(term.Value)
						if jerr != nil {
							o.err = jerr
						} else {
							b, _ := json.Marshal(raw)
							o.text = string(b)
							o.value = js(string(b))
						}
					}
					out[idx] = o
				}
			}
			results[w] = out
		}()
	}
	close(start)
	wg.Wait()
	for w, out := range results {
		for i := range jobs {
			compare(t, fmt.Sprintf("worker %d job %d %s", w, i, jobs[i].ep), want[i], out[i])
		}
	}
}

const benchPolicy = `package test

default allow := false

allow if {
	some role in data.bindings[input.subject]
	some grant in data.roles[role]
	grant.action == input.action
	glob.match(grant.resource, ["/"], input.resource)
}

denials contains msg if {
	not input.subject
	msg := "missing subject"
}

denials contains sprintf("action %s not allowed on %s", [input.action, input.resource]) if not allow

decision := {"allow": allow, "denials": denials, "n": count(denials)}
`

func benchData() map[string]any {
	roles := map[string]any{}
	bindings := map[string]any{}
	for i := range 50 {
		var grants []any
		for j := range 10 {
			grants = append(grants, map[string]any{"action": fmt.Sprintf("act%d", j), "resource": fmt.Sprintf("/svc%d/*", (i+j)%20)})
		}
		roles[fmt.Sprintf("role%d", i)] = grants
	}
	for i := range 200 {
		bindings[fmt.Sprintf("user%d", i)] = []any{fmt.Sprintf("role%d", i%50), fmt.Sprintf("role%d", (i*7)%50)}
	}
	return map[string]any{"roles": roles, "bindings": bindings}
}

func BenchmarkEval(b *testing.B) {
	data := roundTrip(b, benchData()).(map[string]any)
	input := roundTrip(b, map[string]any{"subject": "user17", "action": "act3", "resource": "/svc9/items"})
	modules := mod(benchPolicy)
	prog := compileProgram(b, modules, "test/decision")
	e := env(b, data, input)
	pq := opaPrepare(b, modules, data, "test/decision")

	want := opaEval(b, pq, input)
	got := planevalEval(b, prog, "test/decision", e)
	compare(b, "bench decision", want, got)
	if want.undefined || want.err != nil {
		b.Fatalf("benchmark policy gives %v", want)
	}

	b.Run("planeval", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := prog.Eval(ctx, "test/decision", e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rego", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pq.Eval(ctx, rego.EvalInput(input)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rego-parsed-input", func(b *testing.B) {
		ctx := context.Background()
		parsed := e.Input.Value
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pq.Eval(ctx, rego.EvalParsedInput(parsed)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
