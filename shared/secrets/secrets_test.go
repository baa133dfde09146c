package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// key is a value long enough to be a secret, distinct per seed.
func key(seed string) string { return seed + strings.Repeat("k", MinLength) }

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"webhook-dev-client": key("s3cret") + "\n",
		"crlf":               key("v") + "\r\n",
		"raw":                key("no newline"),
		"two-newlines":       key("x") + "\n\n",
		"both-ends":          " \t\n" + key("y") + " \t\r\n",
		"inner-space":        key("a b"),
		"short":              "dev-secret-for-tests\n",
		"short-once-trimmed": strings.Repeat(" ", 40) + "abc\n",
		"empty":              "",
		"exactly-min":        strings.Repeat("m", MinLength) + "\n",
	})
	writeFiles(t, filepath.Dir(dir), map[string]string{"outside": key("x")})
	tests := []struct {
		name    string
		want    string
		wantErr error // nil: any non-nil error that is neither sentinel
		fails   bool
	}{
		{name: "webhook-dev-client", want: key("s3cret")},
		{name: "crlf", want: key("v")},
		{name: "raw", want: key("no newline")},
		{name: "two-newlines", want: key("x")},
		{name: "both-ends", want: key("y")},
		{name: "inner-space", want: key("a b")},
		{name: "exactly-min", want: strings.Repeat("m", MinLength)},
		{name: "short", wantErr: ErrTooShort, fails: true},
		{name: "short-once-trimmed", wantErr: ErrTooShort, fails: true},
		{name: "empty", wantErr: ErrTooShort, fails: true},
		{name: "missing", wantErr: ErrNotFound, fails: true},
		{name: "../outside", fails: true},
		{name: "a/b", fails: true},
		{name: "", fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Dir(dir).Get(context.Background(), tt.name)
			switch {
			case !tt.fails:
				if err != nil || string(got) != tt.want {
					t.Fatalf("Get = %q, %v; want %q", got, err, tt.want)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("Get = %q, %v; want %v", got, err, tt.wantErr)
				}
			default:
				if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrTooShort) {
					t.Fatalf("err = %v, want an invalid-name error", err)
				}
			}
		})
	}
}

// TestValueTrimsAsDir: Secret Manager's payloads go through the same trimming and check as
// a file's content.
func TestValueTrimsAsDir(t *testing.T) {
	dir := t.TempDir()
	for _, raw := range []string{key("p"), key("p") + "\n", "\r\n " + key("p") + "\t", "short\n", strings.Repeat("\n", 64)} {
		writeFiles(t, dir, map[string]string{"s": raw})
		fromDir, dirErr := Dir(dir).Get(context.Background(), "s")
		fromSM, smErr := value("s", []byte(raw))
		if string(fromDir) != string(fromSM) || errors.Is(dirErr, ErrTooShort) != errors.Is(smErr, ErrTooShort) {
			t.Errorf("%q: Dir %q, %v; Secret Manager %q, %v", raw, fromDir, dirErr, fromSM, smErr)
		}
	}
}

func TestVersionName(t *testing.T) {
	if got, want := VersionName("p1", "webhook-dev-client"), "projects/p1/secrets/webhook-dev-client/versions/latest"; got != want {
		t.Fatalf("VersionName = %q, want %q", got, want)
	}
}

func TestOpenWithDirNeedsNoCloud(t *testing.T) {
	dir := t.TempDir()
	src, closeFn, err := Open(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, ok := src.(Dir); !ok {
		t.Fatalf("Open with a dir returned %T, want Dir", src)
	}
}

func TestOpenWithoutDirNeedsAProject(t *testing.T) {
	if _, _, err := Open(context.Background(), "", ""); err == nil {
		t.Fatal("Secret Manager source opened without a project")
	}
}
