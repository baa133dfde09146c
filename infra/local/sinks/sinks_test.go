package sinks_test

import (
	"encoding/json"
	"net/http"
	"net/smtp"
	"slices"
	"strings"
	"testing"

	"waooaw.dev/governance/infra/local/sinks"
)

func start(t *testing.T) *sinks.Sinks {
	t.Helper()
	s, err := sinks.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// read is GET /v1/messages, as a test of the running stack reads it.
func read(t *testing.T, s *sinks.Sinks, sink string) []sinks.Message {
	t.Helper()
	resp, err := http.Get(s.URL + "/v1/messages?sink=" + sink)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Messages []sinks.Message }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func TestHookAnswersQueuedFailuresThenAccepts(t *testing.T) {
	s := start(t)
	resp, err := http.Post(s.URL+"/v1/hooks/ops:fail", "application/json", strings.NewReader(`{"status": 503, "count": 2}`))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("queue failures: %v %v", resp, err)
	}
	var got []int
	for range 3 {
		r, err := http.Post(s.HookURL("ops"), "application/json", strings.NewReader(`{"text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		got = append(got, r.StatusCode)
	}
	if want := []int{503, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	msgs := read(t, s, "ops")
	if len(msgs) != 3 || msgs[0].Accepted || !msgs[2].Accepted || msgs[2].Body != `{"text":"hi"}` {
		t.Errorf("messages %+v, want three, the last accepted with the body", msgs)
	}
	// A failure queued for one engagement's messages leaves the others alone.
	post := func(body string) int {
		r, err := http.Post(s.HookURL("ops"), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if r, err := http.Post(s.URL+"/v1/hooks/ops:fail", "application/json", strings.NewReader(`{"status": 500, "count": 1, "match": "eng-b"}`)); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("queue a matched failure: %v %v", r, err)
	}
	if a, b := post(`{"text":"eng-a"}`), post(`{"text":"eng-b"}`); a != 200 || b != 500 {
		t.Errorf("eng-a answered %d, eng-b %d; want 200 and the queued 500", a, b)
	}
	if other := read(t, s, "email"); len(other) != 0 {
		t.Errorf("email sink has %v, want nothing", other)
	}
}

func TestSMTPKeepsWhatNetSMTPSends(t *testing.T) {
	s := start(t)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"plain", "Subject: one\r\n\r\nhello\r\n", "hello"},
		{"dot-stuffed line", "Subject: two\r\n\r\n.leading dot\r\n", "\r\n.leading dot\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := smtp.SendMail(s.SMTPAddr, nil, "a@example.com", []string{"b@example.com", "c@example.com"}, []byte(tc.body)); err != nil {
				t.Fatalf("SendMail: %v", err)
			}
			msgs := read(t, s, "email")
			m := msgs[len(msgs)-1]
			if m.From != "a@example.com" || len(m.To) != 2 || !strings.Contains(m.Body, tc.want) {
				t.Errorf("message %+v, want from a@, two recipients and %q", m, tc.want)
			}
		})
	}
}
