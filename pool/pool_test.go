package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/runtime"
)

// The unit tests run as any user: a fake builder stands for the engine, a
// fake clock for time. Most drive the refill step by step (manual pools);
// the ones about Close and the refill loop run the real goroutines.

const uid, gid = 1000, 1000

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1e9, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeSandbox struct {
	n      int // 1 for the first build, 2 for the second...
	rootfs string
	mu     sync.Mutex
	dead   int // Destroy calls
}

func (s *fakeSandbox) Destroy() error {
	s.mu.Lock()
	s.dead++
	s.mu.Unlock()
	return nil
}

func (s *fakeSandbox) destroyed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead
}

type fakeBuilder struct {
	clock *clock
	took  time.Duration // advanced on the clock by each build

	mu    sync.Mutex
	err   error // every build fails with it when set
	built []*fakeSandbox
	calls int
	// With blockRefill, the pool's own builds (not a request's) signal
	// started and wait for release, or for their context if honorCtx.
	blockRefill bool
	honorCtx    bool
	started     chan struct{}
	release     chan struct{}
}

func (b *fakeBuilder) Build(ctx context.Context, opts runtime.BuildOptions) (*fakeSandbox, error) {
	b.mu.Lock()
	b.calls++
	n, err := b.calls, b.err
	b.mu.Unlock()
	if b.blockRefill && ctx.Value(requestKey{}) == nil {
		b.started <- struct{}{}
		select {
		case <-b.release:
		case <-ctxDone(ctx, b.honorCtx):
			return nil, ctx.Err()
		}
	}
	if b.clock != nil {
		b.clock.Advance(b.took)
	}
	if err != nil {
		return nil, err
	}
	sb := &fakeSandbox{n: n, rootfs: opts.Rootfs}
	b.mu.Lock()
	b.built = append(b.built, sb)
	b.mu.Unlock()
	return sb, nil
}

// ctxDone is ctx.Done() when a blocked build honours its context, and a
// channel that never closes otherwise.
func ctxDone(ctx context.Context, honor bool) <-chan struct{} {
	if honor {
		return ctx.Done()
	}
	return nil
}

// requestKey marks the context of the builds asked for by a request, as
// opposed to the refill's: the two run concurrently, in either order.
type requestKey struct{}

func (b *fakeBuilder) builds() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

func (b *fakeBuilder) setErr(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

// newPool returns a pool over b on a fake clock, closed at the end of the
// test. A manual pool starts no refill goroutine: the test calls step.
func newPool(t *testing.T, b *fakeBuilder, opts Options, manual bool) (*Pool[*fakeSandbox], *clock) {
	t.Helper()
	c := newClock()
	b.clock = c
	opts.now = c.Now
	if opts.MaxMemory == 0 {
		opts.MaxMemory = 1 << 40
	}
	p := New[*fakeSandbox](b, opts)
	p.manual = manual
	t.Cleanup(p.Close)
	return p, c
}

func take(t *testing.T, p *Pool[*fakeSandbox], rootfs string) *fakeSandbox {
	t.Helper()
	return takeAs(t, p, rootfs, uid)
}

func takeAs(t *testing.T, p *Pool[*fakeSandbox], rootfs string, user int) *fakeSandbox {
	t.Helper()
	ctx := context.WithValue(context.Background(), requestKey{}, true)
	sb, err := p.Build(ctx, runtime.BuildOptions{Rootfs: rootfs, UID: user, GID: gid})
	if err != nil {
		t.Fatalf("Build(%s): %v", rootfs, err)
	}
	return sb
}

func image(p *Pool[*fakeSandbox], rootfs string) (key, *imagePool[*fakeSandbox]) {
	k := key{rootfs, uid, gid}
	p.mu.Lock()
	defer p.mu.Unlock()
	return k, p.images[k]
}

// settle steps an image's refill until it has nothing left to build.
func settle(t *testing.T, p *Pool[*fakeSandbox], rootfs string) {
	t.Helper()
	settleKey(t, p, key{rootfs, uid, gid})
}

func settleKey(t *testing.T, p *Pool[*fakeSandbox], k key) {
	t.Helper()
	p.mu.Lock()
	ip := p.images[k]
	p.mu.Unlock()
	if ip == nil {
		t.Fatalf("no image pool for %v", k)
	}
	for range 1000 {
		if built, err := p.step(k, ip); err != nil {
			t.Fatalf("step(%v): %v", k, err)
		} else if !built {
			return
		}
	}
	t.Fatalf("the refill of %v never settles", k)
}

func setRate(p *Pool[*fakeSandbox], rootfs string, rate float64) {
	_, ip := image(p, rootfs)
	p.mu.Lock()
	ip.rate = rate
	p.mu.Unlock()
}

func readyOf(p *Pool[*fakeSandbox], rootfs string) []*fakeSandbox {
	_, ip := image(p, rootfs)
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*fakeSandbox(nil), ip.ready...)
}

