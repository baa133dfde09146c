package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
)

func TestConfigFrom(t *testing.T) {
	full := map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p", "WAOOAW_JWT_ISSUER": "https://i", "WAOOAW_JWT_AUDIENCE": "a",
		"WAOOAW_JWKS_URL": "http://127.0.0.1:9000/jwks.json", "WAOOAW_SECRETS_DIR": "/s", "WAOOAW_WEBHOOK_CLIENTS": "dev-client, other",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range full {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(gateway.Config) bool
	}{
		{"complete", full, "", func(c gateway.Config) bool {
			return c.Project == "p" && c.JWKSURL == "http://127.0.0.1:9000/jwks.json" && c.SecretsDir == "/s" && slices.Equal(c.Clients, []string{"dev-client", "other"})
		}},
		{"file JWKS URL", with("WAOOAW_JWKS_URL", "file:///tmp/jwks.json"), "", func(c gateway.Config) bool { return c.JWKSURL == "file:///tmp/jwks.json" }},
		{"inline JWKS instead of a URL", func() map[string]string { m := with("WAOOAW_JWKS_URL", ""); m["WAOOAW_JWKS"] = `{"keys":[]}`; return m }(), "",
			func(c gateway.Config) bool { return c.JWKS == `{"keys":[]}` && c.JWKSURL == "" }},
		{"no secrets dir means Secret Manager", with("WAOOAW_SECRETS_DIR", ""), "", func(c gateway.Config) bool { return c.SecretsDir == "" }},
		{"nothing set names everything", map[string]string{}, "config: missing GOOGLE_CLOUD_PROJECT, WAOOAW_JWT_ISSUER, WAOOAW_JWT_AUDIENCE, WAOOAW_WEBHOOK_CLIENTS, WAOOAW_JWKS_URL or WAOOAW_JWKS", nil},
		{"the client allow-list is required", with("WAOOAW_WEBHOOK_CLIENTS", ""), "config: missing WAOOAW_WEBHOOK_CLIENTS", nil},
		{"an allow-list of no client", with("WAOOAW_WEBHOOK_CLIENTS", " , "), "config: invalid WAOOAW_WEBHOOK_CLIENTS: lists no client id", nil},
		{"a client id that could not name a secret", with("WAOOAW_WEBHOOK_CLIENTS", "dev-client, a/b"), `config: invalid WAOOAW_WEBHOOK_CLIENTS: "a/b" is not 1 to 64 of [A-Za-z0-9_-]`, nil},
		{"region names the agent_creation workflow", with("WAOOAW_REGION", "asia-south1"), "", func(c gateway.Config) bool {
			return c.AgentCreationWorkflow == "projects/p/locations/asia-south1/workflows/agent_creation" && c.WorkflowsURL == ""
		}},
		{"no region, no workflow", full, "", func(c gateway.Config) bool { return c.AgentCreationWorkflow == "" }},
		{"the audit log shares the default database unless named", full, "", func(c gateway.Config) bool { return c.AuditDatabase == "(default)" }},
		{"the audit log's own database", with("WAOOAW_AUDIT_DATABASE", "audit"), "", func(c gateway.Config) bool { return c.AuditDatabase == "audit" }},
		{"the workflow named in full wins", func() map[string]string {
			m := with("WAOOAW_REGION", "asia-south1")
			m["WAOOAW_AGENT_CREATION_WORKFLOW"] = "projects/waooaw-local/locations/x/workflows/w"
			m["WAOOAW_WORKFLOWS_URL"] = "http://127.0.0.1:8089"
			return m
		}(), "", func(c gateway.Config) bool {
			return c.AgentCreationWorkflow == "projects/waooaw-local/locations/x/workflows/w" && c.WorkflowsURL == "http://127.0.0.1:8089"
		}},
		{"a workflow that is not a resource name", with("WAOOAW_AGENT_CREATION_WORKFLOW", "agent_creation"), "config: invalid WAOOAW_AGENT_CREATION_WORKFLOW: not projects/P/locations/L/workflows/W", nil},
		{"bad Workflows URL scheme", with("WAOOAW_WORKFLOWS_URL", "ftp://x"), `config: invalid WAOOAW_WORKFLOWS_URL: scheme "ftp" is not one of http, https`, nil},
		{"bad JWKS scheme", with("WAOOAW_JWKS_URL", "ftp://x/jwks"), `config: invalid WAOOAW_JWKS_URL: scheme "ftp" is not one of http, https, file`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := gateway.ConfigFrom(config.FromMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !config.IsConfigError(err) {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("ConfigFrom = %+v, %v", c, err)
			}
		})
	}
}

