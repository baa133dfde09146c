package policy

import (
	"sync"
	"time"
)

// cacheKey is plain memory, hashed and compared in one piece.
type cacheKey struct {
	gen    uint64   // revisionGen.gen
	bundle uint64   // bundleQueries.index
	sum    [32]byte // sha256 of the canonical input
}

type cacheEntry struct {
	decision Decision
	expires  time.Time
}

// cache is a bounded map with first-in-first-out eviction: decisions are
// cheap to recompute, so a ring of keys is enough to cap memory without the
// bookkeeping of an LRU on the hot path.
type cache struct {
	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
	ring    []cacheKey
	next    int
}

func newCache(max int) *cache {
	if max <= 0 {
		return nil
	}
	return &cache{entries: make(map[cacheKey]cacheEntry, max), ring: make([]cacheKey, 0, max)}
}

func (c *cache) get(k cacheKey, now time.Time) (Decision, bool) {
	if c == nil {
		return Decision{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return Decision{}, false
	}
	return e.decision, true
}

func (c *cache) put(k cacheKey, d Decision, expires time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		c.entries[k] = cacheEntry{decision: d, expires: expires}
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, k)
	} else {
		delete(c.entries, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % len(c.ring)
	}
	c.entries[k] = cacheEntry{decision: d, expires: expires}
}

func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