// counts returns the budget's count (building included) and the parked
// sandboxes ready to take.
func counts(p *Pool[*fakeSandbox]) (budget, ready int) {
	p.mu.Lock()
	budget = p.parked
	p.mu.Unlock()
	return budget, p.Parked()
}

func wantCounts(t *testing.T, p *Pool[*fakeSandbox], budget, ready int) {
	t.Helper()
	if b, r := counts(p); b != budget || r != ready {
		t.Fatalf("budget count %d, ready %d; want %d, %d", b, r, budget, ready)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTargetSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rate      float64
		buildTime time.Duration
		maxParked int
		want      int
	}{
		{"rate x build time x 2", 10, 250 * time.Millisecond, 100, 5},
		{"rounded up", 10.1, 250 * time.Millisecond, 100, 6},
		{"at least one", 1, 20 * time.Millisecond, 8, 1},
		{"at least one at no rate", 0, time.Second, 8, 1},
		{"at most MaxParked", 10, time.Second, 8, 8},
		{"at most MaxParked of one", 100, time.Second, 1, 1},
		{"build time counted at 5 ms at least", 400, 0, 100, 4},
		{"build time over 5 ms counted as is", 400, 10 * time.Millisecond, 100, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := targetSize(tc.rate, tc.buildTime, tc.maxParked); got != tc.want {
				t.Errorf("targetSize(%v, %v, %d) = %d, want %d", tc.rate, tc.buildTime, tc.maxParked, got, tc.want)
			}
		})
	}
}

// Idle for longer than Options.Idle, an image's target drops to 0.
func TestTargetIdle(t *testing.T) {
	const idle = time.Minute
	for _, tc := range []struct {
		since time.Duration
		want  int
	}{
		{0, 5},
		{idle / 2, 5},
		{idle, 5},
		{idle + time.Nanosecond, 0},
		{time.Hour, 0},
	} {
		p, c := newPool(t, &fakeBuilder{}, Options{MaxParked: 100, Idle: idle}, true)
		ip := &imagePool[*fakeSandbox]{rate: 10, buildTime: 250 * time.Millisecond, lastTake: c.Now()}
		p.mu.Lock()
		got := p.targetLocked(ip, c.Now().Add(tc.since))
		p.mu.Unlock()
		if got != tc.want {
			t.Errorf("target %v after the last request = %d, want %d", tc.since, got, tc.want)
		}
	}
}

func TestNextRate(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	for _, tc := range []struct {
		name      string
		rate      float64
		last, now time.Time
		want      float64
	}{
		{"first request", 0, time.Time{}, t0, 1},
		{"100 ms apart", 1, t0, t0.Add(100 * time.Millisecond), 0.8 + 0.2*10},
		{"1 s apart", 5, t0, t0.Add(time.Second), 4 + 0.2},
		{"at once counts as 1 ms apart", 0, t0, t0, 200},
	} {
		if got := nextRate(tc.rate, tc.last, tc.now); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("%s: nextRate = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFits(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		parked, maxParked int
		maxMemory         int64
		want              bool
	}{
		{0, 1, mib, true},
		{1, 1, 10 * mib, false},  // count full
		{3, 8, 4 * mib, true},    // the 4th MiB fits exactly
		{4, 8, 4 * mib, false},   // memory full
		{3, 8, 4*mib - 1, false}, // memory one byte short
		{0, 8, 0, false},         // no memory: nothing parked
		{0, 0, 10 * mib, false},  // no count: nothing parked
	} {
		if got := fits(tc.parked, tc.maxParked, tc.maxMemory, mib); got != tc.want {
			t.Errorf("fits(%d parked, max %d, %d bytes) = %v, want %v", tc.parked, tc.maxParked, tc.maxMemory, got, tc.want)
		}
	}
}

// Both MaxParked and MaxMemory/ParkedCost bound how many sandboxes an
// image in heavy use gets.
func TestBudgetBoundsParked(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name      string
		maxParked int
		maxMemory int64
		want      int
	}{
		{"count", 4, 100 * mib, 4},
		{"memory", 8, 3 * mib, 3},
		{"memory rounded down", 8, 3*mib + mib/2, 3},
		{"both equal", 2, 2 * mib, 2},
		{"memory for none", 8, mib - 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBuilder{}
			p, _ := newPool(t, b, Options{MaxParked: tc.maxParked, MaxMemory: tc.maxMemory, ParkedCost: mib}, true)
			take(t, p, "a")
			setRate(p, "a", 1000) // wants 40 at 20 ms a build
			settle(t, p, "a")
			wantCounts(t, p, tc.want, tc.want)
			if got := b.builds(); got != 1+tc.want {
				t.Errorf("%d builds, want %d (the request's and %d parked)", got, 1+tc.want, tc.want)
			}
		})
	}
}

