// Package ui serves the emulator's read-only web pages at /ui/: what the Cloud
// Console's Workflows pages show. Workflows; executions filtered by state and by
// label; and one execution's labels, argument and result or error, the source of
// its revision with the current step marked, its step history grouped by the step
// of main each entry ran under, its sys.log lines and its pending callbacks with
// their deadlines on the emulator's clock. Everything comes from the emulator's
// own state; the pages are Go templates embedded in the binary.
package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/service"
)

//go:embed templates/*.html
var files embed.FS

// maxListed bounds the executions one list shows; the count of all matches is shown beside it.
const maxListed = 200

// states are the states an execution list filters on, as the Console offers them.
var states = []string{service.StateActive, service.StateSucceeded, service.StateFailed, service.StateCancelled}

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"short": func(n string) string { return n[strings.LastIndex(n, "/")+1:] },
	"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"tsn":   func(n int64) string { return time.Unix(0, n).UTC().Format("2006-01-02 15:04:05.000") },
	"steps": func(c []engine.TraceElem) string {
		out := make([]string, 0, len(c))
		for _, e := range c {
			out = append(out, e.Routine+"."+e.Step)
		}
		return strings.Join(out, ", ")
	},
	"pretty": pretty,
}).ParseFS(files, "templates/*.html"))

// filter is what an execution list is narrowed to.
type filter struct {
	State  string
	Labels []labelMatch
}

// labelMatch is one label condition: key=value, or key alone for "has the label".
type labelMatch struct{ Key, Value string }

func (m labelMatch) String() string {
	if m.Value == "" {
		return m.Key
	}
	return m.Key + "=" + m.Value
}

// parseLabel reads "key=value" or the Console's `labels.key="value"`.
func parseLabel(s string) (labelMatch, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return labelMatch{}, false
	}
	k, v, _ := strings.Cut(s, "=")
	k = strings.TrimPrefix(strings.TrimSpace(k), "labels.")
	v = strings.Trim(strings.TrimSpace(v), `"`)
	return labelMatch{Key: k, Value: v}, k != ""
}

func (f filter) empty() bool { return f.State == "" && len(f.Labels) == 0 }

func (f filter) match(v service.View) bool {
	if f.State != "" && v.State != f.State {
		return false
	}
	for _, m := range f.Labels {
		got, ok := v.Labels[m.Key]
		if !ok || (m.Value != "" && got != m.Value) {
			return false
		}
	}
	return true
}

// srcLine is one line of a workflow's source as the page shows it.
type srcLine struct {
	N       int
	Text    string
	Current bool // a step an execution's thread is at
	Failed  bool // the step an error was raised in
}

// group is a run of step entries under one step of main.
type group struct {
	Top     string
	Entries []engine.StepEntry
	Current bool // the last group of an ACTIVE execution
}

// callback is a pending callback as the page shows it.
type callback struct {
	service.CallbackInfo
	URL  string
	Left time.Duration // until Deadline, on the emulator's clock
}

type listed struct {
	service.View
	LabelList []labelMatch
}

type pageData struct {
	Now      time.Time
	Base     string
	Refresh  int
	Query    template.URL
	States   []string
	Filter   filter
	FilterOn bool
	LabelIn  string

	Workflows []*service.Workflow
	PerWF     map[string]int

	Workflow   string
	Listed     bool
	Executions []listed
	Matched    int

	Execution *service.View
	Labels    []labelMatch
	Source    []srcLine
	Groups    []group
	StepCount int
	Logs      []engine.LogEntry
	Callbacks []callback
}

