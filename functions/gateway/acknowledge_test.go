package gateway_test

import (
	"context"
	"encoding/json"
	"testing"

	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/notification"
)

// ackWaiter stands in for notification_cascade: it waits on one callback and returns its body.
const ackWaiter = `
main:
  params: [args]
  steps:
    - make:
        call: events.create_callback_endpoint
        args: {http_callback_method: POST}
        result: cb
    - wait:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 3600
        result: got
    - done:
        return: ${got.http_request.body}
`

func TestAcknowledge(t *testing.T) {
	h := newHarness(t, withWorkflows())
	const eng = "eng-ack"
	h.assignGovernor(t, eng, "gov-ack")
	h.assignGovernor(t, "eng-ack-b", "gov-other")
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
	running := cascade("apv-ack-1", notification.StateRunning)
	cascade("apv-ack-decided", notification.StateDecided)
	gov := h.token(t, "gov-ack", auth.RoleGovernor, eng)

	for _, tc := range []struct {
		name, approval, tok string
		status              int
		msg, wantStatus     string
	}{
		{"a viewer may not", "apv-ack-1", h.token(t, "vic", auth.RoleViewer, eng), 403, "role viewer (level 7) may not acknowledge", ""},
		{"another engagement's Governor may not", "apv-ack-1", h.token(t, "gov-other", auth.RoleGovernor, "eng-ack-b"), 403, "gov-other is not the Governor of engagement eng-ack", ""},
		{"the Governor stops the cascade", "apv-ack-1", gov, 200, "", "stopped"},
		{"twice is the same", "apv-ack-1", gov, 200, "", "already_acknowledged"},
		{"a decided approval has nothing to stop", "apv-ack-decided", gov, 409, "is decided", ""},
		{"an unknown approval", "apv-none", gov, 404, "no notifications for approval", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := h.call(t, "POST", "/v1/approvals/"+tc.approval+"/acknowledge", tc.tok, nil)
			expect(t, tc.name, a, tc.status, tc.msg)
			if tc.wantStatus == "" {
				return
			}
			var got struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal([]byte(a.raw), &got)
			if got.Status != tc.wantStatus {
				t.Errorf("status %q, want %q (%s)", got.Status, tc.wantStatus, a.raw)
			}
		})
	}
	ex := h.emu.Get(running)
	var body map[string]string
	h.emu.Result(ex, &body)
	if body["acknowledged_by"] != "user:gov-ack" || body["approval_id"] != "apv-ack-1" {
		t.Errorf("the cascade received %v, want the Governor's acknowledgement", body)
	}
	snap, err := h.opts.Firestore.Collection(notification.Collection).Doc("apv-ack-1").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := snap.DataAt("state"); s != notification.StateAcknowledged {
		t.Errorf("record state %v, want acknowledged", s)
	}
}
