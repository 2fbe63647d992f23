// Package execution is sandboxd's execution core: it owns a stage's whole
// life, in this order:
//
//  1. acquire the image (held until the stage ends, so it can't be removed);
//  2. take an admission slot, in the caller's fairness line;
//  3. get a sandbox (parked in the pool, or built);
//  4. run the program and collect the result (and /work, if asked);
//  5. tear the sandbox down off the answer path.
//
// It knows nothing of HTTP: the server, the language plan, `sandboxd
// exec` and the benchmarks all run stages through Core.Run. What it
// observes goes to an explicit Observer and comes back in Output.
package execution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// Stage is one program to run in a fresh sandbox.
type Stage struct {
	Image  string
	Args   []string
	Env    []string // added to the image's environment (later entries win)
	Files  []rootfs.File
	Stdin  []byte
	Limits limits.Set
	// CollectWork asks for every file left in /work (a compile's output,
	// for the stages after it), when the run ended ok.
	CollectWork bool
	// CollectWorkBytes bounds what CollectWork reads back, below the
	// stage's work_bytes (0: work_bytes alone): the daemon keeps it and
	// caches it (max_artifact_bytes).
	CollectWorkBytes int64
	// CollectWorkDir, when set, is a host directory of the caller's into
	// which CollectWork copies the files (Output.Work then names them in
	// Source), so that the output is never held whole in memory; the
	// caller removes it. Empty: the files are read into memory.
	CollectWorkDir string
	// CopyOut names files to read back after the run, whatever its status
	// (a request's "collect"); they go into the Result's Files.
	CopyOut CopyOut
	// StdinStream, when set, is the program's stdin instead of Stdin: read
	// while the program runs (an interactive client's input).
	StdinStream io.Reader
	// Stdout and Stderr, when set, receive the kept output as it arrives
	// (`sandboxd exec` passes it through); the Result holds it too.
	Stdout, Stderr io.Writer
	// TTY, when set, runs the program on a pseudo-terminal of this size
	// (runtime.Request.TTY); Control carries a client's signals and
	// resizes while it runs.
	TTY     *runtime.WindowSize
	Control <-chan runtime.Control
	// Network, when set, lets the program out through the egress proxy,
	// served inside its sandbox for the run; nil: loopback only.
	Network *Network
	// StdinFile and StdoutFile, when set, are the program's stdin and
	// stdout: one end of a pipe to another stage's program, run at the
	// same time (Core.Together; runtime.Request.StdinFile). The caller
	// closes its copies once Started was called or the stage returned.
	StdinFile, StdoutFile *os.File
	// Started, when set, is called once the program runs.
	Started func()
	// CPUs, when set, is where the program runs (runtime.Request.CPUs);
	// Core.Together sets it for the stages it runs together.
	CPUs []int
}

// Network is a stage's egress: its policy, and who is told of each of its
// connections.
type Network struct {
	Policy *egress.Policy
	// Record, when set, is told of every connection once it ends (the
	// audit log, metrics).
	Record func(sandboxID string, c egress.Connection)
}

// Output is what a stage produced.
type Output struct {
	SandboxID string
	Image     string // the image's stored name
	Result    *api.Result
	Work      []rootfs.File // with CollectWork, when the run ended ok
	QueueWait time.Duration
}

// Observer is told of every stage that ran (metrics, the audit record,
// the log line). A nil Observer is allowed.
type Observer interface {
	StageDone(st *Stage, out *Output)
}

// Images is the image store as the core uses it; *images.Store is one.
type Images interface {
	Acquire(name string) (*images.Image, func(), error)
}

// Slots admits stages: at most N run at once, fairly across keys;
// *queue.Queue is one.
type Slots interface {
	Acquire(ctx context.Context, key string) (func(), error)
}

