package workflows_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// cascadeSteps are rules/notification_cascade.yaml's rows as the notifier passes them.
var cascadeSteps = []map[string]any{
	{"channel": "webhook", "after_seconds": 0},
	{"channel": "email", "after_seconds": 300},
	{"channel": "webhook_2", "after_seconds": 900},
}

// notice is one request the stand-in notifier received, at the emulator's clock.
type notice struct {
	Path string
	Body map[string]any
	Auth string
	At   time.Duration // since the execution started
}

// cascadeHarness runs notification_cascade.yaml against a stand-in notifier whose /v1/send
// answers what sendCode says for a channel and attempt.
type cascadeHarness struct {
	t        *testing.T
	emu      *workflowstest.Emulator
	workflow string
	sendCode func(channel string, attempt int) int
	// closed names the channel whose send finds the approval closed (the notifier answers
	// outcome "closed").
	closed string

	mu      sync.Mutex
	notices []notice
}

func newCascadeHarness(t *testing.T, sendCode func(channel string, attempt int) int) *cascadeHarness {
	t.Helper()
	h := &cascadeHarness{t: t, sendCode: sendCode}
	h.emu = workflowstest.NewWithOptions(t, workflows.Options{
		VirtualStart: start,
		Token:        func(kind, audience string) (string, error) { return kind + ":" + audience, nil },
	})
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	src, err := os.ReadFile("notification_cascade.yaml")
	if err != nil {
		t.Fatalf("read workflow: %v", err)
	}
	var op map[string]any
	if code := h.emu.Do("POST", "/v1/"+workflowstest.Parent+"/workflows?workflowId=notification_cascade",
		map[string]any{"sourceContents": string(src), "userEnvVars": map[string]string{"NOTIFIER_URL": srv.URL}}, &op); code != 200 {
		t.Fatalf("deploy notification_cascade: HTTP %d: %v", code, op)
	}
	h.workflow = workflowstest.Parent + "/workflows/notification_cascade"
	return h
}

