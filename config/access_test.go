package config

import "testing"

// The sample configuration installed by `make install` loads and resolves.
func TestSampleConfig(t *testing.T) {
	c, err := Load("../contrib/sandboxd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
}

func TestListen(t *testing.T) {
	good := map[string]ListenAddr{
		"unix://":               {"unix", "/run/s.sock"},
		"unix:///tmp/x.sock":    {"unix", "/tmp/x.sock"},
		"tcp://127.0.0.1:8181":  {"tcp", "127.0.0.1:8181"},
		"tcp://[::1]:8181":      {"tcp", "[::1]:8181"},
		"tcp://localhost:8181":  {"tcp", "localhost:8181"},
		"tcp://192.0.2.10:8181": {"tcp", "192.0.2.10:8181"},
	}
	for in, want := range good {
		if got, err := ParseListen(in, "/run/s.sock"); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "/tmp/x.sock", "unix://relative", "tcp://127.0.0.1", "http://127.0.0.1:1", "tcp://:"} {
		if _, err := ParseListen(in, "/run/s.sock"); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"tcp without a key", func(c *Config) { c.Listen = []string{"tcp://127.0.0.1:1"} }, false},
		{"tcp with a key", func(c *Config) { c.Listen = []string{"tcp://127.0.0.1:1"}; c.JWTSecretFile = "/s" }, true},
		{"remote tcp without TLS", func(c *Config) { c.Listen = []string{"tcp://192.0.2.10:1"}; c.JWTSecretFile = "/s" }, false},
		{"remote tcp with TLS", func(c *Config) {
			c.Listen = []string{"tcp://192.0.2.10:1"}
			c.JWTSecretFile, c.TLSCert, c.TLSKey = "/s", "/c", "/k"
		}, true},
		{"require_auth without a key", func(c *Config) { c.RequireAuth = true }, false},
		{"a cert without a key", func(c *Config) { c.TLSCert = "/c" }, false},
		{"negative rate", func(c *Config) { c.RateLimit = -1 }, false},
		{"rate without burst", func(c *Config) { c.RateLimit = 1; c.RateBurst = 0 }, false},
		{"metrics on unix", func(c *Config) { c.MetricsListen = "unix:///x" }, false},
		{"metrics on tcp", func(c *Config) { c.MetricsListen = "tcp://127.0.0.1:9464" }, true},
	}
	for _, tc := range cases {
		c := Default()
		c.Catalog = ""
		tc.mod(&c)
		if _, err := c.Resolve(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
