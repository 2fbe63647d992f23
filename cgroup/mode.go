// Package cgroup holds what sandboxd does with control groups: which mode
// the host is in, where sandboxes nest, which limits they get, and how their
// CPU time, memory peak and OOM kills are read. Creating, setting and
// removing a sandbox's cgroup goes through libcontainer's manager; this
// package adds what the manager leaves to its caller.
package cgroup

import (
	"os"

	"github.com/opencontainers/cgroups"
)

// Mode is how the host mounts cgroups.
type Mode string

const (
	// V2 is the unified hierarchy alone (cgroup2 at /sys/fs/cgroup).
	V2 Mode = "v2"
	// Hybrid has v1 controllers plus a cgroup2 mount at
	// /sys/fs/cgroup/unified that holds no controllers.
	Hybrid Mode = "hybrid"
	// V1 has v1 controllers only.
	V1 Mode = "v1"
)

// DetectMode reports the host's cgroup mode.
func DetectMode() Mode {
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		return V2
	case cgroups.IsCgroup2HybridMode():
		return Hybrid
	default:
		return V1
	}
}

// Unified reports whether limits go through the v2 interface files.
func (m Mode) Unified() bool { return m == V2 }

// Available reports whether the host has cgroups mounted at all.
func Available() bool {
	_, err := os.Stat("/sys/fs/cgroup")
	return err == nil
}
