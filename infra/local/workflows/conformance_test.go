package workflows_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// Each case's expectation comes from the cited Google reference page.
type conformanceCase struct {
	name string
	ref  string // Google's reference page for the behaviour
	src  string
	arg  any
	want any    // decoded JSON result; nil with wantErr set means failure
	err  string // substring of the error payload when the execution must fail
}

const (
	refVariables  = "https://cloud.google.com/workflows/docs/reference/syntax/variables"
	refExpr       = "https://cloud.google.com/workflows/docs/reference/syntax/expressions"
	refDatatypes  = "https://cloud.google.com/workflows/docs/reference/syntax/datatypes"
	refConditions = "https://cloud.google.com/workflows/docs/reference/syntax/conditions"
	refJumps      = "https://cloud.google.com/workflows/docs/reference/syntax/jumps"
	refCompleting = "https://cloud.google.com/workflows/docs/reference/syntax/completing"
	refIteration  = "https://cloud.google.com/workflows/docs/reference/syntax/iteration"
	refParallel   = "https://cloud.google.com/workflows/docs/reference/syntax/parallel-steps"
	refCatching   = "https://cloud.google.com/workflows/docs/reference/syntax/catching-errors"
	refRaising    = "https://cloud.google.com/workflows/docs/reference/syntax/raising-errors"
	refRetrying   = "https://cloud.google.com/workflows/docs/reference/syntax/retrying"
	refSubs       = "https://cloud.google.com/workflows/docs/reference/syntax/subworkflows"
	refEnv        = "https://cloud.google.com/workflows/docs/reference/environment-variables"
	refStdlib     = "https://cloud.google.com/workflows/docs/reference/stdlib/overview"
	refQuotas     = "https://cloud.google.com/workflows/quotas"
	refCallbacks  = "https://cloud.google.com/workflows/docs/creating-callback-endpoints"
	refAwait      = "https://cloud.google.com/workflows/docs/reference/stdlib/events/await_callback"
	refSleep      = "https://cloud.google.com/workflows/docs/reference/stdlib/sys/sleep"
	refCancel     = "https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/cancel"
	refExecList   = "https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/list"
	refWFCreate   = "https://cloud.google.com/workflows/docs/reference/rest/v1/projects.locations.workflows/create"
	refHTTPGet    = "https://cloud.google.com/workflows/docs/reference/stdlib/http/get"
)