// Sandbox is one built sandbox, running one stage at a time (a reusable
// one may run another after, see runtime/reuse.go); *runtime.Sandbox is one.
type Sandbox interface {
	ID() string
	RunID() string
	Run(ctx context.Context, req runtime.Request) (*runtime.Result, error)
	CollectWork(maxBytes int64) ([]rootfs.File, error)
	CollectWorkInto(dir string, maxBytes int64) ([]rootfs.File, error)
	CollectPaths(patterns []string, lim rootfs.CollectLimits) ([]rootfs.Collected, error)
	ListenInside(addr string) (net.Listener, error)
	Destroy() error
}

// Sandboxes gives a sandbox for a stage: the warm pool, or the engine.
type Sandboxes interface {
	Get(ctx context.Context, opts runtime.BuildOptions) (Sandbox, error)
}

// Builder builds runtime sandboxes: *runtime.Engine and the warm pool are.
type Builder interface {
	Build(ctx context.Context, opts runtime.BuildOptions) (*runtime.Sandbox, error)
}

// FromBuilder gives stages the sandboxes b builds; when b is the warm
// pool, used sandboxes that can serve another run go back to it.
func FromBuilder(b Builder) Sandboxes { return builder{b} }

type builder struct{ b Builder }

// Releaser takes back a used sandbox: it parks it for another run or
// destroys it.
type Releaser interface {
	Release(opts runtime.BuildOptions, sb Sandbox) error
}

// parker is the warm pool as a Releaser needs it.
type parker interface {
	Done(opts runtime.BuildOptions, sb *runtime.Sandbox, reusable bool) error
}

// Release readies a reusable sandbox for its next run
// (runtime.Sandbox.Recycle: the run's scratch gone, nothing of it left)
// and gives it back to the pool, which parks or destroys it; without a
// pool, it destroys it.
func (b builder) Release(opts runtime.BuildOptions, sb Sandbox) error {
	p, ok := b.b.(parker)
	rs, isRuntime := sb.(*runtime.Sandbox)
	if !ok || !isRuntime {
		return sb.Destroy()
	}
	return p.Done(opts, rs, rs.Recycle())
}

func (b builder) Get(ctx context.Context, opts runtime.BuildOptions) (Sandbox, error) {
	sb, err := b.b.Build(ctx, opts)
	if err != nil {
		return nil, err
	}
	return sb, nil
}

// UnknownImageError is a stage whose image is not in the store (class
// errdefs.ErrNotFound; the API answers unknown_image).
type UnknownImageError struct{ Name string }

func (e *UnknownImageError) Error() string {
	return fmt.Sprintf("image %q is not in the store (see GET /v1/images)", e.Name)
}

func (e *UnknownImageError) Unwrap() error { return errdefs.ErrNotFound }

// Options configure a Core.
type Options struct {
	Images    Images
	Slots     Slots
	Sandboxes Sandboxes
	// UID and GID run every program; never 0.
	UID, GID int
	Logger   *slog.Logger
	// Egress serves the stages that have a Network; nil refuses them.
	Egress *egress.Proxy
}

// ErrNoEgress: a stage asks for the network on a core without a proxy.
var ErrNoEgress = errdefs.New(errdefs.ErrInvalid, "network egress is not available here")

// Core runs stages.
type Core struct {
	o   Options
	log *slog.Logger
	// cpus are the CPUs the daemon may use; Together places each group
	// of stages on the next of them in turn (placeTogether).
	cpus    []int
	nextCPU atomic.Uint64
	// destroying counts sandboxes being torn down in the background.
	destroying sync.WaitGroup
}

// New returns a core.
func New(o Options) *Core {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Core{o: o, log: log, cpus: allowedCPUs()}
}

// allowedCPUs lists the CPUs this process may run on (none when they
// cannot be read: stages then run wherever the kernel puts them).
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// placeTogether returns the CPU for a group of stages that run together:
// the next of the daemon's in turn, so that groups spread over them.
func (c *Core) placeTogether() []int {
	if len(c.cpus) == 0 {
		return nil
	}
	return []int{c.cpus[(c.nextCPU.Add(1)-1)%uint64(len(c.cpus))]}
}

