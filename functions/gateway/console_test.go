package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/shared/config"
)

func withConsoleDevToken(u string) harnessOption {
	return func(h *harness) { h.opts.ConsoleDevTokenURL = u }
}

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestConsoleServed checks what the console's files are served with: a policy that allows no
// inline script and nothing from elsewhere, no framing, no sniffing; and the development
// sign-in only where the gateway was given an issuer.
func TestConsoleServed(t *testing.T) {
	const dev = "http://127.0.0.1:7777/dev/token"
	for _, tt := range []struct {
		name, devToken string
		wantConnect    string
	}{
		{"production: no development issuer", "", "connect-src 'self';"},
		{"local stack: the development issuer", dev, "connect-src 'self' http://127.0.0.1:7777;"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withConsoleDevToken(tt.devToken))
			for _, f := range []struct{ path, ctype, contains string }{
				{"/console/", "text/html", `<script src="console.js" defer></script>`},
				{"/console/console.js", "text/javascript", "Authorization"},
				{"/console/console.css", "text/css", ".countdown"},
			} {
				code, hdr, body := get(t, http.MethodGet, h.url+f.path)
				if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), f.ctype) || !strings.Contains(body, f.contains) {
					t.Fatalf("GET %s: %d %s, body has %q: %v", f.path, code, hdr.Get("Content-Type"), f.contains, strings.Contains(body, f.contains))
				}
				csp := hdr.Get("Content-Security-Policy")
				for _, want := range []string{"default-src 'none'", "script-src 'self';", "frame-ancestors 'none'", tt.wantConnect} {
					if !strings.Contains(csp+";", want) {
						t.Errorf("GET %s: Content-Security-Policy %q lacks %q", f.path, csp, want)
					}
				}
				if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
					t.Errorf("GET %s: Content-Security-Policy %q allows inline code", f.path, csp)
				}
				if hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("X-Frame-Options") != "DENY" {
					t.Errorf("GET %s: X-Content-Type-Options %q, X-Frame-Options %q", f.path, hdr.Get("X-Content-Type-Options"), hdr.Get("X-Frame-Options"))
				}
			}
			code, hdr, body := get(t, http.MethodGet, h.url+"/console/config.json")
			var cfg struct {
				DevTokenURL string `json:"dev_token_url"`
			}
			if err := json.Unmarshal([]byte(body), &cfg); code != http.StatusOK || err != nil || cfg.DevTokenURL != tt.devToken || hdr.Get("Cache-Control") != "no-store" {
				t.Fatalf("config.json: %d %s (%v); want dev_token_url %q, not stored", code, body, err, tt.devToken)
			}
			if code, hdr, _ := get(t, http.MethodPost, h.url+"/console/"); code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" {
				t.Errorf("POST /console/: %d Allow %q; want 405 GET, HEAD", code, hdr.Get("Allow"))
			}
			if code, _, _ := get(t, http.MethodGet, h.url+"/console/nothing.js"); code != http.StatusNotFound {
				t.Errorf("GET an unknown file: %d; want 404", code)
			}
		})
	}
}

// TestConsoleHasNoInlineCode reads the page as embedded: the policy would block inline
// script and handlers, so none may be there for it to block.
func TestConsoleHasNoInlineCode(t *testing.T) {
	h := newHarness(t)
	_, _, page := get(t, http.MethodGet, h.url+"/console/")
	for _, tt := range []struct {
		name string
		re   *regexp.Regexp
	}{
		{"inline script", regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{"event handler attribute", regexp.MustCompile(`\son[a-z]+\s*=`)},
		{"inline style", regexp.MustCompile(`<style|\sstyle\s*=`)},
		{"another origin", regexp.MustCompile(`(?:src|href)="(?:https?:)?//`)},
	} {
		if m := tt.re.FindString(page); m != "" {
			t.Errorf("%s in index.html: %q", tt.name, m)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("a script without src in index.html: %q", tag)
		}
	}
}

func TestConsoleDevTokenConfig(t *testing.T) {
	base := map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p", "WAOOAW_JWT_ISSUER": "https://i", "WAOOAW_JWT_AUDIENCE": "a",
		"WAOOAW_JWKS": `{"keys":[]}`, "WAOOAW_WEBHOOK_CLIENTS": "dev-client",
	}
	for _, tt := range []struct {
		name, value, want, wantErr string
	}{
		{"unset: no development sign-in", "", "", ""},
		{"loopback address", "http://127.0.0.1:9000/dev/token", "http://127.0.0.1:9000/dev/token", ""},
		{"localhost", "http://localhost:9000/dev/token", "http://localhost:9000/dev/token", ""},
		{"another host", "http://issuer.example:9000/dev/token", "", "config: invalid WAOOAW_CONSOLE_DEV_TOKEN_URL: the development issuer is served on loopback only"},
		{"not http", "https://127.0.0.1:9000/dev/token", "", `config: invalid WAOOAW_CONSOLE_DEV_TOKEN_URL: scheme "https" is not one of http`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			if tt.value != "" {
				env[gateway.EnvConsoleDevToken] = tt.value
			}
			c, err := gateway.ConfigFrom(config.FromMap(env))
			switch {
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("error %v; want %q", err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || c.ConsoleDevTokenURL != tt.want):
				t.Fatalf("ConsoleDevTokenURL %q, %v; want %q", c.ConsoleDevTokenURL, err, tt.want)
			}
		})
	}
}
