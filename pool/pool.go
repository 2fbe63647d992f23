// Package pool keeps sandboxes built ahead of time, parked just before the
// user's program (namespaces, cgroup, mounts done; the seccomp filter goes
// on as the program starts), so that a request pays only for running its
// program. A reusable sandbox (runtime/reuse.go) comes back after its run
// (Done) and is parked again; any other is destroyed. The pool sizes itself
// from the request rate per image, within a count and a memory budget, and
// can be turned off.
package pool

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/runtime"
)

// Sandbox is what the pool parks: it only ever destroys the sandboxes it
// does not hand out, so that is all it needs of them. *runtime.Sandbox is
// one; the unit tests use fakes that need no root.
type Sandbox interface {
	Destroy() error
}

// Builder builds sandboxes; *runtime.Engine is one. On error Build
// returns no sandbox: the builder has cleaned up whatever it started.
type Builder[S Sandbox] interface {
	Build(ctx context.Context, opts runtime.BuildOptions) (S, error)
}

// The daemon's engine must stay usable as the pool's builder.
var _ Builder[*runtime.Sandbox] = (*runtime.Engine)(nil)

// Options configure a pool.
type Options struct {
	// MaxParked bounds parked sandboxes over all images; 0 turns the pool off.
	MaxParked int
	// MaxMemory bounds the host memory parked sandboxes may hold, counted
	// at ParkedCost each.
	MaxMemory int64
	// ParkedCost is the host memory one parked sandbox is counted at.
	ParkedCost int64
	// Limits are the build-time limits of parked sandboxes: the daemon's
	// maximums, so a request can only lower them (rlimits set at build
	// are hard limits the entry may lower but never raise).
	Limits runtime.Limits
	// Idle is how long an image may go without requests before its
	// parked sandboxes are destroyed.
	Idle   time.Duration
	Logger *slog.Logger

	// now is the clock of every sizing, eviction and idle decision
	// (time.Now unless a test sets it), so tests need not sleep.
	now func() time.Time
	// backoff is how long a refill waits after a failed build (a second
	// unless a test sets it).
	backoff time.Duration
}

// ParkedCost is what one parked sandbox costs the host, as measured by
// `make bench` on the development VM (kernel objects of its namespaces,
// cgroups and mounts, its entry process, the daemon's pipes and
// goroutines): rounded up, it is what the pool's memory budget counts.
const ParkedCost = 1 << 20

// initialBuildTime is the build time assumed for an image until its first
// build has been measured.
const initialBuildTime = 20 * time.Millisecond

// evictAfter is how long an image must have gone without requests before
// its parked sandboxes may be taken for another image. Shorter, and images
// in use at once with too small a budget would destroy each other's
// sandboxes unused, build after build.
const evictAfter = time.Second

type key struct {
	rootfs   string
	uid, gid int
}

// Pool implements the server's Sandboxes on top of a Builder.
type Pool[S Sandbox] struct {
	b    Builder[S]
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// manual leaves refilling to whoever calls step (the unit tests): no
	// refill goroutine is started.
	manual bool

	mu     sync.Mutex
	images map[key]*imagePool[S]
	parked int // over all images, building included
	closed bool
}

type imagePool[S Sandbox] struct {
	ready    []S // oldest first
	building int
	// rate is an exponentially weighted request rate (per second).
	rate     float64
	lastTake time.Time
	wake     chan struct{}
	// out counts the sandboxes handed out and not yet Done; reuses is
	// set once one came back to be parked again.
	out    int
	reuses bool
	// back is closed (and replaced) whenever a sandbox comes back.
	back chan struct{}
	// buildTime is a moving average of this image's build times. Only
	// the image's refill (one goroutine) reads and writes it.
	buildTime time.Duration
}

