package languages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// compileDefaults are larger than run defaults: compilers are heavier than
// the programs they build, and write more (object files, precompiled
// headers, caches). A language's compile_limits refine them; the daemon's
// maximums cap them.
var compileDefaults = parsedOnce(map[string]any{"wall_time": "30s", "cpu_time": "30s", "memory": "512MiB",
	"pids": int64(128), "cpus": int64(1), "file_size": "256MiB", "work": "512MiB", "tmp": "512MiB"})

// versionLimits bound the one run of a language's version command.
var versionLimits = parsedOnce(map[string]any{"wall_time": "20s", "cpu_time": "20s", "memory": "512MiB",
	"pids": int64(128), "cpus": int64(1)})

// parsedOnce parses v on first use, not at package init (a sandbox's init
// runs this binary too, and package inits do nothing but libcontainer's).
func parsedOnce(v map[string]any) func() limits.Partial {
	return sync.OnceValue(func() limits.Partial {
		p, err := limits.FromConfig(v, "")
		if err != nil {
			panic(err) // a literal above is wrong: a bug caught by every test
		}
		return p
	})
}

// Stages runs stages: the execution core.
type Stages interface {
	Run(ctx context.Context, key string, st execution.Stage, obs execution.Observer) (*execution.Output, error)
}

// ImageSource finds a language's image, pulling it when it is a registry
// reference not yet stored; *images.Store is one.
type ImageSource interface {
	Get(name string) (*images.Image, error)
	Pull(ctx context.Context, ref, name string, progress images.Progress) (*images.Image, error)
}

// Service runs language-mode requests: it resolves the language and its
// version, settles the limits and runs the plan through the core.
type Service struct {
	Catalog   *Catalog
	Cache     Cache
	Stages    Stages
	Images    ImageSource
	Defaults  limits.Set
	Maximums  limits.Set
	MaxSource int64
	// MaxCollect bounds a request's collect_bytes.
	MaxCollect int64
	// MaxTests bounds a request's tests; MaxResponse what their results
	// keep of outputs and files (Request.OutputBudget).
	MaxTests    int
	MaxResponse int64
	// MaxArtifact bounds a compile's output (Request.MaxArtifact).
	MaxArtifact int64
	// ArtifactDir holds compile outputs on disk while their requests run
	// (Request.ArtifactDir); the daemon's own, emptied at its start.
	ArtifactDir string
	// Pool bounds what all requests in progress keep (Request.Pool).
	Pool   *OutputPool
	Logger *slog.Logger

	mu       sync.Mutex
	versions map[string]string // language and image id -> detected version
}

// Call is one language-mode request with what the caller's admission
// settled: its fairness key, its observer and its token's caps.
type Call struct {
	Key      string
	Observer execution.Observer
	Caps     limits.Partial
	// Events follow the stages of a streaming answer (nil: none).
	Events Events
	// Stdin, when set, is the run's input as a client sends it (not for
	// tests, which have their own).
	Stdin io.Reader
	// Network is the run's and the tests' egress (nil: none).
	Network *execution.Network
	// TTY and Control, when set, are the run's terminal and a client's
	// signals and resizes (not for tests).
	TTY     *runtime.WindowSize
	Control <-chan runtime.Control
	// TestFiles, when set, are the files of the request's tests, one per
	// test (a stored test set's: testsets.Handle.Apply).
	TestFiles []TestFiles
}

// runner binds a call's key and observer to the core for the plan; it
// runs an interactive test's two stages together when the core can
// (StagesTogether).
type runner struct {
	s    Stages
	call Call
}

func (r runner) RunStage(ctx context.Context, st execution.Stage) (*execution.Output, error) {
	return r.s.Run(ctx, r.call.Key, st, r.call.Observer)
}

// unavailable is a catalog language whose image can't be had: of class
// ErrUnknown (errdefs.ErrNotFound), which the API answers unknown_language.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnknown, fmt.Sprintf(format, args...))
}

func (s *Service) lookup(name string) (*Language, error) {
	if s.Catalog == nil || len(s.Catalog.Languages) == 0 {
		return nil, fmt.Errorf("%w: no languages are configured on this daemon", ErrUnknown)
	}
	return s.Catalog.Lookup(name)
}

