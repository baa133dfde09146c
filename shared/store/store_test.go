package store

import (
	"context"
	"errors"
	"testing"

	"waooaw.dev/governance/infra/local/emulators"
)

func TestProjectID(t *testing.T) {
	tests := []struct {
		name, google, gcloud, want string
	}{
		{"GOOGLE_CLOUD_PROJECT wins", "p1", "p2", "p1"},
		{"GCLOUD_PROJECT as fallback", "", "p2", "p2"},
		{"none", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOOGLE_CLOUD_PROJECT", tt.google)
			t.Setenv("GCLOUD_PROJECT", tt.gcloud)
			if got := ProjectID(); got != tt.want {
				t.Errorf("ProjectID() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	env := emulators.ForTest(t)
	t.Setenv("GCLOUD_PROJECT", "")

	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	if _, err := NewClient(context.Background()); !errors.Is(err, ErrNoProject) {
		t.Fatalf("no project against the emulator: err = %v, want ErrNoProject", err)
	}

	t.Setenv("GOOGLE_CLOUD_PROJECT", env.Project)
	c, err := NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref := c.Collection(AuditStreams).Doc("probe")
	if _, err := ref.Create(context.Background(), map[string]any{"x": 1}); err != nil {
		t.Fatalf("write through the emulator: %v", err)
	}
	snap, err := ref.Get(context.Background())
	if err != nil || snap.Data()["x"] != int64(1) {
		t.Fatalf("read back: %v, %v", snap.Data(), err)
	}
}
