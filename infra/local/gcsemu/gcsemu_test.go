package gcsemu_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"waooaw.dev/governance/infra/local/gcsemu"
)

// client is the official client pointed at a fresh server, as STORAGE_EMULATOR_HOST does it.
func client(t *testing.T) (*storage.Client, *gcsemu.Running, string) {
	t.Helper()
	dir := t.TempDir()
	srv, err := gcsemu.Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("STORAGE_EMULATOR_HOST", srv.Host())
	c, err := storage.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, srv, dir
}

func write(ctx context.Context, o *storage.ObjectHandle, data string) error {
	w := o.NewWriter(ctx)
	w.ChunkSize = 0
	w.ContentType = "application/json"
	if _, err := io.WriteString(w, data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func code(err error) int {
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code
	}
	return 0
}

func TestObjectsThroughTheOfficialClient(t *testing.T) {
	ctx := context.Background()
	c, srv, dir := client(t)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	srv.Now = func() time.Time { return now }
	if err := c.Bucket("anchors").Create(ctx, "local", &storage.BucketAttrs{RetentionPolicy: &storage.RetentionPolicy{RetentionPeriod: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Bucket("scratch").Create(ctx, "local", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Bucket("anchors").Create(ctx, "local", nil); code(err) != http.StatusConflict {
		t.Fatalf("second create: %v, want 409", err)
	}
	attrs, err := c.Bucket("anchors").Attrs(ctx)
	if err != nil || attrs.RetentionPolicy == nil || attrs.RetentionPolicy.RetentionPeriod != time.Hour {
		t.Fatalf("bucket attrs %+v, %v", attrs, err)
	}

	anchors, scratch := c.Bucket("anchors"), c.Bucket("scratch")
	once := func(b *storage.BucketHandle, name string) *storage.ObjectHandle {
		return b.Object(name).If(storage.Conditions{DoesNotExist: true})
	}
	tests := []struct {
		name     string
		do       func() error
		wantCode int
	}{
		{"create once", func() error { return write(ctx, once(anchors, "runs/a b/1.json"), `{"n":1}`) }, 0},
		{"create again", func() error { return write(ctx, once(anchors, "runs/a b/1.json"), `{"n":2}`) }, http.StatusPreconditionFailed},
		{"replace under retention", func() error { return write(ctx, anchors.Object("runs/a b/1.json"), `{"n":3}`) }, http.StatusForbidden},
		{"delete under retention", func() error { return anchors.Object("runs/a b/1.json").Delete(ctx) }, http.StatusForbidden},
		{"a second object", func() error { return write(ctx, once(anchors, "runs/2.json"), `{"n":4}`) }, 0},
		{"replace without retention", func() error {
			if err := write(ctx, once(scratch, "x"), "1"); err != nil {
				return err
			}
			return write(ctx, scratch.Object("x"), "2")
		}, 0},
		{"delete without retention", func() error { return scratch.Object("x").Delete(ctx) }, 0},
		{"read a deleted object", func() error { _, err := scratch.Object("x").NewReader(ctx); return err }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.name == "read a deleted object" {
				if !errors.Is(err, storage.ErrObjectNotExist) {
					t.Fatalf("read: %v, want ErrObjectNotExist", err)
				}
				return
			}
			if got := code(err); got != tt.wantCode || (tt.wantCode == 0 && err != nil) {
				t.Fatalf("err %v (code %d), want code %d", err, got, tt.wantCode)
			}
		})
	}

	r, err := anchors.Object("runs/a b/1.json").NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != `{"n":1}` {
		t.Fatalf("object holds %s, want the first write", b)
	}
	var names []string
	it := anchors.Objects(ctx, &storage.Query{Prefix: "runs/"})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"runs/2.json", "runs/a b/1.json"}) {
		t.Fatalf("listed %q", names)
	}

	// A restart keeps the objects; once the period has passed, delete is allowed.
	srv.Close()
	srv2, err := gcsemu.Start(srv.Host(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	srv2.Now = func() time.Time { return now.Add(2 * time.Hour) }
	c2, err := storage.NewClient(ctx) // the first client's connections died with the server
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Bucket("anchors").Object("runs/2.json").Delete(ctx); err != nil {
		t.Fatalf("delete after the retention period: %v", err)
	}
}
