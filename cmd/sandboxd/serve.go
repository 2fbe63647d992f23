package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/runtime"
)

// version is set at build time (-X main.version=...).
var version = "dev"

// configFlag ties one flag to one config key, so that every key has a flag.
type configFlag struct {
	name, usage string
	set         func(*config.Config, string) error
}

func str(dst func(*config.Config) *string) func(*config.Config, string) error {
	return func(c *config.Config, v string) error { *dst(c) = v; return nil }
}

func integer(dst func(*config.Config) *int) func(*config.Config, string) error {
	return func(c *config.Config, v string) error {
		n, err := strconv.Atoi(v)
		*dst(c) = n
		return err
	}
}

func configFlags() []configFlag {
	flags := []configFlag{
		{"socket", "Unix socket to listen on", str(func(c *config.Config) *string { return &c.Socket })},
		{"socket-group", "group that owns the socket (name or gid)", str(func(c *config.Config) *string { return &c.SocketGroup })},
		{"socket-mode", "socket permissions (octal)", str(func(c *config.Config) *string { return &c.SocketMode })},
		{"state-dir", "persistent state (images)", str(func(c *config.Config) *string { return &c.StateDir })},
		{"run-dir", "sandbox state (use tmpfs)", str(func(c *config.Config) *string { return &c.RunDir })},
		{"cgroup-parent", "cgroup under which sandboxes nest", str(func(c *config.Config) *string { return &c.CgroupParent })},
		{"concurrency", "sandboxes running at once", integer(func(c *config.Config) *int { return &c.Concurrency })},
		{"queue-length", "requests waiting beyond that; more get 503", integer(func(c *config.Config) *int { return &c.QueueLength })},
		{"max-body", "largest request body", str(func(c *config.Config) *string { return &c.MaxBody })},
		{"grace-period", "how long in-flight runs may finish on SIGTERM", str(func(c *config.Config) *string { return &c.GracePeriod })},
		{"log-format", "text or json", str(func(c *config.Config) *string { return &c.LogFormat })},
		{"log-level", "debug, info, warn or error", str(func(c *config.Config) *string { return &c.LogLevel })},
		{"catalog", "language catalog file", str(func(c *config.Config) *string { return &c.Catalog })},
		{"max-source", "largest source file in language mode (413 beyond)", str(func(c *config.Config) *string { return &c.MaxSource })},
		{"max-collect-bytes", "largest collect_bytes a request may ask for", str(func(c *config.Config) *string { return &c.MaxCollect })},
		{"max-tests", "most tests in one language request (400 beyond)", integer(func(c *config.Config) *int { return &c.MaxTests })},
		{"max-artifact-bytes", "the most a compile may leave in /work: copied back to disk and cached by the daemon (413 beyond)", str(func(c *config.Config) *string { return &c.MaxArtifact })},
		{"max-pending-output-bytes", "outputs and files all language requests in progress keep at once; later tests' are dropped", str(func(c *config.Config) *string { return &c.MaxPending })},
		{"max-response-bytes", "outputs and files one language request keeps across its tests; later tests' are dropped", str(func(c *config.Config) *string { return &c.MaxResponse })},
		{"compile-cache", "size of the on-disk compile cache", str(func(c *config.Config) *string { return &c.CompileCache })},
		{"pool-size", "most sandboxes kept built ahead of time (0: no warm pool)", integer(func(c *config.Config) *int { return &c.PoolSize })},
		{"pool-memory", "host memory the warm pool may hold", str(func(c *config.Config) *string { return &c.PoolMemory })},
		{"pool-idle", "an image's parked sandboxes go after this long without requests", str(func(c *config.Config) *string { return &c.PoolIdle })},
		{"no-userns", "true: no user namespace per sandbox", func(c *config.Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.NoUserNS = b
			return err
		}},
		{"no-reuse", "true: every run in a sandbox of its own (no sandbox serves a second run)", func(c *config.Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.NoReuse = b
			return err
		}},
		{"userns-range", "START:SIZE host ids for user namespaces (default: /etc/subuid's sandboxd entry)", str(func(c *config.Config) *string { return &c.UsernsRange })},
	}
	flags = append(flags, sessionFlags()...)
	flags = append(flags, accessFlags()...)   // serve_access.go
	flags = append(flags, clusterFlags()...)  // serve_cluster.go
	flags = append(flags, testsetsFlags()...) // serve_cluster.go
	for _, side := range []struct {
		prefix string
		get    func(*config.Config) *config.Limits
	}{
		{"default", func(c *config.Config) *config.Limits { return &c.Defaults }},
		{"max", func(c *config.Config) *config.Limits { return &c.Maximums }},
	} {
		flags = append(flags, configLimitFlags(side.prefix, side.get)...)
	}
	return flags
}

