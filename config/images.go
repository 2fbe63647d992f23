package config

import (
	"fmt"
	"strings"
)

// Images is the [images] section: what the image store may do.
type Images struct {
	// Registries are the registries `POST /v1/images/pull` may reach:
	// host, host:port, [ipv6]:port or *.domain. Empty: any registry whose
	// addresses are all public; set: only these, at any address. The
	// rule is images.Options.Registries'; docs/api.md states it.
	Registries []string `toml:"registries"`
	// Preload are images pulled or imported at start, before the daemon
	// reports ready (GET /v1/readyz).
	Preload []Preload `toml:"preload"`
}

// Preload is one image of [images] preload: pulled from Ref, or imported
// from File (a `docker save` archive, an OCI layout tarball or a rootfs
// tarball), and stored as Name (from Ref: optional, derived as a pull
// derives it; from File: needed for a plain rootfs).
type Preload struct {
	Ref  string `toml:"ref"`
	File string `toml:"file"`
	Name string `toml:"name"`
}

// resolveImages checks [images]. The entries' full syntax is checked by
// images.Open (images.ParseRegistries); here, the mistakes a reader of
// other configurations makes: a URL, a path, an empty entry.
func (c Config) resolveImages() []error {
	var errs []error
	for i, p := range c.Images.Preload {
		if (p.Ref == "") == (p.File == "") {
			errs = append(errs, fmt.Errorf("[images] preload %d: set one of ref and file", i+1))
		}
	}
	for _, r := range c.Images.Registries {
		t := strings.TrimSpace(r)
		switch {
		case t == "":
			errs = append(errs, fmt.Errorf("[images] registries: an empty entry"))
		case strings.Contains(t, "://"):
			errs = append(errs, fmt.Errorf("[images] registries %q: a host[:port], not a URL", r))
		case strings.ContainsAny(t, "/@?# \t"):
			errs = append(errs, fmt.Errorf("[images] registries %q: a host[:port], without a path", r))
		case strings.Contains(strings.TrimPrefix(t, "*."), "*"):
			errs = append(errs, fmt.Errorf("[images] registries %q: a wildcard only as a leading \"*.\"", r))
		}
	}
	return errs
}
