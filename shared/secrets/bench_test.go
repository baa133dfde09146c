package secrets

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCached is the cost of a webhook's key lookup: a name held (hit), and names the
// cache has just dropped, so each Get reads the folder (miss: a key file, or no file).
func BenchmarkCached(b *testing.B) {
	const size = 1024
	dir := b.TempDir()
	names := make([]string, 2*size)
	files := map[string]string{}
	for i := range names {
		names[i] = fmt.Sprintf("webhook-client-%d", i)
		files[names[i]] = key(names[i])
	}
	writeFiles(b, dir, files)
	ctx := context.Background()
	b.Run("hit", func(b *testing.B) {
		c := NewCached(Dir(dir), 5*time.Minute, WithSize(size))
		if _, err := c.Get(ctx, names[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, names[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		c := NewCached(Dir(dir), 5*time.Minute, WithSize(size))
		if _, err := c.Get(ctx, names[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Get(ctx, names[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	// Cycling through twice the size, every Get finds its name dropped.
	b.Run("miss-found", func(b *testing.B) {
		c := NewCached(Dir(dir), 5*time.Minute, WithSize(size))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.Get(ctx, names[i%len(names)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("miss-not-found", func(b *testing.B) {
		c := NewCached(Dir(dir), 5*time.Minute, WithSize(size))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.Get(ctx, fmt.Sprintf("webhook-unknown-%d", i)); err == nil {
				b.Fatal("found")
			}
			i++
		}
	})
}
