// Package egress is a sandbox's only way out: an HTTP proxy run by the
// daemon, reached from inside the sandbox at 127.0.0.1:ProxyPort on a
// socket the daemon listens on in the sandbox's own network namespace.
// The sandbox keeps loopback only (no veth, no route, no NAT): a direct
// connection to any address fails, and what the proxy connects to is
// decided here:
//
//   - the host asked for (CONNECT authority, or an http:// URL's host)
//     must match the sandbox's allow-list, which the operator's
//     [network] allowed bounds;
//   - the proxy resolves the name itself, once per connection, and dials
//     the addresses of that lookup: every one must be public (not
//     loopback, private, link-local with the cloud metadata services,
//     multicast, the host's own), unless the operator listed that
//     address and port in allowed_private; a name that changes its
//     answer between lookups (DNS rebinding) gains nothing;
//   - connections, bytes and rate are capped per run.
//
// TLS passes through CONNECT untouched: the proxy never sees plaintext.
package egress

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/internal/netrule"
)

// ProxyPort is where the proxy listens inside every sandbox with a policy.
const ProxyPort = 3128

// Config is the operator's [network] section, resolved.
type Config struct {
	// Allowed bounds every request's allow-list; empty: egress is off.
	Allowed netrule.List
	// AllowedPrivate are non-public addresses the proxy may reach anyway
	// (an internal mirror), as ip:port.
	AllowedPrivate []netip.AddrPort
	// MaxConnections open at once, per run.
	MaxConnections int
	// BytesPerRun bounds bytes in plus bytes out, per run.
	BytesPerRun int64
	// Rate bounds bytes per second in both directions together, per run.
	Rate int64
	// DNS is the host:port of the DNS server names are resolved with; ""
	// means the host's resolver.
	DNS string
	// Packages are the operator's package indexes: every policy allows
	// their hosts from the start, and every program with a policy gets
	// their variables.
	Packages Packages
}

// Packages are package indexes or mirrors ([packages]).
type Packages struct {
	Hosts netrule.List
	Env   []string // PIP_INDEX_URL=..., npm_config_registry=..., GOPROXY=...
}

// ErrNotAllowed: a request's allow-list asks for more than the operator
// allows (400).
var ErrNotAllowed = errdefs.New(errdefs.ErrInvalid, "network egress not allowed")

// Policy is one sandbox's allow-list. A session's changes while it runs:
// connections opened before a change and no longer allowed are closed.
type Policy struct {
	mu      sync.RWMutex
	allow   netrule.List
	changed chan struct{} // closed, then replaced, at every change
}

// NewPolicy checks a request's entries against the operator's list and
// returns the sandbox's policy. The error names the first entry refused.
func (c *Config) NewPolicy(entries []string) (*Policy, error) {
	list, err := c.check(entries)
	if err != nil {
		return nil, err
	}
	// The package indexes come with every new policy; a later Set (a
	// session locked after its installs) lists exactly what it is given.
	list = append(list, c.Packages.Hosts...)
	return &Policy{allow: list, changed: make(chan struct{})}, nil
}

func (c *Config) check(entries []string) (netrule.List, error) {
	if len(entries) > 0 && len(c.Allowed) == 0 {
		return nil, fmt.Errorf("%w: network egress is off on this daemon (its [network] allowed list is empty)", ErrNotAllowed)
	}
	list := netrule.List{}
	for _, s := range entries {
		e, err := netrule.ParseEntry(s)
		if err != nil {
			return nil, fmt.Errorf("%w: network.allow %q: %v", ErrNotAllowed, s, err)
		}
		if !slices.ContainsFunc(c.Allowed, e.Within) {
			return nil, fmt.Errorf("%w: network.allow %q: not within the daemon's [network] allowed list", ErrNotAllowed, s)
		}
		list = append(list, e)
	}
	return list, nil
}

// Set replaces the allow-list (checked as NewPolicy checks it).
func (c *Config) Set(p *Policy, entries []string) error {
	list, err := c.check(entries)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.allow = list
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	return nil
}

// Entries returns the allow-list as written.
func (p *Policy) Entries() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]string, 0, len(p.allow))
	for _, e := range p.allow {
		out = append(out, e.String())
	}
	return out
}

// allows tells whether host (netrule.NormHost's form) at port may be
// reached, and returns the channel closed at the next change.
func (p *Policy) allows(host, port string) (bool, <-chan struct{}) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.allow.Has(host, port), p.changed
}

// Env is what a program needs to use the proxy: the variables curl, wget,
// pip, git, Python, Node's libraries and npm read, then the package
// indexes'.
func (c *Config) Env() []string {
	url := fmt.Sprintf("http://127.0.0.1:%d", ProxyPort)
	env := []string{
		"HTTP_PROXY=" + url, "HTTPS_PROXY=" + url, "http_proxy=" + url, "https_proxy=" + url,
		"NO_PROXY=localhost,127.0.0.1", "no_proxy=localhost,127.0.0.1",
		"npm_config_proxy=" + url, "npm_config_https_proxy=" + url,
	}
	return append(env, c.Packages.Env...)
}
