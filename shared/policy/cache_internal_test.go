package policy

import (
	"testing"
	"time"
)

func TestCacheIsBoundedAndExpires(t *testing.T) {
	c := newCache(2)
	now := time.Unix(0, 0)
	key := func(b byte) cacheKey { return cacheKey{gen: 1, sum: [32]byte{b}} }
	for b := range byte(3) {
		c.put(key(b), Decision{Reasons: []string{string('a' + b)}}, now.Add(time.Minute))
	}
	if c.len() != 2 {
		t.Fatalf("len = %d, want the bound 2", c.len())
	}
	if _, ok := c.get(key(0), now); ok {
		t.Fatal("the oldest entry should have been evicted")
	}
	if d, ok := c.get(key(2), now); !ok || d.Reasons[0] != "c" {
		t.Fatalf("newest entry: %+v %v", d, ok)
	}
	if _, ok := c.get(key(2), now.Add(time.Minute)); ok {
		t.Fatal("an entry at its expiry time must not be served")
	}
	c.put(key(2), Decision{Reasons: []string{"again"}}, now.Add(time.Hour)) // refresh in place
	if c.len() != 2 {
		t.Fatalf("refresh grew the cache to %d", c.len())
	}
	if (*cache)(nil).len() != 0 {
		t.Fatal("a disabled cache holds nothing")
	}
}
