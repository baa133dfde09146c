package store

import (
	"context"
	"errors"
	"fmt"
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

// TestNewAuditClient: the audit log opens on the database WAOOAW_AUDIT_DATABASE names, apart
// from (default), and on (default) when it is unset. The emulator keeps named databases
// apart as Firestore does.
func TestNewAuditClient(t *testing.T) {
	env := emulators.ForTest(t)
	t.Setenv("GCLOUD_PROJECT", "")
	t.Setenv("GOOGLE_CLOUD_PROJECT", env.Project)
	ctx := context.Background()
	def, err := NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()

	tests := []struct {
		name, database  string
		wantInDefault   bool
		wantDatabaseVar string
	}{
		{"unset", "", true, "(default)"},
		{"named", "audit", false, "audit"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvAuditDatabase, tt.database)
			if got := AuditDatabase(); got != tt.wantDatabaseVar {
				t.Fatalf("AuditDatabase() = %q, want %q", got, tt.wantDatabaseVar)
			}
			c, err := NewAuditClient(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ref := c.Collection(AuditStreams).Doc(fmt.Sprintf("audit-db-probe-%d", i))
			if _, err := ref.Create(ctx, map[string]any{"x": 1}); err != nil {
				t.Fatalf("write through the audit client: %v", err)
			}
			if snap, err := ref.Get(ctx); err != nil || snap.Data()["x"] != int64(1) {
				t.Fatalf("read back through the audit client: %v, %v", snap.Data(), err)
			}
			_, err = def.Collection(AuditStreams).Doc(ref.ID).Get(ctx)
			if inDefault := err == nil; inDefault != tt.wantInDefault {
				t.Fatalf("document in (default): %v (err %v), want %v", inDefault, err, tt.wantInDefault)
			}
		})
	}
}
