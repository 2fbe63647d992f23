package execution

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/queue"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

type fakeImages struct{ released int }

func (f *fakeImages) Acquire(name string) (*images.Image, func(), error) {
	switch name {
	case "nope":
		return nil, nil, images.ErrNotFound
	case "Bad!":
		return nil, nil, images.ErrInvalid
	}
	return &images.Image{Name: name + ":latest", Rootfs: "/images/" + name, Config: images.ImageConfig{Env: []string{"PATH=/img/bin", "LANG=C"}}},
		func() { f.released++ }, nil
}

type fakeSandbox struct {
	mu        sync.Mutex
	req       runtime.Request
	destroyed int
	result    *api.Result
	collected []rootfs.Collected
	// how the work was collected: into which directory, within what
	intoDir string
	limit   int64
}

func (s *fakeSandbox) ID() string { return "sbx-fake" }
func (s *fakeSandbox) Run(_ context.Context, req runtime.Request) (*runtime.Result, error) {
	s.req = req
	return s.result, nil
}
func (s *fakeSandbox) CollectWork(limit int64) ([]rootfs.File, error) {
	s.limit = limit
	return []rootfs.File{{Name: "a.out"}}, nil
}
func (s *fakeSandbox) CollectWorkInto(dir string, limit int64) ([]rootfs.File, error) {
	s.intoDir, s.limit = dir, limit
	return []rootfs.File{{Name: "a.out", Source: dir + "/a.out"}}, nil
}
func (s *fakeSandbox) RunID() string { return s.ID() }

func (s *fakeSandbox) ListenInside(string) (net.Listener, error) {
	return nil, errors.New("fake sandboxes have no network")
}

func (s *fakeSandbox) CollectPaths([]string, rootfs.CollectLimits) ([]rootfs.Collected, error) {
	return s.collected, nil
}
func (s *fakeSandbox) Destroy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.destroyed++
	return nil
}

type fakeSandboxes struct {
	sb   *fakeSandbox
	opts runtime.BuildOptions
}

func (f *fakeSandboxes) Get(_ context.Context, opts runtime.BuildOptions) (Sandbox, error) {
	f.opts = opts
	return f.sb, nil
}

type recorder struct{ stages []*Output }

func (r *recorder) StageDone(_ *Stage, out *Output) { r.stages = append(r.stages, out) }

func newCore(sb *fakeSandbox, slots Slots) (*Core, *fakeImages, *fakeSandboxes) {
	imgs, sbs := &fakeImages{}, &fakeSandboxes{sb: sb}
	return New(Options{Images: imgs, Slots: slots, Sandboxes: sbs, UID: 65534, GID: 65534}), imgs, sbs
}

// A stage's whole life: the image held and released, the sandbox built
// for the image's root with the stage's limits, the environment laid over
// the image's, the observer told, the sandbox destroyed after the answer.
func TestRunIsTheStagesWholeLife(t *testing.T) {
	sb := &fakeSandbox{result: &api.Result{Status: api.StatusOK}}
	core, imgs, sbs := newCore(sb, queue.New(1, 0))
	rec := &recorder{}
	l := limits.Defaults()
	out, err := core.Run(context.Background(), "alice", Stage{Image: "busybox", Args: []string{"true"}, Env: []string{"LANG=C.UTF-8"}, Limits: l, CollectWork: true}, rec)
	if err != nil {
		t.Fatal(err)
	}
	core.Wait()
	if out.SandboxID != "sbx-fake" || out.Image != "busybox:latest" || len(out.Work) != 1 || len(rec.stages) != 1 || rec.stages[0] != out {
		t.Fatalf("output %+v, observed %d", out, len(rec.stages))
	}
	if sbs.opts.Rootfs != "/images/busybox" || sbs.opts.UID != 65534 || sbs.opts.Limits != l {
		t.Fatalf("built with %+v", sbs.opts)
	}
	want := []string{"PATH=/img/bin", "HOME=/work", "TMPDIR=/tmp", "LANG=C.UTF-8"}
	if !slices.Equal(sb.req.Env, want) {
		t.Fatalf("env %q, want %q", sb.req.Env, want)
	}
	if sb.destroyed != 1 || imgs.released != 1 {
		t.Fatalf("destroyed %d, released %d", sb.destroyed, imgs.released)
	}
}

