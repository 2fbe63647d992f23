package ociimage

import (
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Where sandboxd's image keeps what SelfOptions names. The entrypoint
// imports BusyboxDir into the store as "busybox" at the first start.
const (
	BinaryPath     = "/usr/local/bin/sandboxd"
	ConfigPath     = "/etc/sandboxd/sandboxd.toml"
	CatalogPath    = "/etc/sandboxd/catalog.toml"
	EntrypointPath = "/usr/local/lib/sandboxd/entrypoint.sh"
	BusyboxDir     = "/usr/share/sandboxd/rootfs/busybox"
	StateDir       = "/var/lib/sandboxd"
	// SocketPath is the API socket of the image's configuration.
	SocketPath = "/run/sandboxd/sandboxd.sock"
	// TCPPort is where the configuration's optional TCP listener (JWT)
	// goes, declared as the image's exposed port.
	TCPPort = "8181/tcp"
)

// SelfOptions names the host files that make sandboxd's image.
type SelfOptions struct {
	Binary     string // the static sandboxd binary
	Rootfs     string // the busybox rootfs directory: the image's root and its "busybox" image
	Catalog    string // the language catalog
	Config     string // the default configuration
	Entrypoint string // the entrypoint script
	Version    string // the image's version label
	Created    time.Time
}

// Self builds sandboxd's image: the busybox rootfs as its root (the
// entrypoint is a busybox sh script), the same tree once more under
// BusyboxDir, then a layer of sandboxd's own files.
func Self(o SelfOptions) (v1.Image, error) {
	root, err := TreeLayer(o.Rootfs, "/")
	if err != nil {
		return nil, err
	}
	busybox, err := TreeLayer(o.Rootfs, BusyboxDir)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, f := range []struct {
		src, dst string
		mode     int64
	}{
		{o.Binary, BinaryPath, 0o755},
		{o.Entrypoint, EntrypointPath, 0o755},
		{o.Config, ConfigPath, 0o644},
		{o.Catalog, CatalogPath, 0o644},
	} {
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, fmt.Errorf("image file %s: %w", f.dst, err)
		}
		files = append(files, File{Path: f.dst, Mode: f.mode, Data: data})
	}
	own, err := FilesLayer(files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(ociBase(), root, busybox, own)
	if err != nil {
		return nil, err
	}
	return withConfig(img, v1.Config{
		Entrypoint:   []string{EntrypointPath},
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SANDBOXD_SOCKET=" + SocketPath},
		Volumes:      map[string]struct{}{StateDir: {}},
		ExposedPorts: map[string]struct{}{TCPPort: {}},
		// The entrypoint passes SIGTERM on: the daemon stops accepting,
		// lets runs finish within grace_period and cleans up.
		StopSignal: "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":   "sandboxd",
			"org.opencontainers.image.version": o.Version,
		},
	}, o.Created)
}

// withConfig sets the image's config, platform and creation time.
func withConfig(img v1.Image, c v1.Config, created time.Time) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = c
	cf.OS, cf.Architecture = "linux", goarch()
	cf.Created = v1.Time{Time: created}
	return mutate.ConfigFile(img, cf)
}
