// Package daemon wires the long-running sandboxd together: it locks the run
// dir, recovers from a crashed predecessor, opens the image store, listens
// on the Unix socket, serves the API and shuts down gracefully.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/build"
	"github.com/sandboxd/sandboxd/compat"
	"github.com/sandboxd/sandboxd/compilecache"
	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/pool"
	"github.com/sandboxd/sandboxd/preflight"
	"github.com/sandboxd/sandboxd/queue"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/server"
	"github.com/sandboxd/sandboxd/session"
	"github.com/sandboxd/sandboxd/testsets"
)

// SandboxUID and SandboxGID run every program the daemon starts.
const SandboxUID, SandboxGID = 65534, 65534

// Run serves until ctx ends (SIGTERM/SIGINT in the CLI), then stops
// accepting, lets in-flight runs finish within the grace period, kills what
// remains and cleans up.
func Run(ctx context.Context, cfg *config.Resolved, version string, log *slog.Logger) error {
	d := &daemon{cfg: cfg, version: version, log: log}
	// However Run ends (an error in open or serve, a panic, a clean stop
	// after shutdown), what was acquired is released, newest first.
	defer d.close()
	if err := d.open(ctx); err != nil {
		return err
	}
	if err := d.serve(ctx); err != nil {
		return err
	}
	d.shutdown()
	return nil
}

// daemon is one sandboxd from open to shutdown: what open built, what
// serve started, and the cleanups of both.
type daemon struct {
	cfg     *config.Resolved
	version string
	log     *slog.Logger

	engine   *runtime.Engine
	lns      *listeners
	acc      *server.Access
	auditLog *audit.Log
	warm     *pool.Pool[*runtime.Sandbox]
	core     *execution.Core
	sessions *session.Manager
	srv      *server.Server
	preload  *images.Preloader  // [images] preload, run by serve
	forward  *server.Forwarding // [cluster]; nil without pod_name
	draining atomic.Bool        // set by shutdown: not ready any more

	httpSrv    *http.Server
	metricsSrv *http.Server // nil without metrics_listen
	killRuns   context.CancelFunc

	// undo holds the cleanups of what was acquired, in the order it was
	// acquired; close runs them backwards, as one function's defers would.
	undo []func()
}

// onClose registers f to run at close, before every cleanup registered
// earlier.
func (d *daemon) onClose(f func()) { d.undo = append(d.undo, f) }

// close runs the registered cleanups, newest first: kill the runs' context,
// close the audit log, close the listeners, release the sandbox state dir
// and, at the very end, the run-dir lock.
func (d *daemon) close() {
	for i := len(d.undo) - 1; i >= 0; i-- {
		d.undo[i]()
	}
	d.undo = nil
}

