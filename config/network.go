package config

import (
	"fmt"
	"net/netip"
	"net/url"

	"github.com/sandboxd/sandboxd/internal/netrule"
	"github.com/sandboxd/sandboxd/internal/units"
)

// Network is the [network] section: what sandboxes may reach through the
// daemon's egress proxy (docs/api.md, "Network"). File only, no flags.
type Network struct {
	// Allowed bounds every request's network.allow: host, host:port or
	// *.domain[:port]. Empty (the default): egress is off.
	Allowed []string `toml:"allowed"`
	// AllowedPrivate are ip:port pairs the proxy may reach although they
	// are not public (an internal mirror).
	AllowedPrivate []string `toml:"allowed_private"`
	MaxConnections int      `toml:"max_connections"`
	BytesPerRun    string   `toml:"bytes_per_run"`
	// Rate is bytes per second, both directions together, per run.
	Rate string `toml:"rate"`
	// DNS is the host:port of the DNS server the proxy asks; empty: the
	// host's resolver.
	DNS string `toml:"dns"`
}

func defaultNetwork() Network {
	return Network{MaxConnections: 16, BytesPerRun: "256MiB", Rate: "10MiB"}
}

// resolveNetwork checks [network] into the proxy's configuration.
func (c Config) resolveNetwork(r *Resolved) []error {
	var errs []error
	n := c.Network
	var err error
	if r.Network.Allowed, err = netrule.ParseList(n.Allowed); err != nil {
		errs = append(errs, fmt.Errorf("[network] allowed %w", err))
	}
	for _, s := range n.AllowedPrivate {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || ap.Port() == 0 {
			errs = append(errs, fmt.Errorf("[network] allowed_private %q: want ip:port (10.0.0.5:3142, [fd00::5]:3142)", s))
			continue
		}
		r.Network.AllowedPrivate = append(r.Network.AllowedPrivate, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	if n.MaxConnections <= 0 {
		errs = append(errs, fmt.Errorf("[network] max_connections %d: must be positive", n.MaxConnections))
	}
	r.Network.MaxConnections = n.MaxConnections
	if r.Network.BytesPerRun, err = units.ParseSize(n.BytesPerRun); err != nil || r.Network.BytesPerRun <= 0 {
		errs = append(errs, fmt.Errorf("[network] bytes_per_run %q: must be a positive size", n.BytesPerRun))
	}
	if r.Network.Rate, err = units.ParseSize(n.Rate); err != nil || r.Network.Rate <= 0 {
		errs = append(errs, fmt.Errorf("[network] rate %q: must be a positive size (bytes per second)", n.Rate))
	}
	if n.DNS != "" {
		if _, err := netip.ParseAddrPort(n.DNS); err != nil {
			errs = append(errs, fmt.Errorf("[network] dns %q: want ip:port", n.DNS))
		}
	}
	r.Network.DNS = n.DNS
	return errs
}

// Packages is the [packages] section: package indexes or mirrors that
// every sandbox with a network policy is pointed at and allowed to reach
// (docs/api.md, "Network").
type Packages struct {
	PipIndexURL string `toml:"pip_index_url"`
	NPMRegistry string `toml:"npm_registry"`
	GoProxy     string `toml:"goproxy"`
}

// resolvePackages adds [packages] to the proxy's configuration: each URL's
// host to what sandboxes may reach, and its variable to their environment.
func (c Config) resolvePackages(r *Resolved) []error {
	var errs []error
	for _, p := range []struct{ key, value, env string }{
		{"pip_index_url", c.Packages.PipIndexURL, "PIP_INDEX_URL"},
		{"npm_registry", c.Packages.NPMRegistry, "npm_config_registry"},
		{"goproxy", c.Packages.GoProxy, "GOPROXY"},
	} {
		if p.value == "" {
			continue
		}
		u, err := url.Parse(p.value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("[packages] %s %q: want an http:// or https:// URL", p.key, p.value))
			continue
		}
		e, err := netrule.ParseEntry(u.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("[packages] %s %q: %w", p.key, p.value, err))
			continue
		}
		r.Network.Packages.Hosts = append(r.Network.Packages.Hosts, e)
		r.Network.Packages.Env = append(r.Network.Packages.Env, p.env+"="+p.value)
		if p.key == "pip_index_url" && u.Scheme == "http" {
			// pip ignores a plain-HTTP index unless it is trusted.
			r.Network.Packages.Env = append(r.Network.Packages.Env, "PIP_TRUSTED_HOST="+u.Hostname())
		}
	}
	return errs
}
