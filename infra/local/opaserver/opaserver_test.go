package opaserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"testing"

	"waooaw.dev/governance/infra/local/opaserver"
	"waooaw.dev/governance/shared/policy"
)

// The reference server is the OPA the platform embeds, or the comparison means little.
func TestVersionIsTheEmbeddedOPA(t *testing.T) {
	mod, err := os.ReadFile("../../../shared/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/open-policy-agent/opa v(\S+)`).FindSubmatch(mod)
	if m == nil || string(m[1]) != opaserver.Version {
		t.Fatalf("shared/go.mod requires opa %q, opaserver.Version is %s", m, opaserver.Version)
	}
}

// `opa run --server` over WriteBundle's folder answers as the embedded engine does.
func TestServerAnswersAsTheEngine(t *testing.T) {
	ctx := context.Background()
	bin, err := opaserver.Binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := opaserver.WriteBundle(dir, nil); err != nil {
		t.Fatal(err)
	}
	srv, err := opaserver.Start(ctx, bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	eng, err := policy.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		input map[string]any
	}{
		{"viewer may not verify", map[string]any{"subject": map[string]any{"id": "u1", "role": "viewer"}, "action": "verify", "resource": map[string]any{"type": "audit_stream"}}},
		{"governor may verify", map[string]any{"subject": map[string]any{"id": "g1", "role": "governor"}, "action": "verify", "resource": map[string]any{"type": "audit_stream"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"input": tc.input})
			resp, err := http.Post(srv.URL+"/v1/data/waooaw/rbac/decision", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got struct{ Result map[string]any }
			if err := json.Unmarshal(raw, &got); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("opa answered %d %s (%v)", resp.StatusCode, raw, err)
			}
			a, err := eng.Query(ctx, "rbac", policy.RuleDecision, tc.input, policy.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(a.Result)
			have, _ := json.Marshal(got.Result)
			if !bytes.Equal(want, have) {
				t.Errorf("opa: %s\nengine: %s", have, want)
			}
		})
	}
	srv.Stop()
	if resp, err := http.Get(srv.URL + "/health"); err == nil {
		resp.Body.Close()
		t.Error("opa still answers after Stop")
	}
}
