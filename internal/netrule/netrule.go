// Package netrule is what the daemon's outbound connections are judged
// by: lists of hosts ("host", "host:port", "[v6]:port", "*.domain") and
// which addresses are public. Image pulls (package images) and sandboxes'
// egress (package egress) both connect on behalf of API callers from the
// host's network, so both apply the same rules, from here.
package netrule

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Entry is one entry of a host list.
type Entry struct {
	// Host is lower case, an IP in netip's form; for a wildcard, the part
	// after "*.".
	Host string
	// Wildcard: "*.host", any name below Host, not Host itself.
	Wildcard bool
	// Port is "" for the default ports (443 and 80).
	Port string
}

// ParseEntry reads "host", "host:port", "[v6]:port" or "*.domain" (with an
// optional port).
func ParseEntry(s string) (Entry, error) {
	bad := func(why string) (Entry, error) {
		return Entry{}, fmt.Errorf("%s (want host[:port], [ipv6]:port or *.domain[:port])", why)
	}
	text := strings.ToLower(strings.TrimSpace(s))
	if text == "" || strings.ContainsAny(text, "/@?# \t") {
		return bad("not a host")
	}
	var e Entry
	text, e.Wildcard = strings.CutPrefix(text, "*.")
	host := text
	if h, p, err := net.SplitHostPort(text); err == nil {
		host, e.Port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("bad port")
		}
	} else if strings.Count(text, ":") == 1 || strings.HasPrefix(text, "[") {
		return bad("bad port")
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if e.Wildcard || ip.Zone() != "" {
			return bad("an address takes no wildcard or zone")
		}
		e.Host = ip.String()
		return e, nil
	}
	if !validHostname(host) {
		return bad("bad host name")
	}
	e.Host = NormHost(host)
	return e, nil
}

// String is the entry as it is written.
func (e Entry) String() string {
	h := e.Host
	if e.Wildcard {
		h = "*." + h
	}
	switch {
	case e.Port == "":
		return h
	case strings.Contains(e.Host, ":"):
		return "[" + e.Host + "]:" + e.Port
	}
	return h + ":" + e.Port
}

// Matches tells whether the entry allows host (NormHost's form) at port
// ("" for a default one).
func (e Entry) Matches(host, port string) bool {
	match := host == e.Host
	if e.Wildcard {
		match = strings.HasSuffix(host, "."+e.Host)
	}
	return match && SamePort(e.Port, port)
}

// Within tells whether every host and port e matches, outer matches too.
func (e Entry) Within(outer Entry) bool {
	if !SamePort(outer.Port, e.Port) {
		return false
	}
	switch {
	case outer.Wildcard && e.Wildcard:
		return e.Host == outer.Host || strings.HasSuffix(e.Host, "."+outer.Host)
	case outer.Wildcard:
		return strings.HasSuffix(e.Host, "."+outer.Host)
	case e.Wildcard:
		return false
	}
	return e.Host == outer.Host
}

// List is a host list.
type List []Entry

// ParseList reads entries; an error names the first bad one.
func ParseList(entries []string) (List, error) {
	var l List
	for _, s := range entries {
		e, err := ParseEntry(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		l = append(l, e)
	}
	return l, nil
}

// Has tells whether an entry matches host at port.
func (l List) Has(host, port string) bool {
	for _, e := range l {
		if e.Matches(host, port) {
			return true
		}
	}
	return false
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

// NormHost is a host as entries keep it: lower case, no brackets or
// trailing dot, an IP in netip's form.
func NormHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.String()
	}
	return h
}

// SplitHostPort splits host[:port] as references, URLs and dial addresses
// write it; port is "" when absent.
func SplitHostPort(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return NormHost(h), p
	}
	return NormHost(hostport), ""
}

// SamePort: an entry or an address without a port stands for the default
// ports, which are all a connection to it may use.
func SamePort(a, b string) bool {
	isDefault := func(p string) bool { return p == "" || p == "443" || p == "80" }
	return a == b || (isDefault(a) && isDefault(b))
}

// nonPublicPrefixes are the special-purpose ranges (RFC 6890 and later)
// that netip's predicates do not cover and that a host on the internet
// never uses.
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

// Public tells whether ip is an address on the internet: not loopback,
// private (RFC 1918, fc00::/7), link-local (169.254/16, the cloud metadata
// services), unspecified, multicast, CGNAT or another special range. IPv4
// addresses inside IPv6 ones (mapped, NAT64, 6to4) are judged as the IPv4
// address they reach.
func Public(ip netip.Addr) bool {
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
		return Public(netip.AddrFrom4([4]byte(b[12:16])))
	case netip.MustParsePrefix("2002::/16").Contains(ip): // 6to4
		return Public(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}
