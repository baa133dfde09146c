// Package aiemu is a local OpenAI-compatible chat server: POST /v1/chat/completions in the
// wire format the official clients speak (usage included), with a bearer key check, so the
// platform's AI router runs unchanged against it. A control API under /emulator/v1/ lets a
// test queue failures (a status, or a delay longer than the caller's timeout), set the next
// reply, and read the requests received.
package aiemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Failure is what the server does to one request instead of answering it: answer Status
// (503, 429, ...) or, with Delay set, wait that long before answering normally (or until
// the client gives up).
type Failure struct {
	Status int           `json:"status,omitempty"`
	Delay  time.Duration `json:"-"`
	// DelayMS is Delay in milliseconds on the control API.
	DelayMS int64 `json:"delay_ms,omitempty"`
}

// Request is one chat request as received.
type Request struct {
	Model     string `json:"model"`
	MaxTokens int64  `json:"max_tokens"` // max_completion_tokens, or max_tokens when only that was sent
	Key       string `json:"key"`        // the bearer key used
	Messages  int    `json:"messages"`
	Status    int    `json:"status"` // what the server answered (0 when the client left first)
}

// Server is one provider's endpoint. The zero value is not usable: use New.
type Server struct {
	name string
	keys map[string]bool // accepted bearer keys; empty: any non-empty key

	mu       sync.Mutex
	failures []Failure
	replies  []Reply
	requests []Request
	seq      int
}

// Option configures New.
type Option func(*Server)

// WithKeys accepts only these bearer keys (default: any non-empty key).
func WithKeys(keys ...string) Option {
	return func(s *Server) {
		for _, k := range keys {
			s.keys[k] = true
		}
	}
}

// New returns a server named for the provider it stands in for (it appears in replies' ids).
func New(name string, opts ...Option) *Server {
	s := &Server{name: name, keys: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Fail queues failures: each next chat request takes the first one.
func (s *Server) Fail(fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fs...)
}

// Reply is one answer to give. Usage left at zero is counted from the text (about four
// bytes a token); set, it is reported as given, so a test can make a call cost what it needs.
type Reply struct {
	Content          string `json:"content"`
	PromptTokens     int64  `json:"prompt_tokens,omitempty"`
	CompletionTokens int64  `json:"completion_tokens,omitempty"`
}

// Reply queues replies: each next answered request takes the first one; with none queued
// the reply is "ok".
func (s *Server) Reply(rs ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies = append(s.replies, rs...)
}

// Requests returns the chat requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset forgets queued failures, replies and the requests received.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures, s.replies, s.requests = nil, nil, nil
}

// ServeHTTP serves the chat API and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/chat/completions" && r.Method == http.MethodPost:
		s.chat(w, r)
	case r.URL.Path == "/emulator/v1/failures" && r.Method == http.MethodPost:
		var f Failure
		if !decode(w, r, &f) {
			return
		}
		f.Delay = time.Duration(f.DelayMS) * time.Millisecond
		s.Fail(f)
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/emulator/v1/replies" && r.Method == http.MethodPost:
		var body Reply
		if !decode(w, r, &body) {
			return
		}
		s.Reply(body)
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/emulator/v1/requests" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"requests": s.Requests()})
	case r.URL.Path == "/emulator/v1/requests" && r.Method == http.MethodDelete:
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusNotFound, "invalid_request_error", "no route "+r.Method+" "+r.URL.Path)
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "body: "+err.Error())
		return false
	}
	return true
}

// chatRequest is the part of the request body the server reads.
type chatRequest struct {
	Model               string `json:"model"`
	MaxTokens           int64  `json:"max_tokens"`
	MaxCompletionTokens int64  `json:"max_completion_tokens"`
	Messages            []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "body: "+err.Error())
		return
	}
	maxTokens := req.MaxCompletionTokens
	if maxTokens == 0 {
		maxTokens = req.MaxTokens
	}
	s.mu.Lock()
	i := len(s.requests)
	s.requests = append(s.requests, Request{Model: req.Model, MaxTokens: maxTokens, Key: key, Messages: len(req.Messages)})
	s.mu.Unlock()
	status := func(code int) {
		s.mu.Lock()
		s.requests[i].Status = code
		s.mu.Unlock()
	}
	switch {
	case !ok || key == "" || (len(s.keys) > 0 && !s.keys[key]):
		status(http.StatusUnauthorized)
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided")
		return
	case req.Model == "" || len(req.Messages) == 0:
		status(http.StatusBadRequest)
		apiError(w, http.StatusBadRequest, "invalid_request_error", "model and messages are required")
		return
	}
	// A queued failure is taken by the next request that would have been answered.
	var fail *Failure
	s.mu.Lock()
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.mu.Unlock()
	switch {
	case fail != nil && fail.Status != 0:
		status(fail.Status)
		if fail.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
			apiError(w, fail.Status, "rate_limit_exceeded", "Rate limit reached")
			return
		}
		apiError(w, fail.Status, "server_error", http.StatusText(fail.Status))
		return
	case fail != nil && fail.Delay > 0:
		select {
		case <-time.After(fail.Delay):
		case <-r.Context().Done():
			return // the client gave up: status stays 0
		}
	}
	s.mu.Lock()
	reply := Reply{Content: "ok"}
	if len(s.replies) > 0 {
		reply, s.replies = s.replies[0], s.replies[1:]
	}
	content := reply.Content
	s.seq++
	id := fmt.Sprintf("chatcmpl-%s-%d", s.name, s.seq)
	s.mu.Unlock()
	var promptBytes int
	for _, m := range req.Messages {
		var text string
		if json.Unmarshal(m.Content, &text) != nil {
			text = string(m.Content)
		}
		promptBytes += len(text)
	}
	// About four bytes a token, as the providers' tokenizers give for English, with a few
	// tokens of framing per message; the completion never passes max_tokens.
	prompt := int64((promptBytes+3)/4 + 3*len(req.Messages))
	completion := int64((len(content) + 3) / 4)
	if reply.PromptTokens > 0 {
		prompt = reply.PromptTokens
	}
	if reply.CompletionTokens > 0 {
		completion = reply.CompletionTokens
	}
	finish := "stop"
	if maxTokens > 0 && completion > maxTokens {
		completion, finish = maxTokens, "length"
	}
	status(http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":      id,
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content, "refusal": nil},
			"logprobs":      nil,
			"finish_reason": finish,
		}},
		"usage": map[string]any{
			"prompt_tokens":     prompt,
			"completion_tokens": completion,
			"total_tokens":      prompt + completion,
		},
		"system_fingerprint": "fp_aiemu",
	})
}

// apiError writes the error body the OpenAI API and Groq answer.
func apiError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}
