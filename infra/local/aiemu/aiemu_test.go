package aiemu_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"waooaw.dev/governance/infra/local/aiemu"
)

func post(t *testing.T, url, key string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out) // 204s have no body
	return resp.StatusCode, out
}

// The control API queues what the next chat requests get; the chat API answers in the
// wire format, usage included, and refuses keys it does not know.
func TestControlAndChat(t *testing.T) {
	srv := httptest.NewServer(aiemu.New("groq", aiemu.WithKeys("good-key")))
	defer srv.Close()
	chat := srv.URL + "/v1/chat/completions"
	req := map[string]any{"model": "m", "max_completion_tokens": 5, "messages": []map[string]any{{"role": "user", "content": "12345678"}}}
	if code, _ := post(t, srv.URL+"/emulator/v1/failures", "", map[string]any{"status": 503}); code != http.StatusNoContent {
		t.Fatalf("queue failure: %d", code)
	}
	if code, _ := post(t, srv.URL+"/emulator/v1/replies", "", map[string]any{"content": "a reply longer than five tokens"}); code != http.StatusNoContent {
		t.Fatalf("queue reply: %d", code)
	}
	for _, tc := range []struct {
		name   string
		key    string
		status int
		check  func(map[string]any) bool
	}{
		{"no key", "", 401, func(b map[string]any) bool { return b["error"] != nil }},
		{"wrong key", "bad-key", 401, func(b map[string]any) bool { return b["error"] != nil }},
		{"queued 503", "good-key", 503, func(b map[string]any) bool { return b["error"].(map[string]any)["type"] == "server_error" }},
		{"queued reply, cut at max tokens", "good-key", 200, func(b map[string]any) bool {
			u := b["usage"].(map[string]any)
			c := b["choices"].([]any)[0].(map[string]any)
			return b["object"] == "chat.completion" && u["prompt_tokens"] == 5.0 && u["completion_tokens"] == 5.0 &&
				u["total_tokens"] == 10.0 && c["finish_reason"] == "length" && c["message"].(map[string]any)["content"] == "a reply longer than five tokens"
		}},
		{"default reply", "good-key", 200, func(b map[string]any) bool {
			return b["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] == "ok"
		}},
	} {
		code, body := post(t, chat, tc.key, req)
		if code != tc.status || !tc.check(body) {
			t.Fatalf("%s: %d %v", tc.name, code, body)
		}
	}
	resp, err := http.Get(srv.URL + "/emulator/v1/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Requests []aiemu.Request }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := []int{401, 401, 503, 200, 200}
	if len(got.Requests) != len(want) {
		t.Fatalf("requests %+v", got.Requests)
	}
	for i, r := range got.Requests {
		if r.Status != want[i] || r.Model != "m" || r.MaxTokens != 5 || r.Messages != 1 {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	if got.Requests[2].Key != "good-key" {
		t.Fatalf("key recorded %q", got.Requests[2].Key)
	}
}
