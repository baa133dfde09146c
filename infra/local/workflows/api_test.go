package workflows_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// Errors have Google's JSON shape {"error":{"code","message","status"}}.
func TestAPIErrors(t *testing.T) {
	emu := workflowstest.New(t)
	wf := emu.Deploy("e", "- r:\n    return: 1\n")
	cases := []struct {
		name, method, path string
		body               any
		code               int
		status             string
	}{
		{"unknown execution", "GET", "/v1/" + wf + "/executions/nope", nil, 404, "NOT_FOUND"},
		{"unknown workflow", "POST", "/v1/" + workflowstest.Parent + "/workflows/nope/executions", map[string]any{}, 404, "NOT_FOUND"},
		{"argument not JSON", "POST", "/v1/" + wf + "/executions", map[string]any{"argument": "{"}, 400, "INVALID_ARGUMENT"},
		{"bad workflow id", "POST", "/v1/" + workflowstest.Parent + "/workflows?workflowId=1bad", map[string]any{"sourceContents": "- r:\n    return: 1\n"}, 400, "INVALID_ARGUMENT"},
		{"unsupported filter", "GET", "/v1/" + wf + "/executions?filter=labels.x%3D1", nil, 400, "INVALID_ARGUMENT"},
		{"bad page token", "GET", "/v1/" + wf + "/executions?pageToken=zz", nil, 400, "INVALID_ARGUMENT"},
		{"unknown path", "GET", "/v1/nothing", nil, 404, "NOT_FOUND"},
		{"unknown callback", "POST", "/v1/" + wf + "/executions/x/callbacks/y", map[string]any{}, 404, "NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e apiError
			code := emu.Do(c.method, c.path, c.body, &e)
			if code != c.code || e.Error.Code != c.code || e.Error.Status != c.status || e.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", code, e, c.code, c.status)
			}
		})
	}
}

// The clock API refuses to move a real clock.
func TestClockAdvanceNeedsVirtualClock(t *testing.T) {
	srv, err := workflows.Start(context.Background(), workflows.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Post(srv.URL()+"/emulator/v1/clock:advance", "application/json", strings.NewReader(`{"seconds": 5}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "FAILED_PRECONDITION") {
		t.Fatalf("advance on a real clock: %d %s", resp.StatusCode, b)
	}
}

// The /ui/ page shows workflows, executions with state and current step,
// one execution's step history and its pending callback URL.
func TestUIPage(t *testing.T) {
	emu := workflowstest.New(t)
	wf := emu.Deploy("uiflow", `
- create:
    call: events.create_callback_endpoint
    result: cb
- await:
    call: events.await_callback
    args:
      callback: ${cb}
`)
	ex := emu.Run(wf, map[string]any{"k": "v"})
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(emu.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	home := get("/ui/")
	if !strings.Contains(home, "uiflow") {
		t.Fatalf("workflow missing from /ui/:\n%s", home)
	}
	if auto := get("/ui/?refresh=2"); !strings.Contains(auto, `http-equiv="refresh" content="2"`) {
		t.Fatalf("no auto refresh:\n%s", auto)
	}
	list := get("/ui/?workflow=" + wf)
	if !strings.Contains(list, "ACTIVE") || !strings.Contains(list, "main.await") {
		t.Fatalf("execution state or current step missing:\n%s", list)
	}
	one := get("/ui/?workflow=" + wf + "&execution=" + ex.Name)
	for _, want := range []string{"/callbacks/", ">create<", ">await<", "POST", "&#34;k&#34;"} {
		if !strings.Contains(one, want) {
			t.Fatalf("execution page lacks %q:\n%s", want, one)
		}
	}
}

// Options.Token supplies the bearer token of http.* calls with auth.
func TestHTTPAuthUsesTokenOption(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"auth":"` + r.Header.Get("Authorization") + `"}`))
	}))
	defer fn.Close()
	emu := workflowstest.NewWithOptions(t, workflows.Options{Token: func(kind, aud string) (string, error) {
		return "dev-" + kind, nil
	}})
	wf := emu.Deploy("auth", `
main:
  params: [u]
  steps:
    - c:
        call: http.post
        args:
          url: ${u}
          auth:
            type: OIDC
        result: r
    - out:
        return: ${r.body.auth}`)
	var got string
	emu.Result(emu.Run(wf, fn.URL), &got)
	if got != "Bearer dev-OIDC" {
		t.Fatalf("Authorization %q", got)
	}
}