// open acquires, in this order: the run-dir lock, the sandbox state dir,
// the engine (recovering what an earlier instance left), the image store,
// the language catalog, the compile cache and the artifact directory, the
// listeners, access control
// and the audit log; then it builds the serving side on them (assemble).
func (d *daemon) open(ctx context.Context) error {
	cfg, log := d.cfg, d.log
	for _, dir := range []string{cfg.RunDir, cfg.StateDir, filepath.Dir(cfg.Socket)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	// Before anything is acquired: a daemon given too few privileges (in a
	// container, most often) stops here with one line naming what is missing.
	if err := preflight.Check(preflight.Options{UserNS: !cfg.NoUserNS, ProbeDir: cfg.RunDir}); err != nil {
		return err
	}
	unlock, err := lockRunDir(cfg.RunDir)
	if err != nil {
		return err
	}
	d.onClose(unlock)

	stateDir, releaseState, err := sandboxStateDir(cfg.RunDir, log)
	if err != nil {
		return err
	}
	// Registered before everything that uses the state dir, so released
	// after all of it, the engine's final cleanup in shutdown included.
	d.onClose(releaseState)
	if d.engine, err = openEngine(ctx, cfg, stateDir, log); err != nil {
		return err
	}
	store, err := images.Open(filepath.Join(cfg.StateDir, "images"), images.Options{Logger: log, Registries: cfg.Images.Registries})
	if err != nil {
		return err
	}
	d.preload = images.NewPreloader(store, preloadWants(cfg), log)
	catalog, err := loadCatalog(cfg.Catalog, log)
	if err != nil {
		return err
	}
	cache, err := compilecache.Open(filepath.Join(cfg.StateDir, "compile-cache"), cfg.CompileCacheBytes, log)
	if err != nil {
		return fmt.Errorf("compile cache: %w", err)
	}
	artifacts, err := openArtifactDir(cfg.StateDir)
	if err != nil {
		return err
	}
	ts := cfg.Testsets
	sets, err := testsets.Open(ts.Dir, testsets.Limits{MaxBytes: ts.MaxBytes, MaxTests: ts.MaxTests,
		MaxOwnerBytes: ts.MaxOwnerBytes, MaxTotalBytes: ts.MaxTotal}, log)
	if err != nil {
		return err
	}
	if d.lns, err = openListeners(cfg, log); err != nil { // listen.go: unix, tcp, TLS, socket activation
		return err
	}
	d.onClose(d.lns.close)
	if d.acc, err = access(cfg, d.lns); err != nil {
		return err
	}
	if cfg.AuditLog != "" {
		if d.auditLog, err = audit.Open(cfg.AuditLog, 4096, log); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		d.onClose(func() { d.auditLog.Close(5 * time.Second) })
	}
	if d.forward, err = forwarding(cfg); err != nil { // cluster.go
		return err
	}
	d.assemble(store, catalog, cache, artifacts, sets)
	return nil
}

// openArtifactDir empties and returns <state>/artifacts, where requests
// keep their compile's output on disk while their tests run (see
// languages.Request.ArtifactDir): what is there now is an earlier
// instance's, whose requests are gone. It sits beside the compile cache,
// on the same filesystem, so that the cache takes and gives files as hard
// links rather than copies.
func openArtifactDir(stateDir string) (string, error) {
	dir := filepath.Join(stateDir, "artifacts")
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("emptying %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	return dir, nil
}

// openEngine starts the sandbox engine with its state in stateDir and
// removes what an earlier instance left behind (a failure there is only
// logged).
func openEngine(ctx context.Context, cfg *config.Resolved, stateDir string, log *slog.Logger) (*runtime.Engine, error) {
	ecfg := runtime.EngineConfig{RunDir: stateDir, CgroupParent: cfg.CgroupParent, NoUserNamespace: cfg.NoUserNS, NoReuse: cfg.NoReuse}
	if cfg.UsernsRange != "" {
		ids, err := runtime.ParseIDRange(cfg.UsernsRange)
		if err != nil {
			return nil, fmt.Errorf("userns_range: %w", err)
		}
		ecfg.IDs = ids
	}
	engine, err := runtime.NewEngine(ecfg)
	if err != nil {
		return nil, err
	}
	if err := engine.CheckReachable(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	rec, err := engine.Recover(ctx)
	if err != nil {
		log.Warn("recovering from an earlier instance", "err", err)
	}
	if rec != (runtime.Recovered{}) {
		log.Info("removed what an earlier instance left", "sandboxes", rec.Sandboxes, "cgroups", rec.Cgroups)
	}
	return engine, nil
}

// assemble builds the serving side on what open acquired: the warm pool,
// the admission queue, the execution core, the language service (only with
// a catalog) and the API server.
func (d *daemon) assemble(store *images.Store, catalog *languages.Catalog, cache *compilecache.Cache, artifacts string, sets *testsets.Store) {
	cfg, log := d.cfg, d.log
	// Parked sandboxes are built with the maximums: a request may only
	// lower what a sandbox was built with (rlimits set at build are hard).
	d.warm = pool.New(d.engine, pool.Options{
		MaxParked: cfg.PoolSize, MaxMemory: cfg.PoolMemory, ParkedCost: pool.ParkedCost,
		Limits: cfg.Maximums, Idle: cfg.PoolIdle, Logger: log,
	})
	q := queue.New(cfg.Concurrency, cfg.QueueLength)
	proxy := egress.New(cfg.Network, log)
	d.core = execution.New(execution.Options{Images: store, Slots: q, Sandboxes: execution.FromBuilder(d.warm),
		UID: SandboxUID, GID: SandboxGID, Logger: log, Egress: proxy})
	// A nil interface, never a nil *Service in one: language mode is off.
	var langs server.Languages
	if catalog != nil {
		langs = &languages.Service{Catalog: catalog, Cache: cache, Stages: d.core, Images: store,
			Defaults: cfg.Defaults, Maximums: cfg.Maximums, MaxSource: cfg.MaxSource, MaxCollect: cfg.MaxCollect,
			MaxTests: cfg.MaxTests, MaxResponse: cfg.MaxResponse,
			Pool: languages.NewOutputPool(cfg.MaxPending), MaxArtifact: cfg.MaxArtifact, ArtifactDir: artifacts, Logger: log}
	}
	d.sessions = session.New(session.Options{Engine: d.engine, Images: store, Slots: q, UID: SandboxUID, GID: SandboxGID,
		MaxPerUser: cfg.MaxSessionsPerUser, MaxSessions: cfg.MaxSessions, Memory: cfg.SessionMemory,
		MaxExecs: cfg.MaxExecsPerSandbox, Egress: proxy, Logger: log, Node: cfg.Cluster.PodName})
	reapCtx, stopReaper := context.WithCancel(context.Background())
	go d.sessions.Run(reapCtx)
	d.onClose(stopReaper)
	d.srv = server.New(server.Options{
		Core: d.core, Languages: langs, Host: d.engine, Images: store, Queue: q, Parked: d.warm.Parked, Dropped: d.warm.Drop,
		Slots: cfg.Concurrency, QueueLen: cfg.QueueLength,
		Defaults: cfg.Defaults, Maximums: cfg.Maximums, MaxBody: cfg.MaxBody, MaxCollect: cfg.MaxCollect,
		Logger: log, Version: d.version, Access: d.acc, Audit: d.auditLog,
		UserLimits:   server.UserLimits{Rate: cfg.RateLimit, Burst: cfg.RateBurst, MaxConcurrent: cfg.MaxConcurrentPerUser},
		Sessions:     d.sessions,
		SessionTimes: server.SessionTimes{TTL: cfg.SessionTTL, MaxTTL: cfg.MaxSessionTTL, Idle: cfg.SessionIdle},
		Egress:       proxy,
		Builder: &build.Builder{Engine: d.engine, Images: store, Slots: q, Egress: proxy,
			UID: SandboxUID, GID: SandboxGID, Logger: log},
		BuildLimits: cfg.BuildLimits, BuildLayerBytes: cfg.BuildLayerBytes,
		Forwarding: d.forward,
		Ready:      d.ready, // cluster.go
		Compat:     compatOptions(cfg, catalog),
		Testsets:   sets,
	})
}

// compatOptions are the server's [compat] options; nil when it turns
// nothing on.
func compatOptions(cfg *config.Resolved, catalog *languages.Catalog) *server.CompatOptions {
	c := cfg.Compat
	if !c.Piston && !c.Judge0 {
		return nil
	}
	return &server.CompatOptions{Piston: c.Piston, Judge0: c.Judge0,
		Options: compat.Options{Catalog: catalog, MaxBody: cfg.MaxBody,
			Results: compat.StoreLimits{Keep: c.Judge0Keep, MaxResults: c.Judge0MaxResults, MaxBytes: c.Judge0MaxResultBytes}},
		Anonymous: server.UserLimits{Rate: c.AnonymousRate, Burst: c.AnonymousBurst, MaxConcurrent: c.AnonymousMaxConcurrent},
	}
}

// serve serves the API on every listener and metrics on metrics_listen,
// tells systemd it is ready, and returns nil when ctx ends or the error of
// the first server that fails. The servers keep running after it returns:
// shutdown stops them.
func (d *daemon) serve(ctx context.Context) error {
	cfg, log := d.cfg, d.log
	// Runs take their context from here, not only from their request, so
	// that the end of the grace period can kill every one of them.
	runCtx, killRuns := context.WithCancel(context.Background())
	d.killRuns = killRuns
	d.onClose(killRuns)
	d.httpSrv = &http.Server{
		Handler:           d.srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second, // slowloris: headers must come promptly
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return runCtx },
		ConnContext:       server.ConnContext, // transport and peer credentials
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, len(d.lns.lns)+1)
	var addrs []string
	for _, ln := range d.lns.lns {
		go func() { served <- d.httpSrv.Serve(ln) }()
		addrs = append(addrs, ln.Addr().Network()+"://"+ln.Addr().String())
	}
	var err error
	if d.metricsSrv, err = serveMetrics(cfg.MetricsAddr, d.srv, served, log); err != nil {
		return err
	}
	engine := d.engine
	log.Info("sandboxd serving", "listen", addrs, "version", d.version, "cgroup", engine.CgroupMode(),
		"cgroup_parent", engine.CgroupParent(), "concurrency", cfg.Concurrency, "queue", cfg.QueueLength,
		"pool", cfg.PoolSize, "userns", engine.UserNamespaces(), "reuse", engine.Reuses(),
		"auth", d.acc.Verifier != nil, "require_auth", cfg.RequireAuth, "metrics", cfg.MetricsAddr, "audit", cfg.AuditLog)
	// Serving before the images are in: /v1/healthz answers (the pod is
	// alive) while /v1/readyz says what is still coming.
	go d.preload.Run(runCtx)
	for _, w := range runtime.CounterWarnings(cfg.Concurrency) {
		log.Warn(w)
	}
	_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyReady) // systemd Type=notify; a no-op elsewhere

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
		return nil
	}
}

