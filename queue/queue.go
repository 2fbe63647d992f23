// Package queue admits work: at most N jobs run at once, at most Q more
// wait, and anything beyond is refused at once so that callers can answer
// "busy" instead of piling up.
//
// The line is fair across users: each user (the key given to Acquire) has a
// sub-queue, and a freed slot goes to the sub-queues in turn
// (round-robin), first come first served within one. When the line is full,
// a newcomer whose user has fewer waiters than the user with the most takes
// the place of that user's newest waiter, which gets ErrFull. So one user's
// flood can neither keep another's requests out of the line nor make them
// wait behind it.
package queue

import (
	"context"
	"sync"

	"github.com/sandboxd/sandboxd/errdefs"
)

// ErrFull is returned when both the running slots and the queue are full
// (class errdefs.ErrExhausted: retry later).
var ErrFull = errdefs.New(errdefs.ErrExhausted, "all sandboxes are busy and the queue is full; retry later")

type waiter struct {
	key   string
	ready chan struct{}
	err   error // set before ready is closed: nil = a slot, ErrFull = evicted
}

// Queue is a counting semaphore with a bounded, fair waiting line.
type Queue struct {
	mu      sync.Mutex
	slots   int
	running int
	maxWait int
	waiting int
	lines   map[string][]*waiter
	ring    []string // keys with waiters, in serving order
}

// New returns a queue with slots concurrent jobs and at most maxWait waiting.
func New(slots, maxWait int) *Queue {
	return &Queue{slots: max(slots, 1), maxWait: max(maxWait, 0), lines: map[string][]*waiter{}}
}

// Stats reports running and waiting jobs.
func (q *Queue) Stats() (running, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, q.waiting
}

// Acquire takes a slot for key (a user; "" is anonymous), waiting in
// key's line if needed. It returns ErrFull when
// the line is full (or when a fairer newcomer took this waiter's place), or
// ctx's error if ctx ends first. The returned function gives the slot back;
// call it exactly once.
func (q *Queue) Acquire(ctx context.Context, key string) (func(), error) {
	q.mu.Lock()
	if q.running < q.slots && q.waiting == 0 {
		q.running++
		q.mu.Unlock()
		return q.releaser(), nil
	}
	if q.waiting >= q.maxWait && !q.evictForLocked(key) {
		q.mu.Unlock()
		return nil, ErrFull
	}
	w := &waiter{key: key, ready: make(chan struct{})}
	if len(q.lines[key]) == 0 {
		q.ring = append(q.ring, key)
	}
	q.lines[key] = append(q.lines[key], w)
	q.waiting++
	q.mu.Unlock()

	select {
	case <-w.ready:
		if w.err != nil {
			return nil, w.err
		}
		return q.releaser(), nil
	case <-ctx.Done():
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.removeLocked(w) {
			return nil, ctx.Err()
		}
		// Served just as ctx ended: give the slot back (an evicted waiter
		// holds none).
		if w.err == nil {
			q.releaseLocked()
		}
		return nil, ctx.Err()
	}
}

// evictForLocked makes room for a newcomer of key when some other user has
// more waiters than key would have: that user's newest waiter leaves with
// ErrFull. It reports whether room was made.
func (q *Queue) evictForLocked(key string) bool {
	if q.maxWait == 0 {
		return false
	}
	victim, most := "", len(q.lines[key])+1
	for _, k := range q.ring {
		if n := len(q.lines[k]); n > most {
			victim, most = k, n
		}
	}
	if most <= len(q.lines[key])+1 {
		return false
	}
	line := q.lines[victim]
	w := line[len(line)-1]
	q.removeLocked(w)
	w.err = ErrFull
	close(w.ready)
	return true
}

// removeLocked takes w out of the line; false if it is not there any more.
func (q *Queue) removeLocked(w *waiter) bool {
	line := q.lines[w.key]
	for i, x := range line {
		if x == w {
			line = append(line[:i:i], line[i+1:]...)
			q.waiting--
			if len(line) == 0 {
				delete(q.lines, w.key)
				q.dropFromRingLocked(w.key)
			} else {
				q.lines[w.key] = line
			}
			return true
		}
	}
	return false
}

func (q *Queue) dropFromRingLocked(key string) {
	for i, k := range q.ring {
		if k == key {
			q.ring = append(q.ring[:i:i], q.ring[i+1:]...)
			return
		}
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

// releaseLocked passes the slot to the first waiter of the next user in
// turn, or frees it. That user then goes to the back of the ring.
func (q *Queue) releaseLocked() {
	if len(q.ring) == 0 {
		q.running--
		return
	}
	key := q.ring[0]
	line := q.lines[key]
	w := line[0]
	q.waiting--
	q.ring = q.ring[1:]
	if len(line) == 1 {
		delete(q.lines, key)
	} else {
		q.lines[key] = line[1:]
		q.ring = append(q.ring, key)
	}
	close(w.ready)
}
