package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/notifier"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/sinks"
	"waooaw.dev/governance/infra/local/workflows"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/notification"
	"waooaw.dev/governance/shared/workflowexec"
)

// harness is a notifier on loopback with the real notification_cascade workflow in an
// emulator on its virtual clock, real channels pointed at the sinks, and Firestore and
// Pub/Sub emulators (a tap on audit_events).
type harness struct {
	t     *testing.T
	url   string
	emu   *workflowstest.Emulator
	wf    *workflowexec.Client
	sinks *sinks.Sinks
	fs    *firestore.Client
	tap   *emulators.Tap
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	e := emulators.ForTest(t)
	h := &harness{t: t, sinks: startSinks(t), fs: e.Firestore(t)}
	e.Provision(t, nil)
	h.tap = e.Tap(t, events.TopicAuditEvents)
	pub := notifier.NewPublisher(e.PubSub(t))
	t.Cleanup(pub.Close)
	h.emu = workflowstest.NewWithOptions(t, workflows.Options{VirtualStart: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Token: func(kind, audience string) (string, error) { return kind + ":" + audience, nil }})
	var err error
	if h.wf, err = workflowexec.New(context.Background(), h.emu.URL()); err != nil {
		t.Fatal(err)
	}
	key := func(context.Context) ([]byte, error) { return key, nil }
	o := notifier.Options{Firestore: h.fs, Publisher: pub, Executions: h.wf,
		Workflow: workflowstest.Parent + "/workflows/notification_cascade", GatewayURL: "https://gw.example",
		Channels: map[string]notifier.Channel{
			"webhook":   &notifier.Webhook{URL: h.sinks.HookURL("governor"), Key: key},
			"email":     &notifier.Email{Addr: h.sinks.SMTPAddr, From: "waooaw@example.com", To: []string{"gov@example.com"}},
			"webhook_2": &notifier.Webhook{URL: h.sinks.HookURL("on-call"), Key: key},
		}, Logger: logging.New(io.Discard, nil),
		LinkKey: func(context.Context) ([]byte, error) { return linkKey, nil }}
	if testing.Verbose() {
		o.Logger = logging.New(os.Stderr, nil)
	}
	s, err := notifier.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	src, err := os.ReadFile("../../workflows/notification_cascade.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var op map[string]any
	if code := h.emu.Do("POST", "/v1/"+workflowstest.Parent+"/workflows?workflowId=notification_cascade",
		map[string]any{"sourceContents": string(src), "userEnvVars": map[string]string{"NOTIFIER_URL": srv.URL}}, &op); code != 200 {
		t.Fatalf("deploy: HTTP %d %v", code, op)
	}
	return h
}

// linkKey signs the acknowledge links of the harness's messages.
var linkKey = []byte(strings.Repeat("L", 32))

// push delivers an event on topic as a Pub/Sub push does and returns the answer.
func (h *harness) push(topic string, e events.Envelope) (int, notifier.Answer) {
	h.t.Helper()
	data, err := events.Encode(topic, e)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"message": map[string]any{"data": data, "messageId": e.EventID},
		"subscription": "projects/p/subscriptions/notifier-" + topic})
	resp, err := http.Post(h.url+"/projects/p/topics/"+topic, "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans notifier.Answer
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	h.emu.Service.WaitIdle()
	return resp.StatusCode, ans
}

func approvalEvent(t *testing.T, id string) events.Envelope {
	e, err := events.New("waooaw.approval.requested", "//waooaw/genesis", "genesis", map[string]any{
		"approval_id": id, "engagement_id": "eng-1", "agent_id": "", "type": "deployment", "subject": "agent Ada",
		"action": "deploy", "rationale": "no seed matched", "evidence": map[string]string{}, "timeout_minutes": 240})
	if err != nil {
		t.Fatal(err)
	}
	e.EngagementID = "eng-1"
	return e
}