// TestGatewayEntryPoint drives the registered function as Cloud Functions would: from the
// environment alone. A request before the environment is complete gets a JSON 503 and the
// next request, once it is, builds the gateway.
func TestGatewayEntryPoint(t *testing.T) {
	h := newHarness(t) // for its emulator project, topics, tap and secrets dir
	h.bind(t, devClient, "eng-e")
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	jwks, err := h.key.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(gateway.Gateway))
	defer srv.Close()
	body := healthBody("agent-e", "eng-e", "healthy")
	send := func() answer {
		return do(t, signed(srv.URL+"/v1/webhooks/health", body, devClient, devSecret, time.Now()))
	}

	for _, k := range []string{gateway.EnvProject, gateway.EnvIssuer, gateway.EnvAudience, gateway.EnvJWKSURL, gateway.EnvJWKS, gateway.EnvSecretsDir, gateway.EnvClients} {
		t.Setenv(k, "")
	}
	if a := send(); a.status != http.StatusServiceUnavailable || a.errMsg != "Gateway is not configured; see its log" {
		t.Fatalf("unconfigured: %d %s", a.status, a.raw)
	}

	t.Setenv(gateway.EnvProject, h.env.Project)
	t.Setenv(gateway.EnvIssuer, issuer)
	t.Setenv(gateway.EnvAudience, audience)
	t.Setenv(gateway.EnvJWKSURL, "file://"+jwksFile)
	t.Setenv(gateway.EnvSecretsDir, h.dir)
	t.Setenv(gateway.EnvClients, devClient)
	// The audit log in a database of its own, as deployed: the stream exists only there.
	t.Setenv(gateway.EnvAuditDatabase, "audit")
	auditFS, err := firestore.NewClientWithDatabase(context.Background(), h.env.Project, "audit")
	if err != nil {
		t.Fatal(err)
	}
	defer auditFS.Close()
	if _, err := audit.NewAppender(auditFS).AppendEntry(context.Background(), "eng-e", audit.Entry{
		EventID: "ev-entry-point", Time: "2026-11-26T10:00:00Z", EventType: "waooaw.test", ActorID: "system:test",
		ActorType: "system", Action: "test.append",
	}); err != nil {
		t.Fatal(err)
	}
	a := send()
	if a.status != http.StatusAccepted {
		t.Fatalf("configured: %d %s", a.status, a.raw)
	}
	tok, err := h.key.Sign(devauth.NewClaims(issuer, audience, "user:g", auth.RoleGovernor, "eng-e", time.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/audit/streams/eng-e/verify", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	// The one entry is read from the audit database; (default) holds no such stream.
	if v := do(t, r); v.status != http.StatusOK || !strings.Contains(string(v.raw), `"entries":1`) {
		t.Fatalf("verify through the entry point: %d %s", v.status, v.raw)
	}
	r, _ = http.NewRequest(http.MethodGet, srv.URL+"/v1/audit/streams/eng-e/entries", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if v := do(t, r); v.status != http.StatusOK || !strings.Contains(string(v.raw), `"ev-entry-point"`) {
		t.Fatalf("entries through the entry point: %d %s", v.status, v.raw)
	}
	got := h.drain(t)
	if len(got[events.TopicHealthEvents]) != 1 || got[events.TopicHealthEvents][0].EventID != a.eventID || len(got[events.TopicAuditEvents]) != 1 {
		t.Fatalf("published %v", got)
	}
}
