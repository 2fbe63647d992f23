package config

import (
	"strings"
	"testing"
)

// [testsets]: the defaults resolve (the dir under state_dir), and each
// bad value is refused naming its key.
func TestTestsetsSection(t *testing.T) {
	r, err := Default().Resolve()
	if err != nil {
		t.Fatal(err)
	}
	ts := r.Testsets
	if ts.Dir != "/var/lib/sandboxd/testsets" || ts.MaxBytes != 256<<20 || ts.MaxTests != 1000 || ts.MaxOwnerBytes != 1<<30 || ts.MaxTotal != 8<<30 {
		t.Errorf("defaults: %+v", ts)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"a bad size", func(c *Config) { c.Testsets.MaxBytes = "lots" }, "[testsets] max_bytes"},
		{"zero", func(c *Config) { c.Testsets.MaxTotalBytes = "0" }, "[testsets] max_total_bytes"},
		{"more tests than a request", func(c *Config) { c.Testsets.MaxTests = 1001 }, "[testsets] max_tests 1001"},
		{"no tests", func(c *Config) { c.Testsets.MaxTests = 0 }, "[testsets] max_tests 0"},
		{"a set above an owner's room", func(c *Config) { c.Testsets.MaxBytes = "2GiB" }, "max_bytes <= max_owner_bytes"},
		{"an owner above all", func(c *Config) { c.Testsets.MaxOwnerBytes = "16GiB" }, "max_owner_bytes <= max_total_bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.edit(&cfg)
			if _, err := cfg.Resolve(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	cfg := Default()
	cfg.Testsets.Dir = "/srv/sets"
	if r, err := cfg.Resolve(); err != nil || r.Testsets.Dir != "/srv/sets" {
		t.Errorf("dir: %+v %v", r, err)
	}
}
