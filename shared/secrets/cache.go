package secrets

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of NewCached.
const (
	// DefaultCacheSize bounds the names held, separately for values and for refusals.
	DefaultCacheSize = 1024
	// DefaultRefusalTTL is how long a refusal (not found, too short) is kept: long enough
	// that made-up client ids cannot make the store answer them again and again, short
	// enough that a client whose key was just added is taken soon.
	DefaultRefusalTTL = 30 * time.Second
)

// lookupTimeout bounds one call to the source. The call runs on its own context, so a
// caller that gives up does not fail it for the others waiting on the same name.
const lookupTimeout = 30 * time.Second

// Cached keeps another Source's answers, so a hot path does not call Secret Manager per
// request, within bounds no caller can push:
//   - values are kept for ttl, at most size names, the least recently used dropped first;
//   - refusals (ErrNotFound, ErrTooShort) are kept for a shorter time in a store of their
//     own of the same size: names made up by a caller evict only other made-up names,
//     never a real client's key;
//   - one lookup per name is in flight at a time: concurrent Gets of a name share it.
//
// Other errors (the store unreachable) are not kept: the next Get asks again.
type Cached struct {
	src        Source
	ttl        time.Duration
	refusalTTL time.Duration
	size       int
	now        func() time.Time

	mu       sync.Mutex
	values   *lru
	refusals *lru
	inflight map[string]*lookup
}

// lookup is one call to the source, shared by every Get of its name while it runs.
type lookup struct {
	done    chan struct{} // closed once val and err are set
	val     []byte
	err     error
	waiters int // Gets sharing the call; mu is held to change it
}

// CacheOption configures NewCached.
type CacheOption func(*Cached)

// WithSize bounds the names held (default DefaultCacheSize), values and refusals each.
func WithSize(n int) CacheOption { return func(c *Cached) { c.size = max(n, 1) } }

// WithRefusalTTL sets how long a refusal is kept (default DefaultRefusalTTL, never longer
// than the values' ttl).
func WithRefusalTTL(d time.Duration) CacheOption { return func(c *Cached) { c.refusalTTL = d } }

// NewCached wraps src with a cache whose values live for ttl.
func NewCached(src Source, ttl time.Duration, opts ...CacheOption) *Cached {
	c := &Cached{src: src, ttl: ttl, refusalTTL: DefaultRefusalTTL, size: DefaultCacheSize, now: time.Now, inflight: map[string]*lookup{}}
	for _, o := range opts {
		o(c)
	}
	c.refusalTTL = min(c.refusalTTL, ttl)
	c.values, c.refusals = newLRU(c.size), newLRU(c.size)
	return c
}

// Get implements Source.
func (c *Cached) Get(ctx context.Context, name string) ([]byte, error) {
	// A name the stores cannot hold costs nothing: no entry, no lookup.
	if err := validName(name); err != nil {
		return nil, err
	}
	now := c.now()
	c.mu.Lock()
	if e, ok := c.values.get(name, now); ok {
		c.mu.Unlock()
		return e.val, nil
	}
	if e, ok := c.refusals.get(name, now); ok {
		c.mu.Unlock()
		return nil, e.err
	}
	l, ok := c.inflight[name]
	if !ok {
		l = &lookup{done: make(chan struct{})}
		c.inflight[name] = l
		go c.lookup(context.WithoutCancel(ctx), name, l)
	}
	l.waiters++
	c.mu.Unlock()
	select {
	case <-l.done:
		return l.val, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("secrets: waiting for %s: %w", name, ctx.Err())
	}
}

// lookup asks the source once and keeps what it answered.
func (c *Cached) lookup(ctx context.Context, name string, l *lookup) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	l.val, l.err = c.src.Get(ctx, name)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, name)
	close(l.done)
	switch {
	case l.err == nil:
		c.refusals.remove(name)
		c.values.put(name, entry{val: l.val, expires: now.Add(c.ttl)})
	case errors.Is(l.err, ErrNotFound) || errors.Is(l.err, ErrTooShort):
		c.values.remove(name)
		c.refusals.put(name, entry{err: l.err, expires: now.Add(c.refusalTTL)})
	}
}

// Len is the number of names held: values, and refusals. Neither exceeds the size.
func (c *Cached) Len() (values, refusals int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values.len(), c.refusals.len()
}

// entry is one kept answer.
type entry struct {
	val     []byte
	err     error
	expires time.Time
}

// lru holds at most max entries by name, dropping the least recently used.
type lru struct {
	max   int
	order *list.List // of *item, most recently used first
	items map[string]*list.Element
}

type item struct {
	name string
	entry
}

func newLRU(n int) *lru {
	return &lru{max: n, order: list.New(), items: make(map[string]*list.Element, n)}
}

// get returns name's entry while it has not expired, marking it used.
func (l *lru) get(name string, now time.Time) (entry, bool) {
	el, ok := l.items[name]
	if !ok {
		return entry{}, false
	}
	it := el.Value.(*item)
	if !now.Before(it.expires) {
		l.order.Remove(el)
		delete(l.items, name)
		return entry{}, false
	}
	l.order.MoveToFront(el)
	return it.entry, true
}

func (l *lru) put(name string, e entry) {
	if el, ok := l.items[name]; ok {
		el.Value.(*item).entry = e
		l.order.MoveToFront(el)
		return
	}
	l.items[name] = l.order.PushFront(&item{name: name, entry: e})
	if l.order.Len() > l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.items, oldest.Value.(*item).name)
	}
}

func (l *lru) remove(name string) {
	if el, ok := l.items[name]; ok {
		l.order.Remove(el)
		delete(l.items, name)
	}
}

func (l *lru) len() int { return l.order.Len() }