// Execute runs a language-mode request.
func (s *Service) Execute(ctx context.Context, call Call, req *api.ExecuteRequest) (*api.LanguageResponse, *Language, error) {
	lang, err := s.lookup(req.Language)
	if err != nil {
		return nil, nil, err
	}
	if req.Image != "" {
		// An image built from the language's (POST /v1/images/build, with
		// packages added): the language's commands, that image's files.
		// Only an image in the store: a request never makes the daemon pull.
		if _, err := s.Images.Get(req.Image); err != nil {
			if errors.Is(err, images.ErrNotFound) {
				err = &execution.UnknownImageError{Name: req.Image}
			}
			return nil, lang, err
		}
		over := *lang
		over.Image = req.Image
		lang = &over
	}
	plan, err := s.plan(ctx, call, lang, req)
	if err != nil {
		return nil, lang, err
	}
	started := time.Now()
	out, err := Execute(ctx, runner{s.Stages, call}, s.Cache, plan)
	if err != nil {
		return nil, lang, err
	}
	s.log().Info("language execution", "language", lang.Name, "version", plan.Version, "status", out.Status,
		"tests", len(out.Tests), "ms", time.Since(started).Milliseconds())
	return &api.LanguageResponse{
		Language: lang.Name, Version: plan.Version, Status: out.Status,
		Compile: out.Compile, CheckerCompile: out.CheckerCompile, Run: out.Run, Tests: out.Tests, Summary: out.Summary,
		Groups: out.Groups, Score: out.Score, MaxScore: out.MaxScore,
	}, lang, nil
}

// plan checks the request and settles its files, limits and version.
func (s *Service) plan(ctx context.Context, call Call, lang *Language, req *api.ExecuteRequest) (*Request, error) {
	files, err := s.checkRequest(req)
	if err != nil {
		return nil, err
	}
	if err := checkCompileOptions(lang, req.CompileOptions); err != nil {
		return nil, err
	}
	runLimits, compileLimits, err := s.limits(call, lang, req)
	if err != nil {
		return nil, err
	}
	copyOut, err := execution.ParseCopyOut(req.Collect, req.CollectBytes, s.MaxCollect)
	if err != nil {
		return nil, err
	}
	version, img, err := s.resolve(ctx, call.Key, lang, req.Version)
	if err != nil {
		return nil, err
	}
	plan := &Request{Language: lang, Version: version, ImageID: img.ID, Files: files, Args: req.Args,
		Stdin: []byte(req.Stdin), Limits: runLimits, CompileLimits: compileLimits, CompileOptions: req.CompileOptions, CopyOut: copyOut,
		Events: call.Events, StdinStream: call.Stdin, TTY: call.TTY, Control: call.Control, Network: call.Network, OutputBudget: s.MaxResponse, Pool: s.Pool, MaxArtifact: s.MaxArtifact, ArtifactDir: s.ArtifactDir}
	if err := s.planJudging(ctx, call, req, plan); err != nil {
		return nil, err
	}
	for i, f := range call.TestFiles[:min(len(call.TestFiles), len(plan.Tests))] { // a stored test set's (Call.TestFiles)
		plan.Tests[i].StdinFile, plan.Tests[i].ExpectedFile = f.Input, f.Answer
	}
	if plan.Interactor, err = s.interactor(ctx, call, req); err != nil {
		return nil, err
	}
	return plan, nil
}

func (s *Service) checkRequest(req *api.ExecuteRequest) ([]rootfs.File, error) {
	if len(req.Cmd) > 0 {
		return nil, errdefs.Invalidf(`"cmd" belongs to raw mode; a language request sends "files" and "args"`)
	}
	if len(req.Files) == 0 {
		return nil, errdefs.Invalidf(`"files" is required in language mode; the first file is the main file`)
	}
	if s.MaxTests > 0 && len(req.Tests) > s.MaxTests {
		return nil, errdefs.Invalidf(`%d "tests": this daemon runs at most %d in one request (max_tests)`, len(req.Tests), s.MaxTests)
	}
	files, err := s.sources(req.Files)
	if err != nil {
		return nil, err
	}
	for _, a := range req.Args {
		if strings.ContainsRune(a, 0) {
			return nil, errdefs.Invalidf(`"args" must not contain NUL characters`)
		}
	}
	if len(req.Env) > 0 {
		return nil, errdefs.Invalidf(`"env" is not available in language mode; the catalog sets the environment`)
	}
	return files, nil
}