// New returns a pool over b. Close destroys what it holds.
func New[S Sandbox](b Builder[S], opts Options) *Pool[S] {
	ctx, cancel := context.WithCancel(context.Background())
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Idle <= 0 {
		opts.Idle = 5 * time.Minute
	}
	if opts.ParkedCost <= 0 {
		opts.ParkedCost = 1 << 20
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.backoff <= 0 {
		opts.backoff = time.Second
	}
	return &Pool[S]{b: b, opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, images: map[key]*imagePool[S]{}}
}

// Enabled reports whether the pool parks sandboxes at all.
func (p *Pool[S]) Enabled() bool { return p.opts.MaxParked > 0 }

// Parked returns the number of sandboxes ready to take.
func (p *Pool[S]) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ip := range p.images {
		n += len(ip.ready)
	}
	return n
}

// Build returns a parked sandbox of the same image and user when one is
// ready, and builds one otherwise. When none is ready but the image's
// sandboxes come back (reuse) and some are out in runs, it waits up to
// returnWait for one first: a run ends within milliseconds far more often
// than a build takes. The caller gives the sandbox back with Done; the
// request's limits are applied by Run.
func (p *Pool[S]) Build(ctx context.Context, opts runtime.BuildOptions) (S, error) {
	if !p.Enabled() {
		return p.b.Build(ctx, opts)
	}
	k := key{opts.Rootfs, opts.UID, opts.GID}
	p.mu.Lock()
	ip := p.imageLocked(k)
	now := p.opts.now()
	ip.rate = nextRate(ip.rate, ip.lastTake, now)
	ip.lastTake = now
	ip.out++
	deadline := time.NewTimer(returnWait)
	defer deadline.Stop()
	for {
		if n := len(ip.ready); n > 0 {
			// The oldest: a reused sandbox prepares its next run once it
			// is back (runtime/reuse.go), so the one parked longest is
			// the likeliest to have it ready.
			sb := ip.ready[0]
			ip.ready = ip.ready[1:]
			p.parked--
			p.mu.Unlock()
			p.signal(ip)
			return sb, nil
		}
		if !ip.reuses || ip.out <= 1 {
			break
		}
		back := ip.back
		p.mu.Unlock()
		select {
		case <-back:
			p.mu.Lock()
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		p.mu.Lock()
		break
	}
	p.mu.Unlock()
	p.signal(ip)
	// Built with the pool's limits, as a parked one: it may come back and
	// serve a request with higher limits than this one's (rlimits set at
	// build are hard limits, which a run can lower and never raise).
	opts.Limits = p.opts.Limits
	sb, err := p.b.Build(ctx, opts)
	if err != nil {
		p.mu.Lock()
		ip.out = max(ip.out-1, 0)
		p.mu.Unlock()
	}
	return sb, err
}

// returnWait is how long Build waits for a sandbox on its way back before
// it builds one: a few times a run's end and recycling, well under a build.
const returnWait = 5 * time.Millisecond

// Done takes back a sandbox Build handed out, once its run is over: it
// parks it again when reusable (runtime.Sandbox.Recycle made it ready for
// another run) and the budget allows, and destroys it otherwise. Building
// a sandbox costs far more than readying a used one, so once an image's
// sandboxes come back, the sandboxes out in runs count as on their way
// back (see planLocked), and the pool builds only what they do not cover.
func (p *Pool[S]) Done(opts runtime.BuildOptions, sb S, reusable bool) error {
	if p.Enabled() {
		p.mu.Lock()
		ip := p.imageLocked(key{opts.Rootfs, opts.UID, opts.GID})
		ip.out = max(ip.out-1, 0)
		ip.reuses = ip.reuses || reusable
		// An image whose sandbox comes back is in use, however long its
		// run took: a full budget gives up a quiet image's sandbox rather
		// than destroy this one, which the image's next request would
		// have to build again.
		park := reusable && !p.closed
		var victim S
		evicted := false
		if park && !p.budgetLocked() {
			now := p.opts.now()
			victim, evicted = p.evictLocked(ip, now, now)
		}
		park = park && p.budgetLocked()
		if park {
			ip.ready = append(ip.ready, sb)
			p.parked++
			close(ip.back) // wakes the Builds waiting for one
			ip.back = make(chan struct{})
		}
		p.mu.Unlock()
		if evicted { // the victim's error is not this run's, as in step
			_ = victim.Destroy()
		}
		if park {
			return nil
		}
		p.signal(ip)
	}
	return sb.Destroy()
}

// nextRate folds the request arriving at now into an image's request
// rate. The first request counts as one per second; requests closer than
// a millisecond count as a millisecond apart, so that the rate stays
// finite.
func nextRate(rate float64, last, now time.Time) float64 {
	if last.IsZero() {
		return 1
	}
	dt := max(now.Sub(last).Seconds(), 1e-3)
	return 0.8*rate + 0.2*(1/dt)
}

func (p *Pool[S]) imageLocked(k key) *imagePool[S] {
	ip, ok := p.images[k]
	if !ok {
		ip = &imagePool[S]{wake: make(chan struct{}, 1), buildTime: initialBuildTime, back: make(chan struct{})}
		p.images[k] = ip
		if !p.manual {
			p.wg.Add(1)
			go p.refill(k, ip)
		}
	}
	return ip
}

func (p *Pool[S]) signal(ip *imagePool[S]) {
	select {
	case ip.wake <- struct{}{}:
	default:
	}
}

// targetLocked is how many sandboxes of an image to keep ready at now:
// none once the image has been idle for longer than Options.Idle, so that
// an image nobody uses any more holds no memory.
func (p *Pool[S]) targetLocked(ip *imagePool[S], now time.Time) int {
	if now.Sub(ip.lastTake) > p.opts.Idle {
		return 0
	}
	return targetSize(ip.rate, ip.buildTime, p.opts.MaxParked)
}

// targetSize is enough sandboxes to cover the requests that arrive while
// one is being built, twice over: at least one (a request is likely to
// follow one), at most maxParked. Build times under 5 ms count as 5 ms so
// that a fast builder still keeps bursts covered.
func targetSize(rate float64, buildTime time.Duration, maxParked int) int {
	want := int(math.Ceil(rate * max(buildTime.Seconds(), 0.005) * 2))
	return min(max(want, 1), maxParked)
}

func (p *Pool[S]) budgetLocked() bool {
	return fits(p.parked, p.opts.MaxParked, p.opts.MaxMemory, p.opts.ParkedCost)
}

// fits reports whether one more sandbox may be parked (or built to be
// parked) beside the parked ones: both the count and the memory they are
// counted at must stay within bounds.
func fits(parked, maxParked int, maxMemory, cost int64) bool {
	return parked < maxParked && int64(parked+1)*cost <= maxMemory
}

// evictLocked frees a slot of the budget for ip, whose last use was at
// since (its last request; now for a sandbox just back from its run): it
// takes the oldest parked sandbox of the image used least recently, if
// that image has been quiet for evictAfter, so that images in use are not
// starved by idle ones holding the budget until Options.Idle. The victim
// must also have been used before ip: slots then move only toward the
// images used last, never back and forth. Without that, two quiet images
// took the slot from each other every evictAfter, a build each time, for
// as long as neither was idle (with more images than the budget, a daemon
// once spent most of a core on that). It returns the sandbox to destroy,
// and whether there is one.
func (p *Pool[S]) evictLocked(ip *imagePool[S], since, now time.Time) (S, bool) {
	var victim *imagePool[S]
	for _, other := range p.images {
		if other != ip && len(other.ready) > 0 && now.Sub(other.lastTake) >= evictAfter &&
			other.lastTake.Before(since) && (victim == nil || other.lastTake.Before(victim.lastTake)) {
			victim = other
		}
	}
	if victim == nil {
		var none S
		return none, false
	}
	sb := victim.ready[0] // the oldest
	victim.ready = victim.ready[1:]
	p.parked--
	return sb, true
}

// refill keeps one image's parked sandboxes at their target, and destroys
// them once the image has been idle for Options.Idle. It looks again after
// every build, on every request for the image, and every second (for the
// idle and eviction deadlines, which pass without a request).
func (p *Pool[S]) refill(k key, ip *imagePool[S]) {
	defer p.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		built, err := p.step(k, ip)
		if err != nil && !errors.Is(err, context.Canceled) {
			p.log.Warn("pool: building a sandbox", "rootfs", k.rootfs, "err", err)
			time.Sleep(p.opts.backoff) // don't spin on a broken image
		}
		if p.ctx.Err() != nil {
			return
		}
		if built || err != nil {
			continue
		}
		select {
		case <-p.ctx.Done():
			return
		case <-ip.wake:
		case <-tick.C:
		}
	}
}

