package server

import (
	"errors"
	"testing"
	"time"
)

// Per-user admission: each user's concurrency cap and token bucket are
// its own, a refusal says when to retry, and releasing is idempotent.
func TestUserAdmission(t *testing.T) {
	cases := []struct {
		name   string
		limits UserLimits
		// steps: "a+" admits one of user a (expect ok), "a!" expects a
		// refusal, "a-" releases a's oldest admission.
		steps []string
	}{
		{"no limits", UserLimits{}, []string{"a+", "a+", "a+", "b+"}},
		{"concurrency cap per user", UserLimits{MaxConcurrent: 2}, []string{"a+", "a+", "a!", "b+", "b+", "b!", "a-", "a+", "a!"}},
		{"release twice frees one", UserLimits{MaxConcurrent: 1}, []string{"a+", "a-", "a-", "a+", "a!"}},
		{"rate burst per user", UserLimits{Rate: 0.001, Burst: 2}, []string{"a+", "a-", "a+", "a-", "a!", "b+", "b-", "b+", "b-", "b!"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newUsers(c.limits)
			held := map[string][]func(){}
			for i, step := range c.steps {
				user, op := step[:1], step[1:]
				switch op {
				case "+", "!":
					release, err := u.admit(user)
					if (err == nil) != (op == "+") {
						t.Fatalf("step %d (%s): err %v", i, step, err)
					}
					if err != nil {
						var limited *rateLimitedError
						if !errors.As(err, &limited) || limited.retryAfter <= 0 || classify(err).status != 429 {
							t.Fatalf("step %d: refusal %v is not a 429 with a retry time", i, err)
						}
						continue
					}
					held[user] = append(held[user], release)
				case "-":
					release := held[user][0]
					release()
					if len(held[user]) > 1 {
						held[user] = held[user][1:]
					}
				}
			}
		})
	}
}

// Users with nothing in flight and a full bucket are forgotten once the
// map grows: memory stays bounded whatever user names callers send.
func TestUserAdmissionForgetsIdleUsers(t *testing.T) {
	u := newUsers(UserLimits{Rate: 1000, Burst: 1})
	for i := 0; i < 3000; i++ {
		release, err := u.admit(time.Duration(i).String())
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	time.Sleep(5 * time.Millisecond) // the buckets refill at 1000/s
	if _, err := u.admit("last"); err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	n := len(u.m)
	u.mu.Unlock()
	if n > 1100 {
		t.Fatalf("%d users remembered after a sweep", n)
	}
}
