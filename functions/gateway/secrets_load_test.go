package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waooaw.dev/governance/shared/secrets"
)

// countingSource counts the lookups that reach the secret store, per name.
type countingSource struct {
	src   secrets.Source
	total atomic.Int64
	mu    sync.Mutex
	names map[string]int
}

func (c *countingSource) Get(ctx context.Context, name string) ([]byte, error) {
	c.total.Add(1)
	c.mu.Lock()
	c.names[name]++
	c.mu.Unlock()
	return c.src.Get(ctx, name)
}

// TestRandomClientsAskNoSecrets sends 10,000 webhooks signed by made-up client ids: each is
// refused before any key is looked up, so they cost Secret Manager nothing and hold nothing
// in memory; a burst from a listed client whose key is missing asks once.
func TestRandomClientsAskNoSecrets(t *testing.T) {
	count := &countingSource{names: map[string]int{}}
	var cache *secrets.Cached
	h := newHarness(t, withClients(devClient, "listed-no-key"), withSecrets(func(src secrets.Source) secrets.Source {
		count.src = src
		cache = secrets.NewCached(count, 5*time.Minute)
		return cache
	}))
	h.bind(t, devClient, "eng-1")
	body := healthBody("agent-1", "eng-1", "healthy")
	url := h.url + "/v1/webhooks/health"

	const n = 10_000
	var wg sync.WaitGroup
	var refused atomic.Int64
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				id := make([]byte, 8)
				key := make([]byte, 32)
				rand.Read(id)
				rand.Read(key)
				req := signed(url, body, "c-"+hex.EncodeToString(id), key, time.Now())
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					refused.Add(1)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if refused.Load() != n {
		t.Fatalf("%d of %d made-up clients refused with 401", refused.Load(), n)
	}
	if got := count.total.Load(); got != 0 {
		t.Fatalf("made-up clients caused %d secret lookups; want none", got)
	}
	if v, r := cache.Len(); v+r != 0 {
		t.Fatalf("the key cache holds %d keys and %d refusals after made-up clients; want nothing", v, r)
	}

	// A listed client whose key is missing: a burst asks the store once, and the refusal is
	// remembered for the next ones.
	for range 3 {
		var burst sync.WaitGroup
		for range 50 {
			burst.Add(1)
			go func() {
				defer burst.Done()
				req := signed(url, body, "listed-no-key", make([]byte, 32), time.Now())
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("listed client without a key: %d, want 401", resp.StatusCode)
				}
			}()
		}
		burst.Wait()
	}
	count.mu.Lock()
	defer count.mu.Unlock()
	if got := count.names["webhook-listed-no-key"]; got != 1 {
		t.Fatalf("150 webhooks of a listed client without a key asked the store %d times; want 1", got)
	}
}