// The request rate measured by Build sizes the image's share: two
// requests 1 ms apart make the rate 200.8/s, which at 20 ms a build wants
// ceil(200.8 × 0.02 × 2) = 9 parked.
func TestRateSizesThePool(t *testing.T) {
	b := &fakeBuilder{}
	p, c := newPool(t, b, Options{MaxParked: 16}, true)
	take(t, p, "a")
	c.Advance(time.Millisecond)
	take(t, p, "a")
	b.took = initialBuildTime // the estimate stays at 20 ms
	settle(t, p, "a")
	wantCounts(t, p, 9, 9)
	if got := b.builds(); got != 2+9 {
		t.Errorf("%d builds, want 11", got)
	}
}

// A build's duration, measured on the pool's clock, moves the image's
// build time estimate a quarter of the way.
func TestBuildTimeEstimate(t *testing.T) {
	b := &fakeBuilder{took: 100 * time.Millisecond}
	p, _ := newPool(t, b, Options{MaxParked: 1}, true)
	take(t, p, "a")
	settle(t, p, "a")
	_, ip := image(p, "a")
	if want := (3*initialBuildTime + 100*time.Millisecond) / 4; ip.buildTime != want {
		t.Errorf("build time estimate %v after one 100 ms build, want %v", ip.buildTime, want)
	}
}

// An image quiet for evictAfter gives up its parked sandbox to an image
// that needs one when the budget is full; an image used more recently
// keeps it, and the image in need builds nothing.
func TestEviction(t *testing.T) {
	for _, tc := range []struct {
		quiet   time.Duration
		evicted bool
	}{
		{0, false},
		{evictAfter - time.Millisecond, false},
		{evictAfter, true},
		{time.Minute, true},
	} {
		b := &fakeBuilder{}
		p, c := newPool(t, b, Options{MaxParked: 1}, true)
		take(t, p, "a")
		settle(t, p, "a")
		parkedA := readyOf(p, "a")[0]
		c.Advance(tc.quiet)
		take(t, p, "b") // built on request: nothing parked for b
		settle(t, p, "b")
		wantCounts(t, p, 1, 1)
		gotA, gotB := len(readyOf(p, "a")), len(readyOf(p, "b"))
		if tc.evicted && (parkedA.destroyed() != 1 || gotA != 0 || gotB != 1 || b.builds() != 4) {
			t.Errorf("a quiet for %v: a's sandbox destroyed %d times, a parks %d, b parks %d, %d builds; want 1, 0, 1, 4",
				tc.quiet, parkedA.destroyed(), gotA, gotB, b.builds())
		}
		if !tc.evicted && (parkedA.destroyed() != 0 || gotA != 1 || gotB != 0 || b.builds() != 3) {
			t.Errorf("a quiet for %v: a's sandbox destroyed %d times, a parks %d, b parks %d, %d builds; want 0, 1, 0, 3",
				tc.quiet, parkedA.destroyed(), gotA, gotB, b.builds())
		}
	}
}

