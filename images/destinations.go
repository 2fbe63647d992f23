package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/internal/netrule"
)

// Where a pull may connect. A pull is asked for by an API caller, and the
// daemon runs as root inside the host's network: without a rule, a pull
// of "127.0.0.1:6379/x" or "169.254.169.254/x" makes the daemon reach
// services that only the host should reach. The rule:
//
//   - a host listed in Options.Registries may be at any address;
//   - any other host must resolve to public addresses only (none of
//     loopback, private, link-local, unspecified, multicast, CGNAT and the
//     other special ranges of nonPublicPrefixes);
//   - when Registries is not empty, a pull must name a listed registry.
//
// The rule is applied where connections are made (dialContext), to the
// address actually dialed, so that DNS answers that change between checks
// (rebinding), redirects (registries send blob fetches to CDNs) and token
// realms are held to it as well as the registry named by the reference.
// Proxies from the environment are not used: through one, the daemon
// would not see the address it reaches.

// ErrRegistryNotAllowed: a pull would have reached a registry, or a host
// a registry sent it to, that the rule above refuses (HTTP 400).
var ErrRegistryNotAllowed = errdefs.New(errdefs.ErrInvalid, "registry not allowed")

// DestinationError is a pull refused by the destination rule. Its text
// names the registry as the reference gave it and nothing the host or
// the registry's answers would tell (addresses, redirect targets).
type DestinationError struct {
	// Registry is the reference's registry, host[:port].
	Registry string
	// Unlisted: Registries is set and does not list the registry.
	Unlisted bool
	// Redirected: the registry sent the pull to another host (a redirect,
	// a token realm) that is not allowed.
	Redirected bool
}

func (e *DestinationError) Error() string {
	switch {
	case e.Unlisted:
		return fmt.Sprintf("registry %q is not allowed: it is not in the daemon's [images] registries", e.Registry)
	case e.Redirected:
		return fmt.Sprintf("registry %q is not allowed: it sent the pull to another host, which is neither at a public address nor in the daemon's [images] registries", e.Registry)
	}
	return fmt.Sprintf("registry %q is not allowed: it is not at a public address and not in the daemon's [images] registries", e.Registry)
}

func (e *DestinationError) Unwrap() []error { return []error{ErrRegistryNotAllowed, ErrInvalid} }

// destinations applies the rule; the zero value is the default (no list).
type destinations struct {
	listed netrule.List
	// lookup resolves a host name; tests replace it to play DNS.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

func newDestinations(registries []string) (destinations, error) {
	d := destinations{lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}}
	for _, r := range registries {
		e, err := parseRegistryEntry(r)
		if err != nil {
			return destinations{}, err
		}
		d.listed = append(d.listed, e)
	}
	return d, nil
}

// ParseRegistries checks a Registries list as Open will read it, so that
// a configuration can be refused before the daemon starts.
func ParseRegistries(registries []string) error {
	_, err := newDestinations(registries)
	return err
}

// parseRegistryEntry reads a netrule entry. "docker.io" means
// "index.docker.io", as in references.
func parseRegistryEntry(s string) (netrule.Entry, error) {
	e, err := netrule.ParseEntry(s)
	if err != nil {
		return e, fmt.Errorf("registry %q: %w", s, err)
	}
	if e.Host == "docker.io" && !e.Wildcard {
		e.Host = "index.docker.io"
	}
	return e, nil
}

func (d destinations) isListed(host, port string) bool { return d.listed.Has(host, port) }

// checkRegistry applies the rule to a reference's registry before any
// connection: the list, then what its text alone tells (an address, a
// localhost name). dialContext applies the rest.
func (d destinations) checkRegistry(registry string) error {
	host, port := netrule.SplitHostPort(registry)
	if d.isListed(host, port) {
		return nil
	}
	if len(d.listed) > 0 {
		return &DestinationError{Registry: registry, Unlisted: true}
	}
	ip, err := netip.ParseAddr(host)
	if (err == nil && !netrule.Public(ip)) || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return &DestinationError{Registry: registry}
	}
	return nil
}

// transport is one pull's HTTP transport: ggcr's defaults, no proxy, and
// every connection through dialContext. registry is the reference's, to
// tell it from the hosts it sends the pull to.
func (d destinations) transport(registry string) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.dialContext(registry),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// dialContext resolves the host here and dials the addresses of that one
// lookup (a second could answer otherwise). A host that is not listed is
// refused if any of its addresses is not public, and each address is
// checked again as the socket connects.
func (d destinations) dialContext(registry string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	base := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	regHost, regPort := netrule.SplitHostPort(registry)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port := netrule.SplitHostPort(addr)
		listed := d.isListed(host, port)
		refused := &DestinationError{Registry: registry, Redirected: host != regHost || !netrule.SamePort(regPort, port)}
		if !listed && len(d.listed) > 0 && !refused.Redirected {
			// checkRegistry refused it already; this is the same rule.
			refused.Unlisted = true
			return nil, refused
		}
		ips, err := d.lookup(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
		dialer := base
		if !listed {
			for _, ip := range ips {
				if !netrule.Public(ip) {
					return nil, refused
				}
			}
			dialer.Control = func(_, address string, _ syscall.RawConn) error {
				if ap, err := netip.ParseAddrPort(address); err != nil || !netrule.Public(ap.Addr()) {
					return refused
				}
				return nil
			}
		}
		var first error
		for _, ip := range ips {
			c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			if first == nil {
				first = err
			}
			if ctx.Err() != nil || errors.Is(err, ErrRegistryNotAllowed) {
				break
			}
		}
		return nil, first
	}
}
