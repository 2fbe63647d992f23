package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
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

// registryEntry is one entry of Registries.
type registryEntry struct {
	host     string // lower case; an IP in netip's form; for a wildcard, the part after "*."
	wildcard bool   // "*.host": any name below host, not host itself
	port     string // "" = the default ports (443, and 80 for plain HTTP)
}

// destinations applies the rule; the zero value is the default (no list).
type destinations struct {
	listed []registryEntry
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

// parseRegistryEntry reads "host", "host:port", "[v6]:port" or "*.domain"
// (with an optional port). "docker.io" means "index.docker.io", as in
// references.
func parseRegistryEntry(s string) (registryEntry, error) {
	bad := func(why string) (registryEntry, error) {
		return registryEntry{}, fmt.Errorf("registry %q: %s (want host[:port], [ipv6]:port or *.domain[:port])", s, why)
	}
	text := strings.ToLower(strings.TrimSpace(s))
	if text == "" || strings.ContainsAny(text, "/@?# \t") {
		return bad("not a registry host")
	}
	var e registryEntry
	text, e.wildcard = strings.CutPrefix(text, "*.")
	host := text
	if h, p, err := net.SplitHostPort(text); err == nil {
		host, e.port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("bad port")
		}
	} else if strings.Count(text, ":") == 1 || strings.HasPrefix(text, "[") {
		return bad("bad port")
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if e.wildcard || ip.Zone() != "" {
			return bad("an address takes no wildcard or zone")
		}
		e.host = ip.String()
		return e, nil
	}
	if !validHostname(host) {
		return bad("bad host name")
	}
	e.host = normHost(host)
	if e.host == "docker.io" && !e.wildcard {
		e.host = "index.docker.io"
	}
	return e, nil
}

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// normHost is a host as entries are kept: lower case, no brackets or
// trailing dot, an IP in netip's form.
func normHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.String()
	}
	return h
}

// splitRegistry splits a host[:port] as references and dial addresses
// write it; port is "" when absent.
func splitRegistry(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return normHost(h), p
	}
	return normHost(hostport), ""
}

// samePort: an entry or a reference without a port stands for the default
// ports, which are all a connection to it may use.
func samePort(a, b string) bool {
	isDefault := func(p string) bool { return p == "" || p == "443" || p == "80" }
	return a == b || (isDefault(a) && isDefault(b))
}

func (d destinations) isListed(host, port string) bool {
	for _, e := range d.listed {
		match := host == e.host
		if e.wildcard {
			match = strings.HasSuffix(host, "."+e.host)
		}
		if match && samePort(e.port, port) {
			return true
		}
	}
	return false
}

// checkRegistry applies the rule to a reference's registry before any
// connection: the list, then what its text alone tells (an address, a
// localhost name). dialContext applies the rest.
func (d destinations) checkRegistry(registry string) error {
	host, port := splitRegistry(registry)
	if d.isListed(host, port) {
		return nil
	}
	if len(d.listed) > 0 {
		return &DestinationError{Registry: registry, Unlisted: true}
	}
	ip, err := netip.ParseAddr(host)
	if (err == nil && !publicAddr(ip)) || host == "localhost" || strings.HasSuffix(host, ".localhost") {
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
	regHost, regPort := splitRegistry(registry)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port := splitRegistry(addr)
		listed := d.isListed(host, port)
		refused := &DestinationError{Registry: registry, Redirected: host != regHost || !samePort(regPort, port)}
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
				if !publicAddr(ip) {
					return nil, refused
				}
			}
			dialer.Control = func(_, address string, _ syscall.RawConn) error {
				if ap, err := netip.ParseAddrPort(address); err != nil || !publicAddr(ap.Addr()) {
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

// nonPublicPrefixes are the special-purpose ranges (RFC 6890 and later)
// that netip's predicates do not cover and that a registry on the
// internet never uses.
func nonPublicPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
		netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT (RFC 6598)
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // documentation
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // documentation
		netip.MustParsePrefix("203.0.113.0/24"),  // documentation
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
		netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), ::, ::1
		netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215)
		netip.MustParsePrefix("100::/64"),        // discard-only
		netip.MustParsePrefix("2001::/32"),       // Teredo: an IPv4 address hidden inside
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	}
}

// publicAddr tells whether ip is an address on the internet: not
// loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, the
// cloud metadata services), unspecified, multicast, CGNAT or another
// special range. IPv4 addresses inside IPv6 ones (mapped, NAT64, 6to4)
// are judged as the IPv4 address they reach.
func publicAddr(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublicPrefixes() {
		if p.Contains(ip) {
			return false
		}
	}
	b := ip.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(ip): // NAT64
		return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
	case netip.MustParsePrefix("2002::/16").Contains(ip): // 6to4
		return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}