// The victim gives up its oldest parked sandbox, and keeps the others.
func TestEvictionTakesTheOldest(t *testing.T) {
	b := &fakeBuilder{}
	p, c := newPool(t, b, Options{MaxParked: 3}, true)
	take(t, p, "a")
	setRate(p, "a", 1000)
	settle(t, p, "a")
	a := readyOf(p, "a") // built 2, 3, 4
	if len(a) != 3 || a[0].n != 2 {
		t.Fatalf("a parks %d, the first built #%d; want 3, #2", len(a), a[0].n)
	}
	c.Advance(evictAfter)
	take(t, p, "b")
	settle(t, p, "b")
	left := readyOf(p, "a")
	if a[0].destroyed() != 1 || len(left) != 2 || left[0] != a[1] || left[1] != a[2] {
		t.Errorf("after eviction a parks %d (oldest destroyed %d times), want #3, #4 left and #2 destroyed once", len(left), a[0].destroyed())
	}
	wantCounts(t, p, 3, 3)
}

// Of two quiet images, the one used least recently gives up its sandbox.
func TestEvictionChoosesTheLeastRecentlyUsed(t *testing.T) {
	for _, order := range [][2]string{{"a", "c"}, {"c", "a"}} {
		b := &fakeBuilder{}
		p, c := newPool(t, b, Options{MaxParked: 2}, true)
		for _, img := range order {
			take(t, p, img)
			settle(t, p, img)
			c.Advance(time.Second)
		}
		older, newer := readyOf(p, order[0])[0], readyOf(p, order[1])[0]
		c.Advance(evictAfter)
		take(t, p, "b")
		settle(t, p, "b")
		if older.destroyed() != 1 || newer.destroyed() != 0 || len(readyOf(p, "b")) != 1 {
			t.Errorf("%s used before %s: destroyed %d and %d times, b parks %d; want 1, 0, 1",
				order[0], order[1], older.destroyed(), newer.destroyed(), len(readyOf(p, "b")))
		}
		wantCounts(t, p, 2, 2)
	}
}

// An image never takes the slot of one used after it, so quiet images do
// not take the budget from each other: with more of them than the budget,
// each would evict another every evictAfter and build, for as long as
// Options.Idle (a daemon of the language suite spent most of a core on it).
func TestQuietImagesDoNotEvictEachOther(t *testing.T) {
	b := &fakeBuilder{}
	p, c := newPool(t, b, Options{MaxParked: 1}, true)
	for _, img := range []string{"a", "b"} {
		sb := take(t, p, img) // a run that ends at once
		if err := p.Done(runtime.BuildOptions{Rootfs: img, UID: uid, GID: gid}, sb, false); err != nil {
			t.Fatal(err)
		}
		settle(t, p, img)
		c.Advance(evictAfter)
	}
	// b, used after a, took a's slot. Both are quiet from here on.
	if len(readyOf(p, "a")) != 0 || len(readyOf(p, "b")) != 1 {
		t.Fatalf("a parks %d, b parks %d; want 0, 1", len(readyOf(p, "a")), len(readyOf(p, "b")))
	}
	builds := b.builds()
	for range 10 {
		c.Advance(evictAfter)
		settle(t, p, "a")
		settle(t, p, "b")
	}
	if n := b.builds() - builds; n != 0 {
		t.Errorf("%d builds among quiet images, want none (a parks %d, b parks %d)", n, len(readyOf(p, "a")), len(readyOf(p, "b")))
	}
	wantCounts(t, p, 1, 1)
}

// A reusable sandbox that comes back to a full budget takes the slot of a
// quiet image, however long its run took, rather than be destroyed and
// built again for its image's next request.
func TestDoneEvictsAQuietImage(t *testing.T) {
	for _, tc := range []struct {
		name              string
		quiet             time.Duration // of the other image, when the run ends
		wantBackDestroyed bool
	}{
		{"other image in use", evictAfter / 2, true},
		{"other image quiet", evictAfter, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBuilder{}
			p, c := newPool(t, b, Options{MaxParked: 1}, true)
			take(t, p, "other")
			settle(t, p, "other")
			parked := readyOf(p, "other")[0]
			c.Advance(evictAfter)
			sb := take(t, p, "a") // built on request: the budget is full
			c.Advance(tc.quiet)   // a's run takes this long; other stays quiet
			if tc.quiet < evictAfter {
				take(t, p, "other") // and is in use: it takes its parked one back
				_ = p.Done(runtime.BuildOptions{Rootfs: "other", UID: uid, GID: gid}, parked, true)
			}
			if err := p.Done(runtime.BuildOptions{Rootfs: "a", UID: uid, GID: gid}, sb, true); err != nil {
				t.Fatal(err)
			}
			if got := sb.destroyed() == 1; got != tc.wantBackDestroyed {
				t.Errorf("a's sandbox destroyed %d times, other's %d; want a's destroyed: %v",
					sb.destroyed(), parked.destroyed(), tc.wantBackDestroyed)
			}
			if !tc.wantBackDestroyed && (parked.destroyed() != 1 || len(readyOf(p, "a")) != 1) {
				t.Errorf("other's sandbox destroyed %d times, a parks %d; want 1, 1", parked.destroyed(), len(readyOf(p, "a")))
			}
			wantCounts(t, p, 1, 1)
		})
	}
}