func decisionEvent(t *testing.T, id string) events.Envelope {
	e, err := events.New("waooaw.approval.decided", "//waooaw/genesis", "genesis", map[string]any{
		"approval_id": id, "engagement_id": "eng-1", "decision": "approved", "decided_by": "user:gov",
		"seeds_cited": []string{}, "obligations": []string{}, "reason": "fine", "decided_at": "2026-12-01T10:06:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	e.EngagementID = "eng-1"
	return e
}

// received counts what each sink got: accepted deliveries and all attempts.
func (h *harness) received() map[string]int {
	out := map[string]int{}
	for _, m := range h.sinks.Messages("") {
		out[m.Sink]++
	}
	return out
}

// audited are the notifier's audit entries as "event_type action context.step".
func (h *harness) audited() []string {
	var out []string
	for _, m := range h.tap.Drain(h.t, 500*time.Millisecond)[events.TopicAuditEvents] {
		var e struct {
			Data struct {
				EventType string            `json:"event_type"`
				Action    string            `json:"action"`
				Stream    string            `json:"stream"`
				Context   map[string]string `json:"context"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &e); err != nil {
			h.t.Fatal(err)
		}
		if e.Data.Stream != "eng-1" {
			h.t.Errorf("audit entry on stream %q, want the engagement's", e.Data.Stream)
		}
		out = append(out, strings.TrimSpace(e.Data.EventType+" "+e.Data.Action+" "+e.Data.Context["step"]))
	}
	return out
}

func (h *harness) cascade(id string) notification.Cascade {
	h.t.Helper()
	snap, err := h.fs.Collection(notification.Collection).Doc(id).Get(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var c notification.Cascade
	if err := snap.DataTo(&c); err != nil {
		h.t.Fatal(err)
	}
	return c
}

func TestCascadeThroughTheNotifier(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		// run pushes and moves the clock; it returns the cascade's execution name ("" if none).
		run          func(h *harness) string
		wantReceived map[string]int
		wantState    string // the execution's
		wantAudit    []string
		wantCascade  string
	}{
		{
			name: "no acknowledgement: webhook at once, email at 5 min, the second webhook at 15",
			id:   "apv-a",
			run: func(h *harness) string {
				code, ans := h.push(events.TopicApprovals, approvalEvent(t, "apv-a"))
				if code != 200 || ans.Outcome != "started" {
					t.Fatalf("approval push: %d %+v", code, ans)
				}
				if got := h.received(); got["governor"] != 1 || got["email"] != 0 {
					t.Errorf("at once: %v, want the webhook alone", got)
				}
				h.emu.Advance(5 * time.Minute)
				if got := h.received(); got["email"] != 1 || got["on-call"] != 0 {
					t.Errorf("at 5 min: %v, want the email too", got)
				}
				h.emu.Advance(10 * time.Minute)
				return ans.Execution
			},
			wantReceived: map[string]int{"governor": 1, "email": 1, "on-call": 1},
			wantState:    workflowexec.StateSucceeded, wantCascade: notification.StateRunning,
			wantAudit: []string{"waooaw.notification.sent notify_webhook 1", "waooaw.notification.sent notify_email 2", "waooaw.notification.sent notify_webhook_2 3"},
		},
		{
			name: "a redelivered approval starts nothing new",
			id:   "apv-b",
			run: func(h *harness) string {
				e := approvalEvent(t, "apv-b")
				_, first := h.push(events.TopicApprovals, e)
				code, again := h.push(events.TopicApprovals, e)
				if code != 200 || again.Outcome != "duplicate" || again.Execution != first.Execution {
					t.Fatalf("redelivery: %d %+v, want duplicate of %s", code, again, first.Execution)
				}
				return first.Execution
			},
			wantReceived: map[string]int{"governor": 1},
			wantState:    workflowexec.StateActive, wantCascade: notification.StateRunning,
			wantAudit: []string{"waooaw.notification.sent notify_webhook 1"},
		},
		{
			name: "a decision at minute 6 cancels the cascade",
			id:   "apv-c",
			run: func(h *harness) string {
				_, ans := h.push(events.TopicApprovals, approvalEvent(t, "apv-c"))
				h.emu.Advance(6 * time.Minute)
				code, d := h.push(events.TopicDecisions, decisionEvent(t, "apv-c"))
				if code != 200 || d.Outcome != "cancelled" {
					t.Fatalf("decision push: %d %+v", code, d)
				}
				if code, again := h.push(events.TopicDecisions, decisionEvent(t, "apv-c")); code != 200 || again.Outcome != "cancelled" {
					t.Fatalf("redelivered decision: %d %+v", code, again)
				}
				h.emu.Advance(20 * time.Minute)
				return ans.Execution
			},
			wantReceived: map[string]int{"governor": 1, "email": 1},
			wantState:    workflowexec.StateCancelled, wantCascade: notification.StateDecided,
			wantAudit: []string{"waooaw.notification.sent notify_webhook 1", "waooaw.notification.sent notify_email 2", "waooaw.notification.cancelled cancel_notifications"},
		},
		{
			name: "an approval decided in place (no decision event) ends the cascade at its next send",
			id:   "apv-f",
			run: func(h *harness) string {
				_, ans := h.push(events.TopicApprovals, approvalEvent(t, "apv-f"))
				h.emu.Advance(2 * time.Minute)
				h.setApproval("apv-f", agentreq.ApprovalDecided)
				h.emu.Advance(20 * time.Minute)
				ex, err := h.wf.Get(context.Background(), ans.Execution)
				if err != nil {
					t.Fatal(err)
				}
				var res struct {
					Outcome string   `json:"outcome"`
					Sent    []string `json:"sent"`
				}
				if err := json.Unmarshal([]byte(ex.Result), &res); err != nil || res.Outcome != "closed" || !slices.Equal(res.Sent, []string{"webhook"}) {
					t.Errorf("result %s, want outcome closed after the webhook alone (%v)", ex.Result, err)
				}
				return ans.Execution
			},
			wantReceived: map[string]int{"governor": 1},
			wantState:    workflowexec.StateSucceeded, wantCascade: notification.StateDecided,
			wantAudit: []string{"waooaw.notification.sent notify_webhook 1", "waooaw.notification.stopped stop_notifications 2"},
		},
		{
			name: "a pending approval record does not stop it",
			id:   "apv-g",
			run: func(h *harness) string {
				h.setApproval("apv-g", agentreq.ApprovalPending)
				_, ans := h.push(events.TopicApprovals, approvalEvent(t, "apv-g"))
				h.emu.Advance(5 * time.Minute)
				return ans.Execution
			},
			wantReceived: map[string]int{"governor": 1, "email": 1},
			wantState:    workflowexec.StateActive, wantCascade: notification.StateRunning,
			wantAudit: []string{"waooaw.notification.sent notify_webhook 1", "waooaw.notification.sent notify_email 2"},
		},
		{
			name: "a decision before the request leaves nothing to start",
			id:   "apv-d",
			run: func(h *harness) string {
				if code, d := h.push(events.TopicDecisions, decisionEvent(t, "apv-d")); code != 200 || d.Outcome != "decided_first" {
					t.Fatalf("decision push: %d %+v", code, d)
				}
				if code, a := h.push(events.TopicApprovals, approvalEvent(t, "apv-d")); code != 200 || a.Outcome != "duplicate" || a.Execution != "" {
					t.Fatalf("approval push: %d %+v, want a duplicate with no execution", code, a)
				}
				h.emu.Advance(20 * time.Minute)
				return ""
			},
			wantReceived: map[string]int{}, wantCascade: notification.StateDecided,
		},
		{
			name: "a failing webhook is retried twice, then recorded, and the email still goes",
			id:   "apv-e",
			run: func(h *harness) string {
				post(t, h.sinks.URL+"/v1/hooks/governor:fail", map[string]int{"status": 503, "count": 3})
				_, ans := h.push(events.TopicApprovals, approvalEvent(t, "apv-e"))
				h.emu.Advance(time.Minute)
				h.emu.Advance(4 * time.Minute)
				return ans.Execution
			},
			wantReceived: map[string]int{"governor": 3, "email": 1},
			wantState:    workflowexec.StateActive, wantCascade: notification.StateRunning,
			wantAudit: []string{"waooaw.notification.failed notify_webhook 1", "waooaw.notification.sent notify_email 2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			name := tc.run(h)
			if got := h.received(); !equalCounts(got, tc.wantReceived) {
				t.Errorf("received %v, want %v", got, tc.wantReceived)
			}
			if name != "" {
				ex, err := h.wf.Get(context.Background(), name)
				if err != nil {
					t.Fatal(err)
				}
				if ex.State != tc.wantState {
					t.Errorf("execution %s, want %s (%s)", ex.State, tc.wantState, ex.Error)
				}
			}
			if c := h.cascade(tc.id); c.State != tc.wantCascade {
				t.Errorf("cascade record %+v, want state %s", c, tc.wantCascade)
			}
			// Pub/Sub keeps no order across the entries' keys: compare them sorted.
			got := h.audited()
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.wantAudit))
			if !slices.Equal(got, want) {
				t.Errorf("audit entries %q, want %q", got, want)
			}
		})
	}
}

// setApproval writes the approval's record as the gateway or genesis keeps it.
func (h *harness) setApproval(id, state string) {
	h.t.Helper()
	a := agentreq.Approval{ApprovalID: id, EngagementID: "eng-1", Kind: agentreq.KindBlocking, Type: "financial", State: state}
	if _, err := h.fs.Collection(agentreq.Approvals).Doc(id).Set(context.Background(), a); err != nil {
		h.t.Fatal(err)
	}
}

// TestAcknowledgeLink: every message carries a link signed for its approval and execution,
// valid until the approval's deadline.
func TestAcknowledgeLink(t *testing.T) {
	h := newHarness(t)
	e := approvalEvent(t, "apv-link")
	_, ans := h.push(events.TopicApprovals, e)
	h.emu.Advance(5 * time.Minute)
	at, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		t.Fatal(err)
	}
	deadline := at.Add(240 * time.Minute).Truncate(time.Second)
	msgs := h.sinks.Messages("")
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the webhook and the email", len(msgs))
	}
	for _, m := range msgs {
		i := strings.Index(m.Body, "https://gw.example"+notification.LinkPath+"?token=")
		if i < 0 {
			t.Errorf("%s message has no acknowledge link: %s", m.Sink, m.Body)
			continue
		}
		tok := m.Body[i+len("https://gw.example"+notification.LinkPath+"?token="):]
		tok = tok[:strings.IndexFunc(tok, func(r rune) bool {
			return !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", r)
		})]
		l, err := notification.VerifyLink(linkKey, tok, time.Now())
		if err != nil {
			t.Errorf("%s link: %v", m.Sink, err)
			continue
		}
		if l.ApprovalID != "apv-link" || l.Execution != ans.Execution || !l.Expires.Equal(deadline) {
			t.Errorf("%s link %+v, want apv-link, %s, until %s", m.Sink, l, ans.Execution, deadline)
		}
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func post(t *testing.T, url string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}
