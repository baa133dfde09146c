package workflows_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// The four stage functions, as the workflow's environment names them.
const (
	genesis   = "genesis"
	architect = "architect"
	guardian  = "guardian"
	registry  = "registry"
)

var services = []string{genesis, architect, guardian, registry}

// start is where the emulator's virtual clock stands when a test begins.
var start = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// call is one request a stand-in received.
type call struct {
	Service string
	Path    string
	Body    map[string]any
	Auth    string    // the Authorization header
	Now     time.Time // the emulator's clock when it arrived
}

func (c call) key() string { return c.Service + " " + c.Path }

// answerFunc may override the contract's answer to a call; n counts the earlier calls to the
// same service and path. ok=false leaves the contract's answer.
type answerFunc func(c call, n int) (code int, body any, ok bool)

// harness is one emulator running agent_creation.yaml against four stand-in stage functions
// that answer as docs/agent-creation.md says and record every call.
type harness struct {
	t        testing.TB
	emu      *workflowstest.Emulator
	workflow string
	servers  map[string]*httptest.Server
	answer   answerFunc

	mu        sync.Mutex
	calls     []call
	approvals map[string]map[string]any // approval_id -> the body that opened it
	logs      []string
}

// newHarness starts the stand-ins (those named in down are not listening yet: connections
// to them are refused until bringUp) and an emulator on its virtual clock, and deploys the
// workflow with the stand-ins' URLs as its environment.
func newHarness(t testing.TB, answer answerFunc, down ...string) *harness {
	t.Helper()
	h := &harness{t: t, answer: answer, servers: map[string]*httptest.Server{}, approvals: map[string]map[string]any{}}
	env := map[string]string{}
	for _, svc := range services {
		srv := httptest.NewUnstartedServer(h.handler(svc))
		if contains(down, svc) {
			// Keep the port but refuse connections: the listener is closed until bringUp.
			srv.Listener.Close()
		} else {
			srv.Start()
		}
		h.servers[svc] = srv
		env[strings.ToUpper(svc)+"_URL"] = "http://" + srv.Listener.Addr().String()
		t.Cleanup(func() {
			if srv.URL != "" {
				srv.Close()
			}
		})
	}
	h.emu = workflowstest.NewWithOptions(t, workflows.Options{
		VirtualStart: start,
		Logf:         h.logf,
		Token:        func(kind, audience string) (string, error) { return kind + ":" + audience, nil },
	})
	src, err := os.ReadFile("agent_creation.yaml")
	if err != nil {
		t.Fatalf("read workflow: %v", err)
	}
	var op map[string]any
	if code := h.emu.Do("POST", "/v1/"+workflowstest.Parent+"/workflows?workflowId=agent_creation",
		map[string]any{"sourceContents": string(src), "userEnvVars": env}, &op); code != 200 {
		t.Fatalf("deploy agent_creation: HTTP %d: %v", code, op)
	}
	h.workflow = workflowstest.Parent + "/workflows/agent_creation"
	return h
}

// bringUp starts listening on a stand-in's reserved address.
func (h *harness) bringUp(svc string) {
	h.t.Helper()
	srv := h.servers[svc]
	ln, err := net.Listen("tcp", srv.Listener.Addr().String())
	if err != nil {
		h.t.Fatalf("bring up %s: %v", svc, err)
	}
	srv.Listener = ln
	srv.Start()
}

