package ui_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// staged has main's steps named as agent creation names its stages, a sys.log line
// in two of them, and a callback awaited (with a one-hour timeout) in a subworkflow.
const staged = `main:
  params: [args]
  steps:
    - stage_1_prepare:
        steps:
          - note:
              call: sys.log
              args:
                text: ${"preparing " + args.name}
                severity: INFO
          - make:
              call: events.create_callback_endpoint
              args:
                http_callback_method: POST
              result: cb
    - stage_2_wait:
        call: wait_for
        args:
          cb: ${cb}
        result: got
    - stage_3_done:
        steps:
          - log_done:
              call: sys.log
              args:
                json:
                  outcome: ${got.http_request.body.outcome}
                severity: NOTICE
          - out:
              return: ${got.http_request.body}
wait_for:
  params: [cb]
  steps:
    - await:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 3600
        result: r
    - back:
        return: ${r}
`

// lineOf is the 1-based line of the first source line holding s.
func lineOf(t *testing.T, src, s string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the source", s)
	return 0
}

type page struct {
	path    string
	want    []string
	notWant []string
}

func get(t *testing.T, emu *workflowstest.Emulator, path string) string {
	t.Helper()
	resp, err := http.Get(emu.URL() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func check(t *testing.T, emu *workflowstest.Emulator, name string, pages []page) {
	t.Helper()
	for _, p := range pages {
		body := get(t, emu, p.path)
		for _, w := range p.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %s lacks %q", name, p.path, w)
			}
		}
		for _, w := range p.notWant {
			if strings.Contains(body, w) {
				t.Errorf("%s: %s holds %q", name, p.path, w)
			}
		}
		if t.Failed() {
			t.Fatalf("%s: page %s:\n%s", name, p.path, body)
		}
	}
}

// start creates an execution with labels, as a client of the Executions API does.
func start(t *testing.T, emu *workflowstest.Emulator, wf, argument string, labels map[string]string) string {
	t.Helper()
	var ex workflowstest.Execution
	if code := emu.Do("POST", "/v1/"+wf+"/executions", map[string]any{"argument": argument, "labels": labels}, &ex); code != 200 {
		t.Fatalf("create execution: HTTP %d", code)
	}
	emu.Service.WaitIdle()
	return ex.Name
}

func short(name string) string { return name[strings.LastIndex(name, "/")+1:] }

func exPage(wf, ex string) string {
	return "/ui/?" + url.Values{"workflow": {wf}, "execution": {ex}}.Encode()
}

