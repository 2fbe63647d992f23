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
	r1, err := q.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := q.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := q.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitFor(t, func() bool { _, w := q.Stats(); return w == 1 })
	if _, err := q.Acquire(ctx); !errors.Is(err, ErrFull) {
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
	r, _ := q.Acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := q.Acquire(ctx); done <- err }()
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
