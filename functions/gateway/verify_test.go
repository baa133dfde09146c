package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/store"
)

type report struct {
	OK          *bool   `json:"ok"`
	Entries     *int    `json:"entries"`
	HeadHash    *string `json:"head_hash"`
	FirstBadSeq *int64  `json:"first_bad_seq"`
}

func TestVerifyStream(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const stream = "eng-verify"
	app := audit.NewAppender(h.opts.Firestore)
	var last audit.Receipt
	for i := range 3 {
		r, err := app.AppendEntry(ctx, stream, audit.Entry{
			EventID: fmt.Sprintf("ev-%d", i), Time: "2026-11-26T10:00:00Z", EventType: "waooaw.test", ActorID: "system:test",
			ActorType: "system", Action: "test.append",
		})
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}

	now := time.Now()
	other, err := devauth.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	token := func(kp *devauth.KeyPair, mutate func(*auth.Claims)) string {
		c := devauth.NewClaims(issuer, audience, "user:ada", auth.RoleAuditor, stream, now.Add(-time.Minute), time.Hour)
		if mutate != nil {
			mutate(&c)
		}
		s, err := kp.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	role := func(r string) func(*auth.Claims) { return func(c *auth.Claims) { c.Role = r } }
	get := func(path, authz, method string) *http.Request {
		r, err := http.NewRequest(method, h.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		return r
	}
	path := "/v1/audit/streams/" + stream + "/verify"

	tests := []struct {
		name    string
		req     *http.Request
		status  int
		message string
	}{
		{"no token", get(path, "", "GET"), 401, "a bearer token is required"},
		{"not a bearer token", get(path, "Basic YTpi", "GET"), 401, "a bearer token is required"},
		{"garbage token", get(path, "Bearer x.y.z", "GET"), 401, "invalid token"},
		{"expired", get(path, "Bearer "+token(testKey(t), func(c *auth.Claims) {
			c.IssuedAt, c.NotBefore = nil, nil
			c.ExpiresAt.Time = now.Add(-time.Hour)
		}), "GET"), 401, "invalid token"},
		{"bad issuer", get(path, "Bearer "+token(testKey(t), func(c *auth.Claims) { c.Issuer = "http://other.issuer" }), "GET"), 401, "invalid token"},
		{"bad audience", get(path, "Bearer "+token(testKey(t), func(c *auth.Claims) { c.Audience = []string{"someone-else"} }), "GET"), 401, "invalid token"},
		{"key not in the JWKS", get(path, "Bearer "+token(other, nil), "GET"), 401, "invalid token"},
		{"viewer may not verify", get(path, "Bearer "+token(testKey(t), role(auth.RoleViewer)), "GET"), 403, "forbidden: role viewer may not verify: reserved to governor, auditor"},
		{"operator may not verify", get(path, "Bearer "+token(testKey(t), role(auth.RoleOperator)), "GET"), 403, "forbidden: role operator may not verify: reserved to governor, auditor"},
		{"admin may not verify (only governor or auditor)", get(path, "Bearer "+token(testKey(t), role(auth.RoleAdmin)), "GET"), 403, "forbidden: role admin may not verify"},
		{"governor", get(path, "Bearer "+token(testKey(t), role(auth.RoleGovernor)), "GET"), 200, ""},
		{"auditor", get(path, "Bearer "+token(testKey(t), nil), "GET"), 200, ""},
		{"unknown stream", get("/v1/audit/streams/eng-none/verify", "Bearer "+token(testKey(t), nil), "GET"), 404, `unknown audit stream "eng-none"`},
		{"reserved stream name", get("/v1/audit/streams/__x__/verify", "Bearer "+token(testKey(t), nil), "GET"), 400, "invalid stream name"},
		{"wrong method", get(path, "Bearer "+token(testKey(t), nil), "POST"), 405, "method POST not allowed; use GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.req)
			if a.status != tt.status || !strings.Contains(a.errMsg, tt.message) {
				t.Fatalf("got %d %q (%s), want %d containing %q", a.status, a.errMsg, a.raw, tt.status, tt.message)
			}
			if tt.status != 200 {
				return
			}
			var rep report
			if err := json.Unmarshal([]byte(a.raw), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.OK == nil || !*rep.OK || rep.Entries == nil || *rep.Entries != 3 || rep.HeadHash == nil || *rep.HeadHash != last.Hash ||
				!strings.Contains(a.raw, `"first_bad_seq":null`) {
				t.Fatalf("report %s, want ok with 3 entries and head %s", a.raw, last.Hash)
			}
		})
	}

	// Damage entry 2: the report names it.
	entry := h.opts.Firestore.Collection(store.AuditStreams).Doc(stream).Collection(store.AuditEntries).Doc(fmt.Sprintf("%020d", 2))
	if _, err := entry.Update(ctx, []firestore.Update{{Path: "action", Value: "tampered"}}); err != nil {
		t.Fatal(err)
	}
	a := do(t, get(path, "Bearer "+token(testKey(t), nil), "GET"))
	var rep report
	if err := json.Unmarshal([]byte(a.raw), &rep); err != nil {
		t.Fatal(err)
	}
	if a.status != 200 || rep.OK == nil || *rep.OK || rep.FirstBadSeq == nil || *rep.FirstBadSeq != 2 || *rep.Entries != 1 {
		t.Fatalf("after tampering: %d %s, want ok false, first_bad_seq 2, entries 1", a.status, a.raw)
	}
}
