package policy_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"waooaw.dev/governance/policies"
	"waooaw.dev/governance/shared/policy"
)

// recorder keeps what the attester sends.
type recorder struct {
	mu  sync.Mutex
	got []policy.Attestation
}

func (r *recorder) SendAttestations(_ context.Context, batch []policy.Attestation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, batch...)
	return nil
}

func TestDocumentAttestsEachBundleItHolds(t *testing.T) {
	viewer := map[string]any{"subject": map[string]any{"id": "u1", "role": "viewer"}, "action": "approve"}
	for _, tc := range []struct {
		name    string
		path    []string
		defined bool
		bundles []string // attested, in order
		rule    string
	}{
		{"package", []string{"waooaw", "rbac"}, true, []string{"rbac"}, ""},
		{"rule", []string{"waooaw", "rbac", "problem"}, true, []string{"rbac"}, "problem"},
		{"inside a rule", []string{"waooaw", "governor", "decision", "allow"}, true, []string{"governor"}, "decision/allow"},
		{"undefined rule of a bundle", []string{"waooaw", "rbac", "nothing"}, false, []string{"rbac"}, "nothing"},
		{"every bundle", []string{"waooaw"}, true, policies.Bundles, ""},
		{"data", nil, true, policies.Bundles, ""},
		{"platform data", []string{"platform", "roles"}, true, nil, ""},
		{"library", []string{"waooaw", "lib"}, true, nil, ""},
		{"unknown bundle", []string{"waooaw", "payroll", "decision"}, false, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recorder{}
			att := policy.NewAttester(sink)
			e := newEngine(t, policy.WithAttester(att))
			in, err := policy.NewInput(viewer)
			if err != nil {
				t.Fatal(err)
			}
			a, err := e.Document(ctx, tc.path, in, policy.Meta{EnforcementPoint: "pdp", CorrelationID: "c-1"})
			if err != nil {
				t.Fatal(err)
			}
			if err := att.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if a.Defined != tc.defined || (a.Result != nil) != tc.defined || a.DecisionID == "" {
				t.Fatalf("answer %+v, want defined=%v and a decision id", a, tc.defined)
			}
			if len(sink.got) != len(tc.bundles) {
				t.Fatalf("%d attestations %+v, want one for each of %v", len(sink.got), sink.got, tc.bundles)
			}
			ids := make([]string, len(sink.got))
			for i, at := range sink.got {
				ids[i] = at.DecisionID
				if at.Bundle != tc.bundles[i] || at.Rule != tc.rule || at.EnforcementPoint != "pdp" || at.CorrelationID != "c-1" || len(at.InputSHA256) != 64 {
					t.Fatalf("attestation %d: %+v, want bundle %s rule %q", i, at, tc.bundles[i], tc.rule)
				}
			}
			if len(ids) > 0 && a.DecisionID != strings.Join(ids, ",") {
				t.Fatalf("decision_id %q, attested %v", a.DecisionID, ids)
			}
		})
	}
}

// A document answers with the data PutData put, like a decision does.
func TestDocumentSeesPutData(t *testing.T) {
	e := newEngine(t)
	path := []string{"platform", "engagements", "eng-7", "governor"}
	if a, err := e.Document(ctx, path, nil, policy.Meta{}); err != nil || a.Defined {
		t.Fatalf("before PutData: %+v %v", a, err)
	}
	if err := e.PutData(ctx, "engagements", map[string]any{"eng-7": map[string]any{"governor": "gov-7"}}); err != nil {
		t.Fatal(err)
	}
	a, err := e.Document(ctx, path, nil, policy.Meta{})
	if err != nil || !a.Defined || a.Result != "gov-7" {
		t.Fatalf("after PutData: %+v %v", a, err)
	}
}

// With no input the document is evaluated without one, as OPA does, and the
// decision attested is the one about null.
func TestDocumentWithoutInput(t *testing.T) {
	sink := &recorder{}
	att := policy.NewAttester(sink)
	e := newEngine(t, policy.WithAttester(att))
	a, err := e.Document(ctx, []string{"waooaw", "rbac", "problem"}, nil, policy.Meta{})
	if err != nil || a.Result != "subject.role is missing" {
		t.Fatalf("%+v %v", a, err)
	}
	if err := att.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sink.got) != 1 || sink.got[0].Decision != policy.Deny || sink.got[0].EnforcementPoint != "unspecified" {
		t.Fatalf("attestations %+v", sink.got)
	}
}
