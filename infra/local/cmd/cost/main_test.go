package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `make cost` needs nothing running: it prints the three bills from the recorded units, and
// fails for units that project the seed's workload over the cap.
func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out, ""); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"(a) idle", "(b) seed workload", "(c) 10x seed workload", "Firestore", "of the seed's own $101 average"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// Every webhook writing a thousand documents: 3 billion writes a month.
	heavy := `{"measured_on": "2026-12-01", "command": "test", "per": {
	  "webhook": {"firestore.writes": 1000}, "decision": {"firestore.writes": 1},
	  "agent_creation": {"firestore.writes": 1}, "audit_check": {"firestore.reads": 1}}}`
	path := filepath.Join(t.TempDir(), "units.json")
	if err := os.WriteFile(path, []byte(heavy), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(&out, path); err == nil || !strings.Contains(err.Error(), "over the cap") {
		t.Fatalf("run with heavy units = %v, want the seed workload refused over the cap", err)
	}
}
