// Package pool keeps sandboxes built ahead of time, parked just before the
// user's program (namespaces, cgroup, mounts done; the seccomp filter goes
// on as the program starts), so that a request pays only for running its
// program. Each parked sandbox is used exactly once. The pool sizes itself
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

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/runtime"
)

// Builder builds sandboxes; *runtime.Engine is one.
type Builder interface {
	Build(ctx context.Context, opts runtime.BuildOptions) (*runtime.Sandbox, error)
	CgroupMode() cgroup.Mode
	CgroupParent() string
}

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
}

// ParkedCost is what one parked sandbox costs the host, as measured by
// `make bench` on the development VM (kernel objects of its namespaces,
// cgroups and mounts, its entry process, the daemon's pipes and
// goroutines): rounded up, it is what the pool's memory budget counts.
const ParkedCost = 1 << 20

type key struct {
	rootfs   string
	uid, gid int
}

// Pool implements the server's Sandboxes on top of a Builder.
type Pool struct {
	b    Builder
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	images map[key]*imagePool
	parked int // over all images, building included
	closed bool
}

type imagePool struct {
	ready    []*runtime.Sandbox
	building int
	// rate is an exponentially weighted request rate (per second).
	rate     float64
	lastTake time.Time
	wake     chan struct{}
}

// New returns a pool over b. Close destroys what it holds.
func New(b Builder, opts Options) *Pool {
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
	return &Pool{b: b, opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, images: map[key]*imagePool{}}
}

// CgroupMode and CgroupParent pass through to the builder.
func (p *Pool) CgroupMode() cgroup.Mode { return p.b.CgroupMode() }

// CgroupParent passes through to the builder.
func (p *Pool) CgroupParent() string { return p.b.CgroupParent() }

// Enabled reports whether the pool parks sandboxes at all.
func (p *Pool) Enabled() bool { return p.opts.MaxParked > 0 }

// Parked returns the number of sandboxes ready to take.
func (p *Pool) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ip := range p.images {
		n += len(ip.ready)
	}
	return n
}

// Build returns a parked sandbox of the same image and user when one is
// ready, and builds one otherwise. Either way the caller runs one program
// in it and destroys it; the request's limits are applied by Run.
func (p *Pool) Build(ctx context.Context, opts runtime.BuildOptions) (*runtime.Sandbox, error) {
	if !p.Enabled() {
		return p.b.Build(ctx, opts)
	}
	k := key{opts.Rootfs, opts.UID, opts.GID}
	p.mu.Lock()
	ip := p.imageLocked(k)
	now := time.Now()
	if !ip.lastTake.IsZero() {
		// One request just arrived: fold its instantaneous rate in.
		dt := max(now.Sub(ip.lastTake).Seconds(), 1e-3)
		ip.rate = 0.8*ip.rate + 0.2*(1/dt)
	} else {
		ip.rate = 1
	}
	ip.lastTake = now
	var sb *runtime.Sandbox
	if n := len(ip.ready); n > 0 {
		sb = ip.ready[n-1]
		ip.ready = ip.ready[:n-1]
		p.parked--
	}
	p.mu.Unlock()
	p.signal(ip)
	if sb != nil {
		return sb, nil
	}
	return p.b.Build(ctx, opts)
}

func (p *Pool) imageLocked(k key) *imagePool {
	ip, ok := p.images[k]
	if !ok {
		ip = &imagePool{wake: make(chan struct{}, 1)}
		p.images[k] = ip
		p.wg.Add(1)
		go p.refill(k, ip)
	}
	return ip
}

func (p *Pool) signal(ip *imagePool) {
	select {
	case ip.wake <- struct{}{}:
	default:
	}
}

// target is how many sandboxes of an image to keep ready: enough to cover
// the requests that arrive while one is being built, twice over.
func (p *Pool) targetLocked(ip *imagePool, buildTime time.Duration) int {
	if time.Since(ip.lastTake) > p.opts.Idle {
		return 0
	}
	want := int(math.Ceil(ip.rate * max(buildTime.Seconds(), 0.005) * 2))
	return min(max(want, 1), p.opts.MaxParked)
}

func (p *Pool) budgetLocked() bool {
	return p.parked < p.opts.MaxParked && int64(p.parked+1)*p.opts.ParkedCost <= p.opts.MaxMemory
}

// evictAfter is how long an image must have gone without requests before
// its parked sandboxes may be taken for another image. Shorter, and images
// in use at once with too small a budget would destroy each other's
// sandboxes unused, build after build.
const evictAfter = time.Second

// evictLocked frees a slot of the budget for ip: it takes a parked
// sandbox from the image used least recently, if that image has been
// quiet for evictAfter, so that images in use are not starved by idle ones
// holding the budget until Options.Idle. It returns the sandbox to
// destroy, or nil.
func (p *Pool) evictLocked(ip *imagePool) *runtime.Sandbox {
	var victim *imagePool
	for _, other := range p.images {
		if other != ip && len(other.ready) > 0 && time.Since(other.lastTake) >= evictAfter &&
			(victim == nil || other.lastTake.Before(victim.lastTake)) {
			victim = other
		}
	}
	if victim == nil {
		return nil
	}
	sb := victim.ready[0] // the oldest
	victim.ready = victim.ready[1:]
	p.parked--
	return sb
}

// refill keeps one image's parked sandboxes at their target, and destroys
// them once the image has been idle for Options.Idle.
func (p *Pool) refill(k key, ip *imagePool) {
	defer p.wg.Done()
	buildTime := 20 * time.Millisecond
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p.mu.Lock()
		target := p.targetLocked(ip, buildTime)
		need := len(ip.ready)+ip.building < target && !p.closed
		var evicted *runtime.Sandbox
		if need && !p.budgetLocked() {
			evicted = p.evictLocked(ip)
		}
		need = need && p.budgetLocked()
		if need {
			ip.building++
			p.parked++
		}
		var idle []*runtime.Sandbox
		if target == 0 && len(ip.ready) > 0 {
			idle, ip.ready = ip.ready, nil
			p.parked -= len(idle)
		}
		p.mu.Unlock()
		if evicted != nil {
			idle = append(idle, evicted)
		}
		for _, sb := range idle {
			_ = sb.Destroy()
		}
		if need {
			start := time.Now()
			sb, err := p.b.Build(p.ctx, runtime.BuildOptions{Rootfs: k.rootfs, UID: k.uid, GID: k.gid, Limits: p.opts.Limits})
			buildTime = (buildTime*3 + time.Since(start)) / 4
			p.mu.Lock()
			ip.building--
			if err != nil || p.closed {
				p.parked--
				p.mu.Unlock()
				if err != nil && !errors.Is(err, context.Canceled) {
					p.log.Warn("pool: building a sandbox", "rootfs", k.rootfs, "err", err)
					time.Sleep(time.Second) // don't spin on a broken image
				}
				if sb != nil {
					_ = sb.Destroy()
				}
				if p.ctx.Err() != nil {
					return
				}
				continue
			}
			ip.ready = append(ip.ready, sb)
			p.mu.Unlock()
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

// Drop destroys the parked sandboxes of an image (it is being removed).
func (p *Pool) Drop(rootfs string) {
	p.mu.Lock()
	var drop []*runtime.Sandbox
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
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	var all []*runtime.Sandbox
	for _, ip := range p.images {
		all = append(all, ip.ready...)
		ip.ready = nil
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	for _, sb := range all {
		_ = sb.Destroy()
	}
}
