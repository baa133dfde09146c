package auth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestWebhookSignature(t *testing.T) {
	// Fixed vector computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
	got := WebhookSignature([]byte("s3cret"), "1700000000", []byte(`{"a":1}`))
	if want := "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
}

func TestWebhookParseVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"agent_id":"a1"}`)
	now := time.Unix(1_700_000_000, 0)
	signed := func(at time.Time) http.Header {
		h := http.Header{}
		SignWebhook(h, "dev-client", secret, body, at)
		return h
	}
	with := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	good := signed(now)
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		want   error // nil = accepted
	}{
		{"valid", good, body, nil},
		{"valid 4 min old", signed(now.Add(-4 * time.Minute)), body, nil},
		{"valid, upper-case hex", with(good, HeaderSignature, "sha256="+strings.ToUpper(strings.TrimPrefix(good.Get(HeaderSignature), "sha256="))), body, nil},
		{"no client", with(good, HeaderClient, ""), body, ErrNoSignature},
		{"no timestamp", with(good, HeaderTimestamp, ""), body, ErrNoSignature},
		{"no signature", with(good, HeaderSignature, ""), body, ErrNoSignature},
		{"stale", signed(now.Add(-6 * time.Minute)), body, ErrStaleTimestamp},
		{"future", signed(now.Add(6 * time.Minute)), body, ErrStaleTimestamp},
		{"timestamp not a number", with(good, HeaderTimestamp, "+1700000000"), body, ErrBadSignature},
		{"other timestamp than signed", with(good, HeaderTimestamp, "1700000001"), body, ErrBadSignature},
		{"no sha256= prefix", with(good, HeaderSignature, strings.TrimPrefix(good.Get(HeaderSignature), "sha256=")), body, ErrBadSignature},
		{"not hex", with(good, HeaderSignature, "sha256=zz"), body, ErrBadSignature},
		{"short mac", with(good, HeaderSignature, "sha256=abcd"), body, ErrBadSignature},
		{"body changed", good, []byte(`{"agent_id":"a2"}`), ErrBadSignature},
		{"other secret", func() http.Header {
			h := http.Header{}
			SignWebhook(h, "dev-client", []byte("other"), body, now)
			return h
		}(), body, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWebhook(tt.header)
			if err == nil {
				err = w.CheckTime(now, WebhookTolerance)
			}
			if err == nil {
				err = w.Verify(secret, tt.body)
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && w.Client != "dev-client" {
				t.Fatalf("client = %q", w.Client)
			}
		})
	}
}

func TestReplayKey(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_700_000_000, 0)
	key := func(client string, at time.Time, body string, upper bool) string {
		h := http.Header{}
		SignWebhook(h, client, secret, []byte(body), at)
		if upper {
			h.Set(HeaderSignature, "sha256="+strings.ToUpper(strings.TrimPrefix(h.Get(HeaderSignature), "sha256=")))
		}
		w, err := ParseWebhook(h)
		if err != nil {
			t.Fatal(err)
		}
		return w.ReplayKey()
	}
	base := key("c", now, "{}", false)
	if len(base) != 64 {
		t.Fatalf("ReplayKey %q is not hex sha256", base)
	}
	if key("c", now, "{}", true) != base {
		t.Error("re-cased signature made a new replay key")
	}
	for name, other := range map[string]string{
		"client": key("d", now, "{}", false),
		"time":   key("c", now.Add(time.Second), "{}", false),
		"body":   key("c", now, "[]", false),
	} {
		if other == base {
			t.Errorf("a different %s gave the same replay key", name)
		}
	}
}