// sources decodes a program's files, the first being its main file, each
// within the source limit.
func (s *Service) sources(in []api.File) ([]rootfs.File, error) {
	if in[0].Name == "" {
		return nil, errdefs.Invalidf("the main file (the first of \"files\") has an empty name")
	}
	files, err := execution.DecodeFiles(in)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if int64(len(f.Data)) > s.MaxSource {
			return nil, errdefs.Newf(errdefs.ErrTooLarge, "file %q is larger than the %d-byte source limit", f.Name, s.MaxSource)
		}
	}
	return files, nil
}

// limits settles the run and compile limits: the daemon's defaults, the
// catalog's, the request's, each capped by the maximums, then lowered to
// the caller's caps (before the plan writes {memory} into argv).
func (s *Service) limits(call Call, lang *Language, req *api.ExecuteRequest) (run, compile limits.Set, err error) {
	if run, err = s.runLimits(call, lang, req.Limits, "limits"); err != nil {
		return run, compile, err
	}
	compile, err = s.compileLimits(call, lang, req.CompileLimits, "compile_limits")
	return run, compile, err
}

// runLimits settles a run's limits (the program's, or a checker's) from
// what field asks.
func (s *Service) runLimits(call Call, lang *Language, ask *api.Limits, field string) (limits.Set, error) {
	p, err := limits.FromAPI(ask, field)
	if err != nil {
		return limits.Set{}, err
	}
	base := lang.RunLimits().Over(s.Defaults).Capped(s.Maximums)
	set, err := limits.Resolve(p, base, s.Maximums, field)
	return set.Capped(call.Caps.Over(s.Maximums)), err
}

// compileLimits settles a compile's limits likewise.
func (s *Service) compileLimits(call Call, lang *Language, ask *api.Limits, field string) (limits.Set, error) {
	p, err := limits.FromAPI(ask, field)
	if err != nil {
		return limits.Set{}, err
	}
	base := compileDefaults().Then(lang.BuildLimits()).Over(s.Defaults).Capped(s.Maximums)
	set, err := limits.Resolve(p, base, s.Maximums, field)
	return set.Capped(call.Caps.Over(s.Maximums)), err
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Base is what a session sandbox takes from a language: its image, its
// toolchain version and its environment.
type Base struct {
	Name, Version, Image string
	Env                  []string
	// Limits are the catalog's run limits of the language (a JVM's
	// memory, say), to lay over the daemon's defaults.
	Limits limits.Partial
}

// SessionBase settles a language (and, if given, its version) for a
// session sandbox, with the same errors as Execute: unknown_language for
// a name or version this daemon does not have.
func (s *Service) SessionBase(ctx context.Context, key, name, wantVersion string) (*Base, error) {
	lang, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	version, img, err := s.resolve(ctx, key, lang, wantVersion)
	if err != nil {
		return nil, err
	}
	return &Base{Name: lang.Name, Version: version, Image: img.Name, Env: lang.Env, Limits: lang.RunLimits()}, nil
}

// resolve finds lang's image and its version, which must match want (any
// version when empty), with unknown_language errors for what this daemon
// does not have.
func (s *Service) resolve(ctx context.Context, key string, lang *Language, want string) (string, *images.Image, error) {
	version, img, err := s.version(ctx, key, lang)
	if err != nil {
		if errors.Is(err, images.ErrNotFound) || errors.Is(err, images.ErrUnavailable) {
			return "", nil, unavailable("language %s is in the catalog but its image %s is not available", lang.Name, lang.Image)
		}
		return "", nil, err
	}
	if !VersionMatches(want, version) {
		return "", nil, fmt.Errorf("%w: %s version %q is not available; this daemon has %s %s",
			ErrUnknown, lang.Name, want, lang.Name, version)
	}
	return version, img, nil
}

// Bounds of compile_options.
const (
	maxCompileOptions     = 64
	maxCompileOptionBytes = 4096
)

// checkCompileOptions refuses options for a language that compiles
// nothing, and options no command line should carry.
func checkCompileOptions(lang *Language, opts []string) error {
	switch {
	case len(opts) == 0:
		return nil
	case !lang.Compiled():
		return errdefs.Invalidf(`"compile_options": %s is not compiled`, lang.Name)
	case len(opts) > maxCompileOptions:
		return errdefs.Invalidf(`"compile_options": at most %d`, maxCompileOptions)
	}
	for _, o := range opts {
		if o == "" || len(o) > maxCompileOptionBytes || strings.ContainsRune(o, 0) {
			return errdefs.Invalidf(`"compile_options": %q: each is 1 to %d bytes, without NUL`, o, maxCompileOptionBytes)
		}
	}
	return nil
}
