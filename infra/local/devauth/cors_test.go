package devauth

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLoopbackCORS asks the served token endpoint as a browser would, from pages on this
// machine and from elsewhere.
func TestLoopbackCORS(t *testing.T) {
	key, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Key: key, Issuer: "https://auth.test", Audience: "waooaw-test"}
	srv := httptest.NewUnstartedServer(nil)
	hs, jwksURL, err := iss.Serve(srv.Listener)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	tokenURL := strings.TrimSuffix(jwksURL, JWKSPath) + TokenPath
	body := `{"role":"governor","subject":"me","engagement":"eng-1"}`
	for _, tt := range []struct {
		name, method, origin string
		status               int
		allow                string // Access-Control-Allow-Origin
		token                bool
	}{
		{"preflight from the local gateway", http.MethodOptions, "http://127.0.0.1:8080", http.StatusNoContent, "http://127.0.0.1:8080", false},
		{"post from the local gateway", http.MethodPost, "http://127.0.0.1:8080", http.StatusOK, "http://127.0.0.1:8080", true},
		{"post from localhost", http.MethodPost, "http://localhost:3000", http.StatusOK, "http://localhost:3000", true},
		{"post from IPv6 loopback", http.MethodPost, "http://[::1]:8080", http.StatusOK, "http://[::1]:8080", true},
		{"post without an origin (the CLI)", http.MethodPost, "", http.StatusOK, "", true},
		{"preflight from another site", http.MethodOptions, "https://evil.example", http.StatusForbidden, "", false},
		{"post from another site", http.MethodPost, "https://evil.example", http.StatusForbidden, "", false},
		{"post from https on loopback", http.MethodPost, "https://127.0.0.1:8443", http.StatusForbidden, "", false},
		{"post from a host named like loopback", http.MethodPost, "http://127.0.0.1.evil.example", http.StatusForbidden, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tokenURL, strings.NewReader(body))
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "content-type")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			if _, err := b.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("Access-Control-Allow-Origin") != tt.allow {
				t.Fatalf("%d, Allow-Origin %q: %s; want %d, %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), b.String(), tt.status, tt.allow)
			}
			if got := strings.Contains(b.String(), `"token"`); got != tt.token {
				t.Fatalf("token in the answer: %v; want %v (%s)", got, tt.token, b.String())
			}
			if tt.method == http.MethodOptions && tt.status == http.StatusNoContent &&
				(resp.Header.Get("Access-Control-Allow-Methods") != "POST" || resp.Header.Get("Access-Control-Allow-Headers") != "Content-Type") {
				t.Fatalf("preflight answer %v; want POST with Content-Type", resp.Header)
			}
		})
	}
}