func sessionFlags() []configFlag {
	return []configFlag{
		{"session-ttl", "a session sandbox's life when its request sets no ttl_ms", str(func(c *config.Config) *string { return &c.SessionTTL })},
		{"max-session-ttl", "the longest ttl_ms a session may ask for", str(func(c *config.Config) *string { return &c.MaxSessionTTL })},
		{"session-idle-timeout", "a session ends after this long without calls, unless its request sets idle_timeout_ms", str(func(c *config.Config) *string { return &c.SessionIdle })},
		{"max-sessions-per-user", "session sandboxes one user may hold", integer(func(c *config.Config) *int { return &c.MaxSessionsPerUser })},
		{"max-sessions", "session sandboxes the daemon may hold (0: bounded by --session-memory only)", integer(func(c *config.Config) *int { return &c.MaxSessions })},
		{"session-memory", "sum of the session sandboxes' memory limits", str(func(c *config.Config) *string { return &c.SessionMemory })},
		{"max-execs-per-sandbox", "execs in flight in one session sandbox", integer(func(c *config.Config) *int { return &c.MaxExecsPerSandbox })},
	}
}

func serveCommand() *cli.Command {
	cf := configFlags()
	flags := []cli.Flag{&cli.StringFlag{Name: "config", Usage: "TOML configuration file (flags override it)"},
		&cli.BoolFlag{Name: "check-config", Usage: "check the configuration file and flags, say so, and exit (the files they name are not read)"}}
	for _, f := range cf {
		flags = append(flags, cliFlag(f))
	}
	return &cli.Command{
		Name:         "serve",
		Usage:        "run the daemon: the HTTP API on a Unix socket",
		Flags:        flags,
		OnUsageError: oneLineUsageError,
		Action: func(c *cli.Context) error {
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			for _, f := range cf {
				if c.IsSet(f.name) {
					if err := f.set(&cfg, flagValue(c, f.name)); err != nil {
						return fmt.Errorf("--%s %q: %w", f.name, flagValue(c, f.name), err)
					}
				}
			}
			resolved, err := cfg.Resolve()
			if err != nil {
				return err
			}
			if c.Bool("check-config") {
				fmt.Fprintln(c.App.Writer, "configuration ok")
				return nil
			}
			log, err := newLogger(cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			// Once per daemon instead of once per sandbox: run from a sealed
			// copy of the binary, which libcontainer then uses as it is.
			if err := runtime.ReexecSealed(); err != nil {
				log.Warn("running unsealed: libcontainer will seal a copy per sandbox", "err", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
			defer stop()
			return daemon.Run(ctx, resolved, version, log)
		},
	}
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: expected debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}

func oneLineUsageError(_ *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w (see --help)", err)
}

// configLimitFlags are --PREFIX-KEY for every limit of the table (package
// limits), KEY its config key with dashes.
func configLimitFlags(prefix string, get func(*config.Config) *config.Limits) []configFlag {
	var flags []configFlag
	for _, f := range limits.All() {
		key := f.Config
		flags = append(flags, configFlag{prefix + "-" + strings.ReplaceAll(key, "_", "-"), f.API + ": " + f.Engine,
			func(c *config.Config, text string) error {
				v, err := limits.ParseFlag(key, text)
				if err != nil {
					return err
				}
				if *get(c) == nil {
					*get(c) = config.Limits{}
				}
				(*get(c))[key] = v
				return nil
			}})
	}
	return flags
}
