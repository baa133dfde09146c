package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/sinks"
	"waooaw.dev/governance/infra/local/stack"
	"waooaw.dev/governance/shared/notification"
)

// cascadeParty is one engagement's blocking approval with the stack's sinks and notifier.
type cascadeParty struct {
	party
	ep       stack.Endpoints
	approval string
}

// newCascade runs a blocking request to its pending deployment approval; before, it queues
// failures on the governor hook for this engagement's messages alone.
func newCascade(t *testing.T, ctx context.Context, failGovernor int) *cascadeParty {
	t.Helper()
	c := &cascadeParty{party: newParty(t, ctx)}
	raw, err := os.ReadFile(filepath.Join(shared.state, stack.EndpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c.ep); err != nil || c.ep.Sinks == "" || c.ep.Functions["notifier"] == "" {
		t.Fatalf("endpoints %s: want sinks and a notifier (%v)", raw, err)
	}
	if failGovernor > 0 {
		c.post(t, ctx, c.ep.Sinks+"/v1/hooks/"+stack.SinkHookGovernor+":fail", map[string]any{"status": 503, "count": failGovernor, "match": c.eng})
	}
	id := c.submit(t, ctx, apiclient.LowRiskSpec(c.eng, "Notified agent"), apiclient.WayOfWorking())
	c.approval = c.pendingApproval(t, ctx, id, "deployment").ApprovalID
	return c
}

func (c *cascadeParty) post(t *testing.T, ctx context.Context, url string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

func (c *cascadeParty) get(t *testing.T, ctx context.Context, url string, out any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// received are this approval's deliveries per sink, as "accepted" or the status answered.
func (c *cascadeParty) received(t *testing.T, ctx context.Context) map[string][]string {
	t.Helper()
	var got struct{ Messages []sinks.Message }
	c.get(t, ctx, c.ep.Sinks+"/v1/messages", &got)
	out := map[string][]string{}
	for _, m := range got.Messages {
		if !strings.Contains(m.Body, c.approval) {
			continue
		}
		s := "accepted"
		if !m.Accepted {
			s = fmt.Sprint(m.Status)
		}
		out[m.Sink] = append(out[m.Sink], s)
	}
	return out
}

// expectReceived waits (a push and a workflow step away) until the sinks hold want.
func (c *cascadeParty) expectReceived(t *testing.T, ctx context.Context, when string, want map[string][]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := c.received(t, ctx)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the sinks hold %v for %s, want %v", when, got, c.approval, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ackLink is the acknowledge link of this approval's first governor message.
func (c *cascadeParty) ackLink(t *testing.T, ctx context.Context) string {
	t.Helper()
	var got struct{ Messages []sinks.Message }
	c.get(t, ctx, c.ep.Sinks+"/v1/messages?sink="+stack.SinkHookGovernor, &got)
	// The notifier names the gateway by its function's own URL.
	route := notification.LinkPath + "?token="
	for _, m := range got.Messages {
		var p struct {
			ApprovalID string           `json:"approval_id"`
			Blocks     []map[string]any `json:"blocks"`
		}
		if json.Unmarshal([]byte(m.Body), &p) != nil || p.ApprovalID != c.approval {
			continue
		}
		for _, b := range p.Blocks {
			for _, e := range anySlice(b["elements"]) {
				if u, _ := e.(map[string]any)["url"].(string); strings.HasPrefix(u, "http://127.0.0.1:") && strings.Contains(u, route) {
					return u
				}
			}
		}
		t.Fatalf("the governor message of %s has no acknowledge link (%s): %s", c.approval, route, m.Body)
	}
	t.Fatalf("no governor message for %s", c.approval)
	return ""
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

// linkCall opens (GET) or posts a link's token, as a JSON client, and returns the answer.
func linkCall(t *testing.T, ctx context.Context, method, u, token string) (int, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"token": {token}}.Encode())
	}
	req, _ := http.NewRequestWithContext(ctx, method, u, body)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
	} else {
		req.Header.Set("Accept", "text/html")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// result is the cascade's execution as the Executions API shows it.
type cascadeResult struct {
	State  string
	Result struct {
		Outcome        string           `json:"outcome"`
		Sent           []string         `json:"sent"`
		Failed         []map[string]any `json:"failed"`
		AcknowledgedBy string           `json:"acknowledged_by"`
	}
}

func (c *cascadeParty) execution(t *testing.T, ctx context.Context) cascadeResult {
	t.Helper()
	var rec struct {
		Execution string `json:"execution"`
	}
	c.get(t, ctx, c.ep.Functions["notifier"]+"/v1/cascades/"+c.approval, &rec)
	var ex struct {
		State  string `json:"state"`
		Result string `json:"result"`
	}
	c.get(t, ctx, c.ep.Workflows+"/v1/"+rec.Execution, &ex)
	out := cascadeResult{State: ex.State}
	if ex.Result != "" {
		if err := json.Unmarshal([]byte(ex.Result), &out.Result); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// notifications are the notifier's entries on the engagement's stream, as "event_type
// channel step".
func (c *cascadeParty) notifications(t *testing.T, ctx context.Context, want int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		es, err := c.gov.Entries(ctx, c.eng, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if strings.HasPrefix(e.EventType, "waooaw.notification.") {
				out = append(out, e.EventType+" "+e.Context["channel"]+" "+e.Context["step"])
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			slices.Sort(out)
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testNotificationCascade runs an approval's notification cascade on the stack's clock:
// channels at 0, 5 and 15 minutes, an acknowledgement by the Governor and by the message's
// link, a failing webhook and a decision.
func testNotificationCascade(t *testing.T) {
	for _, sc := range []struct {
		name string
		f    func(t *testing.T, ctx context.Context)
	}{
		{"no acknowledgement: webhook at once, email at 5 min, the on-call webhook at 15", func(t *testing.T, ctx context.Context) {
			c := newCascade(t, ctx, 0)
			c.expectReceived(t, ctx, "at once", map[string][]string{"governor": {"accepted"}})
			advance(t, ctx, 5*time.Minute)
			c.expectReceived(t, ctx, "at 5 min", map[string][]string{"governor": {"accepted"}, "email": {"accepted"}})
			advance(t, ctx, 10*time.Minute)
			c.expectReceived(t, ctx, "at 15 min", map[string][]string{"governor": {"accepted"}, "email": {"accepted"}, "on-call": {"accepted"}})
			if ex := c.execution(t, ctx); ex.State != "SUCCEEDED" || ex.Result.Outcome != "exhausted" || len(ex.Result.Sent) != 3 {
				t.Errorf("cascade %+v, want SUCCEEDED with three channels sent", ex)
			}
			got := c.notifications(t, ctx, 3)
			want := []string{"waooaw.notification.sent email 2", "waooaw.notification.sent webhook 1", "waooaw.notification.sent webhook_2 3"}
			if !slices.Equal(got, want) {
				t.Errorf("stream %s: notification entries %q, want %q", c.eng, got, want)
			}
			if _, err := decide(t, ctx, c.gov, c.approval, "deny"); err != nil {
				t.Fatal(err)
			}
		}},
		{"acknowledged at minute 3: nothing more is sent", func(t *testing.T, ctx context.Context) {
			c := newCascade(t, ctx, 0)
			c.expectReceived(t, ctx, "at once", map[string][]string{"governor": {"accepted"}})
			advance(t, ctx, 3*time.Minute)
			ack, err := c.gov.Acknowledge(ctx, c.approval)
			if err != nil || ack.Status != "stopped" {
				t.Fatalf("acknowledge: %+v %v, want stopped", ack, err)
			}
			advance(t, ctx, 15*time.Minute)
			ex := c.execution(t, ctx)
			if ex.State != "SUCCEEDED" || ex.Result.Outcome != "acknowledged" || ex.Result.AcknowledgedBy != "user:gov-"+c.eng {
				t.Fatalf("cascade %+v, want acknowledged by the Governor", ex)
			}
			c.expectReceived(t, ctx, "after 18 min", map[string][]string{"governor": {"accepted"}})
			if _, err := decide(t, ctx, c.gov, c.approval, "deny"); err != nil {
				t.Fatal(err)
			}
		}},
		{"acknowledged by the message's link at minute 3: opening it stops nothing, posting it stops the rest, once", func(t *testing.T, ctx context.Context) {
			c := newCascade(t, ctx, 0)
			c.expectReceived(t, ctx, "at once", map[string][]string{"governor": {"accepted"}})
			link := c.ackLink(t, ctx)
			advance(t, ctx, 3*time.Minute)
			if code, body := linkCall(t, ctx, http.MethodGet, link, ""); code != 200 || !strings.Contains(body, `method="post"`) {
				t.Fatalf("GET the link: %d %s, want the page with its button", code, body)
			}
			if ex := c.execution(t, ctx); ex.State != "ACTIVE" {
				t.Fatalf("cascade %+v after opening the link, want still waiting", ex)
			}
			base, tok, _ := strings.Cut(link, "?token=")
			if code, body := linkCall(t, ctx, http.MethodPost, base, tok); code != 200 || !strings.Contains(body, `"stopped"`) {
				t.Fatalf("POST the link: %d %s, want stopped", code, body)
			}
			advance(t, ctx, 15*time.Minute)
			ex := c.execution(t, ctx)
			if ex.State != "SUCCEEDED" || ex.Result.Outcome != "acknowledged" || ex.Result.AcknowledgedBy != "link" {
				t.Fatalf("cascade %+v, want acknowledged by the link", ex)
			}
			c.expectReceived(t, ctx, "after 18 min", map[string][]string{"governor": {"accepted"}})
			if code, body := linkCall(t, ctx, http.MethodPost, base, tok); code != http.StatusGone || !strings.Contains(body, "already used") {
				t.Errorf("the same link again: %d %s, want 410 already used", code, body)
			}
			if _, err := decide(t, ctx, c.gov, c.approval, "deny"); err != nil {
				t.Fatal(err)
			}
		}},
		{"a failing webhook is retried, then recorded, and the email still goes", func(t *testing.T, ctx context.Context) {
			c := newCascade(t, ctx, 3)
			c.expectReceived(t, ctx, "at once", map[string][]string{"governor": {"503"}})
			advance(t, ctx, time.Minute) // the retries, 10 and 40 s after the first attempt
			c.expectReceived(t, ctx, "at 1 min", map[string][]string{"governor": {"503", "503", "503"}})
			got := c.notifications(t, ctx, 1)
			if !slices.Equal(got, []string{"waooaw.notification.failed webhook 1"}) {
				t.Fatalf("stream %s: notification entries %q, want the webhook's failure", c.eng, got)
			}
			advance(t, ctx, 4*time.Minute)
			c.expectReceived(t, ctx, "at 5 min", map[string][]string{"governor": {"503", "503", "503"}, "email": {"accepted"}})
			if _, err := decide(t, ctx, c.gov, c.approval, "deny"); err != nil {
				t.Fatal(err)
			}
		}},
		{"a decision stops the cascade", func(t *testing.T, ctx context.Context) {
			c := newCascade(t, ctx, 0)
			c.expectReceived(t, ctx, "at once", map[string][]string{"governor": {"accepted"}})
			advance(t, ctx, time.Minute)
			if _, err := decide(t, ctx, c.gov, c.approval, "deny"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for c.execution(t, ctx).State != "CANCELLED" {
				if time.Now().After(deadline) {
					t.Fatalf("cascade %+v after the decision, want CANCELLED", c.execution(t, ctx))
				}
				time.Sleep(200 * time.Millisecond)
			}
			advance(t, ctx, 20*time.Minute)
			c.expectReceived(t, ctx, "after 21 min", map[string][]string{"governor": {"accepted"}})
			if got := c.notifications(t, ctx, 2); !slices.Contains(got, "waooaw.notification.cancelled  ") {
				t.Errorf("stream %s: notification entries %q, want the cancellation", c.eng, got)
			}
		}},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.f(t, ctxFor(t, 3*time.Minute)) })
	}
}
