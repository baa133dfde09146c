// Package clock gives the emulator its time: the real clock, or a virtual
// one that moves only when told to, and a timer queue over either.
package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now implements Clock.
func (Real) Now() time.Time { return time.Now() }

// Virtual is a clock that moves only through Set.
type Virtual struct {
	mu  sync.Mutex
	now time.Time
}

// NewVirtual starts a virtual clock at start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

// Now implements Clock.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// Set moves the clock; it never goes backwards.
func (v *Virtual) Set(t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t.After(v.now) {
		v.now = t
	}
}

type item struct {
	due int64
	key string
}

type itemHeap []item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// Timers is a queue of keyed deadlines (unix nanos). Entries are never
// removed early: the receiver checks whether a fired key is still due,
// which keeps scheduling O(log n) and cancellation free.
type Timers struct {
	mu    sync.Mutex
	h     itemHeap
	wake  chan struct{}
	fire  func(key string)
	clock Clock
	real  bool
	done  chan struct{}
}

// NewTimers makes a timer queue calling fire for each due key. With the
// real clock a goroutine fires keys as they fall due; with a virtual clock
// keys fire only in Advance.
func NewTimers(c Clock, fire func(key string)) *Timers {
	t := &Timers{wake: make(chan struct{}, 1), fire: fire, clock: c, done: make(chan struct{})}
	if _, ok := c.(*Virtual); !ok {
		t.real = true
		go t.loop()
	}
	return t
}

// Close stops the real-clock goroutine.
func (t *Timers) Close() {
	select {
	case <-t.done:
	default:
		close(t.done)
	}
}

// Add schedules key at due.
func (t *Timers) Add(key string, due int64) {
	t.mu.Lock()
	heap.Push(&t.h, item{due, key})
	first := t.h[0].key == key && t.h[0].due == due
	t.mu.Unlock()
	if first && t.real {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Next returns the earliest deadline, if any.
func (t *Timers) Next() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.h) == 0 {
		return 0, false
	}
	return t.h[0].due, true
}

// PopDue removes and returns keys due at or before now.
func (t *Timers) PopDue(now int64) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for len(t.h) > 0 && t.h[0].due <= now {
		out = append(out, heap.Pop(&t.h).(item).key)
	}
	return out
}

func (t *Timers) loop() {
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		now := t.clock.Now().UnixNano()
		for _, k := range t.PopDue(now) {
			t.fire(k)
		}
		wait := time.Hour
		if d, ok := t.Next(); ok {
			wait = time.Duration(d - t.clock.Now().UnixNano())
		}
		tm.Reset(max(wait, 0))
		select {
		case <-t.done:
			return
		case <-t.wake:
			if !tm.Stop() {
				select {
				case <-tm.C:
				default:
				}
			}
		case <-tm.C:
		}
	}
}
