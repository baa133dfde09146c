package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"waooaw.dev/governance/infra/local/emulators"
)

// What the stack keeps between runs, inside the state folder (besides keys and secrets):
const (
	// FirestoreExportDir holds the Firestore emulator's export, written on a clean stop and
	// imported at the next start.
	FirestoreExportDir = "firestore/export"
	// WorkflowsDir holds the Workflows emulator's workflows, executions and virtual clock.
	WorkflowsDir = "workflows"
	// PortsFile records the ports the Workflows emulator and the functions listened on, taken
	// again at the next start: callback URLs kept in Firestore name the emulator's address.
	PortsFile = "ports.json"
)

// clearState removes what --fresh starts without: Firestore's export, the workflows and
// executions with their virtual clock, and the remembered ports.
func (r *run) clearState() error {
	// The audit anchors (storage) go with the Firestore data they anchor: kept alone, the
	// next check would find every anchored stream vanished.
	for _, rel := range []string{filepath.Dir(FirestoreExportDir), WorkflowsDir, PortsFile, StorageDir} {
		if err := os.RemoveAll(filepath.Join(r.o.StateDir, rel)); err != nil {
			return fmt.Errorf("stack: fresh start: %w", err)
		}
	}
	return nil
}

// ports hands out the last run's port of each service while it is free, a new one otherwise.
type ports struct {
	path string
	last map[string]int
	used map[string]int
}

func loadPorts(stateDir string) *ports {
	p := &ports{path: filepath.Join(stateDir, PortsFile), last: map[string]int{}, used: map[string]int{}}
	if b, err := os.ReadFile(p.path); err == nil {
		_ = json.Unmarshal(b, &p.last) // an unreadable file only costs new ports
	}
	return p
}

// take returns name's port: the recorded one when it can be bound, else a free one, and
// what it had before when that was lost (0 otherwise).
func (p *ports) take(name string) (port, lost int, err error) {
	if old := p.last[name]; old > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(old))); err == nil {
			l.Close()
			p.used[name] = old
			return old, 0, nil
		}
		lost = old
	}
	port, err = emulators.FreePort()
	if err != nil {
		return 0, 0, err
	}
	p.used[name] = port
	return port, lost, nil
}

func (p *ports) save() error { return writeJSON(p.path, p.used) }

// firestoreImport is the export the Firestore emulator starts from, "" for none.
func (r *run) firestoreImport() (string, error) {
	meta, err := emulators.FindExport(filepath.Join(r.o.StateDir, FirestoreExportDir))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return meta, err
}

// exportFirestore saves the Firestore emulator's documents for the next start. A failure is
// printed where the operator looks, and returned, so that the run exits non-zero.
func (r *run) exportFirestore(host string) error {
	dir := filepath.Join(r.o.StateDir, FirestoreExportDir)
	t0 := time.Now()
	meta, err := emulators.ExportFirestore(context.Background(), host, Project, dir)
	if err != nil {
		kept := "it starts empty"
		if prev, perr := emulators.FindExport(dir); perr == nil {
			kept = "it imports the older export " + prev
		}
		fmt.Fprintf(r.o.Out, "  ERROR       Firestore export FAILED: %v\n"+
			"              this run's Firestore data is lost; at the next start %s\n", err, kept)
		return fmt.Errorf("stack: firestore data not saved: %w", err)
	}
	fmt.Fprintf(r.o.Out, "  firestore   exported to %s in %s\n", meta, time.Since(t0).Round(time.Millisecond))
	return nil
}
