package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ListenAddr is one address of "listen": a Unix socket or a TCP host:port.
type ListenAddr struct {
	Network string // "unix" or "tcp"
	Address string // a path, or host:port
}

func (a ListenAddr) String() string { return a.Network + "://" + a.Address }

// ParseListen parses "unix:///path" ("unix://" alone is the configured
// socket) or "tcp://HOST:PORT".
func ParseListen(s, socket string) (ListenAddr, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case ok && scheme == "unix":
		if rest == "" {
			rest = socket
		}
		if !strings.HasPrefix(rest, "/") {
			return ListenAddr{}, fmt.Errorf("listen %q: the socket path must be absolute (unix:///run/sandboxd/sandboxd.sock)", s)
		}
		return ListenAddr{"unix", rest}, nil
	case ok && scheme == "tcp":
		if _, port, err := net.SplitHostPort(rest); err != nil || port == "" {
			return ListenAddr{}, fmt.Errorf("listen %q: expected tcp://HOST:PORT", s)
		}
		return ListenAddr{"tcp", rest}, nil
	}
	return ListenAddr{}, fmt.Errorf("listen %q: expected unix:///PATH or tcp://HOST:PORT", s)
}

// IsLoopback reports whether a TCP address only listens on the loopback.
func (a ListenAddr) IsLoopback() bool {
	host, _, _ := net.SplitHostPort(a.Address)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// JWTEnabled reports whether a JWT key source is configured.
func (c Config) JWTEnabled() bool {
	return c.JWTSecretFile != "" || c.JWTPublicKeyFile != "" || c.JWTJWKSFile != ""
}

// resolveAccess checks the access and operations keys.
func (c Config) resolveAccess(r *Resolved) []error {
	var errs []error
	listen := c.Listen
	if len(listen) == 0 {
		listen = []string{"unix://"}
	}
	hasTCP := false
	for _, s := range listen {
		a, err := ParseListen(s, c.Socket)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if a.Network == "tcp" {
			hasTCP = true
			if !a.IsLoopback() && c.TLSCert == "" {
				errs = append(errs, fmt.Errorf("listen %s: a TCP address beyond the loopback needs TLS (tls_cert, tls_key)", a))
			}
		}
		r.Listeners = append(r.Listeners, a)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert and tls_key go together"))
	}
	if (hasTCP || c.RequireAuth) && !c.JWTEnabled() {
		errs = append(errs, errors.New("a tcp:// listener or require_auth needs a JWT key: jwt_secret_file, jwt_public_key_file or jwt_jwks_file"))
	}
	for _, id := range append(append([]int{}, c.AllowedUIDs...), c.AllowedGIDs...) {
		if id < 0 || id > 1<<32-2 {
			errs = append(errs, fmt.Errorf("allowed uid or gid %d is out of range", id))
		}
	}
	if c.RateLimit < 0 || c.RateBurst < 0 || c.MaxConcurrentPerUser < 0 {
		errs = append(errs, errors.New("rate_limit, rate_burst and max_concurrent_per_user must not be negative"))
	}
	if c.RateLimit > 0 && c.RateBurst == 0 {
		errs = append(errs, errors.New("rate_burst must be at least 1 when rate_limit is set"))
	}
	if c.MetricsListen != "" {
		a, err := ParseListen(c.MetricsListen, "")
		if err != nil || a.Network != "tcp" {
			errs = append(errs, fmt.Errorf("metrics_listen %q: expected tcp://HOST:PORT", c.MetricsListen))
		} else {
			r.MetricsAddr = a.Address
		}
	}
	return errs
}
