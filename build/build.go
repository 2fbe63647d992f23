// Package build makes images from recipes (POST /v1/images/build): each
// step of a recipe runs as a program in a sandbox over the parent image,
// whose root is writable over a layer of the build's own
// (runtime.LayerOptions); what the steps leave in that layer becomes a new
// image in the store (images.Store.Derive), the parent's files plus one
// layer. The steps run as every program does: the sandbox user, no
// capabilities, seccomp, the build's limits, and the network only through
// the egress proxy with the build's policy. A failed step, a cancelled
// build or a daemon that stops leaves no image and nothing on disk: the
// layer is a tmpfs of the build's workspace, removed with it.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/runtime"
)

// Recipe is a validated build request.
type Recipe struct {
	// Owner is whose admission line the build waits in.
	Owner string
	// Name is the new image's name; From the parent image's.
	Name, From string
	// Steps are argv lists, run in order in /work; each must exit 0.
	Steps [][]string
	// Env is given to every step after the parent's environment, and
	// recorded in the new image's.
	Env []string
	// Network, when set, is the steps' egress.
	Network *execution.Network
	// Limits hold for each step (wall and CPU time, output) and for the
	// build as a whole (memory, pids, CPUs, /work, /tmp).
	Limits limits.Set
	// LayerBytes bounds what the steps may add to the image.
	LayerBytes int64
}

// Engine is what a build needs of the runtime; *runtime.Engine is one.
type Engine interface {
	NewWorkspace(o runtime.WorkspaceOptions) (*runtime.Workspace, error)
	Build(ctx context.Context, opts runtime.BuildOptions) (*runtime.Sandbox, error)
}

// Images is the store as a build uses it; *images.Store is one.
type Images interface {
	Acquire(name string) (*images.Image, func(), error)
	Derive(ctx context.Context, parent, upper, name string, env []string) (*images.Image, error)
}

// Events is told of a build as it goes; any method may be a no-op.
type Events interface {
	Step(n int, cmd []string)
	Output(stderr bool, p []byte)
	StepDone(n int, r *api.Result)
}

// Builder runs builds.
type Builder struct {
	Engine Engine
	Images Images
	Slots  execution.Slots
	// Egress serves builds with a network (nil refuses them).
	Egress   *egress.Proxy
	UID, GID int
	Logger   *slog.Logger
}

// StepError is a step that did not exit 0 (class errdefs.ErrInvalid: the
// recipe's fault, 400 build_failed in the stream). Result is its result.
type StepError struct {
	Step   int
	Cmd    []string
	Result *api.Result
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d %q: status %s, exit code %d", e.Step, e.Cmd, e.Result.Status, e.Result.ExitCode)
}

func (e *StepError) Unwrap() error { return errdefs.ErrInvalid }

// sourceDateEpoch makes the steps' tools write what they can
// reproducibly (Python then compiles hash-checked .pyc files, which the
// layer's normalized times don't invalidate); a recipe's env may change it.
const sourceDateEpoch = "SOURCE_DATE_EPOCH=0"

// Build runs r and stores its image. It holds one admission slot for the
// whole build.
func (b *Builder) Build(ctx context.Context, r Recipe, ev Events) (*images.Image, error) {
	parent, release, err := b.Images.Acquire(r.From)
	if err != nil {
		if errors.Is(err, images.ErrNotFound) {
			return nil, &execution.UnknownImageError{Name: r.From}
		}
		return nil, err
	}
	defer release()
	slot, err := b.Slots.Acquire(ctx, r.Owner)
	if err != nil {
		return nil, err
	}
	defer slot()
	ws, err := b.Engine.NewWorkspace(runtime.WorkspaceOptions{UID: b.UID, GID: b.GID, Limits: r.Limits,
		Layer: &runtime.LayerOptions{Image: parent.Rootfs, Bytes: r.LayerBytes}})
	if err != nil {
		return nil, fmt.Errorf("creating the build's workspace: %w", err)
	}
	defer func() {
		if err := ws.Remove(); err != nil {
			b.log().Error("removing a build's workspace", "err", err)
		}
	}()
	env := append([]string{sourceDateEpoch}, r.Env...)
	if r.Network != nil {
		run, err := b.serveEgress(ws, r.Network)
		if err != nil {
			return nil, err
		}
		defer run.Close()
		env = append(b.Egress.Config().Env(), env...)
	}
	env = execution.Environment(parent.Config.Env, env)
	for i, cmd := range r.Steps {
		if err := b.step(ctx, ws, parent.Rootfs, i+1, cmd, env, r.Limits, ev); err != nil {
			return nil, err
		}
	}
	return b.Images.Derive(ctx, parent.Name, ws.LayerDir(), r.Name, r.Env)
}

// step runs one step in a fresh sandbox over the build's layer.
func (b *Builder) step(ctx context.Context, ws *runtime.Workspace, root string, n int, cmd, env []string, l limits.Set, ev Events) error {
	ev.Step(n, cmd)
	started := time.Now()
	sb, err := b.Engine.Build(ctx, runtime.BuildOptions{Rootfs: root, UID: b.UID, GID: b.GID, Limits: l, Workspace: ws})
	if err != nil {
		return fmt.Errorf("building the sandbox of step %d: %w", n, err)
	}
	res, err := sb.Run(ctx, runtime.Request{Args: cmd, Env: env, Limits: l, Stdin: nil,
		Stdout: output{ev, false}, Stderr: output{ev, true}})
	// The next step's root mounts the same layer: this one's must be gone.
	if derr := sb.Destroy(); derr != nil && err == nil {
		err = fmt.Errorf("removing the sandbox of step %d: %w", n, derr)
	}
	if err != nil {
		return err
	}
	ev.StepDone(n, res)
	b.log().Info("build step", "step", n, "status", res.Status, "exit", res.ExitCode, "ms", time.Since(started).Milliseconds())
	if res.Status != api.StatusOK || res.ExitCode != 0 {
		return &StepError{Step: n, Cmd: cmd, Result: res}
	}
	return nil
}

// serveEgress starts the build's proxy in its workspace's namespace.
func (b *Builder) serveEgress(ws *runtime.Workspace, n *execution.Network) (*egress.Run, error) {
	if b.Egress == nil {
		return nil, execution.ErrNoEgress
	}
	ln, err := ws.ListenInside(fmt.Sprintf("127.0.0.1:%d", egress.ProxyPort))
	if err != nil {
		return nil, fmt.Errorf("starting the build's egress proxy: %w", err)
	}
	var record func(egress.Connection)
	if n.Record != nil {
		record = func(c egress.Connection) { n.Record(ws.ID(), c) }
	}
	return b.Egress.Serve(ln, n.Policy, record), nil
}

func (b *Builder) log() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// output hands a step's output to the events as it is read.
type output struct {
	ev     Events
	stderr bool
}

func (o output) Write(p []byte) (int, error) {
	o.ev.Output(o.stderr, p)
	return len(p), nil
}

var _ io.Writer = output{}
