package pdp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"

	"waooaw.dev/governance/functions/pdp"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/policytest"
)

func TestHandler(t *testing.T) {
	sink := &policytest.MemorySink{}
	att := policy.NewAttester(sink)
	h, err := pdp.Setup(policy.WithAttester(att))
	if err != nil {
		t.Fatal(err)
	}
	viewerApprove := `{"input": {"subject": {"id": "u1", "role": "viewer"}, "action": "approve"}}`
	var attested int
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string // substring of the response body
		attested                 int    // attestations the answer made
	}{
		{"health", "GET", "/health", "", 200, "{}", 0},
		{"deny with reason", "POST", "/v1/data/waooaw/rbac/decision", viewerApprove, 200,
			`"result":{"allow":false,"obligations":[],"outcome":"deny","reasons":["role viewer (level 7) may not approve: needs level \u003c= 2"],"ttl_seconds":300}`, 1},
		{"allow rule", "POST", "/v1/data/waooaw/rbac/allow", `{"input": {"subject": {"role": "viewer"}, "action": "read"}}`, 200, `"result":true`, 1},
		{"any rule", "POST", "/v1/data/waooaw/rbac/problem", viewerApprove, 200, `"result":"role viewer (level 7) may not approve`, 1},
		{"package", "POST", "/v1/data/waooaw/rbac", viewerApprove, 200, `"result":{"action":"approve","allow":false,`, 1},
		{"every bundle", "POST", "/v1/data/waooaw", viewerApprove, 200, `"lib":{"no_grant":"no rule grants this request"}`, 7},
		{"inside a rule", "POST", "/v1/data/waooaw/rbac/decision/allow", viewerApprove, 200, `"result":false`, 1},
		{"platform data", "GET", "/v1/data/platform/roles/viewer", "", 200, `"result":7`, 0},
		{"GET with input", "GET", "/v1/data/waooaw/rbac/allow?input=" + url.QueryEscape(`{"subject": {"role": "admin"}, "action": "read"}`), "", 200, `"result":true`, 1},
		{"GET without input", "GET", "/v1/data/waooaw/rbac/problem", "", 200, `"result":"subject.role is missing"`, 1},
		{"pretty", "POST", "/v1/data/waooaw/rbac/allow?pretty", viewerApprove, 200, "{\n  \"decision_id\": ", 1},
		{"no input", "POST", "/v1/data/waooaw/rbac/allow", `{"inptu": {}}`, 200, `"warning":{"code":"api_usage_warning","message":"'input' key missing from the request"}`, 1},
		{"unknown bundle: undefined", "POST", "/v1/data/waooaw/payroll/decision", viewerApprove, 200, `{"decision_id":"`, 0},
		{"undefined rule", "POST", "/v1/data/waooaw/rbac/no_such_rule", viewerApprove, 200, `{"decision_id":"`, 1},
		{"other path: undefined", "POST", "/v1/data/system/main", viewerApprove, 200, `{"decision_id":"`, 0},
		{"trailing value ignored", "POST", "/v1/data/waooaw/rbac/allow", `{"input": {}} {}`, 200, `"result":false`, 1},
		{"malformed JSON", "POST", "/v1/data/waooaw/rbac/decision", `{"input": {`, 400, `"code": "invalid_parameter"`, 0},
		{"not an object", "POST", "/v1/data/waooaw/rbac/decision", `[1]`, 400, "body contains malformed input document", 0},
		{"malformed input parameter", "GET", "/v1/data/waooaw/rbac/decision?input=%7B", "", 400, "parameter contains malformed input document", 0},
		{"function asked as a document", "GET", "/v1/data/waooaw/lib/allowed", "", 500, "used as reference, not called", 0},
		{"no writes", "PUT", "/v1/data/platform/roles", `{"pirate": 1}`, 405, "", 0},
		{"other API", "GET", "/v1/policies", "", 404, "404 page not found", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("X-Correlation-ID", "corr-"+tc.name)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%s %s: %d %s\nwant %d containing %s", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.want)
			}
			if tc.status == 200 && strings.HasPrefix(tc.path, "/v1/data") && strings.Contains(rec.Body.String(), `"result"`) != !strings.HasPrefix(tc.want, `{"decision_id"`) {
				t.Fatalf("%s %s: %s: result present where undefined or absent where defined", tc.method, tc.path, rec.Body)
			}
		})
		attested += tc.attested
	}
	if err := att.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// One attestation for each bundle whose documents an answer held, with
	// the correlation id the caller sent.
	got := sink.Attestations()
	if len(got) != attested || got[0].EnforcementPoint != "pdp" || got[0].CorrelationID != "corr-deny with reason" || got[0].Decision != policy.Deny {
		t.Fatalf("%d attestations, want %d: %+v", len(got), attested, got)
	}
}

func TestDecisionIDMatchesAttestation(t *testing.T) {
	sink := &policytest.MemorySink{}
	att := policy.NewAttester(sink)
	h, err := pdp.Setup(policy.WithAttester(att))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/data/waooaw/rbac/decision", strings.NewReader(`{"input": {"subject": {"role": "admin"}, "action": "deploy"}}`)))
	var resp struct {
		DecisionID string `json:"decision_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.DecisionID == "" {
		t.Fatalf("response %s: %v", rec.Body, err)
	}
	if err := att.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := sink.Attestations(); len(a) != 1 || a[0].DecisionID != resp.DecisionID || a[0].Decision != policy.AllowWithObligations {
		t.Fatalf("attestations %+v, response decision_id %s", a, resp.DecisionID)
	}
}

func TestBrokenPolicyStopsStartWithFileLine(t *testing.T) {
	broken := fstest.MapFS{
		"rbac.rego":          {Data: []byte("package waooaw.rbac\n\ngrants contains x if {\n\tx := undefined_fn(input)\n}\n")},
		"data/platform.json": {Data: []byte(`{}`)},
	}
	_, err := pdp.Setup(policy.WithPolicies(broken))
	if err == nil || !strings.Contains(err.Error(), "rbac.rego:4:") {
		t.Fatalf("Setup with a broken policy: %v; want rbac.rego:4", err)
	}
}

var _ http.Handler = (*pdp.Handler)(nil)
