package config

import (
	"fmt"
	"time"

	"github.com/sandboxd/sandboxd/internal/units"
	"github.com/sandboxd/sandboxd/limits"
)

// Build is the [build] section: image builds from recipes
// (POST /v1/images/build).
type Build struct {
	// LayerBytes bounds what a build may add to its parent image (the
	// layer's tmpfs). Default 2GiB.
	LayerBytes string `toml:"layer_bytes"`
	// Limits are each build step's limits, keys as in [defaults]; memory,
	// pids, cpus, work and tmp hold for the build as a whole. A request's
	// "limits" may lower them, never raise them.
	Limits Limits `toml:"limits"`
}

// BuildLimits are the built-in [build.limits]: a package install needs
// more than a snippet (minutes, a GiB, hundreds of processes).
func BuildLimits() limits.Set {
	s := limits.Defaults()
	s.WallTime, s.CPUTime = 10*time.Minute, 10*time.Minute
	s.MemoryBytes, s.Pids, s.CPUs = 1<<30, 256, 1
	s.TmpBytes, s.WorkBytes, s.FileSizeBytes, s.OpenFiles = 512<<20, 512<<20, 1<<30, 1024
	return s
}

// defaultLayerBytes is [build] layer_bytes' default.
const defaultLayerBytes = "2GiB"

func (c Config) resolveBuild(r *Resolved) []error {
	var errs []error
	layer := c.Build.LayerBytes
	if layer == "" {
		layer = defaultLayerBytes
	}
	var err error
	if r.BuildLayerBytes, err = units.ParseSize(layer); err != nil || r.BuildLayerBytes <= 0 {
		errs = append(errs, fmt.Errorf("[build] layer_bytes %q: must be a positive size", layer))
	}
	if r.BuildLimits, err = c.Build.Limits.Over(BuildLimits()); err != nil {
		errs = append(errs, fmt.Errorf("[build.limits]: %w", err))
	}
	return errs
}
