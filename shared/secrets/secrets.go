// Package secrets reads named secrets (webhook keys, credentials) through one small interface:
// files in a folder for the local stack and tests, Google Secret Manager in production.
package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotFound is wrapped when a secret does not exist, so callers can tell "no such client"
// from "the store is down".
var ErrNotFound = errors.New("secret not found")

// ErrTooShort is wrapped when a secret holds fewer than MinLength bytes once trimmed: a
// webhook key that short could be guessed from one signed request, so it is refused as if
// it were missing a value, never used.
var ErrTooShort = errors.New("secret too short")

// MinLength is the least number of bytes a secret holds after trimming (256 bits).
const MinLength = 32

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

// whitespace is what both sources trim from either end of a value: ASCII space, tab, CR
// and LF. Editors and `echo` add a newline to a file, `gcloud secrets versions add` keeps
// whatever the file held, so a key must read the same whichever store holds it.
const whitespace = " \t\r\n"

// value trims raw and refuses it when it is shorter than MinLength.
func value(name string, raw []byte) ([]byte, error) {
	v := bytes.Trim(raw, whitespace)
	if len(v) < MinLength {
		return nil, fmt.Errorf("secrets: %s holds %d bytes once trimmed, want at least %d: %w", name, len(v), MinLength, ErrTooShort)
	}
	return v, nil
}

// Dir reads the secret <name> from the file <Dir>/<name>, trimmed of leading and trailing
// whitespace as Secret Manager values are.
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
	return value(name, b)
}