func TestRunRefusals(t *testing.T) {
	sb := &fakeSandbox{result: &api.Result{Status: api.StatusOK}}
	full := queue.New(1, 0)
	release, _ := full.Acquire(context.Background(), "bob")
	defer release()
	cases := []struct {
		name  string
		image string
		slots Slots
		class error
		typed bool
	}{
		{"unknown image", "nope", queue.New(1, 0), errdefs.ErrNotFound, true},
		{"invalid reference", "Bad!", queue.New(1, 0), errdefs.ErrInvalid, false},
		{"busy", "busybox", full, errdefs.ErrExhausted, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			core, _, _ := newCore(sb, c.slots)
			_, err := core.Run(context.Background(), "alice", Stage{Image: c.image, Args: []string{"true"}, Limits: limits.Defaults()}, nil)
			var unknown *UnknownImageError
			if !errors.Is(err, c.class) || errors.As(err, &unknown) != c.typed {
				t.Fatalf("%v: class %v, want %v (typed %v)", err, errdefs.Class(err), c.class, c.typed)
			}
		})
	}
}

// Collected files become the result's files: text as it is, other bytes
// in base64, the mode in octal, missing and symlinked paths without content.
func TestCopyOut(t *testing.T) {
	sb := &fakeSandbox{result: &api.Result{Status: api.StatusRuntimeError}, collected: []rootfs.Collected{
		{Name: "a.txt", Data: []byte("hi"), Size: 2, Mode: 0o640},
		{Name: "b.bin", Data: []byte{0xff}, Size: 10, Mode: fs.FileMode(0o755), Truncated: true},
		{Name: "gone", Missing: true},
		{Name: "link", Type: "symlink"},
	}}
	core, _, _ := newCore(sb, queue.New(1, 0))
	c, err := ParseCopyOut([]string{"*"}, nil, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	out, err := core.Run(context.Background(), "", Stage{Image: "busybox", Args: []string{"x"}, Limits: limits.Defaults(), CopyOut: c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.OutputFile{{Name: "a.txt", Content: "hi", Size: 2, Mode: "0640"},
		{Name: "b.bin", Content: "/w==", Encoding: "base64", Size: 10, Mode: "0755", Truncated: true},
		{Name: "gone", Missing: true}, {Name: "link", Type: "symlink"}}
	if !slices.Equal(out.Result.Files, want) {
		t.Fatalf("files %+v\nwant %+v", out.Result.Files, want)
	}
}

func TestParseCopyOut(t *testing.T) {
	cases := []struct {
		patterns []string
		bytes    *int64
		ok       bool
	}{
		{[]string{"out/*.txt", "result"}, nil, true},
		{nil, nil, true},
		{[]string{"a"}, new(int64), false},
		{nil, func() *int64 { n := int64(5); return &n }(), false},
		{[]string{"a"}, func() *int64 { n := int64(32 << 20); return &n }(), false},
		{[]string{"../x"}, nil, false},
		{[]string{"/etc/passwd"}, nil, false},
		{[]string{"["}, nil, false},
		{[]string{"a\x1b"}, nil, false},
		{make([]string, MaxCollectPatterns+1), nil, false},
	}
	for _, c := range cases {
		_, err := ParseCopyOut(c.patterns, c.bytes, 16<<20)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, errdefs.ErrInvalid)) {
			t.Errorf("%q %v: %v", c.patterns, c.bytes, err)
		}
	}
}

// CollectWorkDir sends the compile's output to disk, within the same bound
// (the smaller of work_bytes and CollectWorkBytes) as in memory.
func TestCollectWorkDir(t *testing.T) {
	l := limits.Defaults()
	l.WorkBytes = 1 << 20
	for _, tc := range []struct {
		name      string
		dir       string
		bytes     int64
		wantLimit int64
	}{
		{"in memory, work_bytes", "", 0, 1 << 20},
		{"on disk, work_bytes", "/artifacts/req", 0, 1 << 20},
		{"on disk, max_artifact_bytes", "/artifacts/req", 4096, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := &fakeSandbox{result: &api.Result{Status: api.StatusOK}}
			core, _, _ := newCore(sb, queue.New(1, 0))
			out, err := core.Run(context.Background(), "alice", Stage{Image: "busybox", Args: []string{"cc"}, Limits: l,
				CollectWork: true, CollectWorkBytes: tc.bytes, CollectWorkDir: tc.dir}, nil)
			core.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if sb.intoDir != tc.dir || sb.limit != tc.wantLimit || len(out.Work) != 1 {
				t.Fatalf("collected into %q within %d (%d files), want %q within %d", sb.intoDir, sb.limit, len(out.Work), tc.dir, tc.wantLimit)
			}
			if tc.dir != "" && out.Work[0].Source == "" {
				t.Errorf("a file on disk has no Source: %+v", out.Work[0])
			}
		})
	}
}
