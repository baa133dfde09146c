package devauth

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/shared/auth"
)

// TestTokenEndpoint asks the served issuer for tokens over HTTP and verifies what it hands out
// against the key set served beside it, as the gateway would.
func TestTokenEndpoint(t *testing.T) {
	key, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Key: key, Issuer: "https://auth.test", Audience: "waooaw-test"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, jwksURL, err := iss.Serve(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	keys, err := auth.NewJWKS(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(iss.Issuer, iss.Audience, keys)
	if err != nil {
		t.Fatal(err)
	}
	tokenURL := strings.TrimSuffix(jwksURL, JWKSPath) + TokenPath
	cases := []struct {
		name    string
		method  string
		body    string
		code    int
		wantErr string // in the error's message
		ttl     time.Duration
	}{
		{"governor of an engagement", http.MethodPost, `{"role":"governor","subject":"g1","engagement":"eng-1"}`, 200, "", DefaultTokenTTL},
		{"admin without engagement, one hour", http.MethodPost, `{"role":"admin","subject":"a1","ttl_seconds":3600}`, 200, "", time.Hour},
		{"no role", http.MethodPost, `{"subject":"g1"}`, 400, "role and subject", 0},
		{"no subject", http.MethodPost, `{"role":"viewer"}`, 400, "role and subject", 0},
		{"lifetime over a day", http.MethodPost, `{"role":"viewer","subject":"v","ttl_seconds":90000}`, 400, "ttl_seconds", 0},
		{"unknown field", http.MethodPost, `{"role":"viewer","subject":"v","scope":"all"}`, 400, "unknown field", 0},
		{"not JSON", http.MethodPost, `role=viewer`, 400, "body", 0},
		{"GET is not served", http.MethodGet, ``, 405, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, tokenURL, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.code)
			}
			switch {
			case c.code == 200:
				var got TokenResponse
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					t.Fatal(err)
				}
				var want TokenRequest
				if err := json.Unmarshal([]byte(c.body), &want); err != nil {
					t.Fatal(err)
				}
				claims, err := v.Verify(context.Background(), got.Token)
				if err != nil {
					t.Fatalf("served token does not verify: %v", err)
				}
				if claims.Subject != want.Subject || claims.Role != want.Role || claims.Engagement != want.Engagement {
					t.Errorf("claims %+v, want %+v", claims, want)
				}
				exp, err := time.Parse(time.RFC3339, got.ExpiresAt)
				if err != nil || exp.Sub(time.Now()) > c.ttl || exp.Sub(time.Now()) < c.ttl-time.Minute {
					t.Errorf("expires_at %q (%v); want about %s from now", got.ExpiresAt, err, c.ttl)
				}
			case c.wantErr != "":
				var e struct {
					Error struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
					t.Fatal(err)
				}
				if e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.wantErr) {
					t.Errorf("error %+v; want code %d naming %q", e.Error, c.code, c.wantErr)
				}
			}
		})
	}
}