// step brings one image one build closer to its target: it destroys what
// the image no longer needs (idle) or what another image gives up for it
// (eviction), then builds one sandbox if the target and budget allow. It
// reports whether it tried to build, and the build's error.
func (p *Pool[S]) step(k key, ip *imagePool[S]) (bool, error) {
	p.mu.Lock()
	build, destroy := p.planLocked(ip)
	p.mu.Unlock()
	for _, sb := range destroy {
		_ = sb.Destroy()
	}
	if !build {
		return false, nil
	}
	return true, p.buildOne(k, ip)
}

// planLocked decides one step of an image's refill. When it decides to
// build, it reserves the budget slot (building counts as parked) so that
// concurrent refills of other images cannot overcommit it.
func (p *Pool[S]) planLocked(ip *imagePool[S]) (build bool, destroy []S) {
	now := p.opts.now()
	target := p.targetLocked(ip, now)
	have := len(ip.ready) + ip.building
	if ip.reuses {
		have += ip.out
	}
	build = have < target && !p.closed
	if build && !p.budgetLocked() {
		if sb, ok := p.evictLocked(ip, ip.lastTake, now); ok {
			destroy = append(destroy, sb)
		}
	}
	build = build && p.budgetLocked()
	if build {
		ip.building++
		p.parked++
	}
	if target == 0 && len(ip.ready) > 0 {
		destroy = append(destroy, ip.ready...)
		p.parked -= len(ip.ready)
		ip.ready = nil
	}
	return build, destroy
}

