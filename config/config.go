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

	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/internal/units"
	"github.com/sandboxd/sandboxd/limits"
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
	// MaxCollect bounds a request's collect_bytes.
	MaxCollect string `toml:"max_collect_bytes"`
	// MaxTests bounds a language request's tests; MaxResponse bounds the
	// outputs and files a request keeps across its tests, MaxPending those
	// that all requests in progress keep at once.
	MaxTests    int    `toml:"max_tests"`
	MaxResponse string `toml:"max_response_bytes"`
	MaxPending  string `toml:"max_pending_output_bytes"`
	// MaxArtifact bounds a compile's output, which the daemon copies to
	// disk for the runs and caches.
	MaxArtifact  string `toml:"max_artifact_bytes"`
	CompileCache string `toml:"compile_cache"`
	// Warm pool and user namespaces (see README "Speed" and SECURITY.md).
	PoolSize   int    `toml:"pool_size"`
	PoolMemory string `toml:"pool_memory"`
	PoolIdle   string `toml:"pool_idle"`
	NoUserNS   bool   `toml:"no_userns"`
	// NoReuse: every run in a sandbox of its own, never reused
	// (runtime/reuse.go; docs/architecture.md "Reusable sandboxes").
	NoReuse     bool   `toml:"no_reuse"`
	UsernsRange string `toml:"userns_range"`
	Defaults    Limits `toml:"defaults"`
	Maximums    Limits `toml:"maximums"`
	// Images is the [images] section (images.go).
	Images Images `toml:"images"`
	// Network is the [network] section (network.go).
	Network Network `toml:"network"`
	// Packages is the [packages] section (network.go).
	Packages Packages `toml:"packages"`
	// Build is [build]: image builds from recipes (build.go).
	Build Build `toml:"build"`
	// Cluster is the [cluster] section (cluster.go).
	Cluster Cluster `toml:"cluster"`
	// Compat is the [compat] section (compat.go).
	Compat Compat `toml:"compat"`
	// Testsets is the [testsets] section (testsets.go).
	Testsets Testsets `toml:"testsets"`

	// Sessions: sandboxes that live across calls (docs/api.md "Sandboxes").
	SessionTTL         string `toml:"session_ttl"`
	MaxSessionTTL      string `toml:"max_session_ttl"`
	SessionIdle        string `toml:"session_idle_timeout"`
	MaxSessionsPerUser int    `toml:"max_sessions_per_user"`
	MaxSessions        int    `toml:"max_sessions"`
	SessionMemory      string `toml:"session_memory"`
	MaxExecsPerSandbox int    `toml:"max_execs_per_sandbox"`

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

