// Package config is the daemon's configuration: a TOML file whose every key
// also has a command-line flag. Flags override the file, which overrides
// the built-in defaults.
package config

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sandboxd/sandboxd/internal/units"
	"github.com/sandboxd/sandboxd/runtime"
)

// Config is everything `sandboxd serve` can be told.
type Config struct {
	Socket       string `toml:"socket"`
	SocketGroup  string `toml:"socket_group"`
	SocketMode   string `toml:"socket_mode"`
	StateDir     string `toml:"state_dir"`
	RunDir       string `toml:"run_dir"`
	CgroupParent string `toml:"cgroup_parent"`
	Concurrency  int    `toml:"concurrency"`
	QueueLength  int    `toml:"queue_length"`
	MaxBody      string `toml:"max_body"`
	GracePeriod  string `toml:"grace_period"`
	LogFormat    string `toml:"log_format"`
	LogLevel     string `toml:"log_level"`
	Catalog      string `toml:"catalog"`
	MaxSource    string `toml:"max_source"`
	CompileCache string `toml:"compile_cache"`
	// Warm pool and user namespaces (see README "Speed" and SECURITY.md).
	PoolSize    int    `toml:"pool_size"`
	PoolMemory  string `toml:"pool_memory"`
	PoolIdle    string `toml:"pool_idle"`
	NoUserNS    bool   `toml:"no_userns"`
	UsernsRange string `toml:"userns_range"`
	Defaults    Limits `toml:"defaults"`
	Maximums    Limits `toml:"maximums"`

	// Access and operations (see Access below).
	Listen               []string `toml:"listen"`
	TLSCert              string   `toml:"tls_cert"`
	TLSKey               string   `toml:"tls_key"`
	RequireAuth          bool     `toml:"require_auth"`
	AllowedUIDs          []int    `toml:"allowed_uids"`
	AllowedGIDs          []int    `toml:"allowed_gids"`
	JWTSecretFile        string   `toml:"jwt_secret_file"`
	JWTPublicKeyFile     string   `toml:"jwt_public_key_file"`
	JWTJWKSFile          string   `toml:"jwt_jwks_file"`
	JWTIssuer            string   `toml:"jwt_issuer"`
	JWTAudience          string   `toml:"jwt_audience"`
	RateLimit            float64  `toml:"rate_limit"`
	RateBurst            int      `toml:"rate_burst"`
	MaxConcurrentPerUser int      `toml:"max_concurrent_per_user"`
	AuditLog             string   `toml:"audit_log"`
	MetricsListen        string   `toml:"metrics_listen"`
}

// Limits is a set of run limits as written in the file: sizes with units,
// durations as Go durations.
type Limits struct {
	WallTime string  `toml:"wall_time"`
	CPUTime  string  `toml:"cpu_time"`
	Memory   string  `toml:"memory"`
	Pids     int64   `toml:"pids"`
	CPUs     float64 `toml:"cpus"`
	Output   string  `toml:"output"`
	Tmp      string  `toml:"tmp"`
	Work     string  `toml:"work"`
	FileSize string  `toml:"file_size"`
	Nofile   uint64  `toml:"nofile"`
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Socket:       "/run/sandboxd/sandboxd.sock",
		SocketMode:   "0660",
		StateDir:     "/var/lib/sandboxd",
		RunDir:       "/run/sandboxd",
		Concurrency:  goruntime.NumCPU(),
		QueueLength:  64,
		MaxBody:      "16MiB",
		GracePeriod:  "30s",
		LogFormat:    "text",
		LogLevel:     "info",
		Catalog:      "languages/catalog.toml",
		MaxSource:    "1MiB",
		CompileCache: "1GiB",
		PoolSize:     8,
		PoolMemory:   "256MiB",
		PoolIdle:     "5m",
		RateBurst:    10,
		Defaults: Limits{
			WallTime: "10s", CPUTime: "10s", Memory: "128MiB", Pids: 64, CPUs: 0.5,
			Output: "1MiB", Tmp: "64MiB", Work: "64MiB", FileSize: "16MiB", Nofile: 256,
		},
		Maximums: Limits{
			WallTime: "60s", CPUTime: "60s", Memory: "2GiB", Pids: 1024, CPUs: float64(goruntime.NumCPU()),
			Output: "16MiB", Tmp: "1GiB", Work: "1GiB", FileSize: "1GiB", Nofile: 4096,
		},
	}
}

// Load reads path over the defaults. Unknown keys are an error: a typo
// must not silently leave a limit at its default.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return cfg, fmt.Errorf("config %s: unknown key %q", path, undecoded[0].String())
	}
	return cfg, nil
}

