package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/notification"
)

// page is a raw answer of the link's routes.
type page struct {
	status int
	header http.Header
	body   string
}

func fetch(t *testing.T, method, u, accept string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func TestAcknowledgeLink(t *testing.T) {
	h := newHarness(t, withWorkflows())
	const eng = "eng-link"
	h.assignGovernor(t, eng, "gov-link")
	key := []byte(strings.Repeat("a", 40))
	if err := os.WriteFile(filepath.Join(h.dir, notification.LinkKeySecret), key, 0o600); err != nil {
		t.Fatal(err)
	}
	wf := h.emu.Deploy("ack_waiter", ackWaiter)
	ctx := context.Background()
	cascade := func(id, state string) string {
		ex := h.emu.Run(wf, map[string]any{})
		var list struct {
			Callbacks []struct {
				Name string `json:"name"`
			} `json:"callbacks"`
		}
		if code := h.emu.Do("GET", "/v1/"+ex.Name+"/callbacks", nil, &list); code != 200 || len(list.Callbacks) != 1 {
			t.Fatalf("callbacks of %s: HTTP %d %v", ex.Name, code, list)
		}
		c := notification.Cascade{ApprovalID: id, EngagementID: eng, State: state, Execution: ex.Name,
			CallbackURL: h.emu.URL() + "/v1/" + list.Callbacks[0].Name}
		if _, err := h.opts.Firestore.Collection(notification.Collection).Doc(id).Set(ctx, c); err != nil {
			t.Fatal(err)
		}
		return ex.Name
	}
	running := cascade("apv-link-1", notification.StateRunning)
	decided := cascade("apv-link-decided", notification.StateDecided)
	sign := func(k []byte, approval, execution string, exp time.Time) string {
		tok, err := notification.SignLink(k, notification.Link{ApprovalID: approval, Execution: execution, Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	later := time.Now().Add(time.Hour)
	valid := sign(key, "apv-link-1", running, later)
	linkURL := h.url + notification.LinkPath

	// Opening the link, as a mail scanner would, changes nothing.
	for _, accept := range []string{"text/html", "text/html"} {
		p := fetch(t, "GET", linkURL+"?token="+url.QueryEscape(valid), accept, nil)
		if p.status != 200 || !strings.Contains(p.body, `name="token" value="`+valid+`"`) || !strings.Contains(p.body, `method="post"`) {
			t.Fatalf("GET: %d %s, want the page with a form posting the token", p.status, p.body)
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script") ||
			p.header.Get("Referrer-Policy") != "no-referrer" || strings.Contains(p.body, "<script") || strings.Contains(p.body, "style=") {
			t.Errorf("GET headers %v: want a strict CSP, no referrer and no script", p.header)
		}
	}
	if ex := h.emu.Get(running); ex.State != "ACTIVE" {
		t.Fatalf("after GET the cascade is %s, want still waiting", ex.State)
	}

	for _, tc := range []struct {
		name, method, token, accept string
		status                      int
		want                        string
	}{
		{"a forged link's page", "GET", sign([]byte(strings.Repeat("b", 40)), "apv-link-1", running, later), "text/html", 403, "not signed by the platform"},
		{"an expired link, as JSON", "GET", sign(key, "apv-link-1", running, time.Now().Add(-time.Minute)), "application/json", 410, "this link expired at"},
		{"a link cut short", "POST", valid[:len(valid)-4], "application/json", 403, "not signed by the platform"},
		{"an expired link posted", "POST", sign(key, "apv-link-1", running, time.Now().Add(-time.Second)), "text/html", 410, "this link expired at"},
		{"a link of an earlier cascade", "POST", sign(key, "apv-link-1", running+"-earlier", later), "application/json", 409, "belongs to another notification cascade"},
		{"a link of an unknown approval", "POST", sign(key, "apv-link-none", running, later), "application/json", 404, "no notifications for approval"},
		{"a decided approval's link", "POST", sign(key, "apv-link-decided", decided, later), "application/json", 409, "is decided"},
		{"no token", "POST", "", "application/json", 400, "the link has no token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p page
			if tc.method == "GET" {
				p = fetch(t, "GET", linkURL+"?token="+url.QueryEscape(tc.token), tc.accept, nil)
			} else {
				p = fetch(t, "POST", linkURL, tc.accept, url.Values{"token": {tc.token}})
			}
			if p.status != tc.status || !strings.Contains(p.body, tc.want) {
				t.Fatalf("%d %s, want %d naming %q", p.status, p.body, tc.status, tc.want)
			}
			if ct := p.header.Get("Content-Type"); strings.HasPrefix(tc.accept, "text/html") != strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q for Accept %q", ct, tc.accept)
			}
		})
	}
	if ex := h.emu.Get(running); ex.State != "ACTIVE" {
		t.Fatalf("after refused links the cascade is %s, want still waiting", ex.State)
	}

	// The list tells the console whether Acknowledge would be taken.
	for _, id := range []string{"apv-link-1", "apv-link-decided"} {
		ap := agentreq.Approval{ApprovalID: id, EngagementID: eng, Kind: agentreq.KindBlocking, Type: "deployment", State: agentreq.ApprovalPending, Deadline: later.UTC().Format(time.RFC3339)}
		if _, err := h.opts.Firestore.Collection(agentreq.Approvals).Doc(id).Set(ctx, ap); err != nil {
			t.Fatal(err)
		}
	}
	gov := h.token(t, "gov-link", auth.RoleGovernor, eng)
	offered := func() map[string]string {
		a := h.call(t, "GET", "/v1/approvals", gov, nil)
		var list struct {
			Approvals []struct {
				ApprovalID     string `json:"approval_id"`
				Acknowledge    bool   `json:"acknowledge"`
				AcknowledgedBy string `json:"acknowledged_by"`
			} `json:"approvals"`
		}
		if err := json.Unmarshal([]byte(a.raw), &list); err != nil || a.status != 200 {
			t.Fatalf("GET /v1/approvals: %d %s", a.status, a.raw)
		}
		out := map[string]string{}
		for _, x := range list.Approvals {
			out[x.ApprovalID] = fmt.Sprint(x.Acknowledge, " ", x.AcknowledgedBy)
		}
		return out
	}
	if got := offered(); got["apv-link-1"] != "true " || got["apv-link-decided"] != "false " {
		t.Errorf("before: approvals offer acknowledge %v, want the running cascade's alone", got)
	}

	// Posting the valid link acknowledges once, as the Governor's route does.
	p := fetch(t, "POST", linkURL, "text/html", url.Values{"token": {valid}})
	if p.status != 200 || !strings.Contains(p.body, "no more reminders will be sent for approval apv-link-1") {
		t.Fatalf("POST: %d %s, want the acknowledged page", p.status, p.body)
	}
	decisions := p.header.Get(gateway.HeaderDecisionID)
	var body map[string]string
	h.emu.Result(h.emu.Get(running), &body)
	if body["acknowledged_by"] != gateway.LinkActor {
		t.Errorf("the cascade received %v, want acknowledged_by link", body)
	}
	again := fetch(t, "POST", linkURL, "application/json", url.Values{"token": {valid}})
	if again.status != 410 || !strings.Contains(again.body, "this link was already used") {
		t.Errorf("the same link again: %d %s, want 410 already used", again.status, again.body)
	}

	if got := offered(); got["apv-link-1"] != "false link" {
		t.Errorf("after: approvals offer acknowledge %v, want apv-link-1 acknowledged by the link", got)
	}

	// The Governor's own acknowledgement is recorded too, by name.
	second := cascade("apv-link-2", notification.StateRunning)
	if a := h.call(t, "POST", "/v1/approvals/apv-link-2/acknowledge", gov, nil); a.status != 200 {
		t.Fatalf("bearer acknowledge: %d %s", a.status, a.raw)
	}
	if ex := h.emu.Get(second); ex.State != "SUCCEEDED" {
		t.Errorf("second cascade %s, want ended by the acknowledgement", ex.State)
	}
	by := map[string]string{}
	for _, e := range h.drain(t)[events.TopicAuditEvents] {
		var d struct {
			EventType string            `json:"event_type"`
			Stream    string            `json:"stream"`
			ActorType string            `json:"actor_type"`
			Context   map[string]string `json:"context"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.EventType == gateway.AuditAcknowledged && d.Stream == eng {
			by[d.Context["approval_id"]] = d.Context["acknowledged_by"] + "/" + d.ActorType
		}
	}
	if by["apv-link-1"] != "link/human" || by["apv-link-2"] != "user:gov-link/human" || len(by) != 2 {
		t.Errorf("acknowledgements recorded %v, want apv-link-1 by the link and apv-link-2 by the Governor, once each", by)
	}
	attested := h.attested(t)
	for _, id := range strings.Split(decisions, ",") {
		if a, ok := attested[id]; !ok || !strings.HasPrefix(a.Decision, "allow") {
			t.Errorf("the link's decision %q (of %q) not attested as allowed: %+v", id, decisions, a)
		}
	}
}