// Handler serves the pages at "/" (mount it under /ui/).
func Handler(svc *service.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, status, err := build(svc, r)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		var buf bytes.Buffer
		if err := page.Execute(&buf, d); err != nil {
			http.Error(w, fmt.Sprintf("ui: render: %v", err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = buf.WriteTo(w)
	})
}

func build(svc *service.Service, r *http.Request) (*pageData, int, error) {
	q := r.URL.Query()
	d := &pageData{Now: svc.Now().UTC(), Base: "http://" + r.Host, PerWF: map[string]int{}, States: states}
	if n, err := strconv.Atoi(q.Get("refresh")); err == nil && n > 0 {
		d.Refresh = n
	}
	q.Del("refresh")
	d.Query = template.URL(q.Encode())

	if s := q.Get("state"); s != "" {
		if !slices.Contains(states, s) {
			return nil, http.StatusBadRequest, fmt.Errorf("ui: unknown state %q", s)
		}
		d.Filter.State = s
	}
	var in []string
	for _, l := range q["label"] {
		for part := range strings.SplitSeq(l, ",") {
			if m, ok := parseLabel(part); ok {
				d.Filter.Labels = append(d.Filter.Labels, m)
				in = append(in, m.String())
			}
		}
	}
	d.LabelIn = strings.Join(in, ", ")
	d.FilterOn = !d.Filter.empty()

	for _, n := range svc.WorkflowNames() {
		wf, err := svc.GetWorkflow(n)
		if err != nil {
			continue
		}
		d.Workflows = append(d.Workflows, wf)
		list, _, _ := svc.ListExecutions(n, 1000, "", "")
		d.PerWF[n] = len(list)
	}

	d.Workflow = q.Get("workflow")
	ex := q.Get("execution")
	if ex == "" && (d.Workflow != "" || d.FilterOn) {
		d.Listed = true
		wfs := []string{d.Workflow}
		if d.Workflow == "" {
			wfs = svc.WorkflowNames()
		}
		var all []service.View
		for _, n := range wfs {
			list, _, err := svc.ListExecutions(n, 1000, "", "")
			if err != nil {
				return nil, http.StatusNotFound, fmt.Errorf("ui: executions of %s: %w", n, err)
			}
			for _, v := range list {
				if d.Filter.match(v) {
					all = append(all, v)
				}
			}
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].StartTime.After(all[j].StartTime) })
		d.Matched = len(all)
		for _, v := range all[:min(len(all), maxListed)] {
			d.Executions = append(d.Executions, listed{View: v, LabelList: sortedLabels(v.Labels)})
		}
	}

	if ex != "" {
		if err := execution(svc, d, ex); err != nil {
			return nil, http.StatusNotFound, err
		}
	}
	return d, http.StatusOK, nil
}

// execution fills in one execution's page.
func execution(svc *service.Service, d *pageData, name string) error {
	v, err := svc.GetExecution(name)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	d.Execution = &v
	d.Labels = sortedLabels(v.Labels)
	cbs, err := svc.ListCallbacks(name)
	if err != nil {
		return fmt.Errorf("ui: callbacks of %s: %w", name, err)
	}
	for _, c := range cbs {
		cb := callback{CallbackInfo: c, URL: d.Base + "/v1/" + c.Execname + "/callbacks/" + c.ID}
		if !c.Deadline.IsZero() {
			cb.Left = c.Deadline.Sub(d.Now)
		}
		d.Callbacks = append(d.Callbacks, cb)
	}
	if d.Logs, err = svc.Logs(name); err != nil {
		return fmt.Errorf("ui: logs of %s: %w", name, err)
	}
	steps, err := svc.StepEntries(name)
	if err != nil {
		return fmt.Errorf("ui: steps of %s: %w", name, err)
	}
	d.StepCount = len(steps)
	d.Groups = groups(steps, v.State == service.StateActive)
	src, err := svc.RevisionSource(v.Workflow, v.Revision)
	if err != nil {
		return fmt.Errorf("ui: source of %s: %w", name, err)
	}
	var failed []engine.TraceElem
	if v.Error != nil {
		failed = v.Error.StackTrace
	}
	d.Source = sourceLines(src, v.Current, failed)
	return nil
}

// groups splits a history into runs of entries under one step of main, in order: an
// entry naming a step of main starts a run (a step of main run again, looping back
// with next, starts a new one), an entry naming none continues the run before it.
func groups(steps []engine.StepEntry, active bool) []group {
	var out []group
	for _, s := range steps {
		if n := len(out); n > 0 && s.Top == "" {
			out[n-1].Entries = append(out[n-1].Entries, s)
			continue
		}
		out = append(out, group{Top: s.Top, Entries: []engine.StepEntry{s}})
	}
	if active && len(out) > 0 {
		out[len(out)-1].Current = true
	}
	return out
}

func sourceLines(src string, current, failed []engine.TraceElem) []srcLine {
	lines := strings.Split(strings.TrimRight(src, "\n"), "\n")
	out := make([]srcLine, len(lines))
	for i, l := range lines {
		out[i] = srcLine{N: i + 1, Text: l}
	}
	for _, c := range current {
		if c.Line > 0 && c.Line <= len(out) {
			out[c.Line-1].Current = true
		}
	}
	// The innermost element of a stack trace is the step the error was raised in.
	if len(failed) > 0 {
		if l := failed[0].Line; l > 0 && l <= len(out) {
			out[l-1].Failed = true
		}
	}
	return out
}

func sortedLabels(m map[string]string) []labelMatch {
	out := make([]labelMatch, 0, len(m))
	for k, v := range m {
		out = append(out, labelMatch{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// pretty indents JSON text for reading; anything else is shown as it is.
func pretty(s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		return s
	}
	return b.String()
}
