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
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/compilecache"
	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/pool"
	"github.com/sandboxd/sandboxd/queue"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/server"
)

// SandboxUID and SandboxGID run every program the daemon starts.
const SandboxUID, SandboxGID = 65534, 65534

// Run serves until ctx ends (SIGTERM/SIGINT in the CLI), then stops
// accepting, lets in-flight runs finish within the grace period, kills what
// remains and cleans up.
func Run(ctx context.Context, cfg *config.Resolved, version string, log *slog.Logger) error {
	for _, d := range []string{cfg.RunDir, cfg.StateDir, filepath.Dir(cfg.Socket)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	unlock, err := lockRunDir(cfg.RunDir)
	if err != nil {
		return err
	}
	defer unlock()

	stateDir, releaseState, err := sandboxStateDir(cfg.RunDir, log)
	if err != nil {
		return err
	}
	// Deferred before the engine's cleanup, so it runs after it.
	defer releaseState()
	ecfg := runtime.EngineConfig{RunDir: stateDir, CgroupParent: cfg.CgroupParent, NoUserNamespace: cfg.NoUserNS}
	if cfg.UsernsRange != "" {
		if ecfg.IDs, err = runtime.ParseIDRange(cfg.UsernsRange); err != nil {
			return fmt.Errorf("userns_range: %w", err)
		}
	}
	engine, err := runtime.NewEngine(ecfg)
	if err != nil {
		return err
	}
	if err := engine.CheckReachable(cfg.StateDir); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	rec, err := engine.Recover(ctx)
	if err != nil {
		log.Warn("recovering from an earlier instance", "err", err)
	}
	if rec != (runtime.Recovered{}) {
		log.Info("removed what an earlier instance left", "sandboxes", rec.Sandboxes, "cgroups", rec.Cgroups)
	}
	store, err := images.Open(filepath.Join(cfg.StateDir, "images"), images.Options{Logger: log})
	if err != nil {
		return err
	}
	catalog, err := loadCatalog(cfg.Catalog, log)
	if err != nil {
		return err
	}
	cache, err := compilecache.Open(filepath.Join(cfg.StateDir, "compile-cache"), cfg.CompileCacheBytes, log)
	if err != nil {
		return fmt.Errorf("compile cache: %w", err)
	}
	lns, err := openListeners(cfg, log) // listen.go: unix, tcp, TLS, socket activation
	if err != nil {
		return err
	}
	defer lns.close()
	acc, err := access(cfg, lns)
	if err != nil {
		return err
	}
	var auditLog *audit.Log
	if cfg.AuditLog != "" {
		if auditLog, err = audit.Open(cfg.AuditLog, 4096, log); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		defer auditLog.Close(5 * time.Second)
	}

	// Parked sandboxes are built with the maximums: a request may only
	// lower what a sandbox was built with (rlimits set at build are hard).
	warm := pool.New(engine, pool.Options{
		MaxParked: cfg.PoolSize, MaxMemory: cfg.PoolMemory, ParkedCost: pool.ParkedCost,
		Limits: cfg.Maximums, Idle: cfg.PoolIdle, Logger: log,
	})
	q := queue.New(cfg.Concurrency, cfg.QueueLength)
	core := execution.New(execution.Options{Images: store, Slots: q, Sandboxes: execution.FromBuilder(warm),
		UID: SandboxUID, GID: SandboxGID, Logger: log})
	var langs *languages.Service
	if catalog != nil {
		langs = &languages.Service{Catalog: catalog, Cache: cache, Stages: core, Images: store,
			Defaults: cfg.Defaults, Maximums: cfg.Maximums, MaxSource: cfg.MaxSource, Logger: log}
	}
	srv := server.New(server.Options{
		Core: core, Languages: langs, Host: engine, Images: store, Queue: q, Parked: warm.Parked, Dropped: warm.Drop,
		Slots: cfg.Concurrency, QueueLen: cfg.QueueLength,
		Defaults: cfg.Defaults, Maximums: cfg.Maximums, MaxBody: cfg.MaxBody,
		Logger: log, Version: version, Access: acc, Audit: auditLog,
		UserLimits: server.UserLimits{Rate: cfg.RateLimit, Burst: cfg.RateBurst, MaxConcurrent: cfg.MaxConcurrentPerUser},
	})
	// Runs take their context from here, not only from their request, so
	// that the end of the grace period can kill every one of them.
	runCtx, killRuns := context.WithCancel(context.Background())
	defer killRuns()
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second, // slowloris: headers must come promptly
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return runCtx },
		ConnContext:       server.ConnContext, // transport and peer credentials
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, len(lns.lns)+1)
	var addrs []string
	for _, ln := range lns.lns {
		go func() { served <- httpSrv.Serve(ln) }()
		addrs = append(addrs, ln.Addr().Network()+"://"+ln.Addr().String())
	}
	metricsSrv, err := serveMetrics(cfg.MetricsAddr, srv, served, log)
	if err != nil {
		return err
	}
	log.Info("sandboxd serving", "listen", addrs, "version", version, "cgroup", engine.CgroupMode(),
		"cgroup_parent", engine.CgroupParent(), "concurrency", cfg.Concurrency, "queue", cfg.QueueLength,
		"pool", cfg.PoolSize, "userns", engine.UserNamespaces(),
		"auth", acc.Verifier != nil, "require_auth", cfg.RequireAuth, "metrics", cfg.MetricsAddr, "audit", cfg.AuditLog)
	_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyReady) // systemd Type=notify; a no-op elsewhere

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace_period", cfg.GracePeriod)
	_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyStopping)
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	grace, cancel := context.WithTimeout(context.Background(), cfg.GracePeriod)
	defer cancel()
	if err := httpSrv.Shutdown(grace); err != nil {
		log.Warn("grace period over: killing the remaining runs")
		killRuns()
		closing, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(closing)
		_ = httpSrv.Close()
	}
	core.Wait()
	warm.Close()
	if rec, err := engine.Recover(context.Background()); err != nil || rec != (runtime.Recovered{}) {
		log.Info("final cleanup", "sandboxes", rec.Sandboxes, "cgroups", rec.Cgroups, "err", err)
	}
	engine.RemoveCgroupParent()
	log.Info("stopped")
	return nil
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

// serveMetrics serves GET /metrics, without authentication, on addr
// (metrics_listen) when it is set.
func serveMetrics(addr string, srv *server.Server, served chan<- error, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", srv.MetricsHandler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
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
