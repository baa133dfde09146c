package gateway

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ConsolePath is where the Governor's console is served: static pages whose every action
// calls this gateway's JSON API with the user's bearer token, so the same policies decide.
const ConsolePath = "/console/"

// EnvConsoleDevToken is the development token issuer's URL (POST {"role","subject",
// "engagement"}). Only the local stack sets it; with it the console offers a development
// sign-in that asks that issuer directly (it allows loopback origins), and without it the
// console takes the identity provider's token only.
const EnvConsoleDevToken = "WAOOAW_CONSOLE_DEV_TOKEN_URL"

//go:embed console
var consoleFiles embed.FS

// consoleConfig is GET /console/config.json: what the page needs to know of this deployment.
type consoleConfig struct {
	// DevTokenURL is the development issuer, or "" where there is none (production).
	DevTokenURL string `json:"dev_token_url"`
}

// consoleHandler serves the embedded console with headers that keep it to its own files: no
// inline script, nothing from elsewhere, not framed.
func consoleHandler(devTokenURL string) http.Handler {
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the folder is embedded above: it exists
	}
	files := http.StripPrefix(ConsolePath, http.FileServerFS(sub))
	connect := "'self'"
	if u, err := url.Parse(devTokenURL); err == nil && u.Host != "" {
		connect += " " + u.Scheme + "://" + u.Host
	}
	csp := strings.Join([]string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
		"connect-src " + connect, "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
	}, "; ")
	cfg, _ := json.Marshal(consoleConfig{DevTokenURL: devTokenURL})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed; use GET", r.Method))
			return
		}
		if r.URL.Path == ConsolePath+"config.json" {
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			_, _ = w.Write(cfg)
			return
		}
		// Revalidated on every load: a deploy changes the files under the same names.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// loopbackHost says whether host names this machine: the only place a development issuer runs.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
