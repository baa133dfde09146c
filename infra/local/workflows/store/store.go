// Package store persists workflows and executions as one small JSON file
// each, replaced atomically by rename, so a SIGKILL at any moment leaves
// either the old or the new version of a record and never a torn one.
package store

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Store is a directory of records. A nil *Store stores nothing.
type Store struct {
	dir string
}

const (
	workflowsDir  = "workflows"
	executionsDir = "executions"
)

// Open creates the directory layout under dir.
func Open(dir string) (*Store, error) {
	for _, sub := range []string{workflowsDir, executionsDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", dir, err)
		}
	}
	return &Store{dir: dir}, nil
}

// fileName maps a resource key to a flat, safe file name.
func fileName(key string) string {
	r := strings.NewReplacer("/", "~", "\\", "~", "..", "~~")
	return r.Replace(key) + ".json"
}

func (s *Store) put(sub, key string, data []byte) error {
	if s == nil {
		return nil
	}
	dir := filepath.Join(s.dir, sub)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, fileName(key))); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	return nil
}

func (s *Store) del(sub, key string) error {
	if s == nil {
		return nil
	}
	err := os.Remove(filepath.Join(s.dir, sub, fileName(key)))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	return nil
}

// PutWorkflow writes a workflow record.
func (s *Store) PutWorkflow(key string, data []byte) error { return s.put(workflowsDir, key, data) }

// DeleteWorkflow removes a workflow record.
func (s *Store) DeleteWorkflow(key string) error { return s.del(workflowsDir, key) }

// PutExecution writes an execution record.
func (s *Store) PutExecution(key string, data []byte) error { return s.put(executionsDir, key, data) }

// Workflows calls fn with every workflow record.
func (s *Store) Workflows(fn func(data []byte) error) error {
	return s.each(workflowsDir, 1, fn)
}

// Executions calls fn with every execution record, from several
// goroutines at once (fn must be safe for that): reloading ten thousand
// files is bound by system calls, which parallelise well.
func (s *Store) Executions(fn func(data []byte) error) error {
	return s.each(executionsDir, max(4, runtime.GOMAXPROCS(0)*2), fn)
}

func (s *Store) each(sub string, workers int, fn func([]byte) error) error {
	if s == nil {
		return nil
	}
	dir := filepath.Join(s.dir, sub)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: list %s: %w", sub, err)
	}
	names := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				data, err := os.ReadFile(filepath.Join(dir, n))
				if err == nil {
					err = fn(data)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("store: load %s: %w", n, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".tmp-") {
			os.Remove(filepath.Join(dir, n))
			continue
		}
		if strings.HasSuffix(n, ".json") {
			names <- n
		}
	}
	close(names)
	wg.Wait()
	return first
}
