package aireview

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/secrets"
)

// TestOpen: without a provider URL the Asker is a true nil (reviews are never claimed);
// with one it is the router, and the budget state the listener keeps stops it as soon as
// budget/platform says halted.
func TestOpen(t *testing.T) {
	env := emulators.ForTest(t)
	fs := env.Firestore(t)
	pub := events.NewPubSub(env.PubSub(t))
	t.Cleanup(pub.Close)
	call := ai.Call{EngagementID: Engagement, AgentID: "genesis", ExecutionID: "req-1/stage-1/round-1",
		Task: "specification_review", Messages: []ai.Message{{Role: "user", Content: "x"}}, MaxTokens: 10}
	tests := []struct {
		name    string
		vars    map[string]string
		wantNil bool
		wantErr string
	}{
		{name: "no provider", vars: map[string]string{}, wantNil: true},
		{name: "groq and openai", vars: map[string]string{ai.EnvGroqBaseURL: "http://127.0.0.1:1/v1", ai.EnvOpenAIBaseURL: "http://127.0.0.1:2/v1"}},
		{name: "a malformed url", vars: map[string]string{ai.EnvGroqBaseURL: "ftp://x"}, wantErr: "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asker, stop, err := Open(context.Background(), config.FromMap(tt.vars), secrets.Dir(t.TempDir()), fs, pub, func(err error) { t.Log(err) })
			if stop == nil {
				t.Fatal("stop is nil")
			}
			defer stop()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (asker == nil) != tt.wantNil {
				t.Fatalf("asker = %#v, nil %v; want nil %v", asker, asker == nil, tt.wantNil)
			}
			if tt.wantNil {
				return
			}
			// No key: not configured, while the budget is normal.
			if _, err := asker.Ask(context.Background(), call); !errors.Is(err, ai.ErrNotConfigured) || errors.Is(err, ai.ErrBudgetStopped) {
				t.Fatalf("Ask with no key: %v; want ErrNotConfigured alone", err)
			}
			if _, err := budget.Ref(fs).Set(context.Background(), budget.State{State: budget.Halted}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { budget.Ref(fs).Delete(context.Background()) })
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := asker.Ask(context.Background(), call)
				if errors.Is(err, ai.ErrBudgetStopped) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Ask after budget/platform went halted: %v; want ErrBudgetStopped within 10s", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