// Build takes a parked sandbox of the same image and user when there is
// one, and has one built otherwise.
func TestBuildTakesParked(t *testing.T) {
	b := &fakeBuilder{}
	p, c := newPool(t, b, Options{MaxParked: 4}, true)
	if sb := take(t, p, "a"); sb.n != 1 || b.builds() != 1 {
		t.Fatalf("first request got build #%d after %d builds, want #1 after 1", sb.n, b.builds())
	}
	settle(t, p, "a")
	wantCounts(t, p, 1, 1)
	c.Advance(time.Minute) // a low rate: the target stays at 1
	if sb := take(t, p, "a"); sb.n != 2 || b.builds() != 2 {
		t.Fatalf("second request got build #%d after %d builds, want the parked #2 and no build", sb.n, b.builds())
	}
	wantCounts(t, p, 0, 0)
	settle(t, p, "a")
	wantCounts(t, p, 1, 1)
	// Another user of the same image does not get it.
	if sb := takeAs(t, p, "a", uid+1); sb.n != 4 || b.builds() != 4 {
		t.Fatalf("another user got build #%d after %d builds, want a new #4", sb.n, b.builds())
	}
	wantCounts(t, p, 1, 1)
}

// With MaxParked 0 every request builds, and nothing is parked or refilled.
func TestPoolOff(t *testing.T) {
	b := &fakeBuilder{}
	p, _ := newPool(t, b, Options{MaxParked: 0}, false)
	if p.Enabled() {
		t.Fatal("a pool of 0 is enabled")
	}
	for i := 1; i <= 3; i++ {
		if sb := take(t, p, "a"); sb.n != i {
			t.Fatalf("request %d got build #%d", i, sb.n)
		}
	}
	p.mu.Lock()
	images := len(p.images)
	p.mu.Unlock()
	if images != 0 || b.builds() != 3 {
		t.Errorf("%d image pools and %d builds after 3 requests, want 0 and 3", images, b.builds())
	}
	wantCounts(t, p, 0, 0)
}

// Drop destroys the parked sandboxes of one image, for every user, and
// the image is not refilled; other images keep theirs.
func TestDrop(t *testing.T) {
	b := &fakeBuilder{}
	p, _ := newPool(t, b, Options{MaxParked: 4}, true)
	take(t, p, "a")
	settle(t, p, "a")
	takeAs(t, p, "a", uid+1)
	otherUser := key{"a", uid + 1, gid}
	settleKey(t, p, otherUser)
	take(t, p, "b")
	settle(t, p, "b")
	wantCounts(t, p, 3, 3)
	p.mu.Lock()
	a2 := p.images[otherUser].ready[0]
	p.mu.Unlock()
	a, bb := readyOf(p, "a")[0], readyOf(p, "b")[0]
	builds := b.builds()

	p.Drop("a")
	if a.destroyed() != 1 || a2.destroyed() != 1 || bb.destroyed() != 0 {
		t.Errorf("after Drop(a): a's destroyed %d and %d times, b's %d; want 1, 1, 0", a.destroyed(), a2.destroyed(), bb.destroyed())
	}
	wantCounts(t, p, 1, 1)
	settle(t, p, "a")
	if b.builds() != builds {
		t.Errorf("a dropped image was refilled: %d builds, want %d", b.builds(), builds)
	}
}

