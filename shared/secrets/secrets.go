// Package secrets reads named secrets (webhook keys, credentials) through one small interface:
// files in a folder for the local stack and tests, Google Secret Manager in production.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is wrapped when a secret does not exist, so callers can tell "no such client"
// from "the store is down".
var ErrNotFound = errors.New("secret not found")

// Source returns the current value of a named secret.
type Source interface {
	Get(ctx context.Context, name string) ([]byte, error)
}

// validName keeps names to what Secret Manager accepts ([A-Za-z0-9_-], at most 255), which
// also keeps a Dir lookup inside its folder.
func validName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("secrets: invalid name %q", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("secrets: invalid name %q", name)
		}
	}
	return nil
}

// Dir reads the secret <name> from the file <Dir>/<name>. One trailing newline is dropped,
// because editors and `echo` add one that Secret Manager values do not have.
type Dir string

// Get implements Source.
func (d Dir) Get(_ context.Context, name string) ([]byte, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(string(d), name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secrets: %s in %s: %w", name, string(d), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: read %s: %w", name, err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	return []byte(s), nil
}

// Cached keeps values (and not-found answers) of another Source for ttl, so a hot path does
// not call Secret Manager per request. Other errors are not cached.
type Cached struct {
	src Source
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	val     []byte
	err     error
	expires time.Time
}

// NewCached wraps src with a cache of the given time to live.
func NewCached(src Source, ttl time.Duration) *Cached {
	return &Cached{src: src, ttl: ttl, now: time.Now, entries: map[string]cacheEntry{}}
}

// Get implements Source.
func (c *Cached) Get(ctx context.Context, name string) ([]byte, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.val, e.err
	}
	val, err := c.src.Get(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	c.mu.Lock()
	c.entries[name] = cacheEntry{val: val, err: err, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return val, err
}
