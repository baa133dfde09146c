package devauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// TokenPath is where Serve issues development tokens: what `waooaw login --local` and a
// development sign-in ask, so nobody needs the key file to act as a role locally. Only the
// local stack serves it, on loopback, beside the key set.
const TokenPath = "/dev/token"

// Token lifetimes TokenHandler issues: a working day unless asked otherwise, a day at most.
const (
	DefaultTokenTTL = 8 * time.Hour
	MaxTokenTTL     = 24 * time.Hour
)

// TokenRequest is the body of POST TokenPath.
type TokenRequest struct {
	Role       string `json:"role"`
	Subject    string `json:"subject"`
	Engagement string `json:"engagement"`
	// TTLSeconds is the token's lifetime; 0 means DefaultTokenTTL.
	TTLSeconds int `json:"ttl_seconds"`
}

// TokenResponse is its answer.
type TokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// TokenHandler answers POST TokenPath {"role","subject","engagement"} with a signed token, or
// 400 {"error": {"code", "message"}} (the gateway's error shape) naming what is wrong.
func (i *Issuer) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			tokenError(w, http.StatusBadRequest, fmt.Sprintf("body: %v", err))
			return
		}
		ttl := time.Duration(req.TTLSeconds) * time.Second
		switch {
		case req.Role == "" || req.Subject == "":
			tokenError(w, http.StatusBadRequest, "fields role and subject are required")
			return
		case ttl < 0 || ttl > MaxTokenTTL:
			tokenError(w, http.StatusBadRequest, fmt.Sprintf("field ttl_seconds: between 0 and %d", int(MaxTokenTTL.Seconds())))
			return
		case ttl == 0:
			ttl = DefaultTokenTTL
		}
		tok, err := i.Token(req.Subject, req.Role, req.Engagement, ttl)
		if err != nil {
			tokenError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeTokenJSON(w, http.StatusOK, TokenResponse{Token: tok, ExpiresAt: time.Now().Add(ttl).UTC().Format(time.RFC3339)})
	})
}

func tokenError(w http.ResponseWriter, code int, msg string) {
	var b struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b.Error.Code, b.Error.Message = code, msg
	writeTokenJSON(w, code, b)
}

func writeTokenJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}