// shutdown stops accepting, gives in-flight runs the grace period, kills
// what remains, waits for every run, closes the pool and removes what the
// engine still has. close then releases the rest.
func (d *daemon) shutdown() {
	cfg, log, engine := d.cfg, d.log, d.engine
	log.Info("shutting down", "grace_period", cfg.GracePeriod)
	d.draining.Store(true)
	_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyStopping)
	if d.metricsSrv != nil {
		// Metrics stay up while runs drain; closed once shutdown is done.
		defer d.metricsSrv.Close()
	}
	grace, cancel := context.WithTimeout(context.Background(), cfg.GracePeriod)
	defer cancel()
	if err := d.httpSrv.Shutdown(grace); err != nil {
		log.Warn("grace period over: killing the remaining runs")
		d.killRuns()
		closing, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.httpSrv.Shutdown(closing)
		_ = d.httpSrv.Close()
	}
	// Session sandboxes end with the daemon: nothing of them survives it.
	d.sessions.Close()
	d.core.Wait()
	d.warm.Close()
	if rec, err := engine.Recover(context.Background()); err != nil || rec != (runtime.Recovered{}) {
		log.Info("final cleanup", "sandboxes", rec.Sandboxes, "cgroups", rec.Cgroups, "err", err)
	}
	engine.RemoveCgroupParent()
	log.Info("stopped")
}