// An execution's labels, argument, current step in the source, step history by stage,
// sys.log lines and callback deadline on the virtual clock are on its page; the list
// filters by state and by label; what a client wrote is shown as text, never as markup.
func TestExecutionPages(t *testing.T) {
	emu := workflowstest.New(t) // virtual clock from 2026-01-01 00:00 UTC
	wf := emu.Deploy("staged", staged)
	awaitLine := lineOf(t, staged, "- await:")

	waiting := start(t, emu, wf, `{"name":"<script>alert(1)</script>"}`,
		map[string]string{"request_id": "r-1", "engagement_id": "e-1"})
	answered := start(t, emu, wf, `{"name":"second"}`, map[string]string{"request_id": "r-2", "engagement_id": "e-1"})
	tagged := start(t, emu, wf, `{"name":"third"}`, map[string]string{"note": "<script>x</script>"})
	emu.Advance(10 * time.Minute)

	var cbs struct {
		Callbacks []struct{ Name string } `json:"callbacks"`
	}
	if code := emu.Do("GET", "/v1/"+answered+"/callbacks", nil, &cbs); code != 200 || len(cbs.Callbacks) != 1 {
		t.Fatalf("callbacks of %s: HTTP %d %+v", answered, code, cbs)
	}
	if code := emu.Callback("POST", emu.URL()+"/v1/"+cbs.Callbacks[0].Name, map[string]any{"outcome": "ok"}); code != 200 {
		t.Fatalf("callback: HTTP %d", code)
	}
	if ex := emu.Get(answered); ex.State != "SUCCEEDED" {
		t.Fatalf("%s is %s", answered, ex.State)
	}

	check(t, emu, "waiting execution", []page{{
		path: exPage(wf, waiting),
		want: []string{
			`<a class="label" href="?label=engagement_id%3De-1">engagement_id=e-1</a>`,
			`<a class="label" href="?label=request_id%3Dr-1">request_id=r-1</a>`,
			// the argument, indented and escaped
			"&#34;name&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;",
			// the waiting step, linked and marked in the source
			fmt.Sprintf(`<a class="current-step" href="#L%d">wait_for.await</a>`, awaitLine),
			fmt.Sprintf(`<div id="L%d" class="cur"><span class="n">%d</span>    - await:</div>`, awaitLine, awaitLine),
			// the callback awaited, its deadline an hour after it was awaited, 50 minutes left
			"<td>wait_for.await since 2026-01-01 00:00:00.000</td>",
			`<td class="deadline">2026-01-01 01:00:00.000 (in 50m0s)</td>`,
			// the sys.log line, as text
			"<td>INFO</td>", "<code>preparing &lt;script&gt;alert(1)&lt;/script&gt;</code>",
			// the history by stage: stage 1's three steps, stage 2 current and open
			`<details class="group" data-top="stage_1_prepare">`,
			"stage_1_prepare · 3 steps",
			`<details class="group" open data-top="stage_2_wait">`,
			"stage_2_wait <b>(current)</b> · 2 steps",
			"<td>wait_for</td><td>await</td>",
		},
		notWant: []string{"<script>alert", "Output", `class="err"`},
	}})

	check(t, emu, "answered execution", []page{{
		path: exPage(wf, answered),
		want: []string{
			`<pre class="result">{` + "\n  &#34;outcome&#34;: &#34;ok&#34;\n}</pre>",
			"<td>NOTICE</td>", "<code>{&#34;outcome&#34;:&#34;ok&#34;}</code>",
			`<details class="group" data-top="stage_3_done">`, "stage_3_done · 3 steps",
			"<h3>Pending callbacks</h3>\n<p>None.</p>",
		},
		notWant: []string{`class="cur"`, "(current)"},
	}})

	check(t, emu, "filters", []page{
		{
			path:    "/ui/?" + url.Values{"workflow": {wf}, "label": {"request_id=r-1"}}.Encode(),
			want:    []string{"1 found", short(waiting)},
			notWant: []string{short(answered), short(tagged)},
		},
		{ // the Console's syntax, across every workflow
			path:    "/ui/?" + url.Values{"label": {`labels.engagement_id="e-1"`}}.Encode(),
			want:    []string{"2 found", short(waiting), short(answered)},
			notWant: []string{short(tagged)},
		},
		{
			path:    "/ui/?" + url.Values{"workflow": {wf}, "state": {"SUCCEEDED"}}.Encode(),
			want:    []string{"1 found", short(answered), `<option value="SUCCEEDED" selected>`},
			notWant: []string{short(waiting), short(tagged)},
		},
		{
			path:    "/ui/?" + url.Values{"workflow": {wf}, "state": {"ACTIVE"}, "label": {"engagement_id=e-1"}}.Encode(),
			want:    []string{"1 found", short(waiting)},
			notWant: []string{short(answered), short(tagged)},
		},
		{ // a label held as text in the list and in the filter box
			path:    "/ui/?" + url.Values{"workflow": {wf}, "label": {"note"}}.Encode(),
			want:    []string{"1 found", short(tagged), "note=&lt;script&gt;x&lt;/script&gt;</a>"},
			notWant: []string{"<script>x", short(waiting)},
		},
	})

	// An hour on, the waits time out: the error is shown and the step it was raised in marked.
	emu.Advance(time.Hour)
	if ex := emu.Get(waiting); ex.State != "FAILED" {
		t.Fatalf("%s is %s after its timeout", waiting, ex.State)
	}
	check(t, emu, "failed execution", []page{{
		path: exPage(wf, waiting),
		want: []string{
			`<pre class="error">`, "TimeoutError",
			fmt.Sprintf(`<div id="L%d" class="err">`, awaitLine),
			"<h3>Pending callbacks</h3>\n<p>None.</p>",
			"<code>preparing &lt;script&gt;alert(1)&lt;/script&gt;</code>",
		},
		notWant: []string{`class="cur"`},
	}})
}