// Idle for longer than Options.Idle, an image's parked sandboxes are
// destroyed and not replaced.
func TestIdleDestroys(t *testing.T) {
	b := &fakeBuilder{}
	p, c := newPool(t, b, Options{MaxParked: 4, Idle: time.Minute}, true)
	take(t, p, "a")
	settle(t, p, "a")
	sb := readyOf(p, "a")[0]
	c.Advance(time.Minute)
	settle(t, p, "a")
	if sb.destroyed() != 0 {
		t.Fatal("destroyed at exactly Options.Idle")
	}
	c.Advance(time.Nanosecond)
	settle(t, p, "a")
	if sb.destroyed() != 1 || b.builds() != 2 {
		t.Errorf("idle: destroyed %d times after %d builds, want 1 after 2", sb.destroyed(), b.builds())
	}
	wantCounts(t, p, 0, 0)
}

// Close destroys every parked sandbox and the refill goroutines stop:
// nothing is built for the pool after it.
func TestClose(t *testing.T) {
	b := &fakeBuilder{}
	p, _ := newPool(t, b, Options{MaxParked: 4}, false)
	take(t, p, "a")
	take(t, p, "b")
	waitFor(t, "a and b to park one each", func() bool { return p.Parked() == 2 })
	parked := append(readyOf(p, "a"), readyOf(p, "b")...)
	builds := b.builds()
	if builds != 4 {
		t.Fatalf("%d builds, want 4", builds)
	}
	p.Close()
	for _, sb := range parked {
		if sb.destroyed() != 1 {
			t.Errorf("parked #%d destroyed %d times by Close, want 1", sb.n, sb.destroyed())
		}
	}
	if p.Parked() != 0 {
		t.Errorf("%d parked after Close", p.Parked())
	}
	// A request after Close is served (built on request) but starts no
	// refill: its goroutine returns without building.
	take(t, p, "c")
	p.wg.Wait()
	if b.builds() != builds+1 || p.Parked() != 0 {
		t.Errorf("%d builds and %d parked after Close and one request, want %d and 0", b.builds(), p.Parked(), builds+1)
	}
	// Driven by hand, a closed pool's refill does not build either.
	settle(t, p, "c")
	if b.builds() != builds+1 {
		t.Errorf("a step after Close built")
	}
}

// A build under way when the pool closes is not parked: its sandbox is
// destroyed when the builder hands it over anyway, and its budget slot is
// given back either way.
func TestCloseDuringBuild(t *testing.T) {
	for _, honorCtx := range []bool{false, true} {
		b := &fakeBuilder{blockRefill: true, honorCtx: honorCtx, started: make(chan struct{}, 1), release: make(chan struct{})}
		p, _ := newPool(t, b, Options{MaxParked: 4}, false)
		take(t, p, "a")
		<-b.started // the refill's build, blocked
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		waitFor(t, "Close to start", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.closed
		})
		if !honorCtx {
			close(b.release)
		}
		<-closed
		b.mu.Lock()
		built := append([]*fakeSandbox(nil), b.built...)
		b.mu.Unlock()
		wantBuilt := 2
		if honorCtx {
			wantBuilt = 1 // the cancelled build returned nothing
		}
		if len(built) != wantBuilt || b.builds() != 2 {
			t.Fatalf("honorCtx %v: %d builds, %d sandboxes; want 2, %d", honorCtx, b.builds(), len(built), wantBuilt)
		}
		if built[0].destroyed() != 0 {
			t.Errorf("Close destroyed the request's sandbox, which the caller owns")
		}
		if !honorCtx && built[1].destroyed() != 1 {
			t.Errorf("the sandbox built as the pool closed was destroyed %d times, want 1", built[1].destroyed())
		}
		wantCounts(t, p, 0, 0)
	}
}

// Failed builds give their budget slot back: after any number of them,
// a pool of one still parks one when the builder recovers.
func TestFailingBuilderKeepsTheBudget(t *testing.T) {
	broken := errors.New("broken image")
	b := &fakeBuilder{err: broken}
	p, _ := newPool(t, b, Options{MaxParked: 1}, true)
	if _, err := p.Build(context.Background(), runtime.BuildOptions{Rootfs: "a", UID: uid, GID: gid}); !errors.Is(err, broken) {
		t.Fatalf("Build with a broken builder: %v", err)
	}
	k, ip := image(p, "a")
	for i := range 3 {
		if built, err := p.step(k, ip); !built || !errors.Is(err, broken) {
			t.Fatalf("step %d: built %v, %v; want a failed build", i, built, err)
		}
		wantCounts(t, p, 0, 0)
		p.mu.Lock()
		building := ip.building
		p.mu.Unlock()
		if building != 0 {
			t.Fatalf("step %d: %d builds counted under way", i, building)
		}
	}
	b.setErr(nil)
	settle(t, p, "a")
	wantCounts(t, p, 1, 1)
	if b.builds() != 1+3+1 {
		t.Errorf("%d builds, want 5", b.builds())
	}
}

