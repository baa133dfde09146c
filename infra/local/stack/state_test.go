package stack

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExportFailureIsLoud: a stop whose Firestore export fails says so where the operator
// looks, names what the next start will import, and returns the error (run exits 1).
func TestExportFailureIsLoud(t *testing.T) {
	cases := []struct {
		name     string
		previous bool // an earlier export is in place
		want     string
	}{
		{"no earlier export", false, "at the next start it starts empty"},
		{"earlier export kept", true, "it imports the older export "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := t.TempDir()
			if c.previous {
				dir := filepath.Join(state, FirestoreExportDir, "firestore_export_1")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "firestore_export_1.overall_export_metadata"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			r := &run{o: Options{StateDir: state, Out: &out}}
			err := r.exportFirestore("127.0.0.1:1") // nothing listens there
			if err == nil {
				t.Fatal("export to a dead emulator returned no error")
			}
			if !strings.Contains(out.String(), "ERROR       Firestore export FAILED") || !strings.Contains(out.String(), c.want) {
				t.Errorf("output %q, want the failure and %q", out.String(), c.want)
			}
			if meta, _ := r.firestoreImport(); (meta != "") != c.previous {
				t.Errorf("next start imports %q, previous export %v", meta, c.previous)
			}
		})
	}
}

// TestPortsKeptWhileFree: a service gets its last port again unless something holds it.
func TestPortsKeptWhileFree(t *testing.T) {
	state := t.TempDir()
	first := loadPorts(state)
	free, _, err := first.take("free")
	if err != nil {
		t.Fatal(err)
	}
	held, _, err := first.take("held")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.save(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(held)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	next := loadPorts(state)
	cases := []struct {
		name     string
		want     int // 0: any other port
		wantLost int
	}{
		{"free", free, 0},
		{"held", 0, held},
		{"new", 0, 0},
	}
	for _, c := range cases {
		got, lost, err := next.take(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if c.want != 0 && got != c.want || c.want == 0 && got == held || lost != c.wantLost {
			t.Errorf("%s: port %d (lost %d), want %d (lost %d)", c.name, got, lost, c.want, c.wantLost)
		}
	}
}