func TestConformance(t *testing.T) {
	cases := []conformanceCase{
		{name: "assign creates and updates variables, maps and lists", ref: refVariables, src: `
- a:
    assign:
      - n: 1
      - n: ${n + 1}
      - m: {}
      - m.k: "v"
      - m["other"]: 2
      - l: [1, 2, 3]
      - l[1]: 20
- r:
    return: '${[n, m, l]}'`, want: []any{2.0, map[string]any{"k": "v", "other": 2.0}, []any{1.0, 20.0, 3.0}}},
		{name: "arithmetic keeps integers and doubles apart", ref: refDatatypes, src: `
- r:
    return: ${[5 + 2, 5 / 2, 5 // 2, 5 % 2, 5.0 * 2, get_type(5 / 1), get_type(5 // 2), get_type(1 + 1.0)]}`,
			want: []any{7.0, 2.5, 2.0, 1.0, 10.0, "double", "integer", "double"}},
		{name: "operator precedence: multiplicative before additive before comparison before and before or", ref: refExpr, src: `
- r:
    return: ${[1 + 2 * 3, (1 + 2) * 3, 1 + 1 == 2 and 3 > 2, true or false and false, -2 * 3, not true == false]}`,
			want: []any{7.0, 9.0, true, true, -6.0, true}},
		{name: "string escapes and concatenation", ref: refDatatypes, src: `
- r:
    return: ${"a\"b\\c\n" + 'd' + "\u0041"}`, want: "a\"b\\c\nd" + "A"},
		{name: "in operator on lists and map keys", ref: refExpr, src: `
- a:
    assign:
      - m: {"k": 1}
- r:
    return: '${["k" in m, "z" in m, 2 in [1, 2], 3 in [1, 2]]}'`, want: []any{true, false, true, false}},
		{name: "switch takes the first true condition and next jumps", ref: refConditions, src: `
main:
  params: [x]
  steps:
    - s:
        switch:
          - condition: ${x < 0}
            next: neg
          - condition: ${x < 10}
            next: small
        next: big
    - neg:
        return: "neg"
    - small:
        return: "small"
    - big:
        return: "big"`, arg: 5, want: "small"},
		{name: "switch condition with steps falls through to the next step", ref: refConditions, src: `
- init:
    assign:
      - out: []
- s:
    switch:
      - condition: true
        steps:
          - inner:
              assign:
                - out: ${list.concat(out, "inner")}
- after:
    return: '${list.concat(out, "after")}'`, want: []any{"inner", "after"}},
		{name: "next: end stops the workflow with a null result", ref: refJumps, src: `
- a:
    next: end
- b:
    return: "unreachable"`, want: nil},
		{name: "return ends with a value", ref: refCompleting, src: `
- a:
    return: {"ok": true}
- b:
    raise: "unreachable"`, want: map[string]any{"ok": true}},
		{name: "for over a list with index", ref: refIteration, src: `
- init:
    assign:
      - out: []
- l:
    for:
      value: v
      index: i
      in: ["a", "b"]
      steps:
        - add:
            assign:
              - out: ${list.concat(out, string(i) + v)}
- r:
    return: '${out}'`, want: []any{"0a", "1b"}},
		{name: "for over map keys", ref: refIteration, src: `
- init:
    assign:
      - m: {"b": 2, "a": 1}
      - total: 0
- l:
    for:
      value: k
      in: ${keys(m)}
      steps:
        - add:
            assign:
              - total: ${total + m[k]}
- r:
    return: ${total}`, want: 3.0},
		{name: "for over an inclusive range with break and continue", ref: refIteration, src: `
- init:
    assign:
      - seen: []
- l:
    for:
      value: v
      range: [1, 9]
      steps:
        - odd:
            switch:
              - condition: ${v % 2 == 1}
                next: continue
        - stop:
            switch:
              - condition: ${v > 6}
                next: break
        - add:
            assign:
              - seen: ${list.concat(seen, v)}
- r:
    return: '${seen}'`, want: []any{2.0, 4.0, 6.0}},
		{name: "loop variables do not exist after the loop", ref: refIteration, src: `
- l:
    for:
      value: v
      in: [1]
      steps:
        - inner:
            assign:
              - local: ${v}
- r:
    return: ${local}`, err: "KeyError"},
		{name: "variables created in a loop do not exist outside it; outer ones are updated", ref: "https://cloud.google.com/workflows/docs/samples/workflows-loop-scope", src: `
- init:
    assign:
      - outer: "start"
- loopA:
    for:
      value: a
      in: [1, 2]
      steps:
        - inA:
            assign:
              - onlyInA: ${outer}
        - loopB:
            for:
              value: b
              in: [3, 4]
              steps:
                - inB:
                    assign:
                      - outer: ${b}
                      - onlyInB: ${onlyInA}
- final:
    return: ${[outer, "onlyInA" in {}, get_type(outer)]}`, want: []any{4.0, false, "integer"}},
		{name: "a loop variable is unknown after the loop", ref: "https://cloud.google.com/workflows/docs/samples/workflows-loop-scope", src: `
- loopA:
    for:
      value: a
      in: [1]
      steps:
        - noop:
            assign:
              - x: ${a}
- final:
    return: ${a}`, err: "KeyError"},
		{name: "parallel branches assign shared variables", ref: refParallel, src: `
- init:
    assign:
      - a: 0
      - b: 0
- p:
    parallel:
      shared: [a, b]
      branches:
        - one:
            steps:
              - s1:
                  assign:
                    - a: 1
        - two:
            steps:
              - s2:
                  assign:
                    - b: 2
- r:
    return: ${a + b}`, want: 3.0},
		{name: "parallel for with concurrency_limit sums into a shared variable", ref: refParallel, src: `
- init:
    assign:
      - total: 0
- p:
    parallel:
      shared: [total]
      concurrency_limit: 2
      for:
        value: v
        in: [1, 2, 3, 4, 5]
        steps:
          - add:
              assign:
                - total: ${total + v}
- r:
    return: ${total}`, want: 15.0},
		{name: "an unhandled branch error surfaces after all branches ran (continueAll)", ref: refParallel, src: `
- init:
    assign:
      - ran: false
- t:
    try:
      steps:
        - p:
            parallel:
              shared: [ran]
              exception_policy: continueAll
              branches:
                - bad:
                    steps:
                      - boom:
                          raise: "bad branch"
                - good:
                    steps:
                      - ok:
                          assign:
                            - ran: true
    except:
      as: e
      steps:
        - r:
            return: '${[ran, e.tags]}'`, want: []any{true, []any{"UnhandledBranchError"}}},
		{name: "except catches a raised map with its fields", ref: refCatching, src: `
- t:
    try:
      steps:
        - boom:
            raise:
              code: 55
              message: "custom"
    except:
      as: e
      steps:
        - r:
            return: '${e}'`, want: map[string]any{"code": 55.0, "message": "custom"}},
		{name: "raise of a string fails the execution with that payload", ref: refRaising, src: `
- boom:
    raise: "something went wrong"`, err: `"something went wrong"`},
		{name: "built-in errors carry tags", ref: refCatching, src: `
- init:
    assign:
      - tags: []
- t1:
    try:
      assign:
        - x: ${1 / 0}
    except:
      as: e
      steps:
        - a1:
            assign:
              - tags: ${list.concat(tags, e.tags[0])}
- t2:
    try:
      assign:
        - x: '${{}["missing"]}'
    except:
      as: e
      steps:
        - a2:
            assign:
              - tags: ${list.concat(tags, e.tags[0])}
- t3:
    try:
      assign:
        - x: ${"a" + 1}
    except:
      as: e
      steps:
        - a3:
            assign:
              - tags: ${list.concat(tags, e.tags[0])}
- t4:
    try:
      assign:
        - x: ${[1][5]}
    except:
      as: e
      steps:
        - a4:
            assign:
              - tags: ${list.concat(tags, e.tags[0])}
- r:
    return: '${tags}'`, want: []any{"ZeroDivisionError", "KeyError", "TypeError", "IndexError"}},
		{name: "subworkflow with default parameters and result", ref: refSubs, src: `
main:
  steps:
    - c1:
        call: greet
        args:
          name: "Ada"
        result: a
    - c2:
        call: greet
        args:
          name: "Bob"
          greeting: "Hi"
        result: b
    - r:
        return: ${[a, b, greet("Cy")]}
greet:
  params: [name, greeting: "Hello"]
  steps:
    - r:
        return: '${greeting + " " + name}'`, want: []any{"Hello Ada", "Hi Bob", "Hello Cy"}},
		{name: "subworkflow variables are local to the call", ref: refSubs, src: `
main:
  steps:
    - a:
        assign:
          - x: "outer"
    - c:
        call: sub
    - r:
        return: ${x}
sub:
  steps:
    - a:
        assign:
          - x: "inner"`, want: "outer"},
		{name: "built-in environment variables", ref: refEnv, src: `
- r:
    return: ${[sys.get_env("GOOGLE_CLOUD_PROJECT_ID"), sys.get_env("GOOGLE_CLOUD_LOCATION"), sys.get_env("GOOGLE_CLOUD_WORKFLOW_ID"), len(sys.get_env("GOOGLE_CLOUD_WORKFLOW_REVISION_ID")) > 0, len(sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")) == 36]}`,
			want: []any{"test-project", "us-central1", "wf", true, true}},
		{name: "standard library: conversions and types", ref: refStdlib, src: `
- r:
    return: '${[int("42"), int(2.9), double("1.5"), string(7), bool("true"), get_type(null), get_type([]), get_type({}), default(null, "d"), len("héllo"), keys({"b": 1, "a": 2})]}'`,
			want: []any{42.0, 2.0, 1.5, "7", true, "null", "list", "map", "d", 5.0, []any{"a", "b"}}},
		{name: "standard library: text", ref: "https://cloud.google.com/workflows/docs/reference/stdlib/text/overview", src: `
- r:
    return: ${[text.to_upper("ab"), text.split("a,b", ","), text.replace_all("aXbX", "X", "-"), text.substring("hello", 1, 3), text.find_all("abab", "b")[1].index, text.match_regex("abc123", "[0-9]+"), text.url_encode("a b&c"), text.decode(text.encode("ok"))]}`,
			want: []any{"AB", []any{"a", "b"}, "a-b-", "el", 3.0, true, "a%20b%26c", "ok"}},
		{name: "standard library: json, base64, hash", ref: refStdlib, src: `
- r:
    return: '${[json.decode("{\"a\": [1, 2.5]}"), json.encode_to_string({"k": [1]}), text.decode(base64.decode(base64.encode(text.encode("hi")))), base64.encode(hash.compute_checksum(text.encode("abc"), "SHA256"))]}'`,
			want: []any{map[string]any{"a": []any{1.0, 2.5}}, `{"k":[1]}`, "hi", "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="}},
		{name: "standard library: math, list, map", ref: refStdlib, src: `
- r:
    return: '${[math.abs(-3), math.floor(2.7), math.max(1, 2.5), math.min(4, 3), list.concat([1], 2), list.prepend([2], 1), map.get({"a": {"b": 1}}, ["a", "b"]), map.get({}, "x"), map.merge({"a": 1}, {"b": 2}), map.delete({"a": 1, "b": 2}, "a"), map.merge_nested({"a": {"x": 1}}, {"a": {"y": 2}})]}'`,
			want: []any{3.0, 2.0, 2.5, 3.0, []any{1.0, 2.0}, []any{1.0, 2.0}, 1.0, nil, map[string]any{"a": 1.0, "b": 2.0}, map[string]any{"b": 2.0}, map[string]any{"a": map[string]any{"x": 1.0, "y": 2.0}}}},
		{name: "standard library: time and uuid", ref: refStdlib, src: `
- r:
    return: ${[time.format(0), time.parse("1970-01-01T00:01:00Z"), len(uuid.generate()), get_type(sys.now())]}`,
			want: []any{"1970-01-01T00:00:00.000000Z", 60.0, 36.0, "double"}},
		{name: "step limit raises ResourceLimitError", ref: refQuotas, src: `
- l:
    for:
      value: v
      range: [1, 200000]
      steps:
        - a:
            assign:
              - x: ${v}`, err: "ResourceLimitError"},
		{name: "variable memory limit raises ResourceLimitError", ref: refQuotas, src: `
- init:
    assign:
      - s: "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      - l: []
- grow:
    for:
      value: v
      range: [1, 8000]
      steps:
        - add:
            assign:
              - l: ${list.concat(l, s)}`, err: "ResourceLimitError"},
		{name: "recursion beyond the call depth raises RecursionError", ref: refQuotas, src: `
main:
  steps:
    - c:
        call: down
        args:
          n: 0
down:
  params: [n]
  steps:
    - c:
        call: down
        args:
          n: ${n + 1}`, err: "RecursionError"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("reference: %s", c.ref)
			emu := workflowstest.New(t)
			id := fmt.Sprintf("case-%d", i)
			if strings.Contains(c.src, "GOOGLE_CLOUD_WORKFLOW_ID") {
				id = "wf"
			}
			wf := emu.Deploy(id, c.src)
			ex := emu.Run(wf, c.arg)
			if c.err != "" {
				if ex.State != "FAILED" || ex.Error == nil || !strings.Contains(ex.Error.Payload, c.err) {
					t.Fatalf("want FAILED with %q, got %s %+v result=%s", c.err, ex.State, ex.Error, ex.Result)
				}
				return
			}
			var got any
			emu.Result(ex, &got)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(c.want)
			if string(gb) != string(wb) {
				t.Fatalf("result %s, want %s", gb, wb)
			}
		})
	}
}

