package workflowexec_test

import (
	"context"
	"errors"
	"testing"

	"waooaw.dev/governance/shared/workflowexec"
)

func TestCancel(t *testing.T) {
	emu, c := setup(t)
	ctx := context.Background()
	wf := emu.Deploy("waiter", waiter)
	for _, tc := range []struct {
		name    string
		target  func() string
		wantErr error
		state   string
	}{
		{"a waiting execution is cancelled", func() string { return emu.Run(wf, map[string]any{}).Name }, nil, workflowexec.StateCancelled},
		{"an ended one is not active", func() string {
			ex := emu.Run(wf, map[string]any{})
			if err := c.Cancel(ctx, ex.Name); err != nil {
				t.Fatalf("first cancel: %v", err)
			}
			return ex.Name
		}, workflowexec.ErrNotActive, workflowexec.StateCancelled},
		{"an unknown one is not found", func() string { return wf + "/executions/none" }, workflowexec.ErrNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.target()
			err := c.Cancel(ctx, name)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Cancel = %v, want %v", err, tc.wantErr)
			}
			if tc.state == "" {
				return
			}
			ex, err := c.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if ex.State != tc.state {
				t.Errorf("state %s, want %s", ex.State, tc.state)
			}
		})
	}
}