// Resolved is a validated configuration in the types the daemon uses.
type Resolved struct {
	Config
	SocketMode os.FileMode
	MaxBody    int64
	MaxSource  int64
	// CompileCacheBytes bounds the on-disk compile cache.
	CompileCacheBytes int64
	PoolMemory        int64
	PoolIdle          time.Duration
	GracePeriod       time.Duration
	Defaults          runtime.Limits
	Maximums          runtime.Limits
	// Listeners are the parsed listen addresses (default: the socket).
	Listeners []ListenAddr
	// MetricsAddr is the host:port of metrics_listen, or "".
	MetricsAddr string
}

// Resolve validates c and converts its strings.
func (c Config) Resolve() (*Resolved, error) {
	r := &Resolved{Config: c}
	var errs []error
	mode, err := strconv.ParseUint(c.SocketMode, 8, 32)
	if err != nil || mode > 0o777 {
		errs = append(errs, fmt.Errorf("socket_mode %q: expected an octal mode such as 0660", c.SocketMode))
	}
	r.SocketMode = os.FileMode(mode)
	if r.MaxBody, err = units.ParseSize(c.MaxBody); err != nil {
		errs = append(errs, fmt.Errorf("max_body: %w", err))
	}
	if r.MaxSource, err = units.ParseSize(c.MaxSource); err != nil {
		errs = append(errs, fmt.Errorf("max_source: %w", err))
	}
	if r.CompileCacheBytes, err = units.ParseSize(c.CompileCache); err != nil {
		errs = append(errs, fmt.Errorf("compile_cache: %w", err))
	}
	if r.PoolMemory, err = units.ParseSize(c.PoolMemory); err != nil {
		errs = append(errs, fmt.Errorf("pool_memory: %w", err))
	}
	if r.PoolIdle, err = units.ParseDuration(c.PoolIdle); err != nil {
		errs = append(errs, fmt.Errorf("pool_idle: %w", err))
	}
	if c.PoolSize < 0 {
		errs = append(errs, errors.New("pool_size must not be negative (0 turns the pool off)"))
	}
	if r.GracePeriod, err = units.ParseDuration(c.GracePeriod); err != nil {
		errs = append(errs, fmt.Errorf("grace_period: %w", err))
	}
	if c.Concurrency <= 0 {
		errs = append(errs, errors.New("concurrency must be greater than zero"))
	}
	if c.QueueLength < 0 {
		errs = append(errs, errors.New("queue_length must not be negative"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log_format %q: expected text or json", c.LogFormat))
	}
	if c.Socket == "" || c.StateDir == "" || c.RunDir == "" {
		errs = append(errs, errors.New("socket, state_dir and run_dir must be set"))
	}
	errs = append(errs, c.resolveAccess(r)...)
	if r.Defaults, err = c.Defaults.resolve(); err != nil {
		errs = append(errs, fmt.Errorf("defaults: %w", err))
	}
	if r.Maximums, err = c.Maximums.resolve(); err != nil {
		errs = append(errs, fmt.Errorf("maximums: %w", err))
	}
	if len(errs) == 0 {
		if err := r.Defaults.Within(r.Maximums); err != nil {
			errs = append(errs, fmt.Errorf("defaults exceed maximums: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return r, nil
}

// resolve converts l, every field of which must be set.
func (l Limits) resolve() (runtime.Limits, error) {
	return l.Overlay(runtime.Limits{})
}

// Overlay returns base with every field that l sets replaced; empty fields
// keep base's value. It is how a language's limits refine the defaults.
func (l Limits) Overlay(base runtime.Limits) (runtime.Limits, error) {
	out := base
	var err error
	sizes := []struct {
		name string
		in   string
		out  *int64
	}{
		{"memory", l.Memory, &out.MemoryBytes}, {"output", l.Output, &out.OutputBytes},
		{"tmp", l.Tmp, &out.TmpBytes}, {"work", l.Work, &out.WorkBytes}, {"file_size", l.FileSize, &out.FileSizeBytes},
	}
	for _, s := range sizes {
		if s.in == "" {
			continue
		}
		if *s.out, err = units.ParseSize(s.in); err != nil {
			return out, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	durations := []struct {
		name string
		in   string
		out  *time.Duration
	}{{"wall_time", l.WallTime, &out.WallTime}, {"cpu_time", l.CPUTime, &out.CPUTime}}
	for _, d := range durations {
		if d.in == "" {
			continue
		}
		if *d.out, err = units.ParseDuration(d.in); err != nil {
			return out, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	if l.Pids != 0 {
		out.Pids = l.Pids
	}
	if l.CPUs != 0 {
		out.CPUs = l.CPUs
	}
	if l.Nofile != 0 {
		out.OpenFiles = l.Nofile
	}
	return out, out.Validate()
}
