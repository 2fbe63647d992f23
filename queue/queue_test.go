package queue

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAdmission(t *testing.T) {
	q := New(2, 1)
	ctx := context.Background()
	r1, err := q.Acquire(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := q.Acquire(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := q.Acquire(ctx, "")
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitFor(t, func() bool { _, w := q.Stats(); return w == 1 })
	if _, err := q.Acquire(ctx, ""); !errors.Is(err, ErrFull) {
		t.Fatalf("fourth acquire: %v, want ErrFull", err)
	}
	r1()
	r1() // a second release is a no-op
	r3 := <-got
	if run, wait := q.Stats(); run != 2 || wait != 0 {
		t.Fatalf("running %d waiting %d, want 2 0", run, wait)
	}
	r2()
	r3()
	if run, _ := q.Stats(); run != 0 {
		t.Fatalf("running %d after all releases", run)
	}
}

func TestCanceledWaiterLeavesTheLine(t *testing.T) {
	q := New(1, 1)
	r, _ := q.Acquire(context.Background(), "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := q.Acquire(ctx, ""); done <- err }()
	waitFor(t, func() bool { _, w := q.Stats(); return w == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	r()
	if run, wait := q.Stats(); run != 0 || wait != 0 {
		t.Fatalf("running %d waiting %d", run, wait)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not reached")
}

// A freed slot goes to the users in turn: B's one waiter is served right
// after the running job, ahead of A's earlier waiters.
func TestRoundRobinAcrossUsers(t *testing.T) {
	q := New(1, 10)
	a := "a"
	b := "b"
	first, _ := q.Acquire(context.Background(), a)
	order := make(chan string, 10)
	start := func(key, name string) {
		go func() {
			r, err := q.Acquire(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			order <- name
			r()
		}()
	}
	for i := 0; i < 4; i++ {
		start(a, "a")
		waitFor(t, func() bool { _, w := q.Stats(); return w == i+1 })
	}
	start(b, "b")
	waitFor(t, func() bool { _, w := q.Stats(); return w == 5 })
	first()
	got := ""
	for i := 0; i < 5; i++ {
		got += <-order
	}
	if got != "abaaa" {
		t.Fatalf("served %q, want abaaa", got)
	}
}

// A full line still takes a user with fewer waiters: the flooding user's
// newest waiter leaves with ErrFull.
func TestFullLineEvictsTheLargestUser(t *testing.T) {
	q := New(1, 3)
	a := "a"
	b := "b"
	r, _ := q.Acquire(context.Background(), a)
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			rel, err := q.Acquire(context.Background(), a)
			if err == nil {
				rel()
			}
			errs <- err
		}()
		waitFor(t, func() bool { _, w := q.Stats(); return w == i+1 })
	}
	if _, err := q.Acquire(context.Background(), a); !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth waiter of a: %v, want ErrFull", err)
	}
	bDone := make(chan error, 1)
	go func() {
		rel, err := q.Acquire(context.Background(), b)
		if err == nil {
			rel()
		}
		bDone <- err
	}()
	if err := <-errs; !errors.Is(err, ErrFull) {
		t.Fatalf("evicted waiter: %v, want ErrFull", err)
	}
	if _, w := q.Stats(); w != 3 {
		t.Fatalf("waiting %d, want 3", w)
	}
	r()
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if run, w := q.Stats(); run != 0 || w != 0 {
		t.Fatalf("running %d waiting %d", run, w)
	}
}
