// Package queue admits work: at most N jobs run at once, at most Q more
// wait, and anything beyond is refused at once so that callers can answer
// "busy" instead of piling up.
package queue

import (
	"context"
	"errors"
	"sync"
)

// ErrFull is returned when both the running slots and the queue are full.
var ErrFull = errors.New("queue: all slots busy and the queue is full")

// Queue is a counting semaphore with a bounded waiting line. Waiters are
// served first come, first served.
type Queue struct {
	mu      sync.Mutex
	slots   int
	running int
	maxWait int
	waiting []chan struct{}
}

// New returns a queue with slots concurrent jobs and at most maxWait waiting.
func New(slots, maxWait int) *Queue {
	return &Queue{slots: max(slots, 1), maxWait: max(maxWait, 0)}
}

// Stats reports running and waiting jobs.
func (q *Queue) Stats() (running, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, len(q.waiting)
}

// Acquire takes a slot, waiting in line if needed. It returns ErrFull when
// the line is full, or ctx's error if ctx ends first. The returned function
// gives the slot back; call it exactly once.
func (q *Queue) Acquire(ctx context.Context) (func(), error) {
	q.mu.Lock()
	if q.running < q.slots && len(q.waiting) == 0 {
		q.running++
		q.mu.Unlock()
		return q.releaser(), nil
	}
	if len(q.waiting) >= q.maxWait {
		q.mu.Unlock()
		return nil, ErrFull
	}
	ready := make(chan struct{})
	q.waiting = append(q.waiting, ready)
	q.mu.Unlock()

	select {
	case <-ready:
		return q.releaser(), nil
	case <-ctx.Done():
		q.mu.Lock()
		defer q.mu.Unlock()
		for i, w := range q.waiting {
			if w == ready {
				q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
				return nil, ctx.Err()
			}
		}
		// The slot was handed over just as ctx ended: give it back.
		q.releaseLocked()
		return nil, ctx.Err()
	}
}

func (q *Queue) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.releaseLocked()
		})
	}
}

// releaseLocked passes the slot to the first waiter, or frees it.
func (q *Queue) releaseLocked() {
	if len(q.waiting) > 0 {
		next := q.waiting[0]
		q.waiting = q.waiting[1:]
		close(next)
		return
	}
	q.running--
}
