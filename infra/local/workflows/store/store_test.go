package store

import (
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

func TestPutAndLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"projects/p/workflows/a/executions/1", "projects/p/workflows/a/executions/2"} {
		if err := s.PutExecution(k, []byte(`"`+k+`"`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutExecution("projects/p/workflows/a/executions/1", []byte(`"v2"`)); err != nil {
		t.Fatal(err)
	}
	// A temp file left by a crash mid-write is ignored and cleaned.
	if err := os.WriteFile(filepath.Join(dir, "executions", ".tmp-123"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	if err := s.Executions(func(b []byte) error {
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if len(got) != 2 || got[1] != `"v2"` {
		t.Fatalf("loaded %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "executions", ".tmp-123")); !os.IsNotExist(err) {
		t.Fatal("temp file not cleaned")
	}
	if err := s.PutWorkflow("projects/p/workflows/a", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWorkflow("projects/p/workflows/a"); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = s.Workflows(func([]byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d workflows after delete", n)
	}
	var nilStore *Store
	if err := nilStore.PutExecution("k", nil); err != nil {
		t.Fatal("a nil store must accept writes and keep nothing")
	}
}
