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

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/infra/local/meter"
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
	// Under an unchanged head the cached report is answered, saying so, until it is
	// ReportMaxAge old; then the walk finds the damage.
	if a := do(t, get(path, "Bearer "+token(testKey(t), nil), "GET")); a.status != 200 || !strings.Contains(a.raw, `"ok":true`) || !strings.Contains(a.raw, `"cached":true`) {
		t.Fatalf("after tampering, before the report's age: %d %s, want the cached report", a.status, a.raw)
	}
	h.skew.Store(int64(gateway.ReportMaxAge))
	a := do(t, get(path, "Bearer "+token(testKey(t), nil), "GET"))
	var rep report
	if err := json.Unmarshal([]byte(a.raw), &rep); err != nil {
		t.Fatal(err)
	}
	if a.status != 200 || rep.OK == nil || *rep.OK || rep.FirstBadSeq == nil || *rep.FirstBadSeq != 2 || *rep.Entries != 1 {
		t.Fatalf("after tampering: %d %s, want ok false, first_bad_seq 2, entries 1", a.status, a.raw)
	}
}

// TestReadsAreScoped: a Governor verifies and reads their own engagement's stream only;
// the platform stream is the admin's and the auditor's.
func TestReadsAreScoped(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app := audit.NewAppender(h.opts.Firestore)
	for _, stream := range []string{"eng-a", "eng-b", gateway.PlatformStream} {
		if _, err := app.AppendEntry(ctx, stream, audit.Entry{EventID: "ev-" + stream, Time: "2026-11-26T10:00:00Z", EventType: "waooaw.test",
			ActorID: "system:test", ActorType: "system", Action: "test.append"}); err != nil {
			t.Fatal(err)
		}
	}
	govA := h.token(t, "gov-a", auth.RoleGovernor, "eng-a")
	for _, tt := range []struct {
		name, tok, stream string
		status            int
		msg               string
	}{
		{"governor of A verifies A", govA, "eng-a", 200, ""},
		{"governor of A verifies B", govA, "eng-b", 403, "forbidden: gov-a has no access to engagement eng-b"},
		{"governor of A verifies platform", govA, gateway.PlatformStream, 403, "gov-a has no access to engagement platform: reserved to platform clients and roles admin, auditor"},
		{"governor claiming platform verifies it", h.token(t, "gov-p", auth.RoleGovernor, gateway.PlatformStream), gateway.PlatformStream, 403, "gov-p has no access to engagement platform: reserved"},
		{"auditor verifies platform", h.token(t, "au", auth.RoleAuditor, ""), gateway.PlatformStream, 200, ""},
		{"auditor verifies B", h.token(t, "au", auth.RoleAuditor, ""), "eng-b", 200, ""},
	} {
		expect(t, tt.name, h.call(t, "GET", "/v1/audit/streams/"+tt.stream+"/verify", tt.tok, nil), tt.status, tt.msg)
		expect(t, tt.name+" (entries)", h.call(t, "GET", "/v1/audit/streams/"+tt.stream+"/entries", tt.tok, nil), tt.status, tt.msg)
	}
	expect(t, "admin reads platform entries", h.call(t, "GET", "/v1/audit/streams/platform/entries", h.token(t, "root", auth.RoleAdmin, ""), nil), 200, "")
}

// TestVerifyCacheAndLimit counts the audit log reads of verification: a repeated verify of
// an unchanged stream reads its head only; walks beyond a caller's allowance answer 429.
func TestVerifyCacheAndLimit(t *testing.T) {
	h := newHarness(t, withMeteredAuditLog(), withVerifyLimit(gateway.RateLimit{Burst: 2, Every: time.Hour}))
	ctx := context.Background()
	const stream, n = "eng-cache", 50
	app := audit.NewAppender(h.opts.Firestore)
	appendOne := func(i int) {
		if _, err := app.AppendEntry(ctx, stream, audit.Entry{EventID: fmt.Sprintf("ev-%d", i), Time: "2026-11-26T10:00:00Z", EventType: "waooaw.test",
			ActorID: "system:test", ActorType: "system", Action: "test.append"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		appendOne(i)
	}
	ada, bob := h.token(t, "ada", auth.RoleAuditor, ""), h.token(t, "bob", auth.RoleAuditor, "")
	verify := func(tok string) (answer, int64) {
		before, err := h.meter.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a := h.call(t, "GET", "/v1/audit/streams/"+stream+"/verify", tok, nil)
		after, err := h.meter.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := meter.Diff(before, after)
		return a, d.Get("firestore.reads") + d.Get("firestore.reads.missing")
	}
	// Waiting for a stream that does not exist yet costs no walk.
	for range 3 {
		expect(t, "unknown stream", h.call(t, "GET", "/v1/audit/streams/eng-none/verify", ada, nil), 404, "unknown audit stream")
	}
	steps := []struct {
		name           string
		tok            string
		before         func()
		status         int
		cached         bool
		minRead, maxRd int64
	}{
		{"first walk", ada, nil, 200, false, n + 1, 2*n + 2},
		{"unchanged: head only", ada, nil, 200, true, 1, 1},
		{"again: head only", ada, nil, 200, true, 1, 1},
		{"appended: walked again", ada, func() { appendOne(n) }, 200, false, n + 2, 2*n + 4},
		{"appended, no walk left", ada, func() { appendOne(n + 1) }, 429, false, 1, 1},
		{"another caller has its own allowance", bob, nil, 200, false, n + 3, 2*n + 6},
		{"the first caller is answered from the cache", ada, nil, 200, true, 1, 1},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		a, reads := verify(st.tok)
		t.Logf("%s: %d, %d firestore reads", st.name, a.status, reads)
		if a.status != st.status || reads < st.minRead || reads > st.maxRd {
			t.Fatalf("%s: %d %s after %d reads, want %d after %d to %d", st.name, a.status, a.raw, reads, st.status, st.minRead, st.maxRd)
		}
		if st.status == 429 {
			var eb gateway.ErrorBody
			if err := json.Unmarshal([]byte(a.raw), &eb); err != nil || eb.Error.Limit == nil || eb.Error.Limit.Name != "verify_walks" ||
				eb.Error.Limit.Burst != 2 || eb.Error.Limit.EverySeconds != 3600 || a.header.Get("Retry-After") == "" {
				t.Fatalf("%s: %s, Retry-After %q: want the limit named", st.name, a.raw, a.header.Get("Retry-After"))
			}
			continue
		}
		if got := strings.Contains(a.raw, `"cached":true`); got != st.cached || !strings.Contains(a.raw, `"ok":true`) {
			t.Fatalf("%s: %s, want cached %v", st.name, a.raw, st.cached)
		}
	}
}