// An execution keeps its last engine.MaxLogs sys.log lines.
func TestLogsBounded(t *testing.T) {
	emu := workflowstest.New(t)
	wf := emu.Deploy("chatty", `main:
  steps:
    - lines:
        for:
          value: i
          range: [0, 149]
          steps:
            - say:
                call: sys.log
                args:
                  text: ${"line " + string(i)}
`)
	ex := emu.Run(wf, nil)
	if ex.State != "SUCCEEDED" {
		t.Fatalf("%s is %s", ex.Name, ex.State)
	}
	body := get(t, emu, exPage(wf, ex.Name))
	if n := strings.Count(body, `<tr class="log">`); n != engine.MaxLogs {
		t.Fatalf("%d log lines shown, want %d", n, engine.MaxLogs)
	}
	first := 150 - engine.MaxLogs
	if !strings.Contains(body, fmt.Sprintf("<code>line %d</code>", first)) || !strings.Contains(body, "<code>line 149</code>") ||
		strings.Contains(body, fmt.Sprintf("<code>line %d</code>", first-1)) {
		t.Fatalf("not the last %d lines:\n%s", engine.MaxLogs, body)
	}
}

// The history is grouped by the step of main each entry ran under, in order: a step
// of main run again starts a group of its own, and once the oldest half of a long
// history is dropped, the entries kept still name their step.
func TestHistoryGroups(t *testing.T) {
	emu := workflowstest.New(t)
	wf := emu.Deploy("rounds", `main:
  params: [args]
  steps:
    - init:
        assign:
          - n: 0
    - stage_1_round:
        assign:
          - n: ${n + 1}
    - stage_2_check:
        switch:
          - condition: ${n < 2}
            next: stage_1_round
    - stage_3_many:
        for:
          value: i
          range: ${[1, args.ticks]}
          steps:
            - tick:
                assign:
                  - x: ${i}
    - stage_4_end:
        return: ${n}
`)
	topRE := regexp.MustCompile(`<details class="group"(?: open)? data-top="([^"]*)">`)
	for _, tc := range []struct {
		name  string
		ticks int
		tops  []string
		first int // entries in the first group
	}{
		{"a loop back through main", 3,
			[]string{"init", "stage_1_round", "stage_2_check", "stage_1_round", "stage_2_check", "stage_3_many", "stage_4_end"}, 1},
		{"past the history's cap", engine.MaxHistory + 200, []string{"stage_3_many", "stage_4_end"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := emu.Run(wf, map[string]any{"ticks": tc.ticks})
			if ex.State != "SUCCEEDED" {
				t.Fatalf("%s is %s", ex.Name, ex.State)
			}
			body := get(t, emu, exPage(wf, ex.Name))
			var tops []string
			for _, m := range topRE.FindAllStringSubmatch(body, -1) {
				tops = append(tops, m[1])
			}
			if !slices.Equal(tops, tc.tops) {
				t.Fatalf("groups %v, want %v", tops, tc.tops)
			}
			if tc.first > 0 && !strings.Contains(body, fmt.Sprintf("%s · %d steps", tc.tops[0], tc.first)) {
				t.Fatalf("first group is not %d steps:\n%s", tc.first, body)
			}
		})
	}
}