func (h *cascadeHarness) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	n := notice{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), At: h.emu.Service.Now().Sub(start)}
	if err := json.Unmarshal(raw, &n.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	attempt := 0
	for _, p := range h.notices {
		if p.Path == n.Path && p.Body["channel"] == n.Body["channel"] {
			attempt++
		}
	}
	h.notices = append(h.notices, n)
	h.mu.Unlock()
	code := http.StatusOK
	if n.Path == "/v1/send" && h.sendCode != nil {
		code = h.sendCode(n.Body["channel"].(string), attempt)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	out := map[string]any{"channel": n.Body["channel"], "code": code}
	if n.Path == "/v1/send" && h.closed != "" && n.Body["channel"] == h.closed {
		out["outcome"] = "closed"
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (h *cascadeHarness) run() workflowstest.Execution {
	h.t.Helper()
	return h.emu.Run(h.workflow, map[string]any{"approval_id": "apv-1", "engagement_id": "eng-1",
		"message": map[string]any{"subject": "Ada", "action": "deploy"}, "steps": cascadeSteps})
}

func (h *cascadeHarness) recorded() []notice {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notice(nil), h.notices...)
}

// sends are the recorded calls as "path channel @offset".
func (h *cascadeHarness) sends() []string {
	var out []string
	for _, n := range h.recorded() {
		ch, _ := n.Body["channel"].(string)
		if f, ok := n.Body["failure"].(map[string]any); ok {
			ch, _ = f["channel"].(string)
		}
		out = append(out, n.Path+" "+ch+" @"+n.At.String())
	}
	return out
}

// acknowledge posts on the callback the sends carry, as the gateway does.
func (h *cascadeHarness) acknowledge() int {
	h.t.Helper()
	calls := h.recorded()
	if len(calls) == 0 {
		h.t.Fatal("no send carried a callback URL")
	}
	url, _ := calls[0].Body["callback_url"].(string)
	return h.emu.Callback("POST", url, map[string]any{"approval_id": "apv-1", "acknowledged_by": "user:gov"})
}

func ok(string, int) int { return http.StatusOK }

func TestNotificationCascade(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sendCode func(channel string, attempt int) int
		// act runs after the execution started and waits; it returns the clock to reach.
		act       func(h *cascadeHarness, name string)
		wantSends []string
		wantState string
		wantOut   string
		wantFail  []map[string]any
	}{
		{
			name:      "not acknowledged: every channel at its time",
			act:       func(h *cascadeHarness, _ string) { h.emu.Advance(20 * time.Minute) },
			wantSends: []string{"/v1/send webhook @0s", "/v1/send email @5m0s", "/v1/send webhook_2 @15m0s"},
			wantState: "SUCCEEDED", wantOut: "exhausted", wantFail: []map[string]any{},
		},
		{
			name: "acknowledged at minute 3: nothing more is sent",
			act: func(h *cascadeHarness, _ string) {
				h.emu.Advance(3 * time.Minute)
				if code := h.acknowledge(); code != 200 {
					h.t.Fatalf("acknowledge: HTTP %d", code)
				}
				h.emu.Advance(20 * time.Minute)
			},
			wantSends: []string{"/v1/send webhook @0s"},
			wantState: "SUCCEEDED", wantOut: "acknowledged", wantFail: []map[string]any{},
		},
		{
			name:     "a failing webhook is retried, then recorded, and the cascade goes on",
			sendCode: func(ch string, _ int) int { return map[bool]int{true: 503, false: 200}[ch == "webhook"] },
			act:      func(h *cascadeHarness, _ string) { h.emu.Advance(20 * time.Minute) },
			wantSends: []string{"/v1/send webhook @0s", "/v1/send webhook @10s", "/v1/send webhook @40s",
				"/v1/failures webhook @40s", "/v1/send email @5m0s", "/v1/send webhook_2 @15m0s"},
			wantState: "SUCCEEDED", wantOut: "exhausted",
			wantFail: []map[string]any{{"channel": "webhook", "step": float64(1), "code": float64(503), "error": "HTTP server responded with error code 503"}},
		},
		{
			name:     "a refused send is not retried but recorded",
			sendCode: func(ch string, _ int) int { return map[bool]int{true: 400, false: 200}[ch == "email"] },
			act:      func(h *cascadeHarness, _ string) { h.emu.Advance(20 * time.Minute) },
			wantSends: []string{"/v1/send webhook @0s", "/v1/send email @5m0s", "/v1/failures email @5m0s",
				"/v1/send webhook_2 @15m0s"},
			wantState: "SUCCEEDED", wantOut: "exhausted",
			wantFail: []map[string]any{{"channel": "email", "step": float64(2), "code": float64(400), "error": "HTTP server responded with error code 400"}},
		},
		{
			name: "the approval closed without a decision event: the next send ends the cascade",
			act: func(h *cascadeHarness, _ string) {
				h.closed = "email"
				h.emu.Advance(20 * time.Minute)
			},
			wantSends: []string{"/v1/send webhook @0s", "/v1/send email @5m0s"},
			wantState: "SUCCEEDED", wantOut: "closed", wantFail: []map[string]any{},
		},
		{
			name: "cancelled at minute 7 (a decision): the third channel is never sent",
			act: func(h *cascadeHarness, name string) {
				h.emu.Advance(7 * time.Minute)
				if code := h.emu.Do("POST", "/v1/"+name+":cancel", map[string]any{}, nil); code != 200 {
					h.t.Fatalf("cancel: HTTP %d", code)
				}
				h.emu.Advance(20 * time.Minute)
			},
			wantSends: []string{"/v1/send webhook @0s", "/v1/send email @5m0s"},
			wantState: "CANCELLED",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send := tc.sendCode
			if send == nil {
				send = ok
			}
			h := newCascadeHarness(t, send)
			ex := h.run()
			if ex.State != "ACTIVE" {
				t.Fatalf("execution %s before any acknowledgement, want ACTIVE (waiting)", ex.State)
			}
			tc.act(h, ex.Name)
			if got := h.sends(); !reflect.DeepEqual(got, tc.wantSends) {
				t.Errorf("calls = %q\nwant    %q", got, tc.wantSends)
			}
			for _, n := range h.recorded() {
				if !strings.HasPrefix(n.Auth, "Bearer OIDC:") {
					t.Errorf("%s without an OIDC token", n.Path)
				}
				if n.Path == "/v1/send" && (n.Body["callback_url"] == "" || !strings.HasSuffix(ex.Name, "/"+fmt.Sprint(n.Body["execution"]))) {
					t.Errorf("send without the acknowledgement's callback URL or its execution's id: %v", n.Body)
				}
			}
			ex = h.emu.Get(ex.Name)
			if ex.State != tc.wantState {
				t.Fatalf("state %s, want %s", ex.State, tc.wantState)
			}
			if tc.wantState != "SUCCEEDED" {
				return
			}
			var res struct {
				Outcome        string           `json:"outcome"`
				Sent           []string         `json:"sent"`
				Failed         []map[string]any `json:"failed"`
				AcknowledgedBy string           `json:"acknowledged_by"`
			}
			h.emu.Result(ex, &res)
			if res.Outcome != tc.wantOut {
				t.Errorf("outcome %q, want %q", res.Outcome, tc.wantOut)
			}
			if !reflect.DeepEqual(res.Failed, tc.wantFail) {
				t.Errorf("failed = %v, want %v", res.Failed, tc.wantFail)
			}
			if tc.wantOut == "acknowledged" && res.AcknowledgedBy != "user:gov" {
				t.Errorf("acknowledged_by %q, want user:gov", res.AcknowledgedBy)
			}
		})
	}
}