// Run runs one stage: the five steps of the package comment. key is the
// fairness key of the admission line (the user). ctx ends the run (the
// client went away, the daemon's grace period ended). An error means the
// program did not run (unknown image, busy, invalid command, a broken
// sandbox); every outcome of the program itself is a Result.
func (c *Core) Run(ctx context.Context, key string, st Stage, obs Observer) (*Output, error) {
	img, release, err := c.acquireImage(st.Image)
	if err != nil {
		return nil, err
	}
	defer release()
	queued := time.Now()
	slot, err := c.o.Slots.Acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	defer slot()
	return c.runInSlot(ctx, key, img, st, obs, time.Since(queued))
}

// Together runs fn with one admission slot, in which fn may run stages at
// the same time through run, each in a sandbox of its own: an interactive
// test's program and interactor. They hold one slot between them, not
// one each: they take turns on the CPU (each waits for the other's
// answer), and two slots taken one after the other could leave two such
// requests each holding one and waiting for a second forever. For the
// same reason they run on one CPU, the next of the daemon's in turn: an
// answer then wakes the other program where it is, while a wake-up
// across CPUs costs many times the round trip (docs/judge.md,
// "Placement", has the measurements).
func (c *Core) Together(ctx context.Context, key string, obs Observer,
	fn func(run func(context.Context, Stage) (*Output, error)) error) error {
	queued := time.Now()
	slot, err := c.o.Slots.Acquire(ctx, key)
	if err != nil {
		return err
	}
	defer slot()
	wait := time.Since(queued)
	cpus := c.placeTogether()
	return fn(func(ctx context.Context, st Stage) (*Output, error) {
		if st.CPUs == nil {
			st.CPUs = cpus
		}
		img, release, err := c.acquireImage(st.Image)
		if err != nil {
			return nil, err
		}
		defer release()
		return c.runInSlot(ctx, key, img, st, obs, wait)
	})
}

// acquireImage holds a stage's image while it runs; an image the store
// does not have is an UnknownImageError.
func (c *Core) acquireImage(name string) (*images.Image, func(), error) {
	img, release, err := c.o.Images.Acquire(name)
	if errors.Is(err, images.ErrNotFound) {
		return nil, nil, &UnknownImageError{Name: name}
	}
	return img, release, err
}

// runInSlot runs one stage once its image and admission slot are held:
// steps 3 to 5 of the package comment. key, the user, owns the run: a
// reused sandbox may keep a network namespace between the runs of one
// owner, never between two owners' (runtime.Request.Owner).
func (c *Core) runInSlot(ctx context.Context, key string, img *images.Image, st Stage, obs Observer, wait time.Duration) (*Output, error) {
	opts := runtime.BuildOptions{Rootfs: img.Rootfs, UID: c.o.UID, GID: c.o.GID, Limits: st.Limits}
	sb, err := c.o.Sandboxes.Get(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("building sandbox: %w", err)
	}
	// Giving the sandbox back for another run, or tearing it down
	// (cgroup removal, network namespace, unmounts), happens after the
	// answer, off the request path; Wait waits for it.
	defer c.releaseLater(opts, sb)
	env := st.Env
	proxy, err := c.serveEgress(sb, st.Network)
	if err != nil {
		return nil, err
	}
	if proxy != nil {
		env = append(c.o.Egress.Config().Env(), env...)
	}
	res, err := sb.Run(ctx, runtime.Request{
		Args: st.Args, Env: Environment(img.Config.Env, env), Files: st.Files,
		Stdin: st.stdin(), Limits: st.Limits, Stdout: st.Stdout, Stderr: st.Stderr, Owner: key,
		TTY: st.TTY, Control: st.Control, ShareNetwork: proxy != nil,
		StdinFile: st.StdinFile, StdoutFile: st.StdoutFile, Started: st.Started, CPUs: st.CPUs,
	})
	if proxy != nil {
		usage := proxy.Close()
		if res != nil {
			res.Network = &usage
		}
	}
	if err != nil {
		return nil, err
	}
	out := &Output{SandboxID: sb.RunID(), Image: img.Name, Result: res, QueueWait: wait}
	if obs != nil {
		obs.StageDone(&st, out)
	}
	if err := c.collect(sb, st, out); err != nil {
		return nil, err
	}
	return out, nil
}