// buildOne builds a sandbox for an image whose slot planLocked reserved,
// and parks it, or gives the slot back if the build failed or the pool
// closed meanwhile (then the sandbox is destroyed, not parked).
func (p *Pool[S]) buildOne(k key, ip *imagePool[S]) error {
	start := p.opts.now()
	sb, err := p.b.Build(p.ctx, runtime.BuildOptions{Rootfs: k.rootfs, UID: k.uid, GID: k.gid, Limits: p.opts.Limits})
	ip.buildTime = (ip.buildTime*3 + p.opts.now().Sub(start)) / 4
	p.mu.Lock()
	ip.building--
	if err == nil && !p.closed {
		ip.ready = append(ip.ready, sb)
		p.mu.Unlock()
		return nil
	}
	p.parked--
	p.mu.Unlock()
	if err == nil { // built as the pool closed: nobody will take it
		_ = sb.Destroy()
	}
	return err
}

// Drop destroys the parked sandboxes of an image (it is being removed).
func (p *Pool[S]) Drop(rootfs string) {
	p.mu.Lock()
	var drop []S
	for k, ip := range p.images {
		if k.rootfs == rootfs {
			drop = append(drop, ip.ready...)
			p.parked -= len(ip.ready)
			ip.ready = nil
			ip.lastTake = time.Time{}.Add(1) // idle from now on
		}
	}
	p.mu.Unlock()
	for _, sb := range drop {
		_ = sb.Destroy()
	}
}

// Close stops refilling and destroys every parked sandbox.
func (p *Pool[S]) Close() {
	p.mu.Lock()
	p.closed = true
	var all []S
	for _, ip := range p.images {
		all = append(all, ip.ready...)
		p.parked -= len(ip.ready) // kept exact, though nothing parks any more
		ip.ready = nil
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	for _, sb := range all {
		_ = sb.Destroy()
	}
}
