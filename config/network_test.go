package config

import (
	"slices"
	"strings"
	"testing"
)

func TestNetworkAndPackages(t *testing.T) {
	d := Default()
	if len(d.Network.Allowed) != 0 {
		t.Error("the default allows hosts: egress must be off until the operator lists some")
	}
	for _, tc := range []struct {
		name string
		set  func(c *Config)
		bad  string
	}{
		{"defaults", func(*Config) {}, ""},
		{"hosts and a mirror", func(c *Config) {
			c.Network.Allowed = []string{"pypi.org", "*.pythonhosted.org", "mirror.example:8080"}
			c.Network.AllowedPrivate = []string{"10.0.0.5:3142", "[fd00::5]:3142"}
			c.Network.DNS = "127.0.0.1:53"
		}, ""},
		{"a URL in allowed", func(c *Config) { c.Network.Allowed = []string{"https://pypi.org"} }, "[network] allowed"},
		{"a private address without a port", func(c *Config) { c.Network.AllowedPrivate = []string{"10.0.0.5"} }, "allowed_private"},
		{"a name in allowed_private", func(c *Config) { c.Network.AllowedPrivate = []string{"mirror:3142"} }, "allowed_private"},
		{"no connections", func(c *Config) { c.Network.MaxConnections = 0 }, "max_connections"},
		{"a bad rate", func(c *Config) { c.Network.Rate = "fast" }, "rate"},
		{"a DNS name", func(c *Config) { c.Network.DNS = "dns.example" }, "dns"},
		{"a package index that is no URL", func(c *Config) { c.Packages.PipIndexURL = "pypi.example/simple" }, "pip_index_url"},
		{"credentials in a registry URL", func(c *Config) { c.Packages.NPMRegistry = "https://u:p@npm.example/" }, "npm_registry"},
	} {
		c := Default()
		c.Catalog = ""
		tc.set(&c)
		_, err := c.Resolve()
		if (tc.bad == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.bad)
		}
	}
	c := Default()
	c.Catalog = ""
	c.Packages = Packages{PipIndexURL: "http://mirror.example:3141/simple/", GoProxy: "https://goproxy.example"}
	r, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := []string{"PIP_INDEX_URL=http://mirror.example:3141/simple/", "PIP_TRUSTED_HOST=mirror.example", "GOPROXY=https://goproxy.example"}
	if !slices.Equal(r.Network.Packages.Env, wantEnv) {
		t.Errorf("package env %q, want %q", r.Network.Packages.Env, wantEnv)
	}
	if !r.Network.Packages.Hosts.Has("mirror.example", "3141") || !r.Network.Packages.Hosts.Has("goproxy.example", "443") {
		t.Errorf("package hosts %v", r.Network.Packages.Hosts)
	}
}
