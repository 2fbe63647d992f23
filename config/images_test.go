package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestImagesRegistries(t *testing.T) {
	c, err := Load("testdata/images.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"registry.internal:5000", "docker.io", "*.corp.example"}
	if !slices.Equal(c.Images.Registries, want) {
		t.Errorf("registries %q, want %q", c.Images.Registries, want)
	}
	if len(Default().Images.Registries) != 0 {
		t.Error("the default lists registries: it must be empty (public addresses only)")
	}
	for _, tc := range []struct {
		name       string
		registries []string
		ok         bool
	}{
		{"none", nil, true},
		{"hosts and ports", []string{"registry.internal:5000", "[::1]:5000", "10.0.0.5", "*.corp.example:443"}, true},
		{"a URL", []string{"https://registry.internal"}, false},
		{"a path", []string{"registry.internal/team"}, false},
		{"empty", []string{""}, false},
		{"a wildcard inside", []string{"reg*.example"}, false},
	} {
		c := Default()
		c.Catalog = ""
		c.Images.Registries = tc.registries
		if _, err := c.Resolve(); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	// A typo in the section is an unknown key, as everywhere.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[images]\nregistry = [\"x\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil {
		t.Error("[images] registry (a typo) was accepted")
	}
}
