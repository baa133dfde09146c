package pdp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"waooaw.dev/governance/functions/pdp"
	"waooaw.dev/governance/shared/policy"
)

func TestHandler(t *testing.T) {
	sink := &policy.MemorySink{}
	att := policy.NewAttester(sink)
	h, err := pdp.Setup(policy.WithAttester(att))
	if err != nil {
		t.Fatal(err)
	}
	viewerApprove := `{"input": {"subject": {"id": "u1", "role": "viewer"}, "action": "approve"}}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string // substring of the response body
	}{
		{"health", "GET", "/health", "", 200, "{}"},
		{"deny with reason", "POST", "/v1/data/waooaw/rbac/decision", viewerApprove, 200,
			`"result":{"allow":false,"obligations":[],"outcome":"deny","reasons":["role viewer (level 7) may not approve: needs level <= 2"],"ttl_seconds":300}`},
		{"allow rule", "POST", "/v1/data/waooaw/rbac/allow", `{"input": {"subject": {"role": "viewer"}, "action": "read"}}`, 200, `"result":true`},
		{"unknown bundle", "POST", "/v1/data/waooaw/payroll/decision", viewerApprove, 404, "resource_not_found"},
		{"unknown rule", "POST", "/v1/data/waooaw/rbac/grants", viewerApprove, 404, "resource_not_found"},
		{"no rule", "POST", "/v1/data/waooaw/rbac", viewerApprove, 404, "resource_not_found"},
		{"nested rule", "POST", "/v1/data/waooaw/rbac/decision/allow", viewerApprove, 404, "resource_not_found"},
		{"other path", "POST", "/v1/data/system/main", viewerApprove, 404, "resource_not_found"},
		{"malformed JSON", "POST", "/v1/data/waooaw/rbac/decision", `{"input": {`, 400, "invalid_parameter"},
		{"not an object", "POST", "/v1/data/waooaw/rbac/decision", `[1]`, 400, "invalid_parameter"},
		{"no input", "POST", "/v1/data/waooaw/rbac/decision", `{"inptu": {}}`, 400, `no \"input\"`},
		{"trailing garbage", "POST", "/v1/data/waooaw/rbac/decision", `{"input": {}} {}`, 400, "invalid_parameter"},
		{"GET on data", "GET", "/v1/data/waooaw/rbac/decision", "", 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("X-Correlation-ID", "corr-"+tc.name)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%s %s: %d %s\nwant %d containing %s", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.want)
			}
		})
	}
	if err := att.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The two 200 decisions were attested with the decision_id the caller saw.
	got := sink.Attestations()
	if len(got) != 2 || got[0].EnforcementPoint != "pdp" || got[0].CorrelationID != "corr-deny with reason" || got[0].Decision != policy.Deny {
		t.Fatalf("attestations = %+v", got)
	}
}

func TestDecisionIDMatchesAttestation(t *testing.T) {
	sink := &policy.MemorySink{}
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
