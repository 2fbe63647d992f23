package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sandboxd/sandboxd/internal/units"
)

// Compat is the [compat] section: the Piston- and Judge0-compatible
// endpoints (docs/compat.md), and an optional listener of their own.
type Compat struct {
	Piston bool `toml:"piston"`
	Judge0 bool `toml:"judge0"`
	// Listen is a tcp://HOST:PORT that serves only these endpoints; Auth
	// is "token" (a bearer token, as on every TCP listener) or "none"
	// (callers are the user "anonymous"), which is allowed on a loopback
	// address only.
	Listen string `toml:"listen"`
	Auth   string `toml:"auth"`
	// The anonymous callers' own limits, as rate_limit, rate_burst and
	// max_concurrent_per_user are every other user's.
	AnonymousRateLimit     float64 `toml:"anonymous_rate_limit"`
	AnonymousRateBurst     int     `toml:"anonymous_rate_burst"`
	AnonymousMaxConcurrent int     `toml:"anonymous_max_concurrent"`
	// Judge0 submissions made without wait=true are kept for
	// Judge0Keep after they end, at most Judge0MaxResults of them and
	// Judge0MaxResultBytes of their outputs; the oldest go first.
	Judge0Keep           string `toml:"judge0_keep"`
	Judge0MaxResults     int    `toml:"judge0_max_results"`
	Judge0MaxResultBytes string `toml:"judge0_max_result_bytes"`
}

// CompatResolved is [compat] checked and converted.
type CompatResolved struct {
	Piston, Judge0 bool
	// Listen is the compat listener, nil without one; Anonymous is its
	// auth = "none".
	Listen    *ListenAddr
	Anonymous bool
	// AnonymousRate, AnonymousBurst and AnonymousMaxConcurrent bound the
	// anonymous callers together.
	AnonymousRate          float64
	AnonymousBurst         int
	AnonymousMaxConcurrent int
	Judge0Keep             time.Duration
	Judge0MaxResults       int
	Judge0MaxResultBytes   int64
}

func defaultCompat() Compat {
	return Compat{Auth: "token", AnonymousRateLimit: 1, AnonymousRateBurst: 5, AnonymousMaxConcurrent: 2,
		Judge0Keep: "1h", Judge0MaxResults: 1000, Judge0MaxResultBytes: "64MiB"}
}

// resolveCompat checks [compat]. A listener without a token is refused
// unless it is bound to a loopback address given as an IP literal: a
// host name ("localhost") may resolve elsewhere on a misconfigured host,
// and an anonymous listener reachable from the network would let anyone
// run code.
func (c Config) resolveCompat(r *Resolved) []error {
	cc := c.Compat
	out := CompatResolved{Piston: cc.Piston, Judge0: cc.Judge0, Judge0MaxResults: cc.Judge0MaxResults,
		AnonymousRate: cc.AnonymousRateLimit, AnonymousBurst: cc.AnonymousRateBurst, AnonymousMaxConcurrent: cc.AnonymousMaxConcurrent}
	var errs []error
	var err error
	if out.Judge0Keep, err = units.ParseDuration(cc.Judge0Keep); err != nil || out.Judge0Keep <= 0 {
		errs = append(errs, fmt.Errorf("[compat] judge0_keep %q: must be a positive duration", cc.Judge0Keep))
	}
	if out.Judge0MaxResultBytes, err = units.ParseSize(cc.Judge0MaxResultBytes); err != nil || out.Judge0MaxResultBytes <= 0 {
		errs = append(errs, fmt.Errorf("[compat] judge0_max_result_bytes %q: must be a positive size", cc.Judge0MaxResultBytes))
	}
	if cc.Judge0MaxResults <= 0 {
		errs = append(errs, errors.New("[compat] judge0_max_results must be greater than zero"))
	}
	if cc.AnonymousRateLimit < 0 || cc.AnonymousRateBurst < 0 || cc.AnonymousMaxConcurrent < 0 {
		errs = append(errs, errors.New("[compat] anonymous_rate_limit, anonymous_rate_burst and anonymous_max_concurrent must not be negative"))
	}
	if cc.AnonymousRateLimit > 0 && cc.AnonymousRateBurst == 0 {
		errs = append(errs, errors.New("[compat] anonymous_rate_burst must be at least 1 when anonymous_rate_limit is set"))
	}
	errs = append(errs, c.resolveCompatListener(&out)...)
	r.Compat = out
	return errs
}

// resolveCompatListener checks listen and auth.
func (c Config) resolveCompatListener(out *CompatResolved) []error {
	cc := c.Compat
	if cc.Auth != "token" && cc.Auth != "none" {
		return []error{fmt.Errorf("[compat] auth %q: expected \"token\" or \"none\"", cc.Auth)}
	}
	if cc.Listen == "" {
		if cc.Auth == "none" {
			return []error{errors.New(`[compat] auth = "none" needs a listen address of its own (listen = "tcp://127.0.0.1:2000")`)}
		}
		return nil
	}
	a, err := ParseListen(cc.Listen, "")
	if err != nil || a.Network != "tcp" {
		return []error{fmt.Errorf("[compat] listen %q: expected tcp://HOST:PORT", cc.Listen)}
	}
	var errs []error
	if !cc.Piston && !cc.Judge0 {
		errs = append(errs, errors.New("[compat] listen needs piston = true or judge0 = true: it serves nothing else"))
	}
	switch {
	case cc.Auth == "none" && !literalLoopback(a):
		errs = append(errs, fmt.Errorf(`[compat] listen %s with auth = "none": a listener without a token is allowed on a loopback address only (127.0.0.1, ::1), for clients on the same host`, a))
	case cc.Auth == "token" && !c.JWTEnabled():
		errs = append(errs, fmt.Errorf("[compat] listen %s: auth = \"token\" needs a JWT key (jwt_secret_file, jwt_public_key_file or jwt_jwks_file)", a))
	case cc.Auth == "token" && !a.IsLoopback() && c.TLSCert == "":
		errs = append(errs, fmt.Errorf("[compat] listen %s: a TCP address beyond the loopback needs TLS (tls_cert, tls_key)", a))
	}
	out.Listen, out.Anonymous = &a, cc.Auth == "none"
	return errs
}

// literalLoopback reports whether a listens on a loopback IP literal.
func literalLoopback(a ListenAddr) bool {
	host, _, _ := net.SplitHostPort(a.Address)
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
