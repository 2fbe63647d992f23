package main

import (
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sandboxd/sandboxd/config"
)

// Flags of the access and operations keys. A list flag may be repeated or
// take commas (--listen unix:// --listen tcp://127.0.0.1:8080); a bool flag
// takes no value.
var (
	listFlags = map[string]bool{"listen": true, "allowed-uids": true, "allowed-gids": true}
	boolFlags = map[string]bool{"require-auth": true}
)

func accessFlags() []configFlag {
	return []configFlag{
		{"listen", "where to serve: unix:///PATH (unix:// = --socket, the default) and tcp://127.0.0.1:PORT; repeatable", func(c *config.Config, v string) error {
			c.Listen = splitList(v)
			return nil
		}},
		{"tls-cert", "TLS certificate (PEM) for tcp:// listeners", str(func(c *config.Config) *string { return &c.TLSCert })},
		{"tls-key", "TLS private key (PEM) for tcp:// listeners", str(func(c *config.Config) *string { return &c.TLSKey })},
		{"require-auth", "require a JWT on the Unix socket too (always required on TCP)", func(c *config.Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.RequireAuth = b
			return err
		}},
		{"allowed-uids", "uids allowed on the Unix socket (default: 0); repeatable", ints(func(c *config.Config) *[]int { return &c.AllowedUIDs })},
		{"allowed-gids", "groups allowed on the Unix socket, primary or supplementary (default: the socket's group); repeatable", ints(func(c *config.Config) *[]int { return &c.AllowedGIDs })},
		{"jwt-secret-file", "HS256 shared secret (at least 32 bytes)", str(func(c *config.Config) *string { return &c.JWTSecretFile })},
		{"jwt-public-key-file", "PEM public key or certificate: RSA (RS256) or EC P-256 (ES256)", str(func(c *config.Config) *string { return &c.JWTPublicKeyFile })},
		{"jwt-jwks-file", "JSON Web Key Set file with RS256/ES256 keys", str(func(c *config.Config) *string { return &c.JWTJWKSFile })},
		{"jwt-issuer", "required iss claim", str(func(c *config.Config) *string { return &c.JWTIssuer })},
		{"jwt-audience", "required aud claim", str(func(c *config.Config) *string { return &c.JWTAudience })},
		{"rate-limit", "executions per second per user (0: no limit)", func(c *config.Config, v string) error {
			n, err := strconv.ParseFloat(v, 64)
			c.RateLimit = n
			return err
		}},
		{"rate-burst", "executions a user may send at once above the rate", integer(func(c *config.Config) *int { return &c.RateBurst })},
		{"max-concurrent-per-user", "executions one user may have running or queued (0: no limit)", integer(func(c *config.Config) *int { return &c.MaxConcurrentPerUser })},
		{"audit-log", "audit log file, one JSON line per execution (- for stdout)", str(func(c *config.Config) *string { return &c.AuditLog })},
		{"metrics-listen", "also serve /metrics on tcp://HOST:PORT (no auth)", str(func(c *config.Config) *string { return &c.MetricsListen })},
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func ints(dst func(*config.Config) *[]int) func(*config.Config, string) error {
	return func(c *config.Config, v string) error {
		var out []int
		for _, s := range splitList(v) {
			n, err := strconv.Atoi(s)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		*dst(c) = out
		return nil
	}
}

// cliFlag builds the urfave flag of a config flag.
func cliFlag(f configFlag) cli.Flag {
	// A section's flag may carry the section's name, which its key does
	// not repeat (--testsets-max-bytes is [testsets] max_bytes).
	section := flagSections[f.name]
	key := strings.TrimPrefix(f.name, strings.Trim(section, "[] ")+"-")
	usage := f.usage + " (config: " + section + strings.ReplaceAll(key, "-", "_") + ")"
	switch {
	case listFlags[f.name]:
		return &cli.StringSliceFlag{Name: f.name, Usage: usage}
	case boolFlags[f.name]:
		return &cli.BoolFlag{Name: f.name, Usage: usage}
	}
	return &cli.StringFlag{Name: f.name, Usage: usage}
}

// flagValue is a set flag's value as configFlag.set takes it.
func flagValue(c *cli.Context, name string) string {
	switch {
	case listFlags[name]:
		return strings.Join(c.StringSlice(name), ",")
	case boolFlags[name]:
		return strconv.FormatBool(c.Bool(name))
	}
	return c.String(name)
}
