package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// EndpointsFile is where a running stack says what it serves, inside the state folder.
const EndpointsFile = "endpoints.json"

// PidsFile lists the process groups a running stack started, for tools and tests that must
// know what to expect gone after it stops.
const PidsFile = "pids.json"

// Endpoints is the content of endpoints.json. Hosts are host:port (as the emulator variables
// want them); URLs are http://host:port. A new local service adds one field here.
type Endpoints struct {
	Gateway   string            `json:"gateway"`
	Firestore string            `json:"firestore"`
	PubSub    string            `json:"pubsub"`
	Functions map[string]string `json:"functions"`
	Workflows string            `json:"workflows,omitempty"`
	JWKS      string            `json:"jwks,omitempty"`
	// DevToken issues development tokens (POST {"role","subject","engagement"}), beside the JWKS.
	DevToken string `json:"dev_token,omitempty"`
	// Control stops and starts functions (GET /v1/functions, POST /v1/functions/{name}:stop|:start).
	Control string `json:"control,omitempty"`
	// Storage is the local Cloud Storage (host:port, STORAGE_EMULATOR_HOST).
	Storage string `json:"storage,omitempty"`
	// AI holds the local OpenAI-compatible servers' base URLs by provider (groq, openai).
	AI map[string]string `json:"ai,omitempty"`
	// Sinks is the notifier's local receivers' base URL: GET /v1/messages[?sink=governor|
	// on-call|email] reads what they received (package sinks).
	Sinks string `json:"sinks,omitempty"`
}

// Pids is the content of pids.json.
type Pids struct {
	Pid    int            `json:"pid"`    // the waooaw-local process
	Groups map[string]int `json:"groups"` // process group ids by service
}

// writeJSON replaces path atomically, so a reader polling for the file never sees half of it.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("stack: marshal %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("stack: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("stack: write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// ReadEndpoints reads a running stack's endpoints.json.
func ReadEndpoints(stateDir string) (*Endpoints, error) {
	var e Endpoints
	return &e, readJSON(filepath.Join(stateDir, EndpointsFile), &e)
}

// ReadPids reads a running stack's pids.json.
func ReadPids(stateDir string) (*Pids, error) {
	var p Pids
	return &p, readJSON(filepath.Join(stateDir, PidsFile), &p)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("stack: %s: %w", path, err)
	}
	return nil
}
