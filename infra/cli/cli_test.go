package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// gateway is an httptest server speaking the routes the CLI calls, with the API's answer and
// error shapes; it records what it was sent.
type gateway struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	polls    int // GET /v1/agent-requests/{id} answered so far
}

// progress is what GET /v1/agent-requests/req-1 answers on each poll: a watch sees the
// stages arrive, the same state twice, and a final status.
var progress = []string{
	`{"request_id":"req-1","engagement_id":"eng-1","status":"running","stages":[{"stage":1,"name":"specification","outcome":"accepted","reasons":[],"at":"t1"}]}`,
	`{"request_id":"req-1","engagement_id":"eng-1","status":"running","stages":[{"stage":1,"name":"specification","outcome":"accepted","reasons":[],"at":"t1"}]}`,
	`{"request_id":"req-1","engagement_id":"eng-1","status":"awaiting_approval","stages":[{"stage":1,"name":"specification","outcome":"accepted","reasons":[],"at":"t1"},{"stage":6,"name":"governor_approval","outcome":"awaiting_approval","reasons":["no seed"],"at":"t2"}],"approval":{"approval_id":"apr-1","kind":"blocking","type":"deployment","deadline":"2099-01-01T00:00:00Z"}}`,
	`{"request_id":"req-1","engagement_id":"eng-1","agent_id":"agt-1","status":"deployed","stages":[{"stage":1,"name":"specification","outcome":"accepted","reasons":[],"at":"t1"},{"stage":6,"name":"governor_approval","outcome":"awaiting_approval","reasons":["no seed"],"at":"t2"},{"stage":7,"name":"deploy","outcome":"deployed","reasons":[],"at":"t3"}],"approval":{"approval_id":"apr-1","kind":"blocking","type":"deployment","deadline":"2099-01-01T00:00:00Z"}}`,
}

// vetoProgress is a vetoed request whose undo steps come after its status.
var vetoProgress = []string{
	`{"request_id":"req-veto","status":"veto_window","stages":[],"approval":{"approval_id":"apr-9","kind":"veto_window","type":"deployment","deadline":"d","seed_id":"GEN-004"}}`,
	`{"request_id":"req-veto","status":"vetoed","stages":[],"compensations":[]}`,
	`{"request_id":"req-veto","status":"vetoed","stages":[],"compensations":[{"stage":7,"at":"u7"}]}`,
	`{"request_id":"req-veto","status":"vetoed","stages":[],"compensations":[{"stage":7,"at":"u7"},{"stage":5,"at":"u5"},{"stage":4,"at":"u4"},{"stage":3,"at":"u3"}]}`,
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{}
	mux := http.NewServeMux()
	apiErr := func(w http.ResponseWriter, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":%q}}`, code, msg)
	}
	answer := func(w http.ResponseWriter, code int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
	mux.HandleFunc("POST /v1/engagements", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 201, `{"engagement_id":"eng-1","governor":"gov-1","assigned_at":"2026-01-01T00:00:00Z"}`)
	})
	mux.HandleFunc("POST /v1/agent-requests", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 202, `{"request_id":"req-1","execution":"projects/p/locations/l/workflows/w/executions/e","status":"running"}`)
	})
	mux.HandleFunc("GET /v1/agent-requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "req-1":
			g.mu.Lock()
			i := min(g.polls, len(progress)-1)
			g.polls++
			g.mu.Unlock()
			answer(w, 200, progress[i])
		case "req-veto":
			g.mu.Lock()
			i := min(g.polls, len(vetoProgress)-1)
			g.polls++
			g.mu.Unlock()
			answer(w, 200, vetoProgress[i])
		case "broken":
			answer(w, 500, `<html>proxy error</html>`)
		default:
			apiErr(w, 404, `unknown request "`+r.PathValue("id")+`"`)
		}
	})
	mux.HandleFunc("GET /v1/approvals", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, `{"approvals":[{"approval_id":"apr-1","request_id":"req-1","kind":"blocking","type":"deployment","deadline":"2099-01-01T00:00:00Z","seed_id":""}]}`)
	})
	mux.HandleFunc("POST /v1/approvals/{action}", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer viewer") {
			apiErr(w, 403, "forbidden: role viewer may not approve")
			return
		}
		var b struct{ Decision, Reason string }
		_ = json.NewDecoder(r.Body).Decode(&b)
		answer(w, 200, fmt.Sprintf(`{"approval_id":%q,"decision":%q,"decided_by":"user:gov-1"}`, strings.TrimSuffix(r.PathValue("action"), ":decide"), b.Decision))
	})
	mux.HandleFunc("GET /v1/audit/streams/{stream}/verify", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("stream") == "eng-broken" {
			answer(w, 200, `{"ok":false,"entries":4,"head_hash":"abc","first_bad_seq":5,"index_bad_seq":null,"cached":false,"verified_at":"t"}`)
			return
		}
		answer(w, 200, `{"ok":true,"entries":12,"head_hash":"abc","first_bad_seq":null,"index_bad_seq":null,"cached":true,"verified_at":"t"}`)
	})
	mux.HandleFunc("GET /v1/audit/streams/{stream}/entries", func(w http.ResponseWriter, r *http.Request) {
		// Two entries a page, three in all: the CLI must follow next_after.
		switch r.URL.Query().Get("after") {
		case "0":
			answer(w, 200, `{"stream":"eng-1","entries":[{"seq":1,"action":"a1"},{"seq":2,"action":"a2"}],"next_after":2}`)
		case "2":
			answer(w, 200, `{"stream":"eng-1","entries":[{"seq":3,"action":"a3","context":{"request_id":"req-1"}}],"next_after":3}`)
		default:
			answer(w, 200, `{"stream":"eng-1","entries":[],"next_after":3}`)
		}
	})
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		g.mu.Lock()
		g.requests, g.bodies = append(g.requests, r.Clone(r.Context())), append(g.bodies, string(b))
		g.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// last returns the last request the gateway received and its body.