// The refill goroutine retries a failing image after its backoff, and
// Close still returns with nothing counted.
func TestFailingBuilderRefillLoop(t *testing.T) {
	b := &fakeBuilder{err: errors.New("broken image")}
	p, _ := newPool(t, b, Options{MaxParked: 2, backoff: time.Millisecond}, false)
	if _, err := p.Build(context.Background(), runtime.BuildOptions{Rootfs: "a", UID: uid, GID: gid}); err == nil {
		t.Fatal("Build with a broken builder succeeded")
	}
	waitFor(t, "the refill to retry", func() bool { return b.builds() >= 4 })
	b.setErr(nil)
	waitFor(t, "the refill to park one", func() bool { return p.Parked() == 1 })
	p.Close()
	wantCounts(t, p, 0, 0)
}

// Done parks a reusable sandbox again, within the budget, and destroys
// the rest; once sandboxes come back, those out in runs count as on their
// way back, so the refill does not build for them.
func TestDoneParksReusable(t *testing.T) {
	opts := func(rootfs string) runtime.BuildOptions {
		return runtime.BuildOptions{Rootfs: rootfs, UID: uid, GID: gid}
	}
	for _, tc := range []struct {
		name      string
		maxParked int
		reusable  bool
		// ready and destroyed after the take, the refill and Done.
		wantReady, wantDestroyed int
	}{
		{"reusable, room in the budget", 4, true, 2, 0},
		{"reusable, budget full", 1, true, 1, 1},
		{"not reusable", 4, false, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBuilder{}
			p, _ := newPool(t, b, Options{MaxParked: tc.maxParked}, true)
			sb := take(t, p, "a")
			settle(t, p, "a") // the refill builds the one it wants ready
			if err := p.Done(opts("a"), sb, tc.reusable); err != nil {
				t.Fatal(err)
			}
			if _, r := counts(p); r != tc.wantReady || sb.destroyed() != tc.wantDestroyed {
				t.Errorf("ready %d, destroyed %d; want %d, %d", r, sb.destroyed(), tc.wantReady, tc.wantDestroyed)
			}
		})
	}
	t.Run("out in runs counts as on its way back", func(t *testing.T) {
		b := &fakeBuilder{}
		p, c := newPool(t, b, Options{MaxParked: 4}, true)
		first := take(t, p, "a")
		settle(t, p, "a")
		if err := p.Done(opts("a"), first, true); err != nil {
			t.Fatal(err)
		}
		builds := b.builds()
		for range 2 {
			c.Advance(time.Minute) // a low rate: the target stays at 1
			sb := take(t, p, "a")  // the oldest parked
			settle(t, p, "a")
			if err := p.Done(opts("a"), sb, true); err != nil {
				t.Fatal(err)
			}
		}
		if b.builds() != builds {
			t.Errorf("%d builds while the sandboxes came back, want none", b.builds()-builds)
		}
	})
}

// A Build that finds none ready while a reusable sandbox is out takes that
// one when it comes back, instead of building.
func TestBuildWaitsForOneComingBack(t *testing.T) {
	b := &fakeBuilder{}
	p, _ := newPool(t, b, Options{MaxParked: 1}, true)
	opts := runtime.BuildOptions{Rootfs: "a", UID: uid, GID: gid}
	first := take(t, p, "a")
	if err := p.Done(opts, first, true); err != nil { // now known to come back
		t.Fatal(err)
	}
	out := take(t, p, "a")
	builds := b.builds()
	got := make(chan *fakeSandbox, 1)
	go func() { got <- take(t, p, "a") }()
	waitFor(t, "the second request to wait", func() bool {
		_, ip := image(p, "a")
		p.mu.Lock()
		defer p.mu.Unlock()
		return ip.out == 2
	})
	if err := p.Done(opts, out, true); err != nil {
		t.Fatal(err)
	}
	if sb := <-got; sb != out || b.builds() != builds {
		t.Errorf("the waiting request got build #%d after %d more builds, want the one that came back", sb.n, b.builds()-builds)
	}
}