func (h *harness) logf(format string, args ...any) {
	h.mu.Lock()
	h.logs = append(h.logs, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func (h *harness) handler(svc string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := call{Service: svc, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Now: h.emu.Service.Now()}
		if err := json.Unmarshal(raw, &c.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		n := 0
		for _, p := range h.calls {
			if p.key() == c.key() {
				n++
			}
		}
		h.calls = append(h.calls, c)
		h.mu.Unlock()
		code, body, ok := 0, any(nil), false
		if h.answer != nil {
			code, body, ok = h.answer(c, n)
		}
		if !ok {
			code, body = h.contract(c)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
}

// Stage names and numbers by path, as the contract lists them.
var stageOf = map[string]struct {
	svc   string
	stage int
	ok    string // the outcome that moves on
}{
	"specification":       {genesis, 1, "accepted"},
	"way_of_working":      {genesis, 2, "complete"},
	"certification":       {genesis, 3, "certified"},
	"architecture_review": {architect, 4, "approved"},
	"ethics_review":       {guardian, 5, "cleared"},
	"governor_approval":   {genesis, 6, "awaiting_approval"},
	"deploy":              {registry, 7, "deploying"},
}

// verdict is a stage's answer with the given outcome and status.
func verdict(c call, outcome, status string, reasons ...string) map[string]any {
	name := strings.TrimPrefix(c.Path, "/v1/stages/")
	if reasons == nil {
		reasons = []string{}
	}
	return map[string]any{"stage": stageOf[name].stage, "name": name, "outcome": outcome, "reasons": reasons,
		"status": status, "trace": map[string]any{"rule": name + "-" + outcome}}
}

func agentID(requestID string) string {
	s := sha256.Sum256([]byte(requestID))
	return "agt-" + hex.EncodeToString(s[:])[:20]
}

// contract answers a call as the stage functions do when everything goes well, on the
// blocking path; approvals are opened and closed as genesis does.
func (h *harness) contract(c call) (int, any) {
	p := c.Path
	switch {
	case strings.HasPrefix(p, "/v1/stages/"):
		name := strings.TrimPrefix(p, "/v1/stages/")
		st, ok := stageOf[name]
		if !ok || st.svc != c.Service {
			return 404, map[string]any{"error": "no stage " + name + " on " + c.Service}
		}
		switch name {
		case "governor_approval":
			v := verdict(c, "awaiting_approval", "awaiting_approval")
			id := "apv-blocking-deployment"
			h.mu.Lock()
			h.approvals[id] = map[string]any{"kind": "blocking", "type": "deployment"}
			h.mu.Unlock()
			v["approval_id"], v["seed_id"], v["timeout_seconds"], v["on_timeout"] = id, nil, 86400, "denied"
			return 200, v
		case "deploy":
			v := verdict(c, "deploying", "deploying")
			v["agent_id"] = agentID(c.Body["request_id"].(string))
			return 200, v
		}
		return 200, verdict(c, st.ok, "running")
	case c.Service == genesis && p == "/v1/approvals":
		kind, _ := c.Body["kind"].(string)
		id := fmt.Sprintf("apv-%s-%s-r%v", kind, c.Body["type"], c.Body["round"])
		timeout := c.Body["timeout_seconds"]
		onTimeout := "implicit"
		if kind == "blocking" {
			timeout, onTimeout = 172800, "denied"
		}
		h.mu.Lock()
		h.approvals[id] = c.Body
		h.mu.Unlock()
		return 200, map[string]any{"approval_id": id, "timeout_seconds": timeout, "on_timeout": onTimeout}
	case c.Service == genesis && strings.HasPrefix(p, "/v1/approvals/") && strings.HasSuffix(p, ":close"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/approvals/"), ":close")
		h.mu.Lock()
		opened, ok := h.approvals[id]
		h.mu.Unlock()
		if !ok {
			return 404, map[string]any{"error": "no approval " + id}
		}
		decision := "denied"
		if c.Body["outcome"] == "timeout" {
			if opened["kind"] == "veto_window" {
				decision = "implicit"
			}
		} else {
			cb, _ := c.Body["callback"].(map[string]any)
			decision = map[any]string{"approve": "approved", "deny": "denied", "veto": "vetoed"}[cb["decision"]]
		}
		status := map[string]string{"approved": "running", "denied": "denied", "vetoed": "vetoed", "implicit": "veto_window"}[decision]
		if decision == "approved" && opened["type"] == "deployment" {
			status = "deploying"
		}
		return 200, map[string]any{"approval_id": id, "decision": decision, "decided_by": "user:gov", "status": status}
	case c.Service == genesis && strings.HasPrefix(p, "/v1/requests/") && strings.HasSuffix(p, ":finish"):
		return 200, map[string]any{"request_id": c.Body["request_id"], "status": c.Body["status"]}
	case c.Service == registry && strings.HasSuffix(p, ":complete"):
		return 200, map[string]any{"outcome": "deployed", "status": "deployed"}
	case c.Service == registry && strings.HasSuffix(p, ":rollback"):
		return 200, map[string]any{"outcome": "rolled_back", "status": "deploying"}
	case strings.HasPrefix(p, "/v1/undo/"):
		undo := map[string]struct {
			svc, outcome string
			stage        int
		}{"deploy": {registry, "undeployed", 7}, "ethics_review": {guardian, "withdrawn", 5},
			"architecture_review": {architect, "undone", 4}, "certification": {genesis, "undone", 3}}
		name := strings.TrimPrefix(p, "/v1/undo/")
		u, ok := undo[name]
		if !ok || u.svc != c.Service {
			return 404, map[string]any{"error": "no undo " + name + " on " + c.Service}
		}
		return 200, map[string]any{"stage": u.stage, "name": name, "outcome": u.outcome, "status": "vetoed"}
	}
	return 404, map[string]any{"error": "no route " + p}
}

// limits are the argument's limits, as rules/stage_timeouts.yaml gives them.
func limits() map[string]any {
	return map[string]any{"max_rounds": 3,
		"stage_seconds":    map[string]any{"1": 7200, "2": 7200, "3": 7200, "4": 7200, "5": 7200, "6": 14400, "7": 1800},
		"revision_seconds": 259200, "deploy_health_seconds": 1800}
}

// execution is the subset of the Executions API resource the tests read.
type execution struct {
	workflowstest.Execution
	Labels map[string]string `json:"labels"`
}

// run starts agent_creation for requestID with the gateway's labels and returns the
// execution once it finished or waits.
func (h *harness) run(requestID string, lim map[string]any) execution {
	h.t.Helper()
	arg := map[string]any{"request_id": requestID, "engagement_id": "eng-1", "requested_by": "user:alice",
		"spec": map[string]any{"name": "Ada", "industry": "education"}, "way_of_working": map[string]any{"integrations": []any{}},
		"limits": lim}
	b, _ := json.Marshal(arg)
	var ex execution
	if code := h.emu.Do("POST", "/v1/"+h.workflow+"/executions", map[string]any{"argument": string(b),
		"labels": map[string]string{"engagement_id": "eng-1", "request_id": requestID}}, &ex); code != 200 {
		h.t.Fatalf("create execution: HTTP %d", code)
	}
	h.emu.Service.WaitIdle()
	return h.get(ex.Name)
}

func (h *harness) get(name string) execution {
	h.t.Helper()
	var ex execution
	if code := h.emu.Do("GET", "/v1/"+name, nil, &ex); code != 200 {
		h.t.Fatalf("get %s: HTTP %d", name, code)
	}
	return ex
}

func (h *harness) advance(d time.Duration) { h.t.Helper(); h.emu.Advance(d) }

// recorded is a copy of the calls so far.
func (h *harness) recorded() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call(nil), h.calls...)
}

// last is the latest call to svc whose path starts with prefix.
func (h *harness) last(svc, prefix string) call {
	h.t.Helper()
	calls := h.recorded()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Service == svc && strings.HasPrefix(calls[i].Path, prefix) {
			return calls[i]
		}
	}
	h.t.Fatalf("no call to %s %s; calls: %v", svc, prefix, keys(calls))
	return call{}
}

// callback posts body to a callback URL a stand-in received, as the gateway or the
// registry does, and fails unless the emulator accepts it.
func (h *harness) callback(url any, body map[string]any) {
	h.t.Helper()
	u, ok := url.(string)
	if !ok || u == "" {
		h.t.Fatalf("no callback URL (%v)", url)
	}
	if code := h.emu.Callback("POST", u, body); code != 200 {
		h.t.Fatalf("callback %s: HTTP %d", u, code)
	}
}

// decide is the Governor's decision delivered on the approval's callback.
func (h *harness) decide(url any, decision string) {
	h.t.Helper()
	h.callback(url, map[string]any{"approval_id": "apv-x", "decision": decision, "reason": "because", "decided_by": "user:gov"})
}

// healthy is the registry's health callback for the deployed agent.
func (h *harness) healthy() {
	h.t.Helper()
	d := h.last(registry, "/v1/stages/deploy")
	h.callback(d.Body["health_callback"], map[string]any{"agent_id": agentID(d.Body["request_id"].(string)),
		"status": "healthy", "observed_at": h.emu.Service.Now().Format(time.RFC3339)})
}

// transitions are the sys.log lines of an execution as "step=outcome/status".
func (h *harness) transitions(execName string) []string {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	prefix := "workflows: " + execName + ": INFO: "
	var out []string
	for _, l := range h.logs {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		var m struct {
			RequestID string `json:"request_id"`
			Stage     any    `json:"stage"`
			Step      string `json:"step"`
			Outcome   string `json:"outcome"`
			Status    any    `json:"status"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(l, prefix)), &m); err != nil {
			h.t.Fatalf("log line %q: %v", l, err)
		}
		if m.RequestID == "" || m.Stage == nil {
			h.t.Fatalf("log line %q lacks request_id or stage", l)
		}
		out = append(out, fmt.Sprintf("%s=%s/%v", m.Step, m.Outcome, m.Status))
	}
	return out
}

func keys(calls []call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.key()
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
