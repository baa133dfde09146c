package notifier_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/functions/notifier"
	"waooaw.dev/governance/infra/local/sinks"
)

func startSinks(t *testing.T) *sinks.Sinks {
	t.Helper()
	s, err := sinks.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var message = notifier.Message{ApprovalID: "apv-1", EngagementID: "eng-1", Type: "deployment", Subject: "agent Ada",
	Action: "deploy", Rationale: "stage 6: no seed matched", Deadline: "2026-12-01T14:00:00Z",
	AcknowledgeURL: "https://gw.example/v1/approvals/apv-1/acknowledge", Step: 1}

var key = []byte("0123456789abcdef0123456789abcdef")

func TestWebhookPostsASignedSlackMessage(t *testing.T) {
	s := startSinks(t)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		fail    int // status the hook answers first
		wantErr error
		refused bool
	}{
		{name: "accepted"},
		{name: "a 503 is worth retrying", fail: 503, wantErr: errors.New("any"), refused: false},
		{name: "a 429 is worth retrying", fail: 429, wantErr: errors.New("any"), refused: false},
		{name: "a 404 is refused for good", fail: 404, wantErr: notifier.ErrRefused, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := strings.NewReplacer(" ", "-").Replace(tc.name)
			if tc.fail != 0 {
				post(t, s.URL+"/v1/hooks/"+hook+":fail", map[string]int{"status": tc.fail, "count": 1})
			}
			w := &notifier.Webhook{URL: s.HookURL(hook), Key: func(context.Context) ([]byte, error) { return key, nil },
				Now: func() time.Time { return at }}
			err := w.Send(context.Background(), message)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Send: %v", err)
			case tc.wantErr != nil && err == nil:
				t.Fatal("Send succeeded, want an error")
			case errors.Is(err, notifier.ErrRefused) != tc.refused:
				t.Fatalf("Send = %v; refused %v, want %v", err, errors.Is(err, notifier.ErrRefused), tc.refused)
			}
			got := s.Messages(hook)
			if len(got) != 1 {
				t.Fatalf("hook received %d messages, want 1", len(got))
			}
			m := got[0]
			ts := m.Headers[notifier.HeaderTimestamp]
			if ts != "1796119200" {
				t.Errorf("timestamp %q, want the send's unix time", ts)
			}
			if sig := m.Headers[notifier.HeaderSignature]; !hmac.Equal([]byte(sig), []byte(notifier.Sign(key, ts, []byte(m.Body)))) {
				t.Errorf("signature %q does not verify over the body received", sig)
			}
			if notifier.Sign([]byte("another key of thirty-two bytes!"), ts, []byte(m.Body)) == m.Headers[notifier.HeaderSignature] {
				t.Error("another key gives the same signature")
			}
			var p struct {
				Text   string           `json:"text"`
				Blocks []map[string]any `json:"blocks"`
			}
			if err := json.Unmarshal([]byte(m.Body), &p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Text, "apv-1") || !strings.Contains(p.Text, "acknowledge") || len(p.Blocks) < 2 || p.Blocks[0]["type"] != "header" {
				t.Errorf("payload text %q blocks %v: want the approval, the acknowledge link and a header block", p.Text, p.Blocks)
			}
		})
	}
}

func TestEmailOverSMTP(t *testing.T) {
	s := startSinks(t)
	for _, tc := range []struct {
		name    string
		addr    string
		wantErr bool
	}{
		{name: "delivered to every recipient", addr: s.SMTPAddr},
		{name: "nobody listening is an error worth retrying", addr: closedAddr(t), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Messages("email"))
			e := &notifier.Email{Addr: tc.addr, From: "waooaw@example.com", To: []string{"gov@example.com", "ops@example.com"}}
			err := e.Send(context.Background(), message)
			if tc.wantErr {
				if err == nil || errors.Is(err, notifier.ErrRefused) {
					t.Fatalf("Send = %v, want a retryable error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := s.Messages("email")
			if len(got) != before+1 {
				t.Fatalf("sink has %d messages, want %d", len(got), before+1)
			}
			m := got[len(got)-1]
			for _, want := range []string{"Subject: Approval needed: deployment agent Ada", "X-Waooaw-Approval: apv-1", "apv-1/acknowledge", "decide before: 2026-12-01T14:00:00Z"} {
				if !strings.Contains(m.Body, want) {
					t.Errorf("mail lacks %q:\n%s", want, m.Body)
				}
			}
			if m.From != "waooaw@example.com" || len(m.To) != 2 {
				t.Errorf("envelope from %q to %v", m.From, m.To)
			}
		})
	}
}

func TestASubjectCannotAddHeaders(t *testing.T) {
	s := startSinks(t)
	m := message
	m.Subject = "x\r\nBcc: evil@example.com"
	if err := (&notifier.Email{Addr: s.SMTPAddr, From: "a@example.com", To: []string{"b@example.com"}}).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(s.Messages("email")[0].Body, "\r\n\r\n")
	if strings.Contains(head, "\r\nBcc:") {
		t.Errorf("the subject's line break reached the headers:\n%s", head)
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}
