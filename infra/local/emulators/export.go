package emulators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ExportSuffix ends the file an export names itself by, the one --import-data takes.
const ExportSuffix = ".overall_export_metadata"

// ExportFirestore writes the Firestore emulator's documents of project (its default
// database) into dir, replacing the export dir held before only once the new one is complete:
// a failed export leaves the previous one in place. It returns the metadata file to import.
//
// The emulator's own endpoint does the work (POST /emulator/v1/projects/P:export); it writes
// a folder firestore_export_<n> into an existing directory.
func ExportFirestore(ctx context.Context, host, project, dir string) (string, error) {
	next := dir + ".next"
	if err := os.RemoveAll(next); err != nil {
		return "", fmt.Errorf("emulators: firestore export: %w", err)
	}
	if err := os.MkdirAll(next, 0o755); err != nil {
		return "", fmt.Errorf("emulators: firestore export: %w", err)
	}
	body, _ := json.Marshal(map[string]string{
		"database":         "projects/" + project + "/databases/(default)",
		"export_directory": next,
	})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/emulator/v1/projects/"+project+":export", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("emulators: firestore export: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		os.RemoveAll(next)
		return "", fmt.Errorf("emulators: firestore export from %s: %w", host, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		os.RemoveAll(next)
		return "", fmt.Errorf("emulators: firestore export from %s: %s: %s", host, resp.Status, bytes.TrimSpace(msg))
	}
	if _, err := FindExport(next); err != nil {
		os.RemoveAll(next)
		return "", err
	}
	// Swap: the previous export goes only after the new one is in place.
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return "", fmt.Errorf("emulators: firestore export: %w", err)
	}
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("emulators: firestore export: %w", err)
	}
	if err := os.Rename(next, dir); err != nil {
		return "", fmt.Errorf("emulators: firestore export: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return "", fmt.Errorf("emulators: firestore export: %w", err)
	}
	return FindExport(dir)
}

// FindExport returns the metadata file of the export in dir, for Options.FirestoreImport;
// an error wrapping os.ErrNotExist when dir holds none.
func FindExport(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*"+ExportSuffix))
	if err != nil {
		return "", fmt.Errorf("emulators: firestore export in %s: %w", dir, err)
	}
	switch len(files) {
	case 0:
		return "", fmt.Errorf("emulators: no firestore export in %s: %w", dir, os.ErrNotExist)
	case 1:
		return files[0], nil
	}
	return "", fmt.Errorf("emulators: %d firestore exports in %s, want one", len(files), dir)
}
