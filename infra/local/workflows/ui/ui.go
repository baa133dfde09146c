// Package ui serves a small read-only page over the emulator: workflows,
// executions with state, current step and duration, one execution's step
// history and pending callbacks.
package ui

import (
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/engine"
	"waooaw.dev/governance/infra/local/workflows/service"
)

var page = template.Must(template.New("ui").Funcs(template.FuncMap{
	"short": func(n string) string { return n[strings.LastIndex(n, "/")+1:] },
	"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"ts":    func(n int64) string { return time.Unix(0, n).UTC().Format("15:04:05.000") },
	"steps": func(c []engine.TraceElem) string {
		var out []string
		for _, e := range c {
			out = append(out, e.Routine+"."+e.Step)
		}
		return strings.Join(out, ", ")
	},
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Workflows emulator</title>
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.ACTIVE{color:#0b62c4}.SUCCEEDED{color:#137333}.FAILED{color:#c5221f}.CANCELLED{color:#777}
pre{background:#f7f7f7;padding:8px;max-width:60em;overflow:auto}
</style></head><body>
<h1>Workflows emulator</h1>
<p>Clock: {{.Now}} · <a href="?{{.Query}}&amp;refresh=2">refresh every 2 s</a></p>
<h2>Workflows</h2>
<table><tr><th>workflow</th><th>revision</th><th>executions</th></tr>
{{range .Workflows}}<tr><td><a href="?workflow={{.Name}}">{{short .Name}}</a></td><td>{{.RevisionID}}</td><td>{{index $.PerWF .Name}}</td></tr>{{end}}
</table>
{{if .Workflow}}<h2>Executions of {{short .Workflow}}</h2>
<table><tr><th>execution</th><th>state</th><th>current step</th><th>duration</th><th>started</th></tr>
{{range .Executions}}<tr><td><a href="?workflow={{$.Workflow}}&execution={{.Name}}">{{short .Name}}</a></td><td class="{{.State}}">{{.State}}</td><td>{{steps .Current}}</td><td>{{dur .Duration}}</td><td>{{.StartTime.Format "2006-01-02 15:04:05"}}</td></tr>{{end}}
</table>{{end}}
{{if .Execution}}<h2>Execution {{short .Execution.Name}} <span class="{{.Execution.State}}">{{.Execution.State}}</span></h2>
<p>Argument:</p><pre>{{.Execution.Argument}}</pre>
{{if .Execution.Result}}<p>Result:</p><pre>{{.Execution.Result}}</pre>{{end}}
{{if .Execution.Error}}<p>Error:</p><pre>{{.Execution.Error.Payload}}
{{.Execution.Error.Context}}</pre>{{end}}
<h3>Pending callbacks</h3>
<table><tr><th>url</th><th>method</th><th>awaited</th><th>queued requests</th></tr>
{{range .Callbacks}}<tr><td>{{$.Base}}/v1/{{.Execname}}/callbacks/{{.ID}}</td><td>{{.Method}}</td><td>{{.Waiting}}</td><td>{{.Queued}}</td></tr>{{end}}
</table>
<h3>Step history (last {{len .Steps}})</h3>
<table><tr><th>#</th><th>routine</th><th>step</th><th>time</th></tr>
{{range .Steps}}<tr><td>{{.Seq}}</td><td>{{.Routine}}</td><td>{{.Step}}</td><td>{{ts .Time}}</td></tr>{{end}}
</table>{{end}}
</body></html>`))

// Handler serves the page at "/" (mount it under /ui/).
func Handler(svc *service.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := struct {
			Now        string
			Base       string
			Workflows  []*service.Workflow
			PerWF      map[string]int
			Workflow   string
			Executions []service.View
			Execution  *service.View
			Callbacks  []service.CallbackInfo
			Steps      []engine.StepEntry
			Refresh    int
			Query      template.URL
		}{Now: svc.Now().UTC().Format(time.RFC3339), Base: "http://" + r.Host, PerWF: map[string]int{}}
		q := r.URL.Query()
		if n, err := strconv.Atoi(q.Get("refresh")); err == nil && n > 0 {
			data.Refresh = n
		}
		q.Del("refresh")
		data.Query = template.URL(q.Encode())
		for _, n := range svc.WorkflowNames() {
			wf, err := svc.GetWorkflow(n)
			if err != nil {
				continue
			}
			data.Workflows = append(data.Workflows, wf)
			list, _, _ := svc.ListExecutions(n, 1000, "", "")
			data.PerWF[n] = len(list)
		}
		if wf := q.Get("workflow"); wf != "" {
			data.Workflow = wf
			data.Executions, _, _ = svc.ListExecutions(wf, 200, "", "")
		}
		if ex := q.Get("execution"); ex != "" {
			v, err := svc.GetExecution(ex)
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			data.Execution = &v
			data.Callbacks, _ = svc.ListCallbacks(ex)
			steps, _ := svc.StepEntries(ex)
			sort.Slice(steps, func(i, j int) bool { return steps[i].Seq > steps[j].Seq })
			if len(steps) > 200 {
				steps = steps[:200]
			}
			data.Steps = steps
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, data); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}