func (g *gateway) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.requests) == 0 {
		t.Fatal("the gateway received nothing")
	}
	return g.requests[len(g.requests)-1], g.bodies[len(g.bodies)-1]
}

type result struct {
	code           int
	stdout, stderr string
}

func run(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// loggedIn writes a config holding token for gateway and returns its path.
func loggedIn(t *testing.T, gateway, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	b, _ := json.Marshal(Config{Gateway: gateway, Token: token})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommands(t *testing.T) {
	g := newGateway(t)
	gov := loggedIn(t, g.URL, "governor-token")
	viewer := loggedIn(t, g.URL, "viewer-token")
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	cases := []struct {
		name      string
		args      []string
		code      int
		stdout    []string // each in stdout
		stderr    []string // each in stderr
		method    string   // of the last request the gateway saw, when set
		path      string
		body      string // in its body
		stdoutNot string
	}{
		{name: "engagements create", args: []string{"--config", gov, "engagements", "create", "eng-1", "--governor", "gov-1"}, code: 0,
			stdout: []string{"eng-1", "gov-1 (set)"}, method: "POST", path: "/v1/engagements", body: `"governor":"gov-1"`},
		{name: "engagements create without --governor", args: []string{"--config", gov, "engagements", "create", "eng-1"}, code: 2,
			stderr: []string{`required flag(s) "governor" not set`, "Usage:"}},
		{name: "approvals list as a table", args: []string{"--config", gov, "approvals", "list"}, code: 0,
			stdout: []string{"APPROVAL", "apr-1", "req-1", "blocking", "deployment"}, method: "GET", path: "/v1/approvals"},
		{name: "approvals list as JSON", args: []string{"--config", gov, "approvals", "list", "-o", "json"}, code: 0,
			stdout: []string{`"approval_id": "apr-1"`}},
		{name: "approve", args: []string{"--config", gov, "approvals", "approve", "apr-1", "--reason", "looks right"}, code: 0,
			stdout: []string{"apr-1", "approve", "user:gov-1"}, method: "POST", path: "/v1/approvals/apr-1:decide", body: `"reason":"looks right"`},
		{name: "veto sends a veto", args: []string{"--config", gov, "approvals", "veto", "apr-2", "--reason", "wrong clinic"}, code: 0,
			stdout: []string{"veto"}, path: "/v1/approvals/apr-2:decide", body: `"decision":"veto"`},
		{name: "approve without --reason", args: []string{"--config", gov, "approvals", "approve", "apr-1"}, code: 2,
			stderr: []string{`"reason" not set`, "approvals approve ID --reason R"}},
		{name: "approve with a blank reason", args: []string{"--config", gov, "approvals", "approve", "apr-1", "--reason", " "}, code: 2,
			stderr: []string{"--reason must say why"}},
		{name: "a viewer's approve is refused with the API's words", args: []string{"--config", viewer, "approvals", "approve", "apr-1", "--reason", "r"}, code: 1,
			stderr: []string{"forbidden: role viewer may not approve (HTTP 403)"}, stdoutNot: "apr-1"},
		{name: "unknown request", args: []string{"--config", gov, "requests", "get", "nope"}, code: 1,
			stderr: []string{`unknown request "nope" (HTTP 404)`}},
		{name: "5xx that is not the API's", args: []string{"--config", gov, "requests", "get", "broken"}, code: 3,
			stderr: []string{"proxy error", "HTTP 500"}},
		{name: "gateway not reachable", args: []string{"--config", gov, "--gateway", downURL, "approvals", "list"}, code: 3,
			stderr: []string{"connection refused"}},
		{name: "unknown flag", args: []string{"--config", gov, "requests", "get", "req-1", "--bogus"}, code: 2,
			stderr: []string{"unknown flag: --bogus", "Usage:", "requests get ID"}},
		{name: "missing argument", args: []string{"--config", gov, "requests", "get"}, code: 2,
			stderr: []string{"takes ID", "Usage:"}},
		{name: "unknown command", args: []string{"--config", gov, "approvals", "grant"}, code: 2,
			stderr: []string{`unknown command "grant"`, "Available Commands:"}},
		{name: "a group alone", args: []string{"audit"}, code: 2,
			stderr: []string{"needs a subcommand", "verify"}},
		{name: "bad output", args: []string{"--config", gov, "approvals", "list", "-o", "yaml"}, code: 2,
			stderr: []string{"table or json"}},
		{name: "--until without --watch", args: []string{"--config", gov, "requests", "get", "req-1", "--until", "deployed"}, code: 2,
			stderr: []string{"--until goes with --watch"}},
		{name: "audit verify ok", args: []string{"--config", gov, "audit", "verify", "eng-1"}, code: 0,
			stdout: []string{"chain verified to seq 12", "yes (head unchanged)"}, path: "/v1/audit/streams/eng-1/verify"},
		{name: "audit verify broken", args: []string{"--config", gov, "audit", "verify", "eng-broken"}, code: 4,
			stdout: []string{"BROKEN at seq 5 (4 entries verified before it)"}, stderr: []string{"broken"}},
		{name: "audit verify broken as JSON", args: []string{"--config", gov, "-o", "json", "audit", "verify", "eng-broken"}, code: 4,
			stdout: []string{`"first_bad_seq": 5`}},
		{name: "audit entries follows pages", args: []string{"--config", gov, "audit", "entries", "eng-1"}, code: 0,
			stdout: []string{"a1", "a2", "a3", "req-1"}},
		{name: "audit entries as JSON", args: []string{"--config", gov, "audit", "entries", "eng-1", "-o", "json"}, code: 0,
			stdout: []string{`"next_after": 3`, `"action": "a3"`}},
		{name: "not logged in", args: []string{"--config", filepath.Join(t.TempDir(), "none.json"), "--gateway", g.URL, "approvals", "list"}, code: 2,
			stderr: []string{"not logged in"}, stdoutNot: "Usage:"},
		{name: "completion bash", args: []string{"completion", "bash"}, code: 0,
			stdout: []string{"__start_waooaw"}},
		{name: "completion fish", args: []string{"completion", "fish"}, code: 0,
			stdout: []string{"complete -c waooaw"}},
		{name: "approve completes the pending blocking approvals", args: []string{"--config", gov, "__complete", "approvals", "approve", ""}, code: 0,
			stdout: []string{"apr-1\tdeployment for req-1"}},
		{name: "veto completes no blocking approval", args: []string{"--config", gov, "__complete", "approvals", "veto", ""}, code: 0,
			stdout: []string{":4"}, stdoutNot: "apr-1"},
		{name: "help", args: []string{"--help"}, code: 0,
			stdout: []string{"Exit codes", "approvals", "requests"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run("", c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, c.code, r.stdout, r.stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if c.stdoutNot != "" && strings.Contains(r.stdout+r.stderr, c.stdoutNot) {
				t.Errorf("output holds %q:\n%s%s", c.stdoutNot, r.stdout, r.stderr)
			}
			if c.path == "" {
				return
			}
			req, body := g.last(t)
			if req.URL.Path != c.path || (c.method != "" && req.Method != c.method) || !strings.Contains(body, c.body) {
				t.Errorf("gateway got %s %s %s; want %s %s with %s", req.Method, req.URL.Path, body, c.method, c.path, c.body)
			}
			if got := req.Header.Get("Authorization"); got != "Bearer governor-token" {
				t.Errorf("Authorization %q; want the config's token", got)
			}
		})
	}
}

func TestRequestsCreateIdempotencyKey(t *testing.T) {
	g := newGateway(t)
	cfg := loggedIn(t, g.URL, "manager-token")
	dir := t.TempDir()
	files := map[string]string{
		"request.yaml": "spec:\n  agent_name: Writer\n  estimated_cost_usd_per_day: 1.5\n  risk_flags: []\nway_of_working:\n  identity: An assistant\n",
		// The same request in JSON, keys in another order.
		"request.json":  `{"way_of_working": {"identity": "An assistant"}, "spec": {"risk_flags": [], "estimated_cost_usd_per_day": 1.5, "agent_name": "Writer"}}`,
		"other.yaml":    "spec:\n  agent_name: Reader\n",
		"nospec.yaml":   "way_of_working:\n  identity: x\n",
		"notyaml.yaml":  "spec: [unclosed\n",
		"intkeys.yaml":  "spec:\n  1: one\n",
		"empty-ok.json": `{"spec": {}}`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keyOf := func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		r := run(files["request.yaml"], append([]string{"--config", cfg, "requests", "create"}, args...)...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		req, body := g.last(t)
		if req.URL.Path != "/v1/agent-requests" || !strings.Contains(r.stdout, "req-1") {
			t.Fatalf("sent %s; printed %s", req.URL.Path, r.stdout)
		}
		return req.Header.Get("Idempotency-Key"), body
	}
	yamlKey, yamlBody := keyOf(t, "-f", filepath.Join(dir, "request.yaml"))
	jsonKey, jsonBody := keyOf(t, "-f", filepath.Join(dir, "request.json"))
	stdinKey, _ := keyOf(t, "-f", "-")
	otherKey, _ := keyOf(t, "-f", filepath.Join(dir, "other.yaml"))
	givenKey, _ := keyOf(t, "-f", filepath.Join(dir, "request.yaml"), "--idempotency-key", "mine-1")
	if !strings.HasPrefix(yamlKey, "sha256-") || yamlKey != jsonKey || yamlKey != stdinKey {
		t.Errorf("keys yaml %q json %q stdin %q; want one content-derived key", yamlKey, jsonKey, stdinKey)
	}
	if otherKey == yamlKey || givenKey != "mine-1" {
		t.Errorf("other request's key %q, given key %q", otherKey, givenKey)
	}
	if yamlBody != jsonBody {
		t.Errorf("YAML sent %s, JSON sent %s; want the same body", yamlBody, jsonBody)
	}
	var sent struct {
		Spec map[string]any `json:"spec"`
	}
	if err := json.Unmarshal([]byte(yamlBody), &sent); err != nil || sent.Spec["estimated_cost_usd_per_day"] != 1.5 || sent.Spec["agent_name"] != "Writer" {
		t.Errorf("body %s (%v); want the spec as JSON", yamlBody, err)
	}

	bad := []struct {
		file, stderr string
	}{
		{"nospec.yaml", "needs a spec"},
		{"notyaml.yaml", "notyaml.yaml"},
		{"intkeys.yaml", "intkeys.yaml"},
		{"missing.yaml", "no such file"},
	}
	for _, b := range bad {
		t.Run(b.file, func(t *testing.T) {
			r := run("", "--config", cfg, "requests", "create", "-f", filepath.Join(dir, b.file))
			if r.code != ExitUsage || !strings.Contains(r.stderr, b.stderr) || strings.Contains(r.stderr, "Usage:") {
				t.Errorf("exit %d, stderr %q; want 2 naming %q without the help", r.code, r.stderr, b.stderr)
			}
		})
	}
}

func TestWatch(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"table: each stage once, then the final status", nil, func(t *testing.T, out string) {
			for _, s := range []string{"stage 1 specification", "stage 6 governor_approval", "stage 7 deploy", "approval apr-1", "agent agt-1", "status deployed"} {
				if n := strings.Count(out, s); n != 1 {
					t.Errorf("%q printed %d times; want once:\n%s", s, n, out)
				}
			}
			if i, j := strings.Index(out, "status awaiting_approval"), strings.Index(out, "status deployed"); i < 0 || j < i {
				t.Errorf("statuses out of order:\n%s", out)
			}
		}},
		{"json: one line per change", []string{"-o", "json"}, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d lines; want 3 (the repeated state left out):\n%s", len(lines), out)
			}
			var last struct{ Status string }
			if err := json.Unmarshal([]byte(lines[2]), &last); err != nil || last.Status != "deployed" {
				t.Errorf("last line %s (%v); want deployed", lines[2], err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGateway(t)
			cfg := loggedIn(t, g.URL, "governor-token")
			r := run("", append([]string{"--config", cfg, "requests", "get", "req-1", "--watch", "--interval", "1ms"}, c.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			c.check(t, r.stdout)
			if g.polls != len(progress) {
				t.Errorf("polled %d times; want %d (stopping at the final status)", g.polls, len(progress))
			}
		})
	}
	t.Run("a vetoed request is followed through its undo steps", func(t *testing.T) {
		g := newGateway(t)
		cfg := loggedIn(t, g.URL, "governor-token")
		r := run("", "--config", cfg, "requests", "get", "req-veto", "-w", "--interval", "1ms")
		if r.code != 0 || g.polls != len(vetoProgress) {
			t.Fatalf("exit %d after %d polls; want 0 after %d:\n%s%s", r.code, g.polls, len(vetoProgress), r.stdout, r.stderr)
		}
		for _, s := range []string{"seed GEN-004", "status vetoed", "undo stage 7  u7", "undo stage 5  u5", "undo stage 4  u4", "undo stage 3  u3"} {
			if strings.Count(r.stdout, s) != 1 {
				t.Errorf("%q not printed once:\n%s", s, r.stdout)
			}
		}
	})
	t.Run("--until stops at a waiting status", func(t *testing.T) {
		g := newGateway(t)
		cfg := loggedIn(t, g.URL, "governor-token")
		r := run("", "--config", cfg, "requests", "get", "req-1", "-w", "--interval", "1ms", "--until", "awaiting_approval")
		if r.code != 0 || !strings.Contains(r.stdout, "status awaiting_approval") || strings.Contains(r.stdout, "deployed") || g.polls != 3 {
			t.Errorf("exit %d after %d polls:\n%s%s", r.code, g.polls, r.stdout, r.stderr)
		}
	})
}

// jwt makes an unsigned token with claims, enough for what the CLI shows of one.
func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + ".sig"
}

func TestLogin(t *testing.T) {
	g := newGateway(t)
	var asked map[string]any
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/dev/token" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&asked)
		if asked["role"] == "nobody" {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"code":400,"message":"no such role"}}`)
			return
		}
		fmt.Fprintf(w, `{"token":%q}`, jwt(fmt.Sprintf(`{"sub":%q,"role":%q,"engagement":%q,"exp":4102444800}`, asked["subject"], asked["role"], asked["engagement"])))
	}))
	t.Cleanup(issuer.Close)
	dir := t.TempDir()
	epFile := filepath.Join(dir, "state", "endpoints.json")
	if err := os.MkdirAll(filepath.Dir(epFile), 0o700); err != nil {
		t.Fatal(err)
	}
	writeEndpoints := func(gw string) {
		b, _ := json.Marshal(map[string]string{"gateway": gw, "dev_token": issuer.URL + "/dev/token"})
		if err := os.WriteFile(epFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeEndpoints(g.URL)
	cfg := filepath.Join(dir, "conf", "waooaw", "config.json")

	r := run("", "--config", cfg, "--endpoints", epFile, "login", "--local", "--role", "governor", "--subject", "gov-1", "--engagement", "eng-1")
	if r.code != 0 || !strings.Contains(r.stdout, "governor gov-1") || !strings.Contains(r.stdout, "eng-1") {
		t.Fatalf("login --local: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if asked["role"] != "governor" || asked["subject"] != "gov-1" || asked["engagement"] != "eng-1" || asked["ttl_seconds"] != 28800.0 {
		t.Errorf("the issuer was asked %v", asked)
	}
	info, err := os.Stat(cfg)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config %v %v; want mode 0600", info, err)
	}
	// A later command finds the gateway through the endpoints file login used, even after the
	// stack moved to another port.
	moved := newGateway(t)
	writeEndpoints(moved.URL)
	if r := run("", "--config", cfg, "approvals", "list"); r.code != 0 {
		t.Fatalf("after login: exit %d %s", r.code, r.stderr)
	}
	req, _ := moved.last(t)
	if auth := req.Header.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") || !strings.Contains(auth, ".sig") {
		t.Errorf("sent Authorization %q; want the issued token", auth)
	}

	prodCfg := filepath.Join(dir, "prod.json")
	cases := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{"production token from stdin", jwt(`{"sub":"alice","role":"admin","exp":4102444800}`) + "\n",
			[]string{"--config", prodCfg, "--gateway", g.URL, "login", "--token-file", "-"}, 0, "", "admin alice"},
		{"production token kept gateway", jwt(`{"sub":"alice","role":"auditor"}`),
			[]string{"--config", prodCfg, "login", "--token-file", "-"}, 0, "", "auditor alice"},
		{"production token without any gateway", "tok", []string{"--config", filepath.Join(dir, "new.json"), "login", "--token-file", "-"}, 2, "--gateway is needed", ""},
		{"empty token", "  \n", []string{"--config", prodCfg, "login", "--token-file", "-"}, 2, "does not hold one token", ""},
		{"neither way", "", []string{"--config", prodCfg, "login"}, 2, "--local or --token-file", ""},
		{"both ways", "", []string{"--config", prodCfg, "login", "--local", "--token-file", "-"}, 2, "exclude each other", ""},
		{"local without role", "", []string{"--config", prodCfg, "--endpoints", epFile, "login", "--local", "--subject", "s"}, 2, "--role and --subject", ""},
		{"issuer refuses", "", []string{"--config", prodCfg, "--endpoints", epFile, "login", "--local", "--role", "nobody", "--subject", "s"}, 1, "no such role", ""},
		{"no stack", "", []string{"--config", prodCfg, "--endpoints", filepath.Join(dir, "none.json"), "login", "--local", "--role", "admin", "--subject", "s"}, 2, "make run", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(c.stdin, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.stderr) || !strings.Contains(r.stdout, c.stdout) {
				t.Errorf("exit %d, want %d\nstdout %s\nstderr %s", r.code, c.code, r.stdout, r.stderr)
			}
		})
	}
	var kept Config
	b, _ := os.ReadFile(prodCfg)
	if err := json.Unmarshal(b, &kept); err != nil || kept.Gateway != g.URL || kept.Role != "auditor" {
		t.Errorf("production config %s (%v); want the gateway kept and the last token's role", b, err)
	}
}