// Limits is a [defaults] or [maximums] section as written in the file:
// the config keys of the limits table (package limits), sizes with units,
// durations as Go durations. A key it lacks keeps the built-in value.
type Limits map[string]any

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
		MaxCollect:   "16MiB",
		MaxTests:     1000,
		MaxResponse:  "16MiB",
		MaxPending:   "128MiB",
		MaxArtifact:  "64MiB",
		CompileCache: "1GiB",
		PoolSize:     8,
		PoolMemory:   "256MiB",
		PoolIdle:     "5m",
		RateBurst:    10,

		SessionTTL:         "30m",
		MaxSessionTTL:      "24h",
		SessionIdle:        "5m",
		MaxSessionsPerUser: 8,
		SessionMemory:      "4GiB",
		MaxExecsPerSandbox: 4,

		Network:  defaultNetwork(),
		Compat:   defaultCompat(),
		Testsets: defaultTestsets(),
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
	SocketMode  os.FileMode
	MaxBody     int64
	MaxSource   int64
	MaxCollect  int64
	MaxResponse int64
	MaxPending  int64
	MaxArtifact int64
	// CompileCacheBytes bounds the on-disk compile cache.
	CompileCacheBytes int64
	PoolMemory        int64
	PoolIdle          time.Duration
	GracePeriod       time.Duration
	Defaults          limits.Set
	Maximums          limits.Set
	// Listeners are the parsed listen addresses (default: the socket).
	Listeners []ListenAddr
	// MetricsAddr is the host:port of metrics_listen, or "".
	MetricsAddr string
	// Sessions' lifetimes and memory quota.
	SessionTTL, MaxSessionTTL, SessionIdle time.Duration
	SessionMemory                          int64
	// Network is the egress proxy's configuration.
	Network egress.Config
	// BuildLimits and BuildLayerBytes bound image builds ([build]).
	BuildLimits     limits.Set
	BuildLayerBytes int64
	// Compat is the [compat] section (compat.go).
	Compat CompatResolved
	// Testsets is the [testsets] section (testsets.go).
	Testsets TestsetsResolved
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
	if r.MaxCollect, err = units.ParseSize(c.MaxCollect); err != nil {
		errs = append(errs, fmt.Errorf("max_collect_bytes: %w", err))
	}
	if r.MaxResponse, err = units.ParseSize(c.MaxResponse); err != nil || r.MaxResponse <= 0 {
		errs = append(errs, fmt.Errorf("max_response_bytes %q: must be a positive size", c.MaxResponse))
	}
	if r.MaxPending, err = units.ParseSize(c.MaxPending); err != nil || r.MaxPending < r.MaxResponse {
		errs = append(errs, fmt.Errorf("max_pending_output_bytes %q: must be a size of at least max_response_bytes", c.MaxPending))
	}
	if r.MaxArtifact, err = units.ParseSize(c.MaxArtifact); err != nil || r.MaxArtifact <= 0 {
		errs = append(errs, fmt.Errorf("max_artifact_bytes %q: must be a positive size", c.MaxArtifact))
	}
	if c.MaxTests <= 0 {
		errs = append(errs, fmt.Errorf("max_tests %d: must be positive", c.MaxTests))
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
	errs = append(errs, c.resolveSessions(r)...)
	errs = append(errs, c.resolveImages()...)
	errs = append(errs, c.resolveNetwork(r)...)
	errs = append(errs, c.resolvePackages(r)...)
	errs = append(errs, c.resolveBuild(r)...)
	errs = append(errs, c.resolveCluster()...)
	errs = append(errs, c.resolveCompat(r)...)
	errs = append(errs, c.resolveTestsets(r)...)
	if r.Defaults, err = c.Defaults.Over(limits.Defaults()); err != nil {
		errs = append(errs, fmt.Errorf("defaults: %w", err))
	}
	if r.Maximums, err = c.Maximums.Over(limits.Maximums()); err != nil {
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

// resolveSessions checks the session keys.
func (c Config) resolveSessions(r *Resolved) []error {
	var errs []error
	var err error
	for _, d := range []struct {
		key, text string
		dst       *time.Duration
	}{{"session_ttl", c.SessionTTL, &r.SessionTTL}, {"max_session_ttl", c.MaxSessionTTL, &r.MaxSessionTTL},
		{"session_idle_timeout", c.SessionIdle, &r.SessionIdle}} {
		if *d.dst, err = units.ParseDuration(d.text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.key, err))
		} else if *d.dst <= 0 {
			errs = append(errs, fmt.Errorf("%s must be greater than zero", d.key))
		}
	}
	if len(errs) == 0 && r.SessionTTL > r.MaxSessionTTL {
		errs = append(errs, errors.New("session_ttl exceeds max_session_ttl"))
	}
	if r.SessionMemory, err = units.ParseSize(c.SessionMemory); err != nil {
		errs = append(errs, fmt.Errorf("session_memory: %w", err))
	}
	if c.MaxSessionsPerUser <= 0 || c.MaxExecsPerSandbox <= 0 || c.MaxSessions < 0 {
		errs = append(errs, errors.New("max_sessions_per_user and max_execs_per_sandbox must be greater than zero, max_sessions not negative (0: bounded by session_memory only)"))
	}
	return errs
}

// Over returns base with every limit l sets replaced, checked.
func (l Limits) Over(base limits.Set) (limits.Set, error) {
	p, err := limits.FromConfig(l, "")
	if err != nil {
		return base, err
	}
	out := p.Over(base)
	return out, out.Validate()
}
