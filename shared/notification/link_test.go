package notification_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/shared/notification"
)

func TestLink(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l := notification.Link{ApprovalID: "apv-1", Execution: "projects/p/locations/l/workflows/w/executions/e1", Expires: now.Add(time.Hour)}
	tok, err := notification.SignLink(key, l)
	if err != nil {
		t.Fatal(err)
	}
	other, err := notification.SignLink(key, notification.Link{ApprovalID: "apv-2", Execution: l.Execution, Expires: l.Expires})
	if err != nil {
		t.Fatal(err)
	}
	payload, sig, _ := strings.Cut(tok, ".")
	otherPayload, _, _ := strings.Cut(other, ".")
	for _, tc := range []struct {
		name  string
		key   []byte
		token string
		at    time.Time
		want  error
	}{
		{"valid", key, tok, now, nil},
		{"expired at its deadline", key, tok, now.Add(time.Hour), notification.ErrLinkExpired},
		{"another key", []byte(strings.Repeat("j", 32)), tok, now, notification.ErrLinkForged},
		{"another approval under this signature", key, otherPayload + "." + sig, now, notification.ErrLinkForged},
		{"signature cut", key, payload + "." + sig[:10], now, notification.ErrLinkForged},
		{"no signature", key, payload, now, notification.ErrLinkForged},
		{"garbage", key, "%%%.%%%", now, notification.ErrLinkForged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := notification.VerifyLink(tc.key, tc.token, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyLink: %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if !errors.Is(err, notification.ErrLink) {
					t.Errorf("%v does not wrap ErrLink", err)
				}
				return
			}
			if got.ApprovalID != l.ApprovalID || got.Execution != l.Execution || !got.Expires.Equal(l.Expires) {
				t.Errorf("VerifyLink = %+v, want %+v", got, l)
			}
		})
	}
	if _, err := notification.SignLink([]byte("short"), l); err == nil {
		t.Error("SignLink with a 5-byte key: no error")
	}
	if notification.LinkDigest(tok) == notification.LinkDigest(other) {
		t.Error("two tokens share a digest")
	}
}
