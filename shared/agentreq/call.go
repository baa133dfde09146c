package agentreq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxCallBytes bounds a call's body: a spec and a way of working are a few kilobytes.
const MaxCallBytes = 512 << 10

// Call is the body of every call the workflow makes to a stage function (docs/agent-creation.md).
// Fields a call does not use stay empty.
type Call struct {
	RequestID    string         `json:"request_id"`
	EngagementID string         `json:"engagement_id"`
	Round        int            `json:"round"`
	At           string         `json:"at"`
	Spec         map[string]any `json:"spec"`
	WayOfWorking map[string]any `json:"way_of_working"`

	RevisionCallback string `json:"revision_callback"`
	ApprovalCallback string `json:"approval_callback"`
	HealthCallback   string `json:"health_callback"`
	ApprovalID       string `json:"approval_id"`
}

// Time is the call's at as a time.
func (c Call) Time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, c.At)
	return t
}

// ErrBadCall marks a call that can never succeed: the function answers 400 and the workflow
// does not retry it.
var ErrBadCall = errors.New("bad call")

// Decode reads a JSON call body into v (a *Call or a call-specific struct), refusing unknown
// trouble early: a body over MaxCallBytes, malformed JSON. Errors wrap ErrBadCall.
func Decode(r *http.Request, v any) error {
	if r.Method != http.MethodPost {
		return fmt.Errorf("%w: method %s; use POST", ErrBadCall, r.Method)
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxCallBytes))
	if err != nil {
		return fmt.Errorf("%w: body: %v", ErrBadCall, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: body: %v", ErrBadCall, err)
	}
	return nil
}

// Check refuses a call without the fields every call carries. round is required when
// needRound is set (stage calls).
func (c Call) Check(needRound bool) error {
	switch {
	case c.RequestID == "":
		return fmt.Errorf("%w: request_id is missing", ErrBadCall)
	case c.EngagementID == "":
		return fmt.Errorf("%w: engagement_id is missing", ErrBadCall)
	case needRound && c.Round < 1:
		return fmt.Errorf("%w: round must be 1 or more", ErrBadCall)
	}
	if _, err := time.Parse(time.RFC3339Nano, c.At); err != nil {
		return fmt.Errorf("%w: at %q is not an RFC 3339 time", ErrBadCall, c.At)
	}
	return nil
}

// Handler answers a workflow's call: the body decoded into a Call, handled, and the stored
// answer written (or the error, as WriteError maps it).
func Handler(handle func(context.Context, Call) (Result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var c Call
		if err := Decode(r, &c); err != nil {
			WriteError(w, err)
			return
		}
		res, err := handle(r.Context(), c)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteRaw(w, res.Answer)
	}
}

// WriteJSON answers v with code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the caller may be gone; nothing to do about it
}

// WriteRaw answers stored JSON with 200.
func WriteRaw(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// WriteError answers the platform's error body {"error": {"code", "message"}}. A bad call
// or an unknown request is 400 (the workflow does not retry it); anything else is 503, which
// the workflow's retry policy retries.
func WriteError(w http.ResponseWriter, err error) {
	code := http.StatusServiceUnavailable
	if errors.Is(err, ErrBadCall) || errors.Is(err, ErrUnknownRequest) {
		code = http.StatusBadRequest
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, err.Error()
	WriteJSON(w, code, body)
}
