package gateway_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/policies"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/logging"
)

// Every decision the gateway enforces is attested: the answer names its decision ids, and
// each id is on the attester with the same outcome, enforcement point and correlation id.
func TestEveryDecisionIsAttested(t *testing.T) {
	h := newHarness(t)
	h.bind(t, devClient, "eng-attest")
	now := time.Now()
	bearer := func(role string) *http.Request {
		c := devauth.NewClaims(issuer, audience, "user:"+role, role, "eng-attest", now.Add(-time.Minute), time.Hour)
		tok, err := h.key.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest(http.MethodGet, h.url+"/v1/audit/streams/eng-attest/verify", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	tests := []struct {
		name    string
		req     *http.Request
		status  int
		outcome string
		message string
		bundles []string // the decisions behind the answer, in order
	}{
		{"viewer refused", bearer(auth.RoleViewer), 403, "deny", "forbidden: role viewer may not verify: reserved to governor, auditor", []string{"rbac"}},
		{"analyst refused", bearer(auth.RoleAnalyst), 403, "deny", "forbidden: role analyst may not verify", []string{"rbac"}},
		{"auditor allowed (unknown stream)", bearer(auth.RoleAuditor), 404, "allow", "unknown audit stream", []string{"rbac", "data_scope", "budget"}},
		{"client webhook allowed", h.webhook("health", healthBody("agent-1", "eng-attest", "healthy")), 202, "allow", "", []string{"rbac", "data_scope", "budget"}},
		{"client webhook for an engagement it is not bound to", h.webhook("health", healthBody("agent-1", "eng-other", "healthy")), 403, "deny",
			"forbidden: dev-client has no access to engagement eng-other", []string{"rbac", "data_scope"}},
	}
	type decided struct{ outcome, bundle string }
	want := map[string]decided{} // decision id -> outcome and bundle
	corr := map[string]string{}  // decision id -> the answer's correlation id
	for _, tt := range tests {
		a := do(t, tt.req)
		if a.status != tt.status || !strings.Contains(a.errMsg, tt.message) {
			t.Fatalf("%s: %d %q, want %d %q", tt.name, a.status, a.errMsg, tt.status, tt.message)
		}
		ids := strings.Split(a.header.Get(gateway.HeaderDecisionID), ",")
		if len(ids) != len(tt.bundles) || slices.Contains(ids, "") {
			t.Fatalf("%s: decision ids %q, want one per bundle of %v", tt.name, a.header.Get(gateway.HeaderDecisionID), tt.bundles)
		}
		for i, id := range ids {
			// Only the last decision can refuse: the first refusal ends the request.
			outcome := tt.outcome
			if i < len(ids)-1 {
				outcome = "allow"
			}
			want[id] = decided{outcome, tt.bundles[i]}
			corr[id] = a.header.Get(logging.HeaderCorrelationID)
		}
	}
	got := h.attested(t)
	for id, outcome := range want {
		a, ok := got[id]
		switch {
		case !ok:
			t.Errorf("decision %s was not attested", id)
		case a.Decision != outcome.outcome || a.Bundle != outcome.bundle || a.EnforcementPoint != gateway.EnforcementPoint || a.CorrelationID != corr[id] || len(a.InputSHA256) != 64:
			t.Errorf("decision %s attested as %+v, want %s with correlation %s", id, a, outcome, corr[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d attestations for %d decisions", len(got), len(want))
	}
}

// The roles a token may carry are exactly the rbac policy's seven.
func TestTokenRolesAreThePolicyRoles(t *testing.T) {
	b, err := fs.ReadFile(policies.FS, policies.DataFile)
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Roles map[string]int `json:"roles"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	got, want := slices.Sorted(slices.Values(auth.Roles)), slices.Sorted(maps.Keys(data.Roles))
	if !slices.Equal(got, want) {
		t.Fatalf("auth.Roles = %v, policy roles = %v", got, want)
	}
}