// collect reads back what the stage asked for once its run ended: the
// files of its CopyOut, and /work with CollectWork.
func (c *Core) collect(sb Sandbox, st Stage, out *Output) error {
	res := out.Result
	if len(st.CopyOut.Patterns) > 0 {
		if err := st.CopyOut.read(sb, res); err != nil {
			return fmt.Errorf("collecting files: %w", err)
		}
	}
	if !st.CollectWork || res.Status != runtime.StatusOK {
		return nil
	}
	limit := st.Limits.WorkBytes
	if st.CollectWorkBytes > 0 {
		limit = min(limit, st.CollectWorkBytes)
	}
	var err error
	if st.CollectWorkDir != "" {
		out.Work, err = sb.CollectWorkInto(st.CollectWorkDir, limit)
	} else {
		out.Work, err = sb.CollectWork(limit)
	}
	if err != nil {
		return fmt.Errorf("collecting compile output: %w", err)
	}
	return nil
}

// serveEgress starts the proxy inside sb for a stage with a network
// policy; nil, nil for one without.
func (c *Core) serveEgress(sb Sandbox, n *Network) (*egress.Run, error) {
	if n == nil {
		return nil, nil
	}
	if c.o.Egress == nil {
		return nil, ErrNoEgress
	}
	ln, err := sb.ListenInside(fmt.Sprintf("127.0.0.1:%d", egress.ProxyPort))
	if err != nil {
		return nil, fmt.Errorf("starting the egress proxy: %w", err)
	}
	var record func(egress.Connection)
	if n.Record != nil {
		id := sb.RunID()
		record = func(conn egress.Connection) { n.Record(id, conn) }
	}
	return c.o.Egress.Serve(ln, n.Policy, record), nil
}

// releaseLater gives a used sandbox back to the warm pool, which parks it
// for another run or destroys it (Releaser); without a pool, it destroys
// it.
func (c *Core) releaseLater(opts runtime.BuildOptions, sb Sandbox) {
	c.destroying.Add(1)
	go func() {
		defer c.destroying.Done()
		var err error
		if r, ok := c.o.Sandboxes.(Releaser); ok {
			err = r.Release(opts, sb)
		} else {
			err = sb.Destroy()
		}
		if err != nil {
			c.log.Error("destroying sandbox", "id", sb.ID(), "err", err)
		}
	}()
}

// Wait waits until every used sandbox is torn down (shutdown calls it).
func (c *Core) Wait() { c.destroying.Wait() }

// DefaultPath is the program's PATH when the image sets none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Environment builds the program's environment: the image's (PATH among
// it), sandboxd's HOME and TMPDIR, then env (the language's or the
// request's, already sorted), later entries overriding earlier ones.
func Environment(image, env []string) []string {
	out := []string{}
	hasPath := false
	for _, kv := range image {
		if strings.HasPrefix(kv, "PATH=") {
			hasPath = true
		}
		out = append(out, kv)
	}
	if !hasPath {
		out = append(out, DefaultPath)
	}
	out = append(out, "HOME=/work", "TMPDIR=/tmp")
	return dedupeEnv(append(out, env...))
}

// dedupeEnv keeps the last value of each variable, where that value stands.
func dedupeEnv(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := env[:0:0]
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}

// Dir is an image store in which an image's name is its root directory,
// with no configuration of its own: `sandboxd exec --rootfs DIR` and the
// benchmarks run stages over a plain directory through it.
type Dir struct{}

// Acquire implements Images.
func (Dir) Acquire(name string) (*images.Image, func(), error) {
	return &images.Image{Name: name, Rootfs: name}, func() {}, nil
}

// stdin is the program's standard input: the stream, or the bytes (none
// when it is passed as a file).
func (st *Stage) stdin() io.Reader {
	if st.StdinFile != nil {
		return nil
	}
	if st.StdinStream != nil {
		return st.StdinStream
	}
	return bytes.NewReader(st.Stdin)
}