// Reference: refRetrying. A custom predicate and backoff: delays are
// initial_delay, then multiplied, capped at max_delay; the step re-runs
// after each delay and only when the predicate says so.
func TestConformanceRetryBackoffAndPredicate(t *testing.T) {
	t.Logf("reference: %s", refRetrying)
	emu := workflowstest.New(t)
	wf := emu.Deploy("retry", `
main:
  steps:
    - init:
        assign:
          - n: 0
          - t0: ${sys.now()}
          - times: []
    - t:
        try:
          steps:
            - inc:
                assign:
                  - n: ${n + 1}
                  - times: ${list.concat(times, sys.now() - t0)}
            - fail:
                switch:
                  - condition: ${n < 4}
                    raise: {"code": 503}
        retry:
          predicate: ${only503}
          max_retries: 5
          backoff:
            initial_delay: 10
            max_delay: 25
            multiplier: 2
    - r:
        return: ${times}
only503:
  params: [e]
  steps:
    - check:
        return: ${e.code == 503}`)
	ex := emu.Run(wf, nil)
	if ex.State != "ACTIVE" {
		t.Fatalf("want ACTIVE in backoff, got %s", ex.State)
	}
	emu.Advance(9 * time.Second)
	if ex = emu.Get(ex.Name); ex.State != "ACTIVE" {
		t.Fatalf("retried before initial_delay: %s", ex.State)
	}
	emu.Advance(time.Hour)
	var times []float64
	emu.Result(emu.Get(ex.Name), &times)
	want := []float64{0, 10, 30, 55} // delays 10, 20, 25 (capped)
	if len(times) != len(want) {
		t.Fatalf("attempt times %v, want %v", times, want)
	}
	for i := range want {
		if times[i] != want[i] {
			t.Fatalf("attempt times %v, want %v", times, want)
		}
	}

	// The predicate saying no ends retrying at once.
	wf2 := emu.Deploy("retry-no", `
main:
  steps:
    - t:
        try:
          steps:
            - fail:
                raise: {"code": 400}
        retry:
          predicate: ${only503}
          max_retries: 5
          backoff:
            initial_delay: 1
            max_delay: 1
            multiplier: 1
only503:
  params: [e]
  steps:
    - check:
        return: ${e.code == 503}`)
	ex2 := emu.Run(wf2, nil)
	if ex2.State != "FAILED" || !strings.Contains(ex2.Error.Payload, "400") {
		t.Fatalf("want FAILED with code 400 without retrying, got %s %+v", ex2.State, ex2.Error)
	}
}

