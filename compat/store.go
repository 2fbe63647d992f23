package compat

import (
	"container/list"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
)

// StoreLimits bound the Judge0 submissions kept for their tokens: each is
// kept Keep after it ends; at most MaxResults of them (running ones
// included) and MaxBytes of their outputs, the oldest ended ones dropped
// first.
type StoreLimits struct {
	Keep       time.Duration
	MaxResults int
	MaxBytes   int64
}

// errStoreFull refuses a submission while MaxResults are still running.
var errStoreFull = errdefs.New(errdefs.ErrExhausted, "too many Judge0 submissions are running; retry later")

// stored is one submission: running until result is set.
type stored struct {
	token, owner string
	result       *judge0Result
	ended        time.Time
	size         int64
	elem         *list.Element
}

// store keeps submissions by token, in memory, in the order they came.
type store struct {
	StoreLimits
	now func() time.Time

	mu      sync.Mutex
	byToken map[string]*stored
	order   *list.List // of *stored, oldest first
	bytes   int64
}

func newStore(l StoreLimits) *store {
	return &store{StoreLimits: l, now: time.Now, byToken: map[string]*stored{}, order: list.New()}
}

// add makes a running submission of owner and returns its token.
func (s *store) add(owner string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	for s.order.Len() >= s.MaxResults {
		if !s.dropOldestEndedLocked() {
			return "", errStoreFull
		}
	}
	e := &stored{token: newToken(), owner: owner}
	e.elem = s.order.PushBack(e)
	s.byToken[e.token] = e
	return e.token, nil
}

// finish records a submission's result, then drops the oldest ended
// submissions while their outputs are over MaxBytes (this one last: a
// result larger than MaxBytes alone is not kept).
func (s *store) finish(token string, res *judge0Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byToken[token]
	if e == nil {
		return
	}
	e.result, e.ended, e.size = res, s.now(), res.size()
	s.bytes += e.size
	for s.bytes > s.MaxBytes && s.dropOldestEndedLocked() {
	}
}

// remove forgets a submission that never ran.
func (s *store) remove(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byToken[token]; e != nil {
		s.dropLocked(e)
	}
}

// get returns owner's submission: its result, or nil while it runs. A
// token of another owner is as unknown as one that never existed.
func (s *store) get(owner, token string) (*judge0Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	e := s.byToken[token]
	if e == nil || e.owner != owner {
		return nil, false
	}
	return e.result, true
}

// expireLocked drops the submissions that ended more than Keep ago.
func (s *store) expireLocked() {
	cutoff := s.now().Add(-s.Keep)
	for el := s.order.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*stored); e.result != nil && e.ended.Before(cutoff) {
			s.dropLocked(e)
		}
		el = next
	}
}

// dropOldestEndedLocked drops the oldest ended submission, if any.
func (s *store) dropOldestEndedLocked() bool {
	for el := s.order.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*stored); e.result != nil {
			s.dropLocked(e)
			return true
		}
	}
	return false
}

func (s *store) dropLocked(e *stored) {
	s.order.Remove(e.elem)
	delete(s.byToken, e.token)
	s.bytes -= e.size
}

// newToken is a random UUID (version 4), the form of Judge0's tokens.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
