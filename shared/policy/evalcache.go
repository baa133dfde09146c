package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// evalCaches are the per-evaluation caches topdown needs, kept small and
// reused: OPA's defaults build a trie of hash maps per evaluation, which
// for these short evaluations allocate more than the rules themselves.
// An evaluation reads a handful of data refs and rules, so a linear search
// is faster than hashing. They are reset before reuse and never shared by
// two evaluations at once.
type evalCaches struct {
	base    baseCache
	virtual virtualCache
	terms   refArena
}

// refArena copies refs the caches keep: topdown passes slices of buffers it
// reuses. Earlier copies stay valid when the backing array grows.
type refArena []*ast.Term

func (a *refArena) copy(ref ast.Ref) ast.Ref {
	start := len(*a)
	*a = append(*a, ref...)
	return ast.Ref((*a)[start:len(*a):len(*a)])
}

func (a *refArena) reset() {
	clear(*a)
	*a = (*a)[:0]
}

var cachePool = sync.Pool{New: func() any { return new(evalCaches) }}

func getCaches() *evalCaches {
	c := cachePool.Get().(*evalCaches)
	c.base.arena, c.virtual.arena = &c.terms, &c.terms
	c.virtual.Push()
	return c
}

func putCaches(c *evalCaches) {
	c.base.reset()
	c.virtual.reset()
	c.terms.reset()
	cachePool.Put(c)
}

// maxBaseEntries bounds the data refs kept per evaluation; reads past it go
// to the store, which is slower but equally correct.
const maxBaseEntries = 32

// baseCache holds data read from the store during one evaluation
// (topdown.BaseCache).
type baseCache struct {
	refs  []ast.Ref
	vals  []ast.Value
	arena *refArena
}

// Get returns the value at ref if ref or a prefix of it was read; the store
// does not change during an evaluation, so any cached prefix answers.
func (c *baseCache) Get(ref ast.Ref) ast.Value {
	for i, r := range c.refs {
		if !ref.HasPrefix(r) {
			continue
		}
		if len(ref) == len(r) {
			return c.vals[i]
		}
		v, err := c.vals[i].Find(ref[len(r):])
		if err != nil {
			return nil
		}
		return v
	}
	return nil
}

func (c *baseCache) Put(ref ast.Ref, v ast.Value) {
	if len(c.refs) < maxBaseEntries {
		c.refs = append(c.refs, c.arena.copy(ref))
		c.vals = append(c.vals, v)
	}
}

func (c *baseCache) reset() {
	clear(c.refs)
	clear(c.vals)
	c.refs, c.vals = c.refs[:0], c.vals[:0]
}

// virtualCache holds the values of rules evaluated during one evaluation
// (topdown.VirtualCache): a stack of frames, pushed and popped by `with`.
type virtualCache struct {
	entries []virtualEntry
	frames  []int // start of each frame in entries
	arena   *refArena
}

type virtualEntry struct {
	ref   ast.Ref
	value *ast.Term // nil: undefined
}

func (c *virtualCache) Push() { c.frames = append(c.frames, len(c.entries)) }

func (c *virtualCache) Pop() {
	top := c.frames[len(c.frames)-1]
	clear(c.entries[top:])
	c.entries = c.entries[:top]
	c.frames = c.frames[:len(c.frames)-1]
}

func (c *virtualCache) top() []virtualEntry { return c.entries[c.frames[len(c.frames)-1]:] }

// Get reports the cached value of ref; (nil, true) when it is cached as
// undefined, (nil, false) when it is not cached.
func (c *virtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	for _, e := range c.top() {
		if e.ref.Equal(ref) {
			return e.value, e.value == nil
		}
	}
	return nil, false
}

func (c *virtualCache) Put(ref ast.Ref, value *ast.Term) {
	top := c.top()
	for i := range top {
		if top[i].ref.Equal(ref) {
			top[i].value = value
			return
		}
	}
	c.entries = append(c.entries, virtualEntry{ref: c.arena.copy(ref), value: value})
}

func (c *virtualCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.top() {
		if e.value != nil {
			keys = append(keys, e.ref)
		}
	}
	return keys
}

func (c *virtualCache) reset() {
	clear(c.entries)
	c.entries, c.frames = c.entries[:0], c.frames[:0]
}