// Reference: refHTTPGet and refRetrying: http.* makes real requests, a
// non-2xx answer raises HttpError with code and body, and
// http.default_retry retries 503.
func TestConformanceHTTP(t *testing.T) {
	t.Logf("reference: %s, %s", refHTTPGet, refRetrying)
	var calls atomic.Int32
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky":
			if calls.Add(1) < 3 {
				w.WriteHeader(503)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true,"q":"` + r.URL.Query().Get("q") + `"}`))
		case "/echo":
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"got": body, "auth": r.Header.Get("X-Test")})
		default:
			w.WriteHeader(404)
			_, _ = w.Write([]byte("nope"))
		}
	}))
	defer fn.Close()
	emu := workflowstest.New(t)
	wf := emu.Deploy("http", `
main:
  params: [base]
  steps:
    - get:
        try:
          call: http.get
          args:
            url: ${base + "/flaky"}
            query:
              q: "x"
            auth:
              type: OIDC
          result: r1
        retry: ${http.default_retry}
    - post:
        call: http.post
        args:
          url: ${base + "/echo"}
          headers:
            X-Test: "yes"
          body:
            n: 1
        result: r2
    - missing:
        try:
          call: http.get
          args:
            url: ${base + "/missing"}
        except:
          as: e
          steps:
            - r:
                return: ${[r1.code, r1.body, r2.body, e.code, e.body, e.tags]}`)
	ex := emu.Run(wf, fn.URL)
	emu.Advance(time.Minute) // two default_retry backoffs
	var got []any
	emu.Result(emu.Get(ex.Name), &got)
	b, _ := json.Marshal(got)
	want := `[200,{"ok":true,"q":"x"},{"auth":"yes","got":{"n":1}},404,"nope",["HttpError"]]`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	if calls.Load() != 3 {
		t.Fatalf("flaky endpoint called %d times, want 3", calls.Load())
	}
}

// Reference: refCallbacks and refAwait: the endpoint URL receives the
// request; await_callback returns http_request with method, headers, query
// and a JSON body parsed; the execution waits until then.
func TestConformanceCallbacks(t *testing.T) {
	t.Logf("reference: %s, %s", refCallbacks, refAwait)
	emu := workflowstest.New(t)
	wf := emu.Deploy("cb", `
- create:
    call: events.create_callback_endpoint
    args:
      http_callback_method: PUT
    result: cb
- await:
    call: events.await_callback
    args:
      callback: ${cb}
      timeout: 3600
    result: req
- r:
    return: ${[req.http_request.method, req.http_request.body, req.http_request.query.k, req.type, text.match_regex(req.http_request.url, "/callbacks/"), get_type(req.received_time)]}`)
	ex := emu.Run(wf, nil)
	if ex.State != "ACTIVE" || ex.Status.CurrentSteps[0].Step != "await" {
		t.Fatalf("want waiting at await, got %+v", ex)
	}
	var cbs struct {
		Callbacks []struct {
			Name    string `json:"name"`
			Method  string `json:"method"`
			Waiters string `json:"waiters"`
		} `json:"callbacks"`
	}
	emu.Do("GET", "/v1/"+ex.Name+"/callbacks", nil, &cbs)
	if len(cbs.Callbacks) != 1 || cbs.Callbacks[0].Method != "PUT" || cbs.Callbacks[0].Waiters != "1" {
		t.Fatalf("callbacks list: %+v", cbs)
	}
	if !strings.HasPrefix(cbs.Callbacks[0].Name, ex.Name+"/callbacks/") {
		t.Fatalf("callback %s is not under the execution %s", cbs.Callbacks[0].Name, ex.Name)
	}
	url := emu.URL() + "/v1/" + cbs.Callbacks[0].Name
	if code := emu.Callback("POST", url, map[string]any{}); code != 404 {
		t.Fatalf("wrong method answered %d, want 404", code)
	}
	if code := emu.Callback("PUT", url+"?k=v", map[string]any{"approved": true}); code != 200 {
		t.Fatalf("callback answered %d", code)
	}
	var got []any
	emu.Result(emu.Get(ex.Name), &got)
	b, _ := json.Marshal(got)
	if string(b) != `["PUT",{"approved":true},["v"],"HTTP",true,"string"]` {
		t.Fatalf("got %s", b)
	}
	if code := emu.Callback("PUT", url, map[string]any{}); code != 404 {
		t.Fatalf("callback to a finished execution answered %d, want 404", code)
	}
}

// Reference: refAwait: a callback not received within timeout raises
// TimeoutError; and a 24-hour veto window closes in virtual time.
func TestConformanceCallbackTimeout(t *testing.T) {
	t.Logf("reference: %s", refAwait)
	emu := workflowstest.New(t)
	wf := emu.Deploy("veto", `
- create:
    call: events.create_callback_endpoint
    result: cb
- await:
    try:
      call: events.await_callback
      args:
        callback: ${cb}
        timeout: 86400
      result: req
    except:
      as: e
      steps:
        - implicit:
            return: ${"implicit approval after " + e.tags[0]}
- vetoed:
    return: "vetoed"`)
	ex := emu.Run(wf, nil)
	emu.Advance(23 * time.Hour)
	if ex = emu.Get(ex.Name); ex.State != "ACTIVE" {
		t.Fatalf("window closed early: %s", ex.State)
	}
	emu.Advance(time.Hour)
	var got string
	emu.Result(emu.Get(ex.Name), &got)
	if got != "implicit approval after TimeoutError" {
		t.Fatalf("got %q", got)
	}
}

// Reference: refSleep: sys.sleep suspends for the given seconds.
func TestConformanceSleep(t *testing.T) {
	t.Logf("reference: %s", refSleep)
	emu := workflowstest.New(t)
	wf := emu.Deploy("sleep", `
- t0:
    assign:
      - start: ${sys.now()}
- s:
    call: sys.sleep
    args:
      seconds: 7200
- r:
    return: ${sys.now() - start}`)
	ex := emu.Run(wf, nil)
	if ex.State != "ACTIVE" || ex.Status.CurrentSteps[0].Step != "s" {
		t.Fatalf("want sleeping at s, got %+v", ex)
	}
	// A zero-second sleep returns at once, even on a virtual clock that
	// stands still.
	wf0 := emu.Deploy("sleep0", "- s:\n    call: sys.sleep\n    args:\n      seconds: 0\n- r:\n    return: 0\n")
	if st := emu.Run(wf0, nil).State; st != "SUCCEEDED" {
		t.Fatalf("zero sleep: %s", st)
	}
	emu.Advance(7199 * time.Second)
	if emu.Get(ex.Name).State != "ACTIVE" {
		t.Fatal("woke early")
	}
	emu.Advance(time.Second)
	var got float64
	emu.Result(emu.Get(ex.Name), &got)
	if got != 7200 {
		t.Fatalf("slept %v s", got)
	}
}

// Reference: refCancel: cancel ends an execution CANCELLED (not FAILED),
// including one waiting on a callback, and it stays CANCELLED.
func TestConformanceCancel(t *testing.T) {
	t.Logf("reference: %s", refCancel)
	emu := workflowstest.New(t)
	wf := emu.Deploy("cancel", `
- create:
    call: events.create_callback_endpoint
    result: cb
- await:
    call: events.await_callback
    args:
      callback: ${cb}
- r:
    return: "done"`)
	ex := emu.Run(wf, nil)
	var cancelled workflowstest.Execution
	if code := emu.Do("POST", "/v1/"+ex.Name+":cancel", map[string]any{}, &cancelled); code != 200 || cancelled.State != "CANCELLED" {
		t.Fatalf("cancel: %d %+v", code, cancelled)
	}
	emu.Advance(48 * time.Hour)
	if got := emu.Get(ex.Name); got.State != "CANCELLED" {
		t.Fatalf("after time passed: %s", got.State)
	}
	var e struct {
		Error struct {
			Code   int    `json:"code"`
			Status string `json:"status"`
		} `json:"error"`
	}
	if code := emu.Do("POST", "/v1/"+ex.Name+":cancel", map[string]any{}, &e); code != 400 || e.Error.Status != "FAILED_PRECONDITION" {
		t.Fatalf("second cancel: %d %+v", code, e)
	}
}

// Reference: refWFCreate: invalid definitions are rejected at deploy,
// naming the step.
func TestConformanceDeployRejection(t *testing.T) {
	t.Logf("reference: %s", refWFCreate)
	cases := []struct{ name, src, want string }{
		{"yaml syntax", "- a:\n    assign: [x: 1\n", "parse"},
		{"unknown next target", "- a:\n    next: nowhere\n", `step "a" (line 1): next: unknown step "nowhere"`},
		{"unknown function in call", "- a:\n    call: nosuch.fn\n", `step "a" (line 1): unknown function or subworkflow "nosuch.fn"`},
		{"unknown function in expression", "- a:\n    return: ${nosuch(1)}\n", `step "a"`},
		{"wrong arity", "- a:\n    return: ${len(1, 2)}\n", `step "a" (line 1): expression "len(1, 2)": function "len" takes 1 arguments, got 2`},
		{"bad expression", "- a:\n    return: ${1 +}\n", `step "a"`},
		{"missing subworkflow argument", "main:\n  steps:\n    - a:\n        call: sub\nsub:\n  params: [x]\n  steps:\n    - r:\n        return: ${x}\n", `step "a" (line 3): subworkflow "sub": missing argument "x"`},
		{"unknown call argument", "- a:\n    call: sys.sleep\n    args:\n      secs: 1\n", `step "a" (line 1): function "sys.sleep" has no argument "secs"`},
		{"break outside loop", "- a:\n    next: break\n", `step "a" (line 1): next: break outside a for loop`},
		{"no main", "other:\n  steps:\n    - a:\n        return: 1\n", "missing main"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			emu := workflowstest.New(t)
			var e struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
					Status  string `json:"status"`
				} `json:"error"`
			}
			code := emu.Do("POST", "/v1/"+workflowstest.Parent+"/workflows?workflowId=bad"+string(rune('a'+i)), map[string]any{"sourceContents": c.src}, &e)
			if code != 400 || e.Error.Status != "INVALID_ARGUMENT" || e.Error.Code != 400 || !strings.Contains(e.Error.Message, c.want) {
				t.Fatalf("got %d %+v, want 400 INVALID_ARGUMENT containing %q", code, e, c.want)
			}
		})
	}
}

// Reference: refWFCreate and the Workflows v1 REST pages: create returns
// an Operation readable at GET /v1/{name}; patch makes a new revision;
// delete removes the workflow.
func TestWorkflowsAPI(t *testing.T) {
	t.Logf("reference: %s", refWFCreate)
	emu := workflowstest.New(t)
	var op struct {
		Name     string         `json:"name"`
		Done     bool           `json:"done"`
		Response map[string]any `json:"response"`
	}
	if code := emu.Do("POST", "/v1/"+workflowstest.Parent+"/workflows?workflowId=api", map[string]any{"sourceContents": "- r:\n    return: 1\n", "description": "d"}, &op); code != 200 || !op.Done {
		t.Fatalf("create: %d %+v", code, op)
	}
	var op2 map[string]any
	if code := emu.Do("GET", "/v1/"+op.Name, nil, &op2); code != 200 || op2["done"] != true {
		t.Fatalf("get operation: %d %+v", code, op2)
	}
	var wf map[string]any
	emu.Do("GET", "/v1/"+workflowstest.Parent+"/workflows/api", nil, &wf)
	rev1, _ := wf["revisionId"].(string)
	if wf["description"] != "d" || !strings.HasPrefix(rev1, "000001-") {
		t.Fatalf("get: %+v", wf)
	}
	emu.Do("PATCH", "/v1/"+workflowstest.Parent+"/workflows/api", map[string]any{"sourceContents": "- r:\n    return: 2\n"}, &op)
	emu.Do("GET", "/v1/"+workflowstest.Parent+"/workflows/api", nil, &wf)
	if rev2, _ := wf["revisionId"].(string); !strings.HasPrefix(rev2, "000002-") {
		t.Fatalf("patch did not make revision 2: %+v", wf)
	}
	var list struct {
		Workflows []map[string]any `json:"workflows"`
	}
	emu.Do("GET", "/v1/"+workflowstest.Parent+"/workflows", nil, &list)
	if len(list.Workflows) != 1 {
		t.Fatalf("list: %+v", list)
	}
	emu.Do("GET", "/v1/"+workflowstest.Parent+"/workflows/api:listRevisions", nil, &list)
	if len(list.Workflows) != 2 || list.Workflows[0]["revisionId"] == rev1 || list.Workflows[1]["revisionId"] != rev1 {
		t.Fatalf("listRevisions: %+v", list)
	}
	if code := emu.Do("POST", "/v1/"+workflowstest.Parent+"/workflows?workflowId=api", map[string]any{"sourceContents": "- r:\n    return: 1\n"}, nil); code != 409 {
		t.Fatalf("duplicate create: %d", code)
	}
	if code := emu.Do("DELETE", "/v1/"+workflowstest.Parent+"/workflows/api", nil, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	var e struct {
		Error struct {
			Code   int    `json:"code"`
			Status string `json:"status"`
		} `json:"error"`
	}
	if code := emu.Do("GET", "/v1/"+workflowstest.Parent+"/workflows/api", nil, &e); code != 404 || e.Error.Status != "NOT_FOUND" || e.Error.Code != 404 {
		t.Fatalf("get deleted: %d %+v", code, e)
	}
}

// Reference: refExecList: list pages with pageSize/pageToken, newest first,
// and filters on state.
func TestExecutionsList(t *testing.T) {
	t.Logf("reference: %s", refExecList)
	emu := workflowstest.New(t)
	wf := emu.Deploy("list", `
main:
  params: [a]
  steps:
    - s:
        switch:
          - condition: ${a == 0}
            steps:
              - w:
                  call: sys.sleep
                  args:
                    seconds: 100
    - r:
        return: ${a}`)
	for i := 0; i < 5; i++ {
		emu.Run(wf, i)
	}
	var page struct {
		Executions    []workflowstest.Execution `json:"executions"`
		NextPageToken string                    `json:"nextPageToken"`
	}
	emu.Do("GET", "/v1/"+wf+"/executions?pageSize=2", nil, &page)
	if len(page.Executions) != 2 || page.NextPageToken == "" || page.Executions[0].Argument != "4" {
		t.Fatalf("first page: %+v", page)
	}
	seen := len(page.Executions)
	for page.NextPageToken != "" {
		tok := page.NextPageToken
		page.NextPageToken = ""
		emu.Do("GET", "/v1/"+wf+"/executions?pageSize=2&pageToken="+tok, nil, &page)
		seen += len(page.Executions)
	}
	if seen != 5 {
		t.Fatalf("paged through %d executions, want 5", seen)
	}
	emu.Do("GET", "/v1/"+wf+`/executions?filter=state%3D%22ACTIVE%22`, nil, &page)
	if len(page.Executions) != 1 || page.Executions[0].Argument != "0" {
		t.Fatalf("ACTIVE filter: %+v", page.Executions)
	}
	var steps struct {
		StepEntries []struct {
			Step    string `json:"step"`
			Routine string `json:"routine"`
		} `json:"stepEntries"`
	}
	emu.Do("GET", "/v1/"+page.Executions[0].Name+"/stepEntries", nil, &steps)
	if len(steps.StepEntries) != 2 || steps.StepEntries[0].Step != "s" || steps.StepEntries[1].Step != "w" {
		t.Fatalf("stepEntries: %+v", steps)
	}
}

// Reference: refCallbacks: an endpoint accepts the one method it was
// created with, for each of GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH.
func TestConformanceCallbackMethods(t *testing.T) {
	t.Logf("reference: %s", refCallbacks)
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			emu := workflowstest.New(t)
			wf := emu.Deploy("m", `
main:
  params: [method]
  steps:
    - create:
        call: events.create_callback_endpoint
        args:
          http_callback_method: ${method}
        result: cb
    - await:
        call: events.await_callback
        args:
          callback: ${cb}
        result: req
    - r:
        return: '${[req.http_request.method, req.http_request.query]}'`)
			ex := emu.Run(wf, method)
			var cbs struct {
				Callbacks []struct{ Name string } `json:"callbacks"`
			}
			emu.Do("GET", "/v1/"+ex.Name+"/callbacks", nil, &cbs)
			if len(cbs.Callbacks) != 1 {
				t.Fatalf("callbacks: %+v", cbs)
			}
			req, err := http.NewRequest(method, emu.URL()+"/v1/"+cbs.Callbacks[0].Name+"?a=1&a=2", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s callback answered %d", method, resp.StatusCode)
			}
			emu.Service.WaitIdle()
			var got []any
			emu.Result(emu.Get(ex.Name), &got)
			b, _ := json.Marshal(got)
			if string(b) != `["`+method+`",{"a":["1","2"]}]` {
				t.Fatalf("got %s", b)
			}
		})
	}
}

// Reference: the Execution resource
// (https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions#Execution):
// a failed execution has error.payload (the error as JSON), error.context
// and error.stackTrace with the failing step first, then its callers.
func TestExecutionErrorShape(t *testing.T) {
	emu := workflowstest.New(t)
	wf := emu.Deploy("err", `main:
  steps:
    - first:
        assign:
          - x: 1
    - callit:
        call: inner
inner:
  steps:
    - boom:
        raise:
          code: 7
          tags: ["Custom"]
`)
	ex := emu.Run(wf, nil)
	if ex.State != "FAILED" || ex.Error == nil {
		t.Fatalf("want FAILED, got %+v", ex)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(ex.Error.Payload), &payload); err != nil || payload["code"] != 7.0 {
		t.Fatalf("payload %q: %v", ex.Error.Payload, err)
	}
	el := ex.Error.StackTrace.Elements
	if len(el) != 2 || el[0].Step != "boom" || el[0].Routine != "inner" || el[1].Step != "callit" || el[1].Routine != "main" {
		t.Fatalf("stackTrace %+v", el)
	}
	if !strings.Contains(ex.Error.Context, `"boom"`) || !strings.Contains(ex.Error.Context, "line: 10") {
		t.Fatalf("context %q", ex.Error.Context)
	}
	var raw map[string]any
	emu.Do("GET", "/v1/"+ex.Name, nil, &raw)
	pos := raw["error"].(map[string]any)["stackTrace"].(map[string]any)["elements"].([]any)[0].(map[string]any)["position"].(map[string]any)
	if pos["line"] != "10" {
		t.Fatalf("position %v", pos)
	}
}

// Reading an execution never waits for a slow http.* call it is making.
func TestGetDuringSlowHTTPCall(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write([]byte("ok"))
	}))
	defer slow.Close()
	defer close(release)
	emu := workflowstest.New(t)
	wf := emu.Deploy("slow", `
main:
  params: [u]
  steps:
    - call:
        call: http.get
        args:
          url: ${u}
        result: r
    - done:
        return: ${r.body}`)
	var ex workflowstest.Execution
	emu.Do("POST", "/v1/"+wf+"/executions", map[string]any{"argument": `"` + slow.URL + `"`}, &ex)
	done := make(chan workflowstest.Execution, 1)
	go func() {
		var got workflowstest.Execution
		for i := 0; i < 100; i++ {
			emu.Do("GET", "/v1/"+ex.Name, nil, &got)
			if got.State == "ACTIVE" {
				break
			}
		}
		done <- got
	}()
	select {
	case got := <-done:
		if got.State != "ACTIVE" {
			t.Fatalf("state %s", got.State)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GET blocked behind a running http call")
	}
}

// Reference: the Workflow Executions connector
// (https://cloud.google.com/workflows/docs/reference/googleapis/workflowexecutions/v1/projects.locations.workflows.executions/run):
// run starts a child execution, waits for it and returns its result, or
// raises its error.
func TestChildExecutions(t *testing.T) {
	emu := workflowstest.New(t)
	emu.Deploy("child", `
main:
  params: [args]
  steps:
    - nap:
        call: sys.sleep
        args:
          seconds: 60
    - check:
        switch:
          - condition: ${args.n < 0}
            raise:
              message: "negative"
              code: 400
    - r:
        return: ${args.n * 2}`)
	wf := emu.Deploy("parent", `
- ok:
    call: googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run
    args:
      workflow_id: child
      argument:
        n: 21
    result: doubled
- bad:
    try:
      call: googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run
      args:
        workflow_id: child
        argument:
          n: -1
    except:
      as: e
      steps:
        - r:
            return: ${[doubled, e.message, e.code]}`)
	ex := emu.Run(wf, nil)
	if ex.State != "ACTIVE" || ex.Status.CurrentSteps[0].Step != "ok" {
		t.Fatalf("parent should wait on its child: %+v", ex)
	}
	emu.Advance(2 * time.Minute)
	var got []any
	emu.Result(emu.Get(ex.Name), &got)
	b, _ := json.Marshal(got)
	if string(b) != `[42,"negative",400]` {
		t.Fatalf("got %s", b)
	}
}
