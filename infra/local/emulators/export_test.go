package emulators

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"cloud.google.com/go/firestore"
)

// TestExportThenImport exports a project's documents, checks that a failed export keeps the
// previous one, and starts a second Firestore emulator from the export.
func TestExportThenImport(t *testing.T) {
	env := ForTest(t)
	ctx := context.Background()
	fs := env.Firestore(t)
	if _, err := fs.Collection("things").Doc("kept").Set(ctx, map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "export")
	if _, err := FindExport(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("FindExport on nothing = %v, want os.ErrNotExist", err)
	}
	steps := []struct {
		name    string
		host    string
		wantErr bool
	}{
		{"first export", env.FirestoreHost, false},
		{"second export replaces the first", env.FirestoreHost, false},
		{"emulator gone: error, previous export kept", "127.0.0.1:1", true},
	}
	var last string
	for _, s := range steps {
		meta, err := ExportFirestore(ctx, s.host, env.Project, dir)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err = %v, want error %v", s.name, err, s.wantErr)
		}
		if !s.wantErr {
			last = meta
		}
		got, err := FindExport(dir)
		if err != nil || got != last {
			t.Fatalf("%s: export in %s = %q (%v), want %q", s.name, dir, got, err, last)
		}
	}

	imported, err := Start(ctx, Options{FirestoreImport: last})
	if err != nil {
		t.Fatal(err)
	}
	defer imported.Stop()
	t.Setenv("FIRESTORE_EMULATOR_HOST", imported.FirestoreHost)
	c, err := firestore.NewClient(ctx, env.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap, err := c.Collection("things").Doc("kept").Get(ctx)
	if err != nil {
		t.Fatalf("document not imported: %v", err)
	}
	if n, _ := snap.DataAt("n"); n != int64(1) {
		t.Errorf("imported n = %v, want 1", n)
	}
}
