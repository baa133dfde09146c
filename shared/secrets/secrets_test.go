package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDir(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"webhook-dev-client": "s3cret\n",
		"crlf":               "v\r\n",
		"raw":                "no newline",
		"two-newlines":       "x\n\n",
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "outside"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		want     string
		notFound bool
		invalid  bool
	}{
		{name: "webhook-dev-client", want: "s3cret"},
		{name: "crlf", want: "v"},
		{name: "raw", want: "no newline"},
		{name: "two-newlines", want: "x\n"},
		{name: "missing", notFound: true},
		{name: "../outside", invalid: true},
		{name: "a/b", invalid: true},
		{name: "", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Dir(dir).Get(context.Background(), tt.name)
			switch {
			case tt.notFound:
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
			case tt.invalid:
				if err == nil || errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want an invalid-name error", err)
				}
			default:
				if err != nil || string(got) != tt.want {
					t.Fatalf("Get = %q, %v; want %q", got, err, tt.want)
				}
			}
		})
	}
}

// countingSource counts lookups, to show what the cache saves.
type countingSource struct {
	calls int
	src   Source
}

func (c *countingSource) Get(ctx context.Context, name string) ([]byte, error) {
	c.calls++
	return c.src.Get(ctx, name)
}

func TestCached(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	if err := os.WriteFile(path, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := &countingSource{src: Dir(dir)}
	c := NewCached(src, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	for range 3 {
		if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if _, err := c.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	}
	if src.calls != 2 {
		t.Fatalf("calls = %d, want 2 (one per name)", src.calls)
	}
	if _, err := c.Get(ctx, "bad/name"); err == nil {
		t.Fatal("invalid name accepted")
	}
	if _, err := c.Get(ctx, "bad/name"); err == nil || src.calls != 4 {
		t.Fatalf("errors other than not-found must not be cached: calls = %d", src.calls)
	}

	if err := os.WriteFile(path, []byte("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v2" {
		t.Fatalf("after ttl Get = %q, %v; want v2", v, err)
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
