package secrets

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// countingSource counts lookups per name, to show what the cache saves. gate, when set,
// holds every lookup until it is closed.
type countingSource struct {
	src  Source
	gate chan struct{}

	mu    sync.Mutex
	calls map[string]int
	total int
}

func newCounting(src Source) *countingSource {
	return &countingSource{src: src, calls: map[string]int{}}
}

func (c *countingSource) Get(ctx context.Context, name string) ([]byte, error) {
	c.mu.Lock()
	c.calls[name]++
	c.total++
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return c.src.Get(ctx, name)
}

func (c *countingSource) counts() (total int, most int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.calls {
		most = max(most, n)
	}
	return c.total, most
}

// fakeClock is a settable now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func newCachedForTest(src Source, opts ...CacheOption) (*Cached, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := NewCached(src, 5*time.Minute, opts...)
	c.now = clock.now
	return c, clock
}

func TestCachedKeepsAnswersForTheirTime(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"k": key("v1"), "short": "tiny"})
	src := newCounting(Dir(dir))
	c, clock := newCachedForTest(src, WithRefusalTTL(time.Minute))
	ctx := context.Background()

	for range 3 {
		if v, err := c.Get(ctx, "k"); err != nil || string(v) != key("v1") {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if _, err := c.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if _, err := c.Get(ctx, "short"); !errors.Is(err, ErrTooShort) {
			t.Fatalf("err = %v, want ErrTooShort", err)
		}
	}
	if total, _ := src.counts(); total != 3 {
		t.Fatalf("calls = %d, want 3 (one per name)", total)
	}
	if _, err := c.Get(ctx, "bad/name"); err == nil {
		t.Fatal("invalid name accepted")
	}
	if total, _ := src.counts(); total != 3 {
		t.Fatalf("an invalid name reached the source: calls = %d", total)
	}

	// The refusals go after their minute, the value stays for its five.
	writeFiles(t, dir, map[string]string{"k": key("v2"), "nope": key("new client")})
	clock.add(2 * time.Minute)
	if v, err := c.Get(ctx, "nope"); err != nil || string(v) != key("new client") {
		t.Fatalf("after the refusal's ttl Get = %q, %v", v, err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != key("v1") {
		t.Fatalf("within the value's ttl Get = %q, %v; want v1", v, err)
	}
	clock.add(4 * time.Minute)
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != key("v2") {
		t.Fatalf("after the value's ttl Get = %q, %v; want v2", v, err)
	}
}

// failingSource fails as a store that cannot be reached.
type failingSource struct{ calls int }

func (f *failingSource) Get(context.Context, string) ([]byte, error) {
	f.calls++
	return nil, errors.New("unavailable")
}

func TestCachedDoesNotKeepOtherErrors(t *testing.T) {
	src := &failingSource{}
	c, _ := newCachedForTest(src)
	for range 2 {
		if _, err := c.Get(context.Background(), "k"); err == nil {
			t.Fatal("error lost")
		}
	}
	if v, r := c.Len(); src.calls != 2 || v+r != 0 {
		t.Fatalf("calls = %d, held %d+%d; want every lookup asked and nothing held", src.calls, v, r)
	}
}

// TestCachedRandomClientIDs is the webhook path under a flood of made-up client ids: each
// id arrives three times, the source (the real folder, counted) is asked once per id, the
// cache never holds more than its size, and the real client's key stays held throughout.
func TestCachedRandomClientIDs(t *testing.T) {
	const ids, size = 10_000, 1024
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"webhook-dev-client": key("dev")})
	src := newCounting(Dir(dir))
	c, _ := newCachedForTest(src, WithSize(size))
	ctx := context.Background()
	if _, err := c.Get(ctx, "webhook-dev-client"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		name := fmt.Sprintf("webhook-%016x", rng.Uint64())
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if _, err := c.Get(ctx, name); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: %v, want ErrNotFound", name, err)
				}
			})
		}
		wg.Wait()
		if values, refusals := c.Len(); values > size || refusals > size {
			t.Fatalf("after %d ids the cache holds %d values and %d refusals, more than %d", i+1, values, refusals, size)
		}
		if _, err := c.Get(ctx, "webhook-dev-client"); err != nil {
			t.Fatal(err)
		}
	}
	total, most := src.counts()
	if total != ids+1 || most != 1 {
		t.Fatalf("source asked %d times, at most %d for one id; want %d, once each", total, most, ids+1)
	}
	if values, refusals := c.Len(); values != 1 || refusals != size {
		t.Fatalf("held %d values and %d refusals, want 1 and %d", values, refusals, size)
	}
}

// TestCachedBurstOfOneName: concurrent Gets of a name not yet held share one lookup, and a
// caller that gives up does not fail it for the others.
func TestCachedBurstOfOneName(t *testing.T) {
	const callers = 50
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"webhook-c": key("c")})
	src := newCounting(Dir(dir))
	src.gate = make(chan struct{})
	c, _ := newCachedForTest(src)

	impatient, giveUp := context.WithCancel(context.Background())
	impatientErr := make(chan error, 1)
	go func() {
		_, err := c.Get(impatient, "webhook-c")
		impatientErr <- err
	}()
	results := make(chan error, callers)
	for range callers {
		go func() {
			v, err := c.Get(context.Background(), "webhook-c")
			if err == nil && string(v) != key("c") {
				err = fmt.Errorf("value %q", v)
			}
			results <- err
		}()
	}
	// Every caller waits on the one lookup the gate holds before it is let go.
	deadline := time.Now().Add(time.Minute) // only a broken cache waits that long
	for waiting := 0; waiting < callers+1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callers wait on the one lookup", waiting, callers+1)
		}
		time.Sleep(time.Millisecond)
		c.mu.Lock()
		if l := c.inflight["webhook-c"]; l != nil {
			waiting = l.waiters
		}
		c.mu.Unlock()
	}
	giveUp()
	if err := <-impatientErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(src.gate)
	for range callers {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if total, _ := src.counts(); total != 1 {
		t.Fatalf("%d callers made %d lookups, want 1", callers+1, total)
	}
}

// TestCachedEvictsLeastRecentlyUsed: past its size the cache drops the name used longest
// ago, not the one just read.
func TestCachedEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": key("a"), "b": key("b"), "c": key("c")})
	src := newCounting(Dir(dir))
	c, _ := newCachedForTest(src, WithSize(2))
	ctx := context.Background()
	for _, name := range []string{"a", "b", "a", "c", "a", "b"} {
		if _, err := c.Get(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	// a, b (2 calls); a held; c evicts b (3); a held; b evicts c (4).
	if total, _ := src.counts(); total != 4 {
		t.Fatalf("calls = %d, want 4", total)
	}
	if values, _ := c.Len(); values != 2 {
		t.Fatalf("held %d values, want 2", values)
	}
	_ = os.Remove(filepath.Join(dir, "a"))
	if v, err := c.Get(ctx, "a"); err != nil || string(v) != key("a") {
		t.Fatalf("a was evicted: %q, %v", v, err)
	}
}
