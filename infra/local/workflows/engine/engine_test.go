package engine

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

type testHost struct{ now time.Time }

func (h *testHost) Now() time.Time { return h.now }
func (h *testHost) Getenv(name string) (string, bool) {
	return map[string]string{"GOOGLE_CLOUD_PROJECT_ID": "p"}[name], name == "GOOGLE_CLOUD_PROJECT_ID"
}
func (h *testHost) CallbackURL(id string) string { return "http://x/v1/e/callbacks/" + id }
func (h *testHost) HTTPClient() *http.Client     { return http.DefaultClient }
func (h *testHost) Log(string, any)              {}

// noNetwork fails every request: engine tests (and fuzzed programs) must
// never reach out of the machine.
var noNetwork = &http.Client{Transport: refuse{}}

type refuse struct{}

func (refuse) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("engine tests make no network requests")
}

// runToEnd runs src, jumping the clock to each timer and round-tripping the
// state through Encode/DecodeState at every wait point, as the server does.
func runToEnd(t *testing.T, src string, arg any) (*State, *testHost) {
	t.Helper()
	prog, err := lang.Compile(src, stdlib.Signatures{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	h := &testHost{now: time.Unix(1700000000, 0)}
	x, err := New(prog, h, arg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		switch x.Run(1 << 20) {
		case Done:
			return x.St, h
		case Waiting:
			b, err := x.St.Encode()
			if err != nil {
				t.Fatal(err)
			}
			st, err := DecodeState(b)
			if err != nil {
				t.Fatal(err)
			}
			x = Restore(prog, h, st)
			d := x.NextDeadline()
			if d == 0 {
				t.Fatalf("execution waits forever")
			}
			h.now = time.Unix(0, d)
			x.Wake(d)
		}
	}
	t.Fatal("did not finish")
	return nil, nil
}

func TestEngine(t *testing.T) {
	cases := []struct {
		name, src string
		arg       any
		want      string // JSON result, or error message substring with "!" prefix
	}{
		{"assign and return", `
- a:
    assign:
      - x: 1
      - y: ${x + 2}
- b:
    return: ${y}`, nil, "3"},
		{"for list with index", `
- init:
    assign:
      - s: ""
- loop:
    for:
      value: v
      index: i
      in: ["a", "b", "c"]
      steps:
        - add:
            assign:
              - s: ${s + string(i) + v}
- done:
    return: ${s}`, nil, `"0a1b2c"`},
		{"for range with break and continue", `
- init:
    assign:
      - total: 0
- loop:
    for:
      value: v
      range: [1, 10]
      steps:
        - skip:
            switch:
              - condition: ${v % 2 == 0}
                next: continue
              - condition: ${v > 7}
                next: break
        - add:
            assign:
              - total: ${total + v}
- done:
    return: ${total}`, nil, "16"},
		{"subworkflow with default", `
main:
  params: [args]
  steps:
    - c:
        call: greet
        args:
          name: ${args.name}
        result: r
    - d:
        return: ${r}
greet:
  params: [name, greeting: "Hello"]
  steps:
    - r:
        return: ${greeting + " " + name}`, map[string]any{"name": "Ada"}, `"Hello Ada"`},
		{"try except", `
- t:
    try:
      steps:
        - boom:
            raise:
              code: 7
    except:
      as: e
      steps:
        - h:
            return: ${e.code}`, nil, "7"},
		{"retry with predicate and backoff", `
main:
  steps:
    - init:
        assign:
          - n: 0
          - t0: ${sys.now()}
    - t:
        try:
          steps:
            - inc:
                assign:
                  - n: ${n + 1}
            - maybe:
                switch:
                  - condition: ${n < 3}
                    raise: "again"
        retry:
          predicate: ${pred}
          max_retries: 5
          backoff:
            initial_delay: 2
            max_delay: 10
            multiplier: 3
    - out:
        return: ${[n, sys.now() - t0]}
pred:
  params: [e]
  steps:
    - r:
        return: ${e == "again"}`, nil, "[3,8.0]"},
		{"parallel shared", `
- init:
    assign:
      - total: 0
- p:
    parallel:
      shared: [total]
      for:
        value: v
        in: [1, 2, 3, 4]
        steps:
          - s:
              call: sys.sleep
              args:
                seconds: ${v}
          - add:
              assign:
                - total: ${total + v}
- r:
    return: ${total}`, nil, "10"},
		{"parallel branches error", `
- p:
    parallel:
      branches:
        - a:
            steps:
              - x:
                  raise: "bad"
        - b:
            steps:
              - y:
                  assign:
                    - z: 1`, nil, "!UnhandledBranchError"},
		{"integer and double", `
- r:
    return: ${[7 // 2, 7 / 2, 7 % 3, -7 // 2, 1 + 2.5, int("12"), double(3)]}`, nil, "[3,3.5,1,-4,3.5,12,3.0]"},
		{"in and precedence", `
- r:
    return: '${[2 + 3 * 4, "a" in ["a"], "k" in {"k": 1}, not false and true, 1 < 2 or false]}'`, nil, "[14,true,true,true,true]"},
		{"map and index", `
- a:
    assign:
      - m: {"a": {"b": [10, 20]}}
      - m.a.c: 5
      - m["a"]["b"][1]: 21
- r:
    return: ${m}`, nil, `{"a":{"b":[10,21],"c":5}}`},
		{"key error", `
- r:
    return: ${{}.missing}`, nil, "!key not found"},
		{"env", `
- r:
    return: ${sys.get_env("GOOGLE_CLOUD_PROJECT_ID")}`, nil, `"p"`},
		{"next leaves a loop for an enclosing step", `
- init:
    assign:
      - n: 0
- l:
    for:
      value: v
      in: [1, 2, 3]
      steps:
        - count:
            assign:
              - n: ${n + 1}
        - out:
            switch:
              - condition: ${v == 2}
                next: after
- never:
    return: "loop ended normally"
- after:
    return: ${n}`, nil, "2"},
		{"next and end", `
- a:
    next: c
- b:
    return: "b"
- c:
    next: end`, nil, "null"},
		{"step limit", `
- l:
    for:
      value: v
      range: [1, 200000]
      steps:
        - a:
            assign:
              - x: ${v}`, nil, "!Maximum number of steps"},
		{"callback timeout", `
- c:
    call: events.create_callback_endpoint
    result: cb
- t:
    try:
      call: events.await_callback
      args:
        callback: ${cb}
        timeout: 60
      result: r
    except:
      as: e
      steps:
        - r:
            return: ${e.tags}`, nil, `["TimeoutError"]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _ := runToEnd(t, c.src, c.arg)
			if strings.HasPrefix(c.want, "!") {
				if !st.Failed || !strings.Contains(string(st.ErrVal), c.want[1:]) {
					t.Fatalf("want error %q, got failed=%v err=%s result=%s", c.want[1:], st.Failed, st.ErrVal, st.Result)
				}
				return
			}
			if st.Failed {
				t.Fatalf("failed: %s (%s)", st.ErrVal, st.ErrCtx)
			}
			if string(st.Result) != c.want {
				t.Fatalf("result %s, want %s", st.Result, c.want)
			}
		})
	}
}
