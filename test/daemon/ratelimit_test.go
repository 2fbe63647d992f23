package daemon_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Past a user's burst the daemon answers 429 rate_limited with
// Retry-After; another user is not affected. A user's concurrency cap
// refuses the next execution while the first runs.
func TestRateLimits(t *testing.T) {
	d := testdaemon.Start(t, append(jwtFlags(t), "--rate-limit", "0.2", "--rate-burst", "3", "--max-concurrent-per-user", "1")...)
	d.ImportDir("busybox", testRootfs)
	e := unixEndpoint(d.Socket)
	quick := `{"image":"busybox","cmd":["true"]}`

	// Concurrency: one execution in flight for root (uid:0), the next is
	// refused without using up the rate.
	done := make(chan rawResponse, 1)
	go func() { done <- e.call(t, "POST", "/v1/execute", "", `{"image":"busybox","cmd":["sleep","1"]}`) }()
	testdaemon.WaitUntil(t, "the first run to start", 10*time.Second, func() bool {
		h := e.call(t, "GET", "/v1/healthz", "", "")
		var hh api.Health
		_ = json.Unmarshal(h.body, &hh)
		return hh.Running == 1
	})
	r := e.call(t, "POST", "/v1/execute", "", quick)
	if r.status != http.StatusTooManyRequests || errorCode(t, r) != api.CodeRateLimited || r.header.Get("Retry-After") == "" {
		t.Fatalf("second concurrent run: %d %s (Retry-After %q), want 429 rate_limited", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := <-done; r.status != 200 {
		t.Fatalf("first run: %d %s", r.status, r.body)
	}
	// The burst: 3 in all (the sleep counted), so two more, then 429.
	for i := 0; i < 2; i++ {
		if r := e.call(t, "POST", "/v1/execute", "", quick); r.status != 200 {
			t.Fatalf("run %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r = e.call(t, "POST", "/v1/execute", "", quick)
	if r.status != http.StatusTooManyRequests || errorCode(t, r) != api.CodeRateLimited {
		t.Fatalf("after the burst: %d %s, want 429", r.status, r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 5 {
		t.Fatalf("Retry-After %q, want 1..5 seconds at 0.2/s", r.header.Get("Retry-After"))
	}
	// Another user (a token's subject) has a bucket of its own.
	if r := e.call(t, "POST", "/v1/execute", goodToken(t, "bob"), quick); r.status != 200 {
		t.Fatalf("bob: %d %s", r.status, r.body)
	}
	// Other endpoints are not rate-limited.
	if r := e.call(t, "GET", "/v1/images", "", ""); r.status != 200 {
		t.Fatalf("images: %d", r.status)
	}
}

// One user floods a one-slot daemon; another user's requests still get in
// (the full line makes room for them) and are served in turn, not behind
// the whole flood.
func TestFairnessBetweenUsers(t *testing.T) {
	d := testdaemon.Start(t, append(jwtFlags(t), "--concurrency", "1", "--queue-length", "8")...)
	d.ImportDir("busybox", testRootfs)
	e := unixEndpoint(d.Socket)
	alice, bob := goodToken(t, "alice"), goodToken(t, "bob")
	const flood = 16
	var wg sync.WaitGroup
	aliceOK := make(chan int, flood)
	for i := 0; i < flood; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.call(t, "POST", "/v1/execute", alice, `{"image":"busybox","cmd":["sleep","0.5"]}`)
			aliceOK <- r.status
		}()
	}
	queued := func() int {
		var h api.Health
		_ = json.Unmarshal(e.call(t, "GET", "/v1/healthz", "", "").body, &h)
		return h.Queued
	}
	testdaemon.WaitUntil(t, "alice's flood to fill the line", 10*time.Second, func() bool { return queued() == 8 })
	// With a FIFO line, bob's first request alone would wait for 8 runs
	// of alice's (4 s and more).
	for i := 0; i < 3; i++ {
		start := time.Now()
		r := e.call(t, "POST", "/v1/execute", bob, `{"image":"busybox","cmd":["true"]}`)
		took := time.Since(start)
		if r.status != 200 {
			t.Fatalf("bob's request %d: %d %s", i, r.status, r.body)
		}
		if took > 2500*time.Millisecond {
			t.Errorf("bob's request %d took %v behind alice's flood", i, took)
		}
	}
	if n := queued(); n == 0 {
		t.Errorf("alice's flood was over before bob finished: the test proved nothing")
	}
	wg.Wait()
	close(aliceOK)
	counts := map[int]int{}
	for s := range aliceOK {
		counts[s]++
	}
	if counts[200] < 8 || counts[200]+counts[503] != flood {
		t.Errorf("alice's answers: %v; want at least 8 runs and the rest 503 busy", counts)
	}
}
