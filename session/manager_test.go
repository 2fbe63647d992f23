package session

import (
	"errors"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/limits"
)

func held(owner string, mem int64) *Session {
	return &Session{spec: Spec{Owner: owner, Limits: limits.Set{MemoryBytes: mem}}}
}

// The quotas, in the order they are checked: the owner's count, the
// daemon's count, the sum of memory limits.
func TestAdmit(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name    string
		o       Options
		have    []*Session
		owner   string
		mem     int64
		refused bool
	}{
		{"first", Options{}, nil, "a", 128 * mib, false},
		{"per user", Options{MaxPerUser: 2}, []*Session{held("a", mib), held("a", mib)}, "a", mib, true},
		{"another user", Options{MaxPerUser: 2}, []*Session{held("a", mib), held("a", mib)}, "b", mib, false},
		{"daemon count", Options{MaxSessions: 2}, []*Session{held("a", mib), held("b", mib)}, "c", mib, true},
		{"memory sum", Options{Memory: 300 * mib}, []*Session{held("a", 128*mib), held("b", 128*mib)}, "c", 128 * mib, true},
		{"memory fits", Options{Memory: 384 * mib}, []*Session{held("a", 128*mib), held("b", 128*mib)}, "c", 128 * mib, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := New(c.o)
			for i, s := range c.have {
				m.sessions[string(rune('0'+i))] = s
			}
			err := m.admit(c.owner, c.mem)
			var q *QuotaError
			if got := errors.As(err, &q); got != c.refused {
				t.Fatalf("refused %v (%v), want %v", got, err, c.refused)
			}
			if c.refused && (!errdefs.Is(err, errdefs.ErrExhausted) || q.RetryAfter <= 0) {
				t.Errorf("%v: want class exhausted with a Retry-After", err)
			}
		})
	}
}

// A session is due at its TTL, or after its idle timeout with no exec or
// files operation in flight; either keeps an idle session alive.
func TestDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name     string
		inflight int
		using    int
		at       time.Duration
		due      bool
		why      string
	}{
		{"fresh", 0, 0, time.Second, false, ""},
		{"idle", 0, 0, 5 * time.Second, true, "idle"},
		{"busy past idle", 1, 0, 5 * time.Second, false, ""},
		{"long upload past idle", 0, 1, 5 * time.Second, false, ""},
		{"ttl even when busy", 1, 1, time.Minute, true, "ttl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Session{spec: Spec{Idle: 5 * time.Second}, expires: t0.Add(time.Minute), lastActive: t0, inflight: c.inflight, using: c.using}
			due, why := s.due(t0.Add(c.at))
			if due != c.due || why != c.why {
				t.Errorf("due %v %q, want %v %q", due, why, c.due, c.why)
			}
		})
	}
}

// Past max_execs_per_sandbox an exec is refused with a Retry-After, and
// an ended session refuses as unknown.
func TestBeginExec(t *testing.T) {
	s := &Session{}
	now := time.Now()
	if err := s.beginExec(1, now); err != nil {
		t.Fatal(err)
	}
	var q *QuotaError
	if err := s.beginExec(1, now); !errors.As(err, &q) {
		t.Fatalf("second exec: %v, want a quota error", err)
	}
	s.endExec(now)
	s.ended = true
	if err := s.beginExec(1, now); !errors.Is(err, ErrUnknown) {
		t.Fatalf("after the end: %v, want ErrUnknown", err)
	}
}

// A files operation holds the session: idle time counts from its end, and
// an ended session refuses new ones.
func TestHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := &Session{spec: Spec{Idle: 5 * time.Second}, expires: t0.Add(time.Hour), lastActive: t0}
	if err := s.hold(t0); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.due(t0.Add(time.Minute)); due {
		t.Fatal("due during a files operation")
	}
	s.unhold(t0.Add(time.Minute))
	if due, _ := s.due(t0.Add(time.Minute + 4*time.Second)); due {
		t.Fatal("due 4 s after the operation ended, idle timeout 5 s")
	}
	if due, why := s.due(t0.Add(time.Minute + 5*time.Second)); !due || why != "idle" {
		t.Fatalf("5 s after: due %v %q, want idle", due, why)
	}
	s.ended = true
	if err := s.hold(t0); !errors.Is(err, ErrUnknown) {
		t.Fatalf("hold after the end: %v, want ErrUnknown", err)
	}
}
