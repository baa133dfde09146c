package service

import "sync"

// runQueue is an unbounded FIFO of executions to run: creating many
// executions at once never blocks the caller.
type runQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	idle   *sync.Cond
	items  []*Execution
	head   int
	active int
	closed bool
}

func newRunQueue() *runQueue {
	q := &runQueue{}
	q.cond = sync.NewCond(&q.mu)
	q.idle = sync.NewCond(&q.mu)
	return q
}

func (q *runQueue) push(e *Execution) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.queued || q.closed {
		return
	}
	e.queued = true
	q.items = append(q.items, e)
	q.cond.Signal()
}

func (q *runQueue) pop() (*Execution, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	e := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	e.queued = false
	q.active++
	return e, true
}

func (q *runQueue) done() {
	q.mu.Lock()
	q.active--
	if q.active == 0 && q.head == len(q.items) {
		q.idle.Broadcast()
	}
	q.mu.Unlock()
}

func (q *runQueue) waitIdle() {
	q.mu.Lock()
	for (q.active > 0 || q.head < len(q.items)) && !q.closed {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

func (q *runQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.idle.Broadcast()
	q.mu.Unlock()
}

func (s *Service) worker() {
	for {
		e, ok := s.q.pop()
		if !ok {
			return
		}
		s.run(e)
		s.q.done()
	}
}