// loadCatalog reads the language catalog. The default path may be absent
// (language mode is then off); a configured one must load.
func loadCatalog(path string, log *slog.Logger) (*languages.Catalog, error) {
	if path == "" {
		return nil, nil
	}
	c, err := languages.Load(path)
	if errors.Is(err, os.ErrNotExist) && path == config.Default().Catalog {
		log.Warn("no language catalog: language mode is off", "path", path)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	log.Info("language catalog", "path", path, "languages", len(c.Languages))
	return c, nil
}

// serveMetrics serves GET /metrics and the probes (server.OpsHandler),
// without authentication, on addr (metrics_listen) when it is set.
func serveMetrics(addr string, srv *server.Server, served chan<- error, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	hs := &http.Server{Handler: srv.OpsHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			served <- fmt.Errorf("metrics: %w", err)
		}
	}()
	return hs, nil
}

// lockRunDir makes sure one daemon at a time owns the run dir: recovery
// removes every sandbox it finds there, which is only right for the owner.
func lockRunDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "sandboxd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking run dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another sandboxd is already running with run dir %s", dir)
		}
		return nil, fmt.Errorf("locking run dir: %w", err)
	}
	return func() { f.Close() }, nil
}

func listenUnix(path string, mode os.FileMode, group string) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("socket path %s exists and is not a socket", path)
		}
		// A socket left by a dead daemon (we hold the run-dir lock).
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket mode: %w", err)
	}
	if group != "" {
		gid, err := lookupGroup(group)
		if err != nil {
			ln.Close()
			return nil, err
		}
		if err := os.Chown(path, 0, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("socket group: %w", err)
		}
	}
	return ln, nil
}

func lookupGroup(group string) (int, error) {
	if gid, err := strconv.Atoi(group); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: %w", group, err)
	}
	return strconv.Atoi(g.Gid)
}
