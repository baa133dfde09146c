package gateway

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// apiError is an answer other than success: its code is the HTTP status and its message is
// safe to show the caller. cause, if any, is logged and never sent.
type apiError struct {
	code  int
	msg   string
	cause error
	// 429 only: when to retry (Retry-After) and the limit reached.
	retryAfter time.Duration
	limit      *LimitBody
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.code, e.msg, e.cause)
	}
	return fmt.Sprintf("%d %s", e.code, e.msg)
}

func (e *apiError) Unwrap() error { return e.cause }

func errorf(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON of every error answer: {"error": {"code": N, "message": "..."}}.
type ErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		// Limit names the limit reached (429 only).
		Limit *LimitBody `json:"limit,omitempty"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}

func writeError(w http.ResponseWriter, e *apiError) {
	var b ErrorBody
	b.Error.Code, b.Error.Message, b.Error.Limit = e.code, e.msg, e.limit
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	writeJSON(w, e.code, b)
}
